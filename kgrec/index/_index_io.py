"""A :class:`~kgrec.index.VectorIndex` on disk: a CPU copy of the backend's index, the ids and
labels, the recall probe and ``meta.json``, written atomically; loading checks every file against
the others and the model fingerprint before anything is searched."""

from __future__ import annotations

import datetime as _dt
import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from kgrec._atomic import atomic_dir
from kgrec.data import Vocabulary
from kgrec.errors import DataError
from kgrec.index._backend import IndexBackend
from kgrec.index._checks import _check_meta_bounds, read_meta
from kgrec.index._config import IndexConfig, parse_factory
from kgrec.index._errors import FingerprintMismatchError
from kgrec.index._faiss import FaissBackend
from kgrec.index._probe import Probe
from kgrec.index._torch_exact import TorchExactBackend

if TYPE_CHECKING:
    from kgrec.index._index import VectorIndex

FORMAT = "kgrec-index"
FORMAT_VERSION = 1


def save_index(self: VectorIndex, path: str | Path, *, overwrite: bool = False) -> Path:
    """Write ``self`` to directory ``path`` atomically (see :meth:`VectorIndex.save`)."""
    backend = self._require_built()
    assert self.spec_ is not None and self._probe is not None
    path = Path(path)
    with self._lock, atomic_dir(path, overwrite=overwrite) as tmp:
        files = backend.save(tmp)
        live = np.array(sorted(self._label_of.values()), dtype=np.int64)
        ids = [str(i) for i in self._id_of[live]]
        (tmp / "ids.json").write_text(
            json.dumps(Vocabulary(ids, node_type=self.node_type_).to_json())
        )
        np.save(tmp / "labels.npy", live, allow_pickle=False)
        np.savez(
            tmp / "probe.npz",
            queries=self._probe.queries,
            scores=self._probe.scores,
            labels=self._probe.labels,
        )
        meta = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "type": self.spec_.type,
            "factory": self.spec_.to_string(),
            "backend": backend.kind,
            "metric": self.config.metric,
            "dim": self.dim_,
            "size": len(self),
            "next_label": len(self._id_of),
            "fingerprint": self.fingerprint_,
            "node_type": self.node_type_,
            "saved_from_device": self.device_,
            "config": self.config.to_dict(),
            "backend_state": backend.state(),
            "files": [*files, "ids.json", "labels.npy", "probe.npz"],
            "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
            "versions": _versions(),
        }
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2))
    return path


def load_index_dir(
    cls: type[VectorIndex],
    path: str | Path,
    *,
    expected_fingerprint: str | None = None,
    device: str | None = None,
) -> VectorIndex:
    """A saved index (see :meth:`VectorIndex.load`)."""
    path = Path(path)
    meta_path = path / "meta.json"
    meta = read_meta(meta_path, FORMAT, FORMAT_VERSION, what="index")
    if expected_fingerprint is not None and meta["fingerprint"] != expected_fingerprint:
        raise FingerprintMismatchError(
            f"index at {path} was built for model fingerprint {meta['fingerprint']!r}, "
            f"not the expected {expected_fingerprint!r}: rebuild it from this model's "
            "embeddings (kgrec index build)"
        )
    missing = [f for f in meta.get("files", []) if not (path / f).is_file()]
    if missing:
        raise DataError(f"index files missing: {missing}", path=path)
    _check_meta_bounds(meta, meta_path)
    config = IndexConfig.from_dict(meta["config"])
    if device is not None:
        config = config.replace(device=device)
    self = cls(config)
    spec = parse_factory(meta["factory"]).resolve(int(meta["size"]) or 1, int(meta["dim"]))
    dim = int(meta["dim"])
    kind = "torch" if meta["backend"] in ("torch", "torch+faiss") else meta["backend"]
    dev = self._device_for(kind, spec)
    if kind == "torch":
        hybrid = meta["backend"] == "torch+faiss" and _faiss_installed()
        backend: IndexBackend = TorchExactBackend.load(path, dim, dev, small_batch_faiss=hybrid)
    elif meta["backend"] == "faiss":
        backend = FaissBackend.load(path, spec, dim, config, dev, meta.get("backend_state", {}))
        backend.attach_device()
    else:
        raise DataError(f"unknown index backend {meta['backend']!r}", path=meta_path)
    vocab = Vocabulary.from_json(json.loads((path / "ids.json").read_text()))
    labels = np.load(path / "labels.npy", allow_pickle=False).astype(np.int64)
    if len(labels) != len(vocab) or len(vocab) != backend.ntotal:
        raise DataError(
            f"inconsistent index: {len(vocab)} ids, {len(labels)} labels, {backend.ntotal} vectors",
            path=path,
        )
    if not np.array_equal(np.sort(backend.labels()), np.sort(labels)):
        raise DataError("inconsistent index: labels.npy differs from the index's ids", path=path)
    with np.load(path / "probe.npz", allow_pickle=False) as p:
        self._probe = Probe(p["queries"], p["scores"], p["labels"])
    top = int(labels.max()) + 1 if len(labels) else 0
    if not top <= int(meta["next_label"]) <= 16 * top + (1 << 20):
        raise DataError(
            f"next_label {meta['next_label']} does not fit the {len(labels)} labels "
            f"(largest {top - 1}): a damaged or crafted meta.json",
            path=meta_path,
        )
    id_of = np.full(int(meta["next_label"]), None, dtype=object)
    id_of[labels] = vocab.ids
    self._backend, self.spec_, self.dim_, self.device_ = backend, spec, dim, dev
    self.fingerprint_ = meta["fingerprint"]
    self.node_type_ = vocab.node_type
    self._id_of = id_of
    self._label_of = dict(zip(vocab.ids.tolist(), labels.tolist(), strict=True))
    return self


def _faiss_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("faiss") is not None


def _versions() -> dict[str, str]:
    import torch

    out = {"numpy": np.__version__, "torch": torch.__version__}
    try:
        import faiss

        out["faiss"] = faiss.__version__
    except ImportError:  # pragma: no cover
        pass
    return out
