"""A :class:`~kgrec.serve.Retriever` on disk: both indexes, the live-added items and their
vectors, and ``retriever.json``, written atomically; loading refuses indexes built for another
model (fingerprint)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from kgrec._atomic import atomic_dir
from kgrec.errors import DataError
from kgrec.index import VectorIndex
from kgrec.serve._protocol import ColdStartModel, NewItem

if TYPE_CHECKING:
    from kgrec.serve._retriever import Retriever

FORMAT = "kgrec-retriever"
FORMAT_VERSION = 1


def save_retriever(self: Retriever, path: str | Path, *, overwrite: bool = False) -> Path:
    """Write ``items/``, ``users/`` (indexes), ``added.json`` + ``added.npy`` (live-added
    items) and ``retriever.json`` atomically."""
    items, users = self._require()
    path = Path(path)
    if path.exists() and not overwrite:
        raise DataError("already exists (pass overwrite=True to replace it)", path=path)
    with self._lock, atomic_dir(path, overwrite=overwrite) as tmp:
        items.save(tmp / "items")
        users.save(tmp / "users")
        if self.similar_ is not None:
            self.similar_.save(tmp / "similar")
            sims = [self._added_sim[i] for i in self._added if i in self._added_sim]
            sdim = int(self.similar_.dim_ or 0)
            arr = np.stack(sims) if sims else np.zeros((0, sdim))
            np.save(tmp / "added_similar.npy", arr.astype(np.float32), allow_pickle=False)
        ids = list(self._added)
        rows = [self._added[i][0].to_dict() | {"id": i} for i in ids]
        dim = int(items.dim_ or 0)
        vecs = np.stack([self._added[i][1] for i in ids]) if ids else np.zeros((0, dim))
        np.save(tmp / "added.npy", vecs.astype(np.float32), allow_pickle=False)
        (tmp / "added.json").write_text(json.dumps(rows, indent=1))
        meta = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "model": self.model.name,
            "fingerprint": self.model.fingerprint,
            "next_new": self._next,
            "items": len(items),
            "users": len(users),
        }
        (tmp / "retriever.json").write_text(json.dumps(meta, indent=1))
        from kgrec.serve._saved import save_model_state

        save_model_state(self.model, tmp)  # known-item lookups load without the model
    return path


def load_retriever(
    cls: type[Retriever], path: str | Path, model: ColdStartModel, *, device: str | None = None
) -> Retriever:
    """Load a saved retriever for ``model``; refuse one built from another model."""
    path = Path(path)
    meta_path = path / "retriever.json"
    if not meta_path.is_file():
        raise DataError("not a kgrec retriever directory (no retriever.json)", path=path)
    meta = json.loads(meta_path.read_text())
    if meta.get("format") != FORMAT or meta.get("format_version") != FORMAT_VERSION:
        raise DataError(f"unsupported retriever format {meta.get('format')!r}", path=meta_path)
    fp = model.fingerprint
    self = cls(model)
    self.items_ = VectorIndex.load(path / "items", expected_fingerprint=fp, device=device)
    self.users_ = VectorIndex.load(path / "users", expected_fingerprint=fp, device=device)
    self.config = self.items_.config
    if (path / "similar").is_dir():
        self.similar_ = VectorIndex.load(path / "similar", expected_fingerprint=fp, device=device)
    rows = json.loads((path / "added.json").read_text())
    vecs = np.load(path / "added.npy", allow_pickle=False)
    for row, v in zip(rows, vecs, strict=True):
        item = NewItem.from_dict(row)
        assert item.id is not None
        self._added[item.id] = (item, v)
    if self.similar_ is not None and (path / "added_similar.npy").is_file():
        sims = np.load(path / "added_similar.npy", allow_pickle=False)
        for row, v in zip(rows, sims, strict=True):
            self._added_sim[str(row["id"])] = v
    self._next = int(meta.get("next_new", 1))
    return self
