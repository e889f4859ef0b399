"""VectorIndex: one retrieval index over external string ids, on FAISS or torch.

The facade owns everything backends need not know: validation of vectors and ids, cosine
normalisation, the external-id <-> int64-label map (labels are never reused, so removals leave
every other id's label unchanged), the model fingerprint, persistence, and the exact-search
probe behind :meth:`VectorIndex.self_check` (``_probe.py``). Backends implement ``IndexBackend``
(``_backend.py``); persistence is in ``_index_io.py``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from kgrec.data import Vocabulary
from kgrec.errors import DataError, UnknownIdError
from kgrec.index._backend import IndexBackend
from kgrec.index._checks import (
    _check_ids,
    _check_k,
    check_vectors,
    fingerprint_of,
    resolve_device,
)
from kgrec.index._config import FactorySpec, IndexConfig, auto_factory
from kgrec.index._errors import IndexUsageError
from kgrec.index._faiss import FaissBackend, faiss_gpu_count
from kgrec.index._index_io import _faiss_installed, load_index_dir, save_index
from kgrec.index._probe import Probe
from kgrec.index._results import Exclude, IndexInfo, RecallReport, SearchResult
from kgrec.index._torch_exact import TorchExactBackend

log = logging.getLogger(__name__)

#: vectors added per backend call during build (bounds peak memory, feeds the progress bar)
ADD_CHUNK = 65_536


class VectorIndex:
    """A nearest-neighbour index over vectors named by external string ids.

    >>> idx = VectorIndex(IndexConfig(metric="cosine")).build(vectors, ids, fingerprint=fp)
    >>> idx.search(queries, k=10).ids          # (n_queries, 10) external ids
    >>> idx.add(new_vectors, ["new-item"]); idx.remove(["old-item"])
    >>> idx.save("indexes/items"); VectorIndex.load("indexes/items", expected_fingerprint=fp)

    Methods are serialised by a lock, so one index can serve concurrent requests.
    """

    def __init__(self, config: IndexConfig | None = None) -> None:
        self.config = config or IndexConfig()
        self._lock = threading.RLock()
        self._backend: IndexBackend | None = None
        self.spec_: FactorySpec | None = None
        self.dim_: int | None = None
        self.device_: str | None = None
        self.fingerprint_: str | None = None
        self.node_type_ = "item"
        self._label_of: dict[str, int] = {}
        self._id_of = np.empty(0, dtype=object)
        self._probe: Probe | None = None

    # ------------------------------------------------------------------------------- build
    def build(
        self,
        vectors: Any,
        ids: Sequence[Any] | Vocabulary | None = None,
        *,
        fingerprint: str | None = None,
        node_type: str = "item",
    ) -> VectorIndex:
        """Index ``vectors`` (n, dim) named by ``ids`` (default "0".."n-1"); return ``self``.

        ``fingerprint`` names the model that made the vectors; ``load`` can then refuse an
        index built for another model. Without one, a content hash of vectors and ids is used.
        """
        cfg = self.config
        x = check_vectors(vectors, dim=None, what="vectors", cosine=cfg.metric == "cosine")
        n, dim = x.shape
        if n == 0:
            raise DataError("cannot build an index from 0 vectors")
        id_list = _check_ids(range(n) if ids is None else ids, n, node_type=node_type)
        spec, backend_name, device = self._plan(n, dim)
        spec.validate_for(n, dim)
        t0 = time.perf_counter()
        with self._lock:
            backend = self._make_backend(spec, backend_name, dim, device)
            backend.train(x)
            labels = np.arange(n, dtype=np.int64)
            for i in _progress(range(0, n, ADD_CHUNK), n, spec):
                backend.add(x[i : i + ADD_CHUNK], labels[i : i + ADD_CHUNK])
            backend.attach_device()
            self._backend, self.spec_, self.dim_, self.device_ = backend, spec, dim, device
            self.node_type_ = node_type
            self.fingerprint_ = fingerprint or fingerprint_of(np.asarray(vectors), id_list)
            self._label_of = dict(zip(id_list, range(n), strict=True))
            self._id_of = np.array(id_list, dtype=object)
            self._probe = Probe.build(
                x, labels, m=cfg.check_queries, depth=2 * cfg.check_k, seed=cfg.seed
            )
        log.info(
            "built %s (%s on %s) over %d x %d in %.1fs",
            spec.to_string(),
            backend.kind,
            device,
            n,
            dim,
            time.perf_counter() - t0,
        )
        return self

    def _plan(self, n: int, dim: int) -> tuple[FactorySpec, str, str]:
        """Resolve (factory, backend, device) for n x dim vectors."""
        cfg = self.config
        spec = cfg.factory_spec()
        if spec is None:
            gpu = resolve_device(cfg.device, backend="faiss") != "cpu"
            spec = auto_factory(n, dim, gpu=gpu, exact_max=cfg.exact_max, hnsw_max=cfg.hnsw_max)
        spec = spec.resolve(n, dim)
        return (spec, *self._backend_and_device(spec))

    def _backend_and_device(self, spec: FactorySpec) -> tuple[str, str]:
        cfg = self.config
        backend = "faiss"
        if spec.type == "exact":
            backend = cfg.exact_backend
            if backend == "auto":
                on_gpu = cfg.device != "cpu" and faiss_gpu_count() > 0
                backend = "faiss" if on_gpu else "torch"
        return backend, self._device_for(backend, spec)

    def _device_for(self, backend: str, spec: FactorySpec) -> str:
        device = self.config.device
        if spec.type == "hnsw" and device != "cpu":
            if device != "auto":
                raise IndexUsageError(
                    f"HNSW has no faiss GPU implementation (device={device!r}); "
                    "use Flat or IVF on the GPU, or device='cpu'"
                )
            if faiss_gpu_count() > 0:
                log.info("HNSW stays on the CPU: faiss has no GPU HNSW")
            return "cpu"
        return resolve_device(device, backend=backend)

    def _make_backend(self, spec: FactorySpec, backend: str, dim: int, device: str) -> IndexBackend:
        if backend == "torch":
            hybrid = self.config.exact_backend == "auto" and _faiss_installed()
            return TorchExactBackend(dim, device, small_batch_faiss=hybrid)
        return FaissBackend(spec, dim, self.config, device)

    # ------------------------------------------------------------------------------ search
    def _checked(self, data: Any, what: str) -> np.ndarray:
        """``data`` (one vector or a matrix) checked against this index's dim and metric."""
        cosine = self.config.metric == "cosine"
        return check_vectors(data, dim=self.dim_, what=what, cosine=cosine, allow_1d=True)

    def _require_built(self) -> IndexBackend:
        if self._backend is None:
            raise IndexUsageError("the index is empty: call build() or VectorIndex.load() first")
        return self._backend

    def search(self, queries: Any, k: int = 10, *, exclude: Exclude | None = None) -> SearchResult:
        """The ``k`` best items per query (a 1-D query is one query).

        ``exclude`` (one collection of ids per query) removes those ids from that query's
        results, e.g. the items a user already knows; unknown ids there are ignored.
        """
        backend = self._require_built()
        k = _check_k(k)
        q = self._checked(queries, "queries")
        excl: list[set[str]] | None = None
        if exclude is not None:
            excl = [{str(i) for i in e} for e in exclude]
            if len(excl) != len(q):
                raise IndexUsageError(f"exclude has {len(excl)} entries for {len(q)} queries")
        extra = max((len(e) for e in excl), default=0) if excl else 0
        with self._lock:
            scores, labels = backend.search(q, k + extra)
            ids = self._id_of[np.where(labels >= 0, labels, 0)]
            ids[labels < 0] = None
        if excl:
            out_ids = np.full((len(q), k), None, dtype=object)
            out_scores = np.full((len(q), k), -np.inf, dtype=np.float32)
            for r, e in enumerate(excl):
                # plain lists, not numpy scalar indexing: this runs on every masked query
                keep = [c for c, d in enumerate(ids[r].tolist()) if d is not None and d not in e]
                keep = keep[:k]
                out_ids[r, : len(keep)] = ids[r, keep]
                out_scores[r, : len(keep)] = scores[r, keep]
            return SearchResult(out_ids, out_scores)
        return SearchResult(ids, np.asarray(scores, dtype=np.float32))

    # ---------------------------------------------------------------------------- mutation
    def add(self, vectors: Any, ids: Sequence[Any]) -> None:
        """Add new items at run time; they are searchable as soon as this returns."""
        backend = self._require_built()
        x = self._checked(vectors, "vectors")
        id_list = _check_ids(ids, len(x), node_type=self.node_type_)
        with self._lock:
            present = [i for i in id_list if i in self._label_of]
            if present:
                raise DataError(
                    f"{self.node_type_} ids already in the index: {present[:5]} "
                    "(remove them first to replace their vectors)"
                )
            start = len(self._id_of)
            labels = np.arange(start, start + len(x), dtype=np.int64)
            backend.add(x, labels)
            self._id_of = np.concatenate([self._id_of, np.array(id_list, dtype=object)])
            self._label_of.update(zip(id_list, labels.tolist(), strict=True))
            assert self._probe is not None
            self._probe.merge(x, labels)

    def remove(self, ids: Iterable[Any]) -> None:
        """Remove items by id; an unknown id raises before anything is removed."""
        backend = self._require_built()
        if isinstance(ids, str):
            raise IndexUsageError(f"remove() takes a collection of ids, not one string {ids!r}")
        wanted = list(dict.fromkeys(str(i) for i in ids))
        with self._lock:
            for i in wanted:
                if i not in self._label_of:
                    raise UnknownIdError(self.node_type_, i, hint="not in this index")
            if not wanted:
                return
            labels = np.array([self._label_of[i] for i in wanted], dtype=np.int64)
            backend.remove(labels)
            for i in wanted:
                del self._label_of[i]
            self._id_of[labels] = None
            assert self._probe is not None
            self._probe.remove(labels)

    # --------------------------------------------------------------------------- inspection
    def __len__(self) -> int:
        return len(self._label_of)

    def __contains__(self, id_: object) -> bool:
        return str(id_) in self._label_of

    @property
    def vocabulary(self) -> Vocabulary:
        """The live ids, in the order they were added."""
        return Vocabulary([i for i in self._id_of if i is not None], node_type=self.node_type_)

    @property
    def index_type(self) -> str:
        return self.spec_.type if self.spec_ else "unbuilt"

    def info(self) -> IndexInfo:
        backend = self._require_built()
        assert self.spec_ is not None and self.dim_ is not None
        faiss_b = backend if isinstance(backend, FaissBackend) else None
        return IndexInfo(
            type=self.spec_.type,
            factory=self.spec_.to_string(),
            backend=backend.kind,
            device=str(self.device_),
            size=len(self),
            dim=self.dim_,
            metric=self.config.metric,
            fingerprint=str(self.fingerprint_),
            node_type=self.node_type_,
            nprobe=faiss_b.nprobe if faiss_b and self.spec_.type.startswith("ivf") else None,
            ef_search=faiss_b.ef_search if faiss_b and self.spec_.type == "hnsw" else None,
        )

    def self_check(self, k: int | None = None) -> RecallReport:
        """Recall@k of this index against exact search on the stored probe queries."""
        self._require_built()
        k = _check_k(k if k is not None else self.config.check_k)
        assert self._probe is not None
        if k > self._probe.depth:
            raise IndexUsageError(
                f"self_check k={k} exceeds the stored exact probe depth {self._probe.depth}; "
                f"build with IndexConfig(check_k={k})"
            )
        t0 = time.perf_counter()
        rows, truth = self._probe.truth(k, len(self))
        recall = float("nan")
        if len(rows):
            with self._lock:
                _, got = self._require_built().search(self._probe.queries[rows], k)
            hits = [
                len(set(t[t >= 0].tolist()) & set(g[g >= 0].tolist())) / max(1, (t >= 0).sum())
                for t, g in zip(truth, got, strict=True)
            ]
            recall = float(np.mean(hits))
        return RecallReport(
            recall=recall,
            k=k,
            n_queries=len(rows),
            n_skipped=len(self._probe.queries) - len(rows),
            index_type=self.index_type,
            seconds=time.perf_counter() - t0,
        )

    def set_search_params(self, *, nprobe: int | None = None, ef_search: int | None = None) -> None:
        """Change IVF ``nprobe`` / HNSW ``efSearch`` (ignored by other types)."""
        for name, v in (("nprobe", nprobe), ("ef_search", ef_search)):
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
                raise IndexUsageError(f"{name} must be a positive integer, got {v!r}")
        with self._lock:
            self._require_built().set_search_params(nprobe=nprobe, ef_search=ef_search)

    def tune(self, target_recall: float = 0.95, *, k: int | None = None) -> RecallReport:
        """Double IVF ``nprobe`` / HNSW ``efSearch`` until the self-check reaches the target
        (a recall in (0, 1]; anything else is a ``ValueError``, never a silent no-op)."""
        if not 0.0 < target_recall <= 1.0:  # also refuses NaN
            raise ValueError(f"target recall must be in (0, 1], got {target_recall!r}")
        report = self.self_check(k)
        backend = self._require_built()
        if not isinstance(backend, FaissBackend) or self.spec_ is None:
            return report
        for _ in range(12):
            if not report.recall < target_recall:
                break
            if self.spec_.type == "hnsw":
                if backend.ef_search >= 4096:
                    break
                self.set_search_params(ef_search=backend.ef_search * 2)
            else:
                assert self.spec_.nlist is not None
                if backend.nprobe >= self.spec_.nlist:
                    break
                self.set_search_params(nprobe=min(backend.nprobe * 2, self.spec_.nlist))
            report = self.self_check(k)
        if report.recall < target_recall:
            log.warning(
                "tune: recall@%d %.3f below target %.2f", report.k, report.recall, target_recall
            )
        return report

    # -------------------------------------------------------------------------- persistence
    def save(self, path: str | Path, *, overwrite: bool = False) -> Path:
        """Write the index to directory ``path`` atomically: a CPU copy of the index
        (``index.faiss`` or ``vectors.npy``), ``ids.json`` + ``labels.npy``, ``probe.npz`` and
        ``meta.json`` (format, type, factory, metric, dim, fingerprint, config)."""
        return save_index(self, path, overwrite=overwrite)

    @classmethod
    def load(
        cls,
        path: str | Path,
        *,
        expected_fingerprint: str | None = None,
        device: str | None = None,
    ) -> VectorIndex:
        """Load a saved index; refuse it when ``expected_fingerprint`` differs from the one it
        was built with. ``device`` overrides the saved config's device (``auto`` by default)."""
        return load_index_dir(cls, path, expected_fingerprint=expected_fingerprint, device=device)

    def quantizer(self) -> Any:
        """The IVF coarse quantizer (``None`` for other types): each index has its own."""
        return self._require_built().quantizer()


def load_index(
    path: str | Path, *, expected_fingerprint: str | None = None, device: str | None = None
) -> VectorIndex:
    """Shorthand for :meth:`VectorIndex.load`."""
    return VectorIndex.load(path, expected_fingerprint=expected_fingerprint, device=device)


def _progress(chunks: range, n: int, spec: FactorySpec) -> Iterable[int]:
    """A progress bar over the add chunks of large builds (HNSW on 1M vectors takes minutes)."""
    if n <= 4 * ADD_CHUNK:
        return chunks
    from tqdm import tqdm

    return tqdm(chunks, desc=f"adding to {spec.to_string()}", unit="chunk", leave=False)
