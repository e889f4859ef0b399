"""Typed configuration of a retrieval index, and the factory-string grammar it accepts.

The factory grammar is a small, validated subset of FAISS's ``index_factory`` strings, one form
per supported index type (numbers in brackets are optional and chosen from the size when absent):

==============  ==========================  ===============================================
type            factory                     notes
==============  ==========================  ===============================================
exact           ``Flat``                    brute force (torch matmul+topk or faiss IndexFlat)
hnsw            ``HNSW[M][,Flat]``          graph index; M links per node (default 32)
ivf-flat        ``IVF[nlist],Flat``         inverted lists, full vectors
ivf-pq          ``IVF[nlist],PQ[m][x nbits]``  inverted lists, product-quantised codes
==============  ==========================  ===============================================

``factory="auto"`` applies :func:`auto_factory`: on the CPU, fewer than ``exact_max`` vectors
(20,000) -> ``Flat`` (a single exact query then costs well under a millisecond); fewer than
``hnsw_max`` (5,000,000) -> ``HNSW32`` (sub-millisecond queries at recall@10 >= 0.95, about
2x the raw vectors in memory); above -> ``IVF{nlist},PQ{m}`` (compressed codes, m from :func:`default_pq_m`). On a GPU,
brute force stays exact up to ``hnsw_max`` vectors (FAISS has no GPU HNSW), then IVF-PQ.
``nlist`` defaults to ``4 * sqrt(n)`` clipped to ``[1, n // 39]`` (FAISS's k-means wants at least
39 training points per centroid).
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass
from typing import Any, Literal

from kgrec.errors import SpecError

Metric = Literal["ip", "cosine"]
IndexType = Literal["exact", "hnsw", "ivf-flat", "ivf-pq"]

METRICS: tuple[str, ...] = ("ip", "cosine")
EXACT_BACKENDS: tuple[str, ...] = ("auto", "torch", "faiss")
FACTORY_FORMS = "auto, Flat, HNSW[M][,Flat], IVF[nlist],Flat, IVF[nlist],PQ[m][x<nbits>]"

_DEVICE_RE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")
_FLAT_RE = re.compile(r"^(?:IDMap2?,)?Flat$", re.IGNORECASE)
_HNSW_RE = re.compile(r"^HNSW(?P<m>\d+)?(?:,Flat)?$", re.IGNORECASE)
_IVF_RE = re.compile(
    r"^IVF(?P<nlist>\d+)?,(?:(?P<flat>Flat)|PQ(?P<m>\d+)?(?:x(?P<nbits>\d+))?)$", re.IGNORECASE
)


@dataclass(frozen=True)
class FactorySpec:
    """A parsed factory string: the index type and its structural parameters.

    ``None`` parameters are chosen from the data size by :meth:`resolve`.
    """

    type: IndexType
    hnsw_m: int | None = None
    nlist: int | None = None
    pq_m: int | None = None
    pq_nbits: int | None = None

    @property
    def approximate(self) -> bool:
        return self.type != "exact"

    def resolve(self, n: int, dim: int) -> FactorySpec:
        """Fill the unset parameters for ``n`` vectors of dimension ``dim``."""
        if self.type == "exact":
            return self
        if self.type == "hnsw":
            return dataclasses.replace(self, hnsw_m=self.hnsw_m or 32)
        nlist = self.nlist or default_nlist(n)
        if self.type == "ivf-flat":
            return dataclasses.replace(self, nlist=nlist)
        pq_m = self.pq_m or default_pq_m(dim)
        return dataclasses.replace(self, nlist=nlist, pq_m=pq_m, pq_nbits=self.pq_nbits or 8)

    def to_string(self) -> str:
        """The canonical FAISS factory string (all parameters must be resolved)."""
        if self.type == "exact":
            return "Flat"
        if self.type == "hnsw":
            return f"HNSW{self.hnsw_m or ''},Flat"
        if self.type == "ivf-flat":
            return f"IVF{self.nlist or ''},Flat"
        nbits = f"x{self.pq_nbits}" if self.pq_nbits else ""
        return f"IVF{self.nlist or ''},PQ{self.pq_m or ''}{nbits}"

    def validate_for(self, n: int, dim: int) -> None:
        """Raise :class:`SpecError` when this (resolved) spec cannot index ``n`` x ``dim``."""
        key = "factory"
        if self.type == "hnsw" and not 2 <= (self.hnsw_m or 0) <= 256:
            raise SpecError(f"HNSW M must be in 2..256, got {self.hnsw_m}", key=key)
        if self.type in ("ivf-flat", "ivf-pq"):
            assert self.nlist is not None
            if self.nlist < 1:
                raise SpecError(f"IVF nlist must be >= 1, got {self.nlist}", key=key)
            if n < self.nlist:
                raise SpecError(
                    f"{self.to_string()} needs at least nlist={self.nlist} training vectors, "
                    f"got {n} (use a smaller nlist, 'IVF,Flat' to size it automatically, or Flat)",
                    key=key,
                )
        if self.type == "ivf-pq":
            assert self.pq_m is not None and self.pq_nbits is not None
            if self.pq_m < 1 or dim % self.pq_m:
                raise SpecError(
                    f"PQ m={self.pq_m} must divide the dimension {dim} "
                    f"(divisors: {[m for m in range(1, dim + 1) if dim % m == 0]})",
                    key=key,
                )
            if not 1 <= self.pq_nbits <= 16:
                raise SpecError(f"PQ nbits must be in 1..16, got {self.pq_nbits}", key=key)
            if n < 2**self.pq_nbits:
                raise SpecError(
                    f"PQ with {self.pq_nbits} bits needs at least {2**self.pq_nbits} training "
                    f"vectors, got {n}",
                    key=key,
                )


def default_nlist(n: int) -> int:
    """``4 * sqrt(n)`` inverted lists, at most ``n // 39`` (k-means needs >= 39 points each)."""
    return max(1, min(int(4 * math.sqrt(n)), n // 39))


def default_pq_m(dim: int) -> int:
    """The largest divisor of ``dim`` not above 64 sub-quantizers (8 bits each).

    For dim <= 64 that is one byte per dimension (4x smaller than float32), which measured
    recall@10 >= 0.95 on the benchmark's clustered vectors where ``dim / 2`` gave about 0.88
    (bench/results/retrieval.json); larger dims get coarser codes (at most 64 bytes).
    """
    m = min(dim, 64)
    while dim % m:
        m -= 1
    return m


def parse_factory(factory: str) -> FactorySpec:
    """Parse one of the accepted factory strings (not ``auto``); raise :class:`SpecError`."""
    text = factory.strip().replace(" ", "")
    if _FLAT_RE.match(text):
        return FactorySpec("exact")
    if m := _HNSW_RE.match(text):
        return FactorySpec("hnsw", hnsw_m=_int(m["m"]))
    if m := _IVF_RE.match(text):
        if m["flat"]:
            return FactorySpec("ivf-flat", nlist=_int(m["nlist"]))
        return FactorySpec(
            "ivf-pq", nlist=_int(m["nlist"]), pq_m=_int(m["m"]), pq_nbits=_int(m["nbits"])
        )
    raise SpecError(
        f"unsupported index factory {factory!r}; accepted forms: {FACTORY_FORMS}", key="factory"
    )


def _int(text: str | None) -> int | None:
    return int(text) if text else None


def auto_factory(n: int, dim: int, *, gpu: bool, exact_max: int, hnsw_max: int) -> FactorySpec:
    """The size rule behind ``factory="auto"`` (see the module docstring)."""
    if gpu:
        spec = FactorySpec("exact") if n < hnsw_max else FactorySpec("ivf-pq")
    elif n < exact_max:
        spec = FactorySpec("exact")
    elif n < hnsw_max:
        spec = FactorySpec("hnsw", hnsw_m=32)
    else:
        spec = FactorySpec("ivf-pq")
    return spec.resolve(n, dim)


@dataclass(frozen=True)
class IndexConfig:
    """How to build and search a :class:`~kgrec.index.VectorIndex`.

    metric: ``"ip"`` (inner product) or ``"cosine"`` (vectors and queries are L2-normalised,
        then inner product; scores are cosine similarities).
    factory: ``"auto"`` or a factory string (see :mod:`kgrec.index._config`).
    device: ``"auto"`` (GPU when the faiss GPU build sees one), ``"cpu"``, ``"cuda"`` or
        ``"cuda:N"``; an explicit ``cuda`` fails clearly when no GPU is usable.
    exact_backend: exact search by ``"torch"`` (matmul + topk) or ``"faiss"`` (IndexFlat);
        ``"auto"`` on the CPU stores the vectors once in torch and answers batches of 1-2
        queries with ``faiss.knn`` and larger ones with torch matmul + topk (each measured
        faster in its range here, see bench/results/retrieval.json); faiss on a GPU.
    nprobe: IVF lists visited per query (``None``: ``max(8, nlist // 16)``).
    ef_search / ef_construction: HNSW search / construction beam widths.
    exact_max / hnsw_max: the size thresholds of ``factory="auto"``.
    check_k / check_queries: depth and number of the stored exact-search probe that
        :meth:`~kgrec.index.VectorIndex.self_check` compares against.
    seed: k-means / probe sampling seed.
    """

    metric: Metric = "cosine"
    factory: str = "auto"
    device: str = "auto"
    exact_backend: str = "auto"
    nprobe: int | None = None
    ef_search: int = 64
    ef_construction: int = 80
    exact_max: int = 20_000
    hnsw_max: int = 5_000_000
    check_k: int = 10
    check_queries: int = 256
    seed: int = 0

    def __post_init__(self) -> None:
        if self.metric not in METRICS:
            raise SpecError(f"metric must be one of {METRICS}, got {self.metric!r}", key="metric")
        if self.factory != "auto":
            parse_factory(self.factory)
        if not _DEVICE_RE.match(self.device):
            raise SpecError(
                f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {self.device!r}",
                key="device",
            )
        if self.exact_backend not in EXACT_BACKENDS:
            raise SpecError(
                f"exact_backend must be one of {EXACT_BACKENDS}, got {self.exact_backend!r}",
                key="exact_backend",
            )
        positive = {
            "ef_search": self.ef_search,
            "ef_construction": self.ef_construction,
            "exact_max": self.exact_max,
            "hnsw_max": self.hnsw_max,
            "check_k": self.check_k,
            "check_queries": self.check_queries,
        }
        if self.nprobe is not None:
            positive["nprobe"] = self.nprobe
        for key, value in positive.items():
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise SpecError(f"{key} must be a positive integer, got {value!r}", key=key)
        if not isinstance(self.seed, int) or isinstance(self.seed, bool):
            raise SpecError(f"seed must be an integer, got {self.seed!r}", key="seed")

    def factory_spec(self) -> FactorySpec | None:
        """The parsed factory, or ``None`` for ``auto``."""
        return None if self.factory == "auto" else parse_factory(self.factory)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> IndexConfig:
        """Inverse of :meth:`to_dict`; unknown keys are refused with the accepted ones listed."""
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(data) - set(names))
        if unknown:
            raise SpecError(
                f"unknown index config keys {unknown}; accepted: {names}", key=unknown[0]
            )
        return cls(**data)

    def replace(self, **changes: Any) -> IndexConfig:
        """A copy with ``changes`` applied (validated)."""
        return dataclasses.replace(self, **changes)
