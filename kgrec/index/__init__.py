"""Retrieval indexes: one wrapper over FAISS (CPU or GPU) with a torch exact backend.

``VectorIndex`` builds, searches, grows (``add``), shrinks (``remove``), saves and loads an index
of vectors named by external ids, and measures its own recall against exact search
(``self_check``). ``IndexConfig`` says how; ``factory="auto"`` picks the index type by size (see
:func:`auto_factory`). ``import kgrec.index`` does not import faiss; building does.
"""

from kgrec.index._backend import IndexBackend
from kgrec.index._checks import check_vectors, fingerprint_of, resolve_device
from kgrec.index._config import (
    FACTORY_FORMS,
    FactorySpec,
    IndexConfig,
    auto_factory,
    default_nlist,
    default_pq_m,
    parse_factory,
)
from kgrec.index._errors import FingerprintMismatchError, IndexUsageError
from kgrec.index._faiss import faiss_gpu_available, faiss_gpu_count
from kgrec.index._index import VectorIndex, load_index
from kgrec.index._probe import recall_at_k
from kgrec.index._results import IndexInfo, RecallReport, SearchResult
from kgrec.index._sharded import ShardedIndex, merge_results

__all__ = [
    "FACTORY_FORMS",
    "FactorySpec",
    "FingerprintMismatchError",
    "IndexBackend",
    "IndexConfig",
    "IndexInfo",
    "IndexUsageError",
    "RecallReport",
    "SearchResult",
    "ShardedIndex",
    "VectorIndex",
    "auto_factory",
    "check_vectors",
    "default_nlist",
    "default_pq_m",
    "faiss_gpu_available",
    "faiss_gpu_count",
    "fingerprint_of",
    "load_index",
    "merge_results",
    "parse_factory",
    "recall_at_k",
    "resolve_device",
]
