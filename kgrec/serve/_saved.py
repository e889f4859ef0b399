"""A retriever's model, saved beside its indexes, so that a saved retriever loads in a second.

:func:`save_model_state` writes what lookups of KNOWN items and users need (ids, titles, vectors,
each user's known items) to ``model_state.npz`` (no pickle) in the retriever directory;
:class:`SavedModel` reads it back as a :class:`~kgrec.serve.ColdStartModel` and loads the full
model (dataset, graph, text encoder) only when a NEW item or a user's free text has to be
embedded, or a user scored by the model's own new-user path (a trained hybrid's
``score_user``: a new user's history, profile or text, a known user's live events), so that a
saved retriever answers exactly as the model it was saved from. ``source_key`` (spec digest +
model identity) decides whether a saved state is still the one ``load_retriever`` would build.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from kgrec.serve._protocol import EmbeddedItems, NewItem, VectorTableMixin

log = logging.getLogger(__name__)

STATE = "model_state.npz"


def source_key(spec: Any, model: str) -> str:
    """What a retriever was built from: the spec's digest and the model (``content`` or the
    sha256 of a trained hybrid's ``arrays.npz``)."""
    if model == "content":
        who = "content"
    else:
        path = Path(model)
        arrays = path / "model" / "arrays.npz"
        arrays = arrays if arrays.is_file() else path / "arrays.npz"
        who = "hybrid:" + (
            hashlib.sha256(arrays.read_bytes()).hexdigest()[:16] if arrays.is_file() else "?"
        )
    return f"{spec.digest()[:16]}:{who}"


def save_model_state(model: Any, path: Path) -> None:
    """Write ``path/model_state.npz``: ids, titles, vectors and known items of ``model``."""
    items = [str(i) for i in model.item_ids]
    users = [str(u) for u in model.user_ids]
    row = {i: r for r, i in enumerate(items)}
    indptr, indices = [0], []
    for u in users:
        indices += [row[i] for i in model.known_items(u) if i in row]
        indptr.append(len(indices))
    titles = [model.title(i) or "" for i in items]
    meta = {
        "name": model.name,
        "fingerprint": model.fingerprint,
        "source_key": getattr(model, "source_key", None),
        # the model scores users itself (a hybrid's new-user path): the saved one must too
        "scores_users": hasattr(model, "score_user"),
    }
    with (path / STATE).open("wb") as f:
        np.savez(
            f,
            item_ids=np.asarray(items, dtype=str),
            user_ids=np.asarray(users, dtype=str),
            titles=np.asarray(titles, dtype=str),
            item_vectors=np.asarray(model.item_vectors(), np.float32),
            user_vectors=np.asarray(model.user_vectors(), np.float32),
            known_indptr=np.asarray(indptr, np.int64),
            known_indices=np.asarray(indices, np.int64),
            meta=np.array(json.dumps(meta)),
        )


def saved_source_key(path: Path) -> str | None:
    """The ``source_key`` of the model state saved in ``path`` (None when there is none)."""
    p = Path(path) / STATE
    if not p.is_file():
        return None
    with np.load(p, allow_pickle=False) as z:
        return json.loads(str(z["meta"])).get("source_key")


class SavedModel(VectorTableMixin):
    """The :class:`~kgrec.serve.ColdStartModel` of a saved retriever (see the module docstring);
    ``loader()`` builds the full model the first time a new item or free text is embedded."""

    def __init__(self, path: str | Path, loader: Callable[[], Any]) -> None:
        with np.load(Path(path) / STATE, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            self._item_ids = [str(i) for i in z["item_ids"]]
            self._user_ids = [str(u) for u in z["user_ids"]]
            self._titles = {
                i: str(t) for i, t in zip(self._item_ids, z["titles"], strict=True) if str(t)
            }
            self._items = z["item_vectors"]
            self._users = z["user_vectors"]
            self._indptr, self._indices = z["known_indptr"], z["known_indices"]
        self.name = meta["name"]
        self._fingerprint = meta["fingerprint"]
        self.source_key = meta.get("source_key")
        self._row = {i: r for r, i in enumerate(self._item_ids)}
        self._urow = {u: r for r, u in enumerate(self._user_ids)}
        self._loader = loader
        self._full: Any | None = None
        self._lock = threading.Lock()
        # states saved before the flag existed: only the hybrid scores users itself
        if meta.get("scores_users", self.name == "hybrid"):
            # instance attributes, so that ``hasattr(model, "score_user")`` tells the truth
            self.score_user = self._score_user
            self.check_profile = self._check_profile

    def _known_rows(self, user_row: int) -> Sequence[int]:
        return self._indices[self._indptr[user_row] : self._indptr[user_row + 1]]

    def full_model(self) -> Any:
        """The model itself (dataset, graph and encoder loaded now, once)."""
        with self._lock:  # a server's warm-up thread and a first request may both ask
            if self._full is None:
                log.info("loading the full %s model to embed new items or text", self.name)
                self._full = self._loader()
        return self._full

    def _score_user(
        self,
        user_id: str,
        items: Sequence[str] = (),
        *,
        attributes: dict[str, Any] | None = None,
        text: str | None = None,
    ) -> np.ndarray:
        """The full model's :meth:`score_user` (its items are this state's, in order)."""
        return self.full_model().score_user(user_id, items, attributes=attributes, text=text)

    def _check_profile(self, attributes: dict[str, Any] | None) -> dict[str, list[str]]:
        check = getattr(self.full_model(), "check_profile", None)
        return dict(attributes or {}) if check is None else check(attributes)

    def embed_items(self, rows: Sequence[NewItem]) -> EmbeddedItems:
        return self.full_model().embed_items(rows)

    def embed_user(self, history: Sequence[str] = (), text: str | None = None) -> np.ndarray:
        return self.full_model().embed_user(history, text)
