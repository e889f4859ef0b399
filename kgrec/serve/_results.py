"""What the :class:`~kgrec.serve.Retriever` answers and how it plans a query: result types
(:class:`Hit`, :class:`NeighborsResult`, :class:`RecommendResult`, :class:`AddedItem`), the
index searches of a query (:class:`Search`, :class:`QueryPlan`) and the ``k`` check."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ParamSpec, TypeVar, cast

import numpy as np

from kgrec.errors import DataError
from kgrec.index import VectorIndex
from kgrec.serve._protocol import MAX_K


class DuplicateIdError(DataError):
    """A new item named with an id the retriever already holds."""


@dataclass(frozen=True)
class Hit:
    """One retrieved item or user."""

    id: str
    score: float
    title: str | None = None

    def to_dict(self) -> dict[str, Any]:  # not dataclasses.asdict: this is the hot path
        return {"id": self.id, "score": self.score, "title": self.title}


@dataclass(frozen=True)
class NeighborsResult:
    """Similar items and likely users of one (known or new) item."""

    item_id: str | None
    items: list[Hit]
    users: list[Hit]
    matched: list[str] = field(default_factory=list)
    unmatched: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "item_id": self.item_id,
            "items": [h.to_dict() for h in self.items],
            "users": [h.to_dict() for h in self.users],
            "matched": self.matched,
            "unmatched": self.unmatched,
        }


@dataclass(frozen=True)
class RecommendResult:
    """Top-k items for a user (known or new) and how many known items were masked."""

    user_id: str | None
    items: list[Hit]
    masked: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "user_id": self.user_id,
            "items": [h.to_dict() for h in self.items],
            "masked": self.masked,
        }


@dataclass(frozen=True)
class AddedItem:
    """An item added live, with its attribute matches."""

    id: str
    matched: list[str]
    unmatched: list[str]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Search:
    """One search of a query plan: ``index.search(vector, k, exclude=exclude)``."""

    index: VectorIndex
    vector: np.ndarray
    k: int
    exclude: list[Sequence[str]] | None


@dataclass(frozen=True)
class QueryPlan:
    """A query checked and turned into index searches, plus what makes the result of their rows
    (``(id, score)`` pairs per search). :meth:`run` runs the searches one by one; the HTTP lean
    path (:mod:`kgrec.serve._fast`) runs those of concurrent requests together."""

    searches: list[Search]
    finish: Any  # Callable[[list[list[tuple[str, float]]]], NeighborsResult | RecommendResult]

    @staticmethod
    def done(result: Any) -> QueryPlan:
        return QueryPlan([], lambda _rows: result)

    def run(self) -> Any:
        rows = [s.index.search(s.vector, s.k, exclude=s.exclude).row(0) for s in self.searches]
        return self.finish(rows)


P = ParamSpec("P")
R = TypeVar("R")


def runs_plan(plan: Callable[P, QueryPlan], result: type[R], doc: str) -> Callable[P, R]:
    """The one-call form of a planned query: a method with ``plan``'s arguments (written once,
    on the plan) that builds its :class:`QueryPlan` and runs it; ``result`` is what it returns."""

    @functools.wraps(plan)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        return cast(R, plan(*args, **kwargs).run())

    run.__name__ = plan.__name__.removeprefix("plan_")
    run.__qualname__ = plan.__qualname__.replace(plan.__name__, run.__name__)
    run.__doc__ = doc
    return run


def check_k(k: Any, *, what: str = "k", low: int = 1) -> int:
    """``k`` as an int in ``low..MAX_K`` or a :class:`DataError`."""
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or not low <= k <= MAX_K:
        raise DataError(f"{what} must be an integer in {low}..{MAX_K}, got {k!r}")
    return int(k)
