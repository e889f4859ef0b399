"""Models for serving by name: ``content`` (no training) or a trained hybrid's directory, and the
:class:`HybridAdapter` that puts a trained :class:`~kgrec.models.HybridRecommender` behind the
:class:`~kgrec.serve.ColdStartModel` protocol."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from kgrec._numeric import normalize_rows
from kgrec.errors import DataError, KgrecError
from kgrec.serve import _item_text
from kgrec.serve._attributes import AttributeMatcher
from kgrec.serve._content import ContentAdapter
from kgrec.serve._item_text import CatalogText
from kgrec.serve._protocol import ColdStartModel, EmbeddedItems, NewItem, VectorTableMixin

log = logging.getLogger(__name__)


class HybridAdapter(VectorTableMixin):
    """A trained hybrid (``kgrec train SPEC --model hybrid --out DIR``: ``DIR/model`` and
    ``DIR/split.json`` with the vocabularies) as a :class:`ColdStartModel`.

    New items are embedded inductively by the hybrid itself (``embed_items``: text vector of the
    spec-rendered text + matched KG links, no ID); a new user's text is embedded as a text-only
    item (the vector an item with that text would get). Known items of a user are their training
    positives."""

    name = "hybrid"

    def __init__(
        self,
        model: Any,
        users: Any,
        items: Any,
        spec: Any,
        *,
        encoder: Any | None = None,
        dataset: Any | None = None,
        kg: Any | None = None,
        fingerprint: str | None = None,
    ) -> None:
        from kgrec.graph import load_or_build

        if not hasattr(model, "embed_items"):
            raise KgrecError(f"{type(model).__name__} cannot embed new items (no embed_items)")
        if (len(users), len(items)) != (model.n_users_, model.n_items_):
            raise DataError(
                f"vocabularies ({len(users)} users, {len(items)} items) do not match the model "
                f"({model.n_users_} x {model.n_items_})"
            )
        self.model = model
        self.spec = spec
        ds = dataset if dataset is not None else spec.load_dataset()
        kg = kg if kg is not None else load_or_build(spec)
        self.matcher_ = AttributeMatcher(spec, kg)
        base_encoder = encoder
        tuned = model.text_encoder() if hasattr(model, "text_encoder") else None
        if encoder is None and tuned is not None:  # a fine-tuned tower: its vectors, cached
            from kgrec.text import CachedEncoder

            encoder = CachedEncoder(tuned)
        self.encoder_ = encoder if encoder is not None else _item_text.default_encoder()
        self.catalog_text_ = CatalogText(spec, ds)
        self._titles = self.catalog_text_.titles
        self._item_ids = [str(i) for i in items.ids]
        self._user_ids = [str(u) for u in users.ids]
        self._row = {i: r for r, i in enumerate(self._item_ids)}
        self._urow = {u: r for r, u in enumerate(self._user_ids)}
        self._items = normalize_rows(np.asarray(model.item_vectors().numpy(), np.float32))
        # similar items come from the content model's space (text + KG, what items ARE): the
        # hybrid's item space follows co-consumption, and on cold ml-100k items its 10 nearest
        # known items share a genre less often (bench/results/text_finetune.json, on_topic@10)
        self.content_ = ContentAdapter.from_spec(spec, dataset=ds, kg=kg, encoder=base_encoder)
        sim = np.zeros((len(self._item_ids), self.content_.item_vectors().shape[1]), np.float32)
        for r, i in enumerate(self._item_ids):
            cr = self.content_.item_row(i)
            if cr is not None:
                sim[r] = self.content_.item_vectors()[cr]
        self._similar = sim
        self._users = normalize_rows(np.asarray(model.user_vectors().numpy(), np.float32))
        self._fingerprint = (
            fingerprint
            or "hybrid:"
            + hashlib.sha256(self._items.tobytes() + self._users.tobytes()).hexdigest()[:16]
        )

    @classmethod
    def from_dir(cls, path: str | Path, spec: Any, **kw: Any) -> HybridAdapter:
        """Load ``path/model`` (a saved hybrid) with the vocabularies of ``path/split.json``."""
        from kgrec.data import Split
        from kgrec.models import Recommender

        path = Path(path)
        model_dir = path / "model" if (path / "model" / "model.json").is_file() else path
        split_path = model_dir.parent / "split.npz" if model_dir != path else path / "split.npz"
        if not (model_dir / "model.json").is_file():
            raise DataError("no saved model here (expected model/model.json)", path=path)
        if not split_path.with_suffix(".json").is_file():
            raise DataError(
                "no split.json next to the model: its user/item vocabularies are needed",
                path=path,
            )
        model = Recommender.load(model_dir)
        if not hasattr(model, "embed_items"):
            raise DataError(
                f"holds a trained {getattr(model, 'name', type(model).__name__)!r} model, which "
                "cannot embed new items or users; give --model content or the run directory of "
                "`kgrec train SPEC --model hybrid --out DIR`",
                path=path,
            )
        split = Split.load(split_path)
        digest = hashlib.sha256((model_dir / "arrays.npz").read_bytes()).hexdigest()[:16]
        return cls(model, split.users, split.items, spec, fingerprint=f"hybrid:{digest}", **kw)

    def _known_rows(self, user_row: int) -> Sequence[int]:
        train = self.model.train_
        return train.indices[train.indptr[user_row] : train.indptr[user_row + 1]]

    def embed_items(self, rows: Sequence[NewItem]) -> EmbeddedItems:
        if not rows:
            raise DataError("embed_items needs at least one item")
        links, matched, unmatched = [], [], []
        for row in rows:
            pairs, miss = self.matcher_.match(row.attributes)
            links.append(pairs)
            matched.append([f"{r} -> {e}" for r, e in pairs])
            unmatched.append(miss)
        text = normalize_rows(
            np.asarray(
                self.encoder_.encode([self.catalog_text_.render(r) for r in rows]), np.float32
            )
        )
        vecs = self.model.embed_items(text=text, links=links)
        similar = self.content_.embed_items(rows).vectors
        return EmbeddedItems(
            normalize_rows(np.asarray(vecs, np.float32)), matched, unmatched, similar=similar
        )

    def similar_vectors(self) -> np.ndarray:
        """Item vectors of the similarity space (the content model's: text + KG)."""
        return self._similar

    def check_profile(
        self, attributes: dict[str, Any] | None, *, strict: bool = True
    ) -> dict[str, list[str]]:
        """A new user's profile ``attributes`` as the new-user path reads them (see
        :class:`~kgrec.serve._users.ProfileMatcher`): an unknown name or value, or a profile
        given to a model without a profile prior, is a :class:`DataError`."""
        from kgrec.serve._users import ProfileMatcher

        if not attributes:
            return {}
        m = self.model
        if getattr(m, "new_users_", None) is None or m.profile_entities_ is None:
            problem = DataError(
                "profile attributes need a model with a profile prior; this hybrid has none "
                "(its graph has no user attributes, or its new-user path was not fitted)"
            )
            if strict:
                raise problem
            log.warning("%s: attributes left out", problem)
            return {}
        if getattr(self, "profile_", None) is None:
            self.profile_ = ProfileMatcher(m.profile_entities_, self.spec)
        return self.profile_.match(attributes, strict=strict)

    def score_user(
        self,
        user_id: str,
        items: Sequence[str] = (),
        *,
        attributes: dict[str, Any] | None = None,
        text: str | None = None,
    ) -> np.ndarray:
        """Scores of a user with live events (see :func:`score_user`)."""
        return score_user(self, user_id, items, attributes=attributes, text=text)

    def embed_user(self, history: Sequence[str] = (), text: str | None = None) -> np.ndarray:
        parts = []
        if history:
            rows = [self._row.get(str(h)) for h in history]
            if None in rows:
                from kgrec.errors import UnknownIdError

                raise UnknownIdError("item", history[rows.index(None)])
            parts.append(normalize_rows(self._items[rows].mean(0)))
        if text and text.strip():
            parts.append(self.embed_items([NewItem(title=text)]).vectors[0])
        if not parts:
            raise DataError("a new user needs history item ids and/or free text")
        return normalize_rows(np.asarray(np.sum(parts, axis=0), np.float32))


def _z(s: np.ndarray) -> np.ndarray:
    return (s - s.mean()) / (s.std() + 1e-9)


def score_user(
    adapter: HybridAdapter,
    user_id: str,
    items: Sequence[str] = (),
    *,
    attributes: dict[str, Any] | None = None,
    text: str | None = None,
) -> np.ndarray:
    """Scores over the model's items of a user with live events: a known user is scored from
    their training items plus ``items`` (the hybrid's EASE blend reads the history); a new user
    by the hybrid's new-user path (profile ``attributes`` prior, moving to ``items`` as they
    accumulate). Free ``text`` adds the cosine to the text's vector, z-scored at weight
    :data:`~kgrec.models.hybrid._user_text.USER_TEXT_WEIGHT` (chosen on amazon-instruments'
    validation users, ``bench/user_text.py``). Live-added items and ids
    the model does not know are not scored from."""
    import scipy.sparse as sp

    from kgrec.models.hybrid._user_text import USER_TEXT_WEIGHT

    m = adapter.model
    cols = sorted({r for r in (adapter._row.get(str(i)) for i in items) if r is not None})
    row = adapter._urow.get(str(user_id))
    if row is not None:
        train = m.train_
        cols = sorted(set(cols) | set(train.indices[train.indptr[row] : train.indptr[row + 1]]))
    hist = sp.csr_matrix(
        (np.ones(len(cols), np.float32), ([0] * len(cols), cols)), shape=(1, m.n_items_)
    )
    if row is not None:
        s = m.score(np.array([row]), hist).numpy()[0]
    elif getattr(m, "new_users_", None) is not None:
        # checked where they came in (strict); lenient here for records journaled before that
        profile = adapter.check_profile(attributes, strict=False)
        s = m.score_new_users(hist, attributes=[profile]).numpy()[0]
    elif cols:
        s = adapter._items @ normalize_rows(adapter._items[cols].mean(0))
    else:
        s = np.asarray(m.train_.sum(0), np.float64).ravel()  # popularity
    s = _z(np.asarray(s, np.float64))
    if text and text.strip():
        tv = adapter.embed_items([NewItem(title=text)]).vectors[0]
        s = s + USER_TEXT_WEIGHT * _z(adapter._items @ tv)
    return s


def load_model(spec: Any, model: str = "content", *, encoder: Any | None = None) -> ColdStartModel:
    """``"content"``: :class:`ContentAdapter` on ``spec`` (no training); otherwise the directory
    of a trained hybrid (``kgrec train SPEC --model hybrid --out DIR``)."""
    from kgrec.graph import load_spec

    if not hasattr(spec, "text"):
        spec = load_spec(spec)
    if model == "content":
        return ContentAdapter.from_spec(spec, encoder=encoder)
    path = Path(model)
    if not path.exists():
        raise DataError(
            f"--model must be 'content' or the directory of a trained hybrid; {model!r} is neither"
        )
    return HybridAdapter.from_dir(path, spec, encoder=encoder)


def load_retriever(
    spec: Any,
    model: str = "content",
    *,
    index_dir: str | Path | None = None,
    encoder: Any | None = None,
) -> Any:
    """A built :class:`~kgrec.serve.Retriever` for ``spec`` and ``model``: loaded from
    ``index_dir`` when it holds one for this model (fingerprint), else built (and saved there)."""
    from kgrec.graph import load_spec
    from kgrec.index import IndexConfig
    from kgrec.serve._retriever import Retriever
    from kgrec.serve._saved import SavedModel, saved_source_key, source_key

    if not hasattr(spec, "text"):
        spec = load_spec(spec)
    key = source_key(spec, model)
    if index_dir is not None and (Path(index_dir) / "retriever.json").is_file():
        if saved_source_key(Path(index_dir)) == key:  # saved for this spec and model: no rebuild
            lazy = SavedModel(index_dir, lambda: load_model(spec, model, encoder=encoder))
            return Retriever.load(index_dir, lazy)
        m = load_model(spec, model, encoder=encoder)
        m.source_key = key
        return Retriever.load(index_dir, m)
    m = load_model(spec, model, encoder=encoder)
    m.source_key = key
    r = Retriever(m, config=IndexConfig(metric="cosine", device="auto")).build()
    if index_dir is not None:
        r.save(index_dir)
    return r
