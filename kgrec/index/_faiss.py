"""FAISS backend: exact, HNSW, IVF-Flat and IVF-PQ indexes on the CPU or a GPU.

``faiss`` is imported inside functions only, so ``import kgrec.index`` works without it.

Layout per type (labels are int64 ids the facade assigns and never reuses):

* exact / HNSW: ``IndexIDMap2`` around ``IndexFlatIP`` / ``IndexHNSWFlat`` (these store
  positions, the id map translates). HNSW cannot delete from its graph: removed labels are
  tombstones filtered by an ``IDSelector`` at search time, and the graph is rebuilt from the
  stored vectors once tombstones pass 20% of it.
* IVF-Flat / IVF-PQ: the IVF index itself (``add_with_ids``; ids live in the inverted lists, so
  ``remove_ids`` keeps them consistent, which an ``IndexIDMap`` around an IVF index would not).
  Each IVF index is made by ``index_factory`` with its own coarse quantizer, trained on its own
  data: no quantizer is ever shared between indexes.

On a GPU the CPU index is the master copy (saved as is) and a replica made by
``faiss.index_cpu_to_gpu`` serves searches; adds go to both, removals to the master and then a
fresh replica (GPU flat indexes cannot remove).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from kgrec.index._config import FactorySpec, IndexConfig
from kgrec.index._errors import IndexUsageError

log = logging.getLogger(__name__)

#: the largest k FAISS GPU k-selection supports
GPU_MAX_K = 2048
#: PQ sub-quantizer counts (bytes per code) that GpuIndexIVFPQ implements
GPU_PQ_M = frozenset({1, 2, 3, 4, 8, 12, 16, 20, 24, 28, 32, 48, 56, 64, 96})
#: k-means training sample per centroid (faiss's default is 256): 4x faster IVF / PQ training,
#: which on a loaded 2-core machine is the difference between seconds and minutes
TRAIN_POINTS_PER_CENTROID = 64
#: rebuild an HNSW graph once this share of its nodes are tombstones
HNSW_COMPACT_RATIO = 0.2


def import_faiss() -> Any:
    """Import faiss or fail with the install command."""
    try:
        import faiss
    except ImportError as exc:  # pragma: no cover - faiss is installed in the test env
        raise IndexUsageError(
            "faiss is not installed: pip install 'kgrec[cpu]' (or 'kgrec[gpu]' on a CUDA "
            "machine); exact search works without it (exact_backend='torch')"
        ) from exc
    return faiss


def faiss_gpu_count() -> int:
    """GPUs the installed faiss can use: 0 without the GPU build or without a GPU."""
    try:
        import faiss
    except ImportError:
        return 0
    if not hasattr(faiss, "StandardGpuResources"):
        return 0
    return int(faiss.get_num_gpus())


def faiss_gpu_available() -> bool:
    """Whether the faiss GPU build sees at least one GPU."""
    return faiss_gpu_count() > 0


def gpu_ordinal(device: str) -> int:
    """``"cuda"`` -> 0, ``"cuda:2"`` -> 2."""
    return int(device.split(":", 1)[1]) if ":" in device else 0


class FaissBackend:
    """One FAISS index (CPU master + optional GPU replica) keyed by int64 labels."""

    kind = "faiss"

    def __init__(self, spec: FactorySpec, dim: int, config: IndexConfig, device: str) -> None:
        self.spec = spec
        self.dim = dim
        self.config = config
        self.device = device
        self.nprobe = config.nprobe or max(8, (spec.nlist or 0) // 16)
        self.ef_search = config.ef_search
        self._tombstones: set[int] = set()
        self._selector: Any = None  # kept alive while searches use it
        self._cpu = self._make_cpu_index()
        self._gpu: Any = None
        self._gpu_res: Any = None

    # construction -------------------------------------------------------------------------
    def _make_cpu_index(self) -> Any:
        faiss = import_faiss()
        ip = faiss.METRIC_INNER_PRODUCT
        spec = self.spec
        if spec.type == "exact":
            return faiss.IndexIDMap2(faiss.IndexFlatIP(self.dim))
        if spec.type == "hnsw":
            hnsw = faiss.IndexHNSWFlat(self.dim, spec.hnsw_m, ip)
            hnsw.hnsw.efConstruction = self.config.ef_construction
            hnsw.hnsw.efSearch = self.ef_search
            return faiss.IndexIDMap2(hnsw)
        # a fresh index_factory call builds a fresh coarse quantizer owned by this index
        index = faiss.index_factory(self.dim, spec.to_string(), ip)
        index.cp.seed = self.config.seed
        index.cp.max_points_per_centroid = TRAIN_POINTS_PER_CENTROID
        if spec.type == "ivf-pq":
            # index_factory turns polysemous training on for IVF-PQ: a code-permutation
            # annealing that took minutes here and only serves polysemous (Hamming) filtering,
            # which kgrec does not use
            index.do_polysemous_training = False
            index.pq.cp.seed = self.config.seed
            index.pq.cp.max_points_per_centroid = TRAIN_POINTS_PER_CENTROID
        index.nprobe = self.nprobe
        return index

    @property
    def needs_training(self) -> bool:
        return not self._cpu.is_trained

    def train(self, x: np.ndarray) -> None:
        """Train the IVF quantizer (and PQ codebooks) on ``x``; a no-op for exact and HNSW."""
        if self._cpu.is_trained:
            return
        log.info("training %s on %d vectors", self.spec.to_string(), len(x))
        self._cpu.train(x)

    def attach_device(self) -> None:
        """Make the GPU replica when ``device`` is a GPU."""
        if not self.device.startswith("cuda"):
            return
        faiss = import_faiss()
        if self._gpu_res is None:
            self._gpu_res = faiss.StandardGpuResources()
        options = faiss.GpuClonerOptions()
        options.indicesOptions = faiss.INDICES_64_BIT
        if self.spec.type == "ivf-pq":
            m = self.spec.pq_m
            if m not in GPU_PQ_M or self.spec.pq_nbits != 8:
                raise IndexUsageError(
                    f"{self.spec.to_string()} has no faiss GPU version: GPU IVF-PQ needs 8-bit "
                    f"codes and m in {sorted(GPU_PQ_M)}; use device='cpu' or another m"
                )
            # m >= 56 sub-quantizers only fit GPU shared memory with float16 lookup tables
            options.useFloat16 = bool(m and m >= 56)
        self._gpu = faiss.index_cpu_to_gpu(
            self._gpu_res, gpu_ordinal(self.device), self._cpu, options
        )
        if self.spec.type in ("ivf-flat", "ivf-pq"):
            faiss.GpuParameterSpace().set_index_parameter(self._gpu, "nprobe", self.nprobe)

    # mutation ------------------------------------------------------------------------------
    @property
    def ntotal(self) -> int:
        return int(self._cpu.ntotal) - len(self._tombstones)

    def add(self, x: np.ndarray, labels: np.ndarray) -> None:
        self._cpu.add_with_ids(x, labels)
        if self._gpu is not None:
            self._gpu.add_with_ids(x, labels)

    def remove(self, labels: np.ndarray) -> None:
        faiss = import_faiss()
        if self.spec.type == "hnsw":
            self._tombstones.update(int(i) for i in labels)
            self._selector = None
            if len(self._tombstones) > HNSW_COMPACT_RATIO * self._cpu.ntotal:
                self.compact()
            return
        removed = self._cpu.remove_ids(faiss.IDSelectorBatch(labels))
        if removed != len(labels):  # pragma: no cover - the facade checks ids first
            raise RuntimeError(f"faiss removed {removed} of {len(labels)} ids")
        if self._gpu is not None:
            self.attach_device()

    def compact(self) -> None:
        """Rebuild an HNSW graph without its tombstones (vectors read back from its storage)."""
        if self.spec.type != "hnsw" or not self._tombstones:
            return
        faiss = import_faiss()
        labels = faiss.vector_to_array(self._cpu.id_map).astype(np.int64)
        x = self._cpu.index.reconstruct_n(0, self._cpu.index.ntotal)
        keep = ~np.isin(labels, np.fromiter(self._tombstones, dtype=np.int64))
        log.info("compacting HNSW: dropping %d tombstones", int((~keep).sum()))
        self._cpu = self._make_cpu_index()
        self._tombstones.clear()
        self._selector = None
        if keep.any():
            self._cpu.add_with_ids(np.ascontiguousarray(x[keep]), labels[keep])

    # search --------------------------------------------------------------------------------
    def set_search_params(self, *, nprobe: int | None = None, ef_search: int | None = None) -> None:
        if nprobe is not None and self.spec.type in ("ivf-flat", "ivf-pq"):
            self.nprobe = nprobe
            self._cpu.nprobe = nprobe
            if self._gpu is not None:
                import_faiss().GpuParameterSpace().set_index_parameter(self._gpu, "nprobe", nprobe)
        if ef_search is not None and self.spec.type == "hnsw":
            self.ef_search = ef_search
            import_faiss().downcast_index(self._cpu.index).hnsw.efSearch = ef_search

    def search(self, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Scores and labels (``-1`` where fewer than ``k`` exist), best first."""
        if self._gpu is not None:
            if k > GPU_MAX_K:
                raise IndexUsageError(f"k={k} exceeds the faiss GPU limit of {GPU_MAX_K}")
            return self._gpu.search(q, k)
        if self.spec.type == "hnsw" and self._tombstones:
            return self._cpu.search(q, k, params=self._hnsw_params())
        return self._cpu.search(q, k)

    def _hnsw_params(self) -> Any:
        faiss = import_faiss()
        if self._selector is None:
            removed = np.fromiter(self._tombstones, dtype=np.int64)
            batch = faiss.IDSelectorBatch(removed)
            self._selector = (batch, faiss.IDSelectorNot(batch))
        params = faiss.SearchParametersHNSW()
        params.efSearch = self.ef_search
        params.sel = self._selector[1]
        return params

    # persistence ---------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {
            "nprobe": self.nprobe,
            "ef_search": self.ef_search,
            "tombstones": sorted(self._tombstones),
        }

    def save(self, directory: Path) -> list[str]:
        faiss = import_faiss()
        faiss.write_index(self._cpu, str(directory / "index.faiss"))
        return ["index.faiss"]

    @classmethod
    def load(
        cls,
        directory: Path,
        spec: FactorySpec,
        dim: int,
        config: IndexConfig,
        device: str,
        state: dict[str, Any],
    ) -> FaissBackend:
        faiss = import_faiss()
        self = cls.__new__(cls)
        self.spec, self.dim, self.config, self.device = spec, dim, config, device
        self.nprobe = int(state.get("nprobe") or max(8, (spec.nlist or 0) // 16))
        self.ef_search = int(state.get("ef_search") or config.ef_search)
        self._tombstones = {int(i) for i in state.get("tombstones", [])}
        self._selector = None
        self._gpu = self._gpu_res = None
        self._cpu = faiss.read_index(str(directory / "index.faiss"))
        if self._cpu.d != dim:
            raise IndexUsageError(f"{directory}/index.faiss has dimension {self._cpu.d}, not {dim}")
        self.set_search_params(nprobe=self.nprobe, ef_search=self.ef_search)
        return self

    def labels(self) -> np.ndarray:
        """All live labels (for consistency checks after load)."""
        faiss = import_faiss()
        if self.spec.type in ("exact", "hnsw"):
            out = faiss.vector_to_array(self._cpu.id_map).astype(np.int64)
        else:
            invlists = self._cpu.invlists
            parts = [
                faiss.rev_swig_ptr(invlists.get_ids(i), invlists.list_size(i)).copy()
                for i in range(invlists.nlist)
                if invlists.list_size(i)
            ]
            out = np.concatenate(parts).astype(np.int64) if parts else np.empty(0, np.int64)
        if self._tombstones:
            out = out[~np.isin(out, np.fromiter(self._tombstones, dtype=np.int64))]
        return out

    def quantizer(self) -> Any:
        """The coarse quantizer of an IVF index (tests check it is not shared)."""
        return self._cpu.quantizer if self.spec.type in ("ivf-flat", "ivf-pq") else None
