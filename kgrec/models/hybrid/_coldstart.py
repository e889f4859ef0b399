"""Cold-start baselines for the hybrid's cold-item protocol: content kNN and content -> CF.

* :class:`TextKNN`: user profile = mean text vector of their training items; score = cosine of
  profile and item text vector (any item with text can be ranked, interactions or not).
* :class:`KGKNN`: the same over KG / attribute links: item vector = L2-normalised, IDF-weighted
  bag of linked entities.
* :class:`ContentToCF`: a DropoutNet/Heater-style mapping: factorise the training matrix
  (PureSVD, rank ``dim``: a closed-form MF), regress the warm items' factors on content features
  ``[text, links]`` with ridge, and give cold items (no training interaction) the predicted
  factors; users keep their MF vectors.

All three need a :class:`~kgrec.models.hybrid.ModelContext` (graph spec) for their inputs, like
the hybrid; they share its cached :class:`~kgrec.models.hybrid.HybridInputs`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Self

import numpy as np
import scipy.sparse as sp
import torch

from kgrec._numeric import normalize_rows
from kgrec.errors import KgrecError
from kgrec.models._base import ModelConfig, Recommender, Validator, history_tensor
from kgrec.models.hybrid._cold_map import link_idf
from kgrec.models.hybrid._inputs import HybridInputs


def link_features(inputs: HybridInputs) -> np.ndarray:
    """Dense ``(n_items, n_entities)`` IDF-weighted, L2-normalised entity bags (all relations)."""
    if inputs.item_links is None:
        raise KgrecError("no KG / attribute links in the inputs")
    m = sp.csr_matrix(sum(inputs.item_links.matrices), dtype=np.float32)
    m.data[:] = 1.0
    idf = link_idf(inputs.item_links.matrices)
    return normalize_rows(np.asarray((m @ sp.diags(idf)).todense(), np.float32))


class _ContentRecommender(Recommender):
    """Base: needs ``inputs``; ``fit`` ignores ``validate`` (closed form)."""

    def __init__(
        self, config: ModelConfig | None = None, *, inputs: HybridInputs | None = None, **kw: Any
    ) -> None:
        super().__init__(config, **kw)
        self.inputs = inputs

    @classmethod
    def from_context(cls, context: Any | None, *, options: Any = None) -> Self:
        from kgrec.models.hybrid._context import hybrid_inputs

        if context is None:
            raise KgrecError(f"{cls.name} needs a graph spec (content inputs)")
        return cls(inputs=hybrid_inputs(context))

    def _need_inputs(self, train: sp.csr_matrix) -> HybridInputs:
        inp = self.inputs
        if inp is None:
            raise KgrecError(f"{type(self).__name__} needs content inputs (HybridInputs)")
        if (inp.n_users, inp.n_items) != train.shape:
            raise KgrecError(f"inputs are {inp.n_users} x {inp.n_items}, train {train.shape}")
        return inp

    #: the item features a content kNN model compares (``HybridInputs -> (n_items, d)``)
    features: Callable[[HybridInputs], np.ndarray]

    def fit(self, train: sp.spmatrix, *, validate: Validator | None = None) -> Self:
        m = self._start_fit(train)
        self.item_vecs_ = normalize_rows(self.features(self._need_inputs(m)))
        return self

    def _score(self, users: np.ndarray, history: sp.csr_matrix) -> torch.Tensor:
        items = torch.from_numpy(self.item_vecs_)
        h = history_tensor(history)
        prof = h @ items / h.sum(1, keepdim=True).clamp(min=1.0)
        return torch.nn.functional.normalize(prof, dim=1) @ items.T

    def item_vectors(self) -> torch.Tensor | None:
        self._check_fitted()
        return torch.from_numpy(self.item_vecs_)

    def _state(self) -> dict[str, np.ndarray]:
        return {**super()._state(), "item_vecs": self.item_vecs_}

    def _set_state(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        super()._set_state(arrays, meta)
        self.item_vecs_ = arrays["item_vecs"]


@dataclass(frozen=True)
class ContentKNNConfig(ModelConfig):
    """No settings: the item features (text vectors, entity bags) come from the inputs."""


#: the two content kNN models' configs (one class: neither has a setting)
TextKNNConfig = KGKNNConfig = ContentKNNConfig


def text_features(inputs: HybridInputs) -> np.ndarray:
    """The items' text vectors (float32)."""
    if inputs.item_text is None:
        raise KgrecError("TextKNN needs item text vectors")
    return np.asarray(inputs.item_text, np.float32)


class TextKNN(_ContentRecommender):
    """User profile = mean text vector of their items; cosine to every item's text vector."""

    name = "textknn"
    config_class = ContentKNNConfig
    features = staticmethod(text_features)


class KGKNN(_ContentRecommender):
    """User profile = mean IDF-weighted entity bag of their items; cosine to every item's bag."""

    name = "kgknn"
    config_class = ContentKNNConfig
    features = staticmethod(link_features)


@dataclass(frozen=True)
class ContentToCFConfig(ModelConfig):
    """``dim``: PureSVD rank; ``ridge``: L2 of the content -> factor regression."""

    dim: int = 64
    ridge: float = 10.0

    def validate(self) -> None:
        self._require("dim", self.dim >= 1, "dim must be >= 1")
        self._require("ridge", self.ridge > 0, "ridge must be > 0")


class ContentToCF(_ContentRecommender):
    """PureSVD item factors ``V`` for warm items, ridge-regressed factors (from text + KG) for
    items without training interactions; ``score(u) = (r_u V) items^T`` (PureSVD fold-in)."""

    name = "content2cf"
    config_class = ContentToCFConfig

    def fit(self, train: sp.spmatrix, *, validate: Validator | None = None) -> Self:
        from scipy.sparse.linalg import svds

        m = self._start_fit(train)
        inp = self._need_inputs(m)
        k = int(min(self.config.dim, min(m.shape) - 1))
        _, s, vt = svds(m.astype(np.float64), k=k, random_state=0)
        v = vt[np.argsort(-s)].T.astype(np.float64)  # (n_items, k)
        feats = []
        if inp.item_text is not None:
            feats.append(np.asarray(inp.item_text, np.float64))
        if inp.item_links is not None:
            feats.append(link_features(inp).astype(np.float64))
        if not feats:
            raise KgrecError("ContentToCF needs text vectors or KG links")
        x = np.concatenate([*feats, np.ones((m.shape[1], 1))], 1)
        warm = np.asarray(m.sum(0)).ravel() > 0
        xw = x[warm]
        a = xw.T @ xw + self.config.ridge * np.eye(x.shape[1])
        w = np.linalg.solve(a, xw.T @ v[warm])
        items = v.copy()
        items[~warm] = x[~warm] @ w
        self.proj_ = v.astype(np.float32)
        self.item_vecs_ = items.astype(np.float32)
        return self

    def _score(self, users: np.ndarray, history: sp.csr_matrix) -> torch.Tensor:
        h = history_tensor(history)
        return (h @ torch.from_numpy(self.proj_)) @ torch.from_numpy(self.item_vecs_).T

    def _state(self) -> dict[str, np.ndarray]:
        return {**super()._state(), "proj": self.proj_}

    def _set_state(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        super()._set_state(arrays, meta)
        self.proj_ = arrays["proj"]
