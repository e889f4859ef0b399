"""What an index answers: search results, the recall self-check report and the index summary."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

import numpy as np

#: ids to leave out of a search's results, one collection per query (``search(exclude=...)``)
Exclude: TypeAlias = Sequence[Iterable[Any]]


@dataclass(frozen=True)
class SearchResult:
    """Top-k neighbours per query: ``ids`` (object array of str, ``None`` where fewer than k
    items exist) and ``scores`` (float32 inner products / cosines, ``-inf`` there), best first."""

    ids: np.ndarray
    scores: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)

    def row(self, i: int) -> list[tuple[str, float]]:
        """``(id, score)`` pairs of query ``i``, missing slots left out."""
        return [(str(d), float(s)) for d, s in zip(self.ids[i], self.scores[i], strict=True) if d]


@dataclass(frozen=True)
class RecallReport:
    """Recall@k of the index against exact search on its stored probe queries."""

    recall: float
    k: int
    n_queries: int
    n_skipped: int
    index_type: str
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class IndexInfo:
    """What an index is: for ``kgrec index info`` and the service's /health."""

    type: str
    factory: str
    backend: str
    device: str
    size: int
    dim: int
    metric: str
    fingerprint: str
    node_type: str
    nprobe: int | None
    ef_search: int | None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
