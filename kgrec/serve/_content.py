"""``ContentModel``: a cold-start model that needs no training, from text and the KG alone.

Item vector (cosine space)::

    v_i = [ sqrt(1 - w) * t_i ; sqrt(w) * g_i ]
    t_i = normalise(text embedding of the item's spec text)           (kgrec.text, cached)
    g_i = normalise(normalise(idf * b_i) @ V_k)                       (LSI of the KG links)

``b_i`` is the item's binary bag of linked KG / attribute entities (every relation between items
and a non-user, non-item node type; entities linked to fewer than 2 items dropped), ``V_k`` the
top-``k`` right singular vectors of the IDF-weighted, row-normalised item x entity matrix, so a
new item's links fold in exactly like a known item's. Cosine(v_i, v_j) = (1 - w) cos_text +
w cos_kg where both parts exist. A user is the normalised mean of their positive items' vectors;
a new user the mean of the given items' vectors plus, with free text, the text part of the
space (``[sqrt(1 - w) * t ; 0]``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from kgrec._numeric import normalize_rows, smooth_idf
from kgrec.errors import DataError, SpecError, UnknownIdError
from kgrec.serve._attributes import AttributeMatcher
from kgrec.serve._protocol import CatalogIdsMixin, EmbeddedItems, NewItem

if TYPE_CHECKING:  # scipy is imported where it is used: a loaded retriever never needs it
    import scipy.sparse as sp

log = logging.getLogger(__name__)


def _normalize(x: np.ndarray) -> np.ndarray:
    """Unit rows as float32 (:func:`kgrec._numeric.normalize_rows` in ``x``'s dtype, then cast)."""
    return normalize_rows(x).astype(np.float32)


@dataclass(frozen=True)
class ContentConfig:
    """``kg_weight``: share ``w`` of the KG part in the cosine; ``kg_dim``: LSI rank of the KG
    part; ``min_entity_degree``: entities linked to fewer items carry no signal between items."""

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


def default_encoder() -> Any:
    """The bundled MiniLM behind the on-disk embedding cache (``$KGREC_HOME/embeddings``)."""
    from kgrec.text import CachedEncoder, TransformerEncoder

    return CachedEncoder(TransformerEncoder())


def item_links(
    kg: Any, item_ids: np.ndarray, *, min_degree: int
) -> tuple[sp.csr_matrix, np.ndarray]:
    """Binary item x entity CSR (rows aligned to ``item_ids``) over every relation between items
    and non-user/item node types, and the entity keys (``"type:id"``) of its columns: the bag of
    :func:`kgrec.graph.entity_links`."""
    import scipy.sparse as sp

    from kgrec.graph import entity_links

    links = entity_links(kg, "item", item_ids, min_degree=min_degree)
    if links is None:
        return sp.csr_matrix((len(item_ids), 0), dtype=np.float32), np.empty(0, object)
    return links.union(), links.entities


class ContentModel(CatalogIdsMixin):
    """Text + KG content model implementing :class:`~kgrec.serve.ColdStartModel` (see the
    module docstring). Build with :meth:`from_spec`; nothing is trained."""

    name = "content"

    def __init__(self, config: ContentConfig | None = None) -> None:
        self.config = config or ContentConfig()
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ build
    @classmethod
    def from_spec(
        cls,
        spec: Any,
        *,
        config: ContentConfig | None = None,
        encoder: Any | None = None,
        dataset: Any | None = None,
        kg: Any | None = None,
    ) -> ContentModel:
        """Build from a graph spec (path or :class:`~kgrec.graph.GraphSpec`): its dataset,
        graph (``load_or_build``: cached) and text fields (embeddings cached on disk)."""
        import scipy.sparse as sp

        from kgrec.data import positives
        from kgrec.graph import cache_key, load_or_build, load_spec
        from kgrec.text import texts_from_spec

        if not hasattr(spec, "text"):
            spec = load_spec(spec)
        self = cls(config)
        c = self.config
        self.spec_ = spec
        ds = dataset if dataset is not None else spec.load_dataset()
        kg = kg if kg is not None else load_or_build(spec)
        self.encoder_ = encoder if encoder is not None else default_encoder()
        self.matcher_ = AttributeMatcher(spec, kg)
        texts = texts_from_spec(spec, ds)["item"]
        self._item_ids = [str(i) for i in texts.ids]
        self._row = {i: r for r, i in enumerate(self._item_ids)}
        self._fields = list(spec.text.item_fields)
        self._text_cols = text_columns(ds, self._fields)
        self._delims = _delimiters(spec)
        self._titles = title_map(ds)
        from kgrec.text import embed_texts

        text = _normalize(np.asarray(embed_texts(texts, self.encoder_).vectors, np.float32))
        links, self.entities_ = item_links(kg, texts.ids, min_degree=c.min_entity_degree)
        self._entity_col = {str(e): j for j, e in enumerate(self.entities_)}
        self._fit_lsi(links)
        self.item_vecs_ = self._combine(text, self._kg_features(links))
        # users: positives define taste; every interaction is "known" (masked)
        pos = positives(ds, min_rating=spec.interactions.min_rating)
        uid = np.asarray(pos.users.ids, dtype=object)[pos.user]
        iid = np.asarray(pos.items.ids, dtype=object)[pos.item]
        self._user_ids = [str(u) for u in pos.users.ids]
        urow = {u: r for r, u in enumerate(self._user_ids)}
        rows = np.array([urow[str(u)] for u in uid], np.int64)
        cols = np.array([self._row[str(i)] for i in iid], np.int64)
        hist = sp.csr_matrix(
            (np.ones(len(rows), np.float32), (rows, cols)),
            shape=(len(self._user_ids), len(self._item_ids)),
        )
        hist.sum_duplicates()
        hist.data[:] = 1.0
        self.user_vecs_ = _normalize(np.asarray(hist @ self.item_vecs_))
        frame = ds.interactions.frame
        self._known = {
            str(u): [str(i) for i in g.unique()] for u, g in frame.groupby("user")["item"]
        }
        fp = {
            "model": "content",
            "config": c.to_dict(),
            "spec": cache_key(spec),
            "encoder": encoder_digest(self.encoder_),
            "items": len(self._item_ids),
            "users": len(self._user_ids),
        }
        self._fingerprint = (
            "content:" + hashlib.sha256(json.dumps(fp, sort_keys=True).encode()).hexdigest()[:16]
        )
        log.info(
            "content model: %d items, %d users, %d KG entities, dim %d",
            len(self._item_ids),
            len(self._user_ids),
            len(self.entities_),
            self.item_vecs_.shape[1],
        )
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
        v = vt.T
        self.lsi_ = v.astype(np.float32)  # (entities, k)

    def _bags(self, links: sp.csr_matrix) -> sp.csr_matrix:
        import scipy.sparse as sp

        x = sp.csr_matrix(links @ sp.diags(self.idf_), dtype=np.float32)
        norms = np.sqrt(np.asarray(x.multiply(x).sum(1)).ravel())
        inv = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
        return sp.csr_matrix(sp.diags(inv.astype(np.float32)) @ x)

    def _kg_features(self, links: sp.csr_matrix) -> np.ndarray:
        if self.lsi_.shape[1] == 0:
            return np.zeros((links.shape[0], 0), np.float32)
        return _normalize(np.asarray(self._bags(links) @ self.lsi_, np.float32))

    def _combine(self, text: np.ndarray, kgf: np.ndarray) -> np.ndarray:
        w = self.config.kg_weight
        return np.concatenate([np.sqrt(1 - w) * text, np.sqrt(w) * kgf], 1).astype(np.float32)

    # ------------------------------------------------------------------ protocol
    def item_vectors(self) -> np.ndarray:
        return self.item_vecs_

    def user_vectors(self) -> np.ndarray:
        return self.user_vecs_

    def known_items(self, user_id: str) -> list[str]:
        return self._known.get(str(user_id), [])

    def item_text(self, row: NewItem) -> str:
        """The new item's text rendered like the catalog's (see :func:`render_item_text`)."""
        return render_item_text(row, self._fields, self._text_cols, self._delims)

    def encode_text(self, texts: Sequence[str]) -> np.ndarray:
        """Normalised text vectors (the encoder is serialised: one model, many threads)."""
        with self._lock:
            return _normalize(np.asarray(self.encoder_.encode(list(texts)), np.float32))

    def embed_items(self, rows: Sequence[NewItem]) -> EmbeddedItems:
        if not rows:
            raise DataError("embed_items needs at least one item")
        import scipy.sparse as sp

        matched, unmatched = [], []
        bags = sp.lil_matrix((len(rows), len(self.entities_)), dtype=np.float32)
        for r, row in enumerate(rows):
            pairs, miss = self.matcher_.match(row.attributes)
            hit = []
            for rel, key in pairs:
                j = self._entity_col.get(key)
                if j is None:  # a known entity linked to < min_degree items: no signal
                    miss.append(f"{rel}={key} (too rare in the graph)")
                    continue
                bags[r, j] = 1.0
                hit.append(f"{rel} -> {key}")
            matched.append(hit)
            unmatched.append(miss)
        text = self.encode_text([self.item_text(r) for r in rows])
        vecs = self._combine(text, self._kg_features(bags.tocsr()))
        return EmbeddedItems(vecs, matched, unmatched)

    def embed_user(self, history: Sequence[str] = (), text: str | None = None) -> np.ndarray:
        return embed_user_from(self, history, text, self._text_part)

    def _text_part(self, text: str) -> np.ndarray:
        t = self.encode_text([text])
        return self._combine(t, np.zeros((1, self.lsi_.shape[1]), np.float32))[0]


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


def render_item_text(
    row: NewItem,
    fields: Sequence[str],
    text_cols: set[str],
    delimiters: Mapping[str, str] | None = None,
) -> str:
    """A new item's text in the catalog's rendering (:func:`kgrec.text.render_new_item`: the
    renderer catalog rows go through): title (+ description) in the first free-text fields,
    ``column: a, b`` for the others."""
    from kgrec.text._render import render_new_item

    return render_new_item(row, fields, text_cols, delimiters)


def _delimiters(spec: Any) -> dict[str, str]:
    from kgrec.text._render import item_delimiters

    return item_delimiters(spec)


def text_columns(ds: Any, fields: Sequence[str]) -> set[str]:
    """The free-text columns among ``fields`` of the dataset's item table."""
    if ds.items is None:
        return set()
    return {f for f in fields if ds.items.attributes.get(f) == "text"}


def title_map(ds: Any) -> dict[str, str]:
    """Item id -> its first free-text catalog column (the title), for display."""
    if ds.items is None:
        return {}
    cols = [c for c, kind in ds.items.attributes.items() if kind == "text"]
    if not cols:  # no free-text column declared: a title-like column, said out loud
        import re

        like = [c for c in ds.items.attributes if re.search(r"title|name", c, re.I)]
        if not like:
            return {}
        cols = like[:1]
        log.warning(
            "the catalog declares no free-text column ([source.items] text = [...]); showing "
            "column %r as the item title",
            cols[0],
        )
    f = ds.items.frame
    return {str(i): str(t) for i, t in zip(f["id"], f[cols[0]], strict=True) if t}


def embed_user_from(
    model: Any, history: Sequence[str], text: str | None, text_vector: Any
) -> np.ndarray:
    """normalise(normalise(mean of history item vectors) + normalise(text vector)); unknown
    history ids raise :class:`UnknownIdError` naming the first one."""
    history = [str(h) for h in history]
    if not history and not (text and text.strip()):
        raise DataError("a new user needs history item ids and/or free text")
    parts = []
    if history:
        rows = []
        index = model.item_row
        for h in history:
            r = index(h)
            if r is None:
                raise UnknownIdError("item", h, hint="not in the model's items")
            rows.append(r)
        parts.append(_normalize(model.item_vectors()[rows].mean(0)))
    if text and text.strip():
        parts.append(_normalize(np.asarray(text_vector(text), np.float32)))
    return _normalize(np.sum(parts, axis=0)).astype(np.float32)


def encoder_digest(encoder: Any) -> str:
    """What identifies an encoder's vectors: its cache key digest, else its model id."""
    try:
        return str(encoder.cache_key().digest())
    except AttributeError:
        return str(getattr(encoder, "model_id", type(encoder).__name__))
