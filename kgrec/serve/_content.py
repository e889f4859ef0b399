"""``ContentAdapter``: the content model (:class:`kgrec.models.ContentModel`: text + KG, no
training) built from a spec and behind the :class:`~kgrec.serve.ColdStartModel` protocol.

:meth:`ContentAdapter.from_spec` assembles the model's inputs: the spec's item texts through the
text encoder (embeddings cached on disk), the item -> entity bags of the graph (every relation
between items and a non-user, non-item node type; entities linked to fewer than
``min_entity_degree`` items dropped), the users' positives. New items are rendered like the
catalog's rows, encoded and matched to KG entities here, then embedded by the model; a new user
is the mean of the given items' vectors plus, with free text, the text part of the space.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from kgrec._numeric import normalize_rows
from kgrec.errors import DataError, UnknownIdError
from kgrec.models._content import ContentConfig, ContentModel
from kgrec.serve import _item_text
from kgrec.serve._attributes import AttributeMatcher
from kgrec.serve._item_text import CatalogText
from kgrec.serve._protocol import CatalogIdsMixin, EmbeddedItems, NewItem

if TYPE_CHECKING:  # scipy is imported where it is used: a loaded retriever never needs it
    import scipy.sparse as sp

log = logging.getLogger(__name__)


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


class ContentAdapter(CatalogIdsMixin):
    """A :class:`~kgrec.models.ContentModel` (``model_``) as a
    :class:`~kgrec.serve.ColdStartModel` (see the module docstring). Build with
    :meth:`from_spec`; nothing is trained."""

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
    ) -> ContentAdapter:
        """Build from a graph spec (path or :class:`~kgrec.graph.GraphSpec`): its dataset,
        graph (``load_or_build``: cached) and text fields (embeddings cached on disk)."""
        import scipy.sparse as sp

        from kgrec.data import positives
        from kgrec.graph import cache_key, load_or_build, load_spec
        from kgrec.text import embed_texts, texts_from_spec

        if not hasattr(spec, "text"):
            spec = load_spec(spec)
        self = cls(config)
        c = self.config
        self.spec_ = spec
        ds = dataset if dataset is not None else spec.load_dataset()
        kg = kg if kg is not None else load_or_build(spec)
        self.encoder_ = encoder if encoder is not None else _item_text.default_encoder()
        self.matcher_ = AttributeMatcher(spec, kg)
        texts = texts_from_spec(spec, ds)["item"]
        self._item_ids = [str(i) for i in texts.ids]
        self._row = {i: r for r, i in enumerate(self._item_ids)}
        self.catalog_text_ = CatalogText(spec, ds)
        self._titles = self.catalog_text_.titles
        text = np.asarray(embed_texts(texts, self.encoder_).vectors, np.float32)
        links, entities = item_links(kg, texts.ids, min_degree=c.min_entity_degree)
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
        self.model_ = ContentModel(c).fit(text, links, entities, hist)
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
            len(entities),
            self.model_.item_vecs_.shape[1],
        )
        return self

    # ------------------------------------------------------------------ protocol
    def item_vectors(self) -> np.ndarray:
        return self.model_.item_vectors()

    def user_vectors(self) -> np.ndarray:
        return self.model_.user_vectors()

    def known_items(self, user_id: str) -> list[str]:
        return self._known.get(str(user_id), [])

    def item_text(self, row: NewItem) -> str:
        """The new item's text rendered like the catalog's (see
        :func:`~kgrec.serve._item_text.render_item_text`)."""
        return self.catalog_text_.render(row)

    def _encode(self, texts: Sequence[str]) -> np.ndarray:
        """Text vectors (the encoder is serialised: one model, many threads)."""
        with self._lock:
            return np.asarray(self.encoder_.encode(list(texts)), np.float32)

    def embed_items(self, rows: Sequence[NewItem]) -> EmbeddedItems:
        if not rows:
            raise DataError("embed_items needs at least one item")
        import scipy.sparse as sp

        cols = self.model_.entity_col_
        matched, unmatched = [], []
        bags = sp.lil_matrix((len(rows), len(cols)), dtype=np.float32)
        for r, row in enumerate(rows):
            pairs, miss = self.matcher_.match(row.attributes)
            hit = []
            for rel, key in pairs:
                j = cols.get(key)
                if j is None:  # a known entity linked to < min_degree items: no signal
                    miss.append(f"{rel}={key} (too rare in the graph)")
                    continue
                bags[r, j] = 1.0
                hit.append(f"{rel} -> {key}")
            matched.append(hit)
            unmatched.append(miss)
        text = self._encode([self.item_text(r) for r in rows])
        return EmbeddedItems(self.model_.embed(text, bags.tocsr()), matched, unmatched)

    def embed_user(self, history: Sequence[str] = (), text: str | None = None) -> np.ndarray:
        return embed_user_from(self, history, text, self._text_part)

    def _text_part(self, text: str) -> np.ndarray:
        return self.model_.text_vector(self._encode([text])[0])


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
        parts.append(normalize_rows(np.asarray(model.item_vectors()[rows].mean(0), np.float32)))
    if text and text.strip():
        parts.append(normalize_rows(np.asarray(text_vector(text), np.float32)))
    return normalize_rows(np.asarray(np.sum(parts, axis=0), np.float32))


def encoder_digest(encoder: Any) -> str:
    """What identifies an encoder's vectors: its cache key digest, else its model id."""
    try:
        return str(encoder.cache_key().digest())
    except AttributeError:
        return str(getattr(encoder, "model_id", type(encoder).__name__))
