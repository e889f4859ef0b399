"""``ContentModel``: a cold-start model that needs no training, from text and the KG alone.

Item vector (cosine space)::

    v_i = [ sqrt(1 - w) * t_i ; sqrt(w) * g_i ]
    t_i = normalise(text embedding of the item)
    g_i = normalise(normalise(idf * b_i) @ V_k)                       (LSI of the KG links)

``b_i`` is the item's binary bag of linked KG / attribute entities, ``V_k`` the top-``k`` right
singular vectors of the IDF-weighted, row-normalised item x entity matrix, so a new item's links
fold in exactly like a known item's. Cosine(v_i, v_j) = (1 - w) cos_text + w cos_kg where both
parts exist. A user is the normalised mean of their positive items' vectors; free text alone is
the text part of the space (``[sqrt(1 - w) * t ; 0]``).

The model takes arrays (text vectors, the link bags, the users' history): it runs no encoder and
builds no graph. Its inputs are assembled from a spec, and it is put behind the serving protocol,
by :class:`kgrec.serve.ContentAdapter`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Self

import numpy as np

from kgrec._numeric import normalize_rows, smooth_idf
from kgrec.errors import DataError, SpecError

if TYPE_CHECKING:  # scipy is imported where it is used: a loaded retriever never needs it
    import scipy.sparse as sp

__all__ = ["ContentConfig", "ContentModel", "randomized_svd"]


@dataclass(frozen=True)
class ContentConfig:
    """``kg_weight``: share ``w`` of the KG part in the cosine; ``kg_dim``: LSI rank of the KG
    part; ``min_entity_degree``: entities linked to fewer items carry no signal between items
    (read by the input assembly, which drops them from the bags)."""

    kg_weight: float = 0.5
    kg_dim: int = 64
    min_entity_degree: int = 2

    def __post_init__(self) -> None:
        if not 0.0 <= self.kg_weight <= 1.0:
            raise SpecError(f"kg_weight must be in [0, 1], got {self.kg_weight}", key="kg_weight")
        if self.kg_dim < 1:
            raise SpecError(f"kg_dim must be >= 1, got {self.kg_dim}", key="kg_dim")
        if self.min_entity_degree < 1:
            raise SpecError("min_entity_degree must be >= 1", key="min_entity_degree")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ContentConfig:
        return cls(**d)


class ContentModel:
    """Text + KG content vectors (see the module docstring); :meth:`fit` computes the LSI of the
    link bags and the item and user vectors, nothing is trained."""

    name = "content"

    def __init__(self, config: ContentConfig | None = None) -> None:
        self.config = config or ContentConfig()

    def fit(
        self,
        text: np.ndarray,
        links: sp.csr_matrix,
        entities: np.ndarray,
        history: sp.csr_matrix,
    ) -> Self:
        """``text`` ``(n_items, d)`` text vectors; ``links`` the binary ``(n_items, E)`` entity
        bags with ``entities`` their column keys (``"type:id"``); ``history`` the binary
        ``(n_users, n_items)`` positives that define each user's taste."""
        n = text.shape[0]
        if links.shape[0] != n or history.shape[1] != n:
            raise DataError(
                f"content inputs disagree: {n} text rows, {links.shape[0]} link rows, "
                f"{history.shape[1]} history columns"
            )
        if links.shape[1] != len(entities):
            raise DataError(f"{links.shape[1]} link columns for {len(entities)} entities")
        self.entities_ = entities
        self.entity_col_ = {str(e): j for j, e in enumerate(entities)}
        self._fit_lsi(links)
        self.item_vecs_ = self.combine(
            normalize_rows(np.asarray(text, np.float32)), self.kg_features(links)
        )
        self.user_vecs_ = normalize_rows(np.asarray(history @ self.item_vecs_, np.float32))
        return self

    def _fit_lsi(self, links: sp.csr_matrix) -> None:
        """Top-k right singular vectors of the IDF-weighted, row-normalised bags (randomized SVD:
        sparse products only; a dense eigensolver took 16-18 s on ml-100k on this loaded CPU)."""
        n, e = links.shape
        df = np.asarray(links.sum(0)).ravel()
        self.idf_ = smooth_idf(df, n)
        k = int(min(self.config.kg_dim, min(n, e) - 1))
        if k < 1:
            self.lsi_ = np.zeros((e, 0), np.float32)
            return
        _, vt = randomized_svd(self._bags(links).astype(np.float64), k, seed=0)
        self.lsi_ = vt.T.astype(np.float32)  # (entities, k)

    def _bags(self, links: sp.csr_matrix) -> sp.csr_matrix:
        import scipy.sparse as sp

        x = sp.csr_matrix(links @ sp.diags(self.idf_), dtype=np.float32)
        norms = np.sqrt(np.asarray(x.multiply(x).sum(1)).ravel())
        inv = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
        return sp.csr_matrix(sp.diags(inv.astype(np.float32)) @ x)

    def kg_features(self, links: sp.csr_matrix) -> np.ndarray:
        """The KG part ``g`` of the items with these entity bags."""
        if self.lsi_.shape[1] == 0:
            return np.zeros((links.shape[0], 0), np.float32)
        return normalize_rows(np.asarray(self._bags(links) @ self.lsi_, np.float32))

    def combine(self, text: np.ndarray, kgf: np.ndarray) -> np.ndarray:
        """``[sqrt(1 - w) text ; sqrt(w) kgf]`` (``text`` already normalised)."""
        w = self.config.kg_weight
        return np.concatenate([np.sqrt(1 - w) * text, np.sqrt(w) * kgf], 1).astype(np.float32)

    def embed(self, text: np.ndarray, links: sp.csr_matrix) -> np.ndarray:
        """Vectors of new items from their text vectors and binary entity bags (columns
        :attr:`entities_`)."""
        return self.combine(normalize_rows(np.asarray(text, np.float32)), self.kg_features(links))

    def text_vector(self, text: np.ndarray) -> np.ndarray:
        """The vector of free text alone, from its text vector ``(d,)``: ``[sqrt(1 - w) t ; 0]``."""
        t = normalize_rows(np.asarray(text, np.float32).reshape(1, -1))
        return self.combine(t, np.zeros((1, self.lsi_.shape[1]), np.float32))[0]

    def item_vectors(self) -> np.ndarray:
        return self.item_vecs_

    def user_vectors(self) -> np.ndarray:
        return self.user_vecs_


def randomized_svd(
    x: sp.spmatrix, k: int, *, oversample: int = 16, iters: int = 6, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` singular values and right singular vectors ``(k, n_cols)`` of sparse ``x``
    (Halko, Martinsson & Tropp 2011: randomized range finder with ``iters`` power iterations,
    QR-orthonormalised each step); deterministic in ``seed``."""
    import scipy.sparse as sp
    import torch

    rng = np.random.default_rng(seed)
    width = min(k + oversample, min(x.shape))
    xt = sp.csr_matrix(x.T)

    def orth(
        a: np.ndarray,
    ) -> np.ndarray:  # torch's QR: numpy's threaded LAPACK measured 10x slower here
        return torch.linalg.qr(torch.from_numpy(np.ascontiguousarray(a)))[0].numpy()

    q = orth(np.asarray(x @ rng.standard_normal((x.shape[1], width))))
    for _ in range(iters):
        q = orth(np.asarray(x @ orth(np.asarray(xt @ q))))
    b = torch.from_numpy(np.ascontiguousarray(np.asarray(xt @ q).T))  # (width, n_cols)
    _, s, vt = torch.linalg.svd(b, full_matrices=False)
    return s[:k].numpy(), vt[:k].numpy()
