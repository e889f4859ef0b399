"""The lean path of the HTTP service for queries by known ids.

``POST /recommend`` for a known user or a history of item ids and ``POST /neighbors`` of a known
item id take well under a millisecond inside kgrec; through the web framework (routing,
dependency solving, the request object, exception middleware) they cost several times that.
:class:`FastQueries` answers them straight from the ASGI guard
(:class:`~kgrec.serve._guards.GuardMiddleware`), after the guard's body limit and strict-JSON
check, with the very validation and serialisation the routes use (pydantic ``TypeAdapter`` s of
the same request and response models, python-mode validation of the parsed JSON, JSON bytes from
the response model), so the status, headers and bytes are those of the full path.

Micro-batching: the index searches of the queries that arrive while the event loop is busy are
gathered (:class:`Batcher`) and run as one ``VectorIndex.search`` per index and ``k`` (one
matrix product over the index instead of one pass per query; the exact search returns the same
ids; scores can differ from a lone query's in the last float bit, as they already do between
the index's one- and many-query kernels). A batch of one is the plain search.

It only ever answers a success. Anything else — a body the models refuse, a query with text
(encoded in the thread pool by the route), a new item row, an unknown id, any error — returns
``None`` and the request goes through the framework unchanged, which gives the documented 4xx.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import numpy as np

from kgrec.serve._results import QueryPlan, Search
from kgrec.serve._retriever import Retriever

log = logging.getLogger(__name__)

#: the JSON content types the framework parses as JSON; anything else takes the full path
_JSON_TYPES = (b"application/json",)


def _is_json(headers: list[tuple[bytes, bytes]]) -> bool:
    for name, value in headers:
        if name == b"content-type":
            return value.split(b";", 1)[0].strip().lower() in _JSON_TYPES
    return False


class Batcher:
    """Searches submitted during one turn of the event loop, run together right after it."""

    def __init__(self) -> None:
        self._pending: list[tuple[Search, asyncio.Future]] = []
        self.batches = self.searches = 0

    def submit(self, search: Search) -> asyncio.Future:
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        if not self._pending:
            loop.call_soon(self._flush)
        self._pending.append((search, fut))
        return fut

    def _flush(self) -> None:
        batch, self._pending = self._pending, []
        groups: dict[tuple[int, int], list[tuple[Search, asyncio.Future]]] = {}
        for s, f in batch:
            groups.setdefault((id(s.index), s.k), []).append((s, f))
        for group in groups.values():
            self.batches += 1
            self.searches += len(group)
            try:
                rows = _search_together([s for s, _ in group])
            except Exception as exc:
                for _, f in group:
                    if not f.done():
                        f.set_exception(exc)
                continue
            for (_, f), row in zip(group, rows, strict=True):
                if not f.done():
                    f.set_result(row)


def _search_together(searches: list[Search]) -> list[list[tuple[str, float]]]:
    first = searches[0]
    if len(searches) == 1:
        return [first.index.search(first.vector, first.k, exclude=first.exclude).row(0)]
    queries = np.stack([np.asarray(s.vector, np.float32).reshape(-1) for s in searches])
    exclude = [list(s.exclude[0]) if s.exclude else [] for s in searches]
    res = first.index.search(queries, first.k, exclude=exclude)
    return [res.row(r) for r in range(len(searches))]


class FastQueries:
    """Known-id ``/recommend`` and ``/neighbors`` answered as JSON bytes, or ``None`` (the full
    path then answers); see the module docstring."""

    paths = frozenset({"/recommend", "/neighbors"})

    def __init__(self, retriever: Retriever, *, batch: bool = True) -> None:
        from pydantic import TypeAdapter

        from kgrec.serve._schema import NeighborsIn, NeighborsOut, RecommendIn, RecommendOut

        self.retriever = retriever
        self._recommend_in = TypeAdapter(RecommendIn)
        self._recommend_out = TypeAdapter(RecommendOut)
        self._neighbors_in = TypeAdapter(NeighborsIn)
        self._neighbors_out = TypeAdapter(NeighborsOut)
        self.answered = self.passed = 0
        self.batcher = Batcher() if batch else None

    async def _run(self, plan: QueryPlan) -> Any:
        if self.batcher is None or not plan.searches:
            return plan.run()
        futures = [self.batcher.submit(s) for s in plan.searches]
        return plan.finish(list(await asyncio.gather(*futures)))

    async def answer(self, scope: dict[str, Any], doc: Any) -> bytes | None:
        """The 200 body of ``scope``'s query (``doc``: its parsed JSON body), or ``None``."""
        if scope.get("method") != "POST" or not isinstance(doc, dict):
            return None
        if not _is_json(scope.get("headers") or []):
            return None
        path = scope.get("path")
        try:
            if path == "/recommend":
                out = await self._recommend(doc)
            elif path == "/neighbors":
                out = await self._neighbors(doc)
            else:
                return None
        except Exception:  # the full path answers it (and reports it as it always has)
            out = None
        if out is None:
            self.passed += 1
        else:
            self.answered += 1
        return out

    async def _recommend(self, doc: dict[str, Any]) -> bytes | None:
        from pydantic import ValidationError

        if doc.get("text") is not None:  # encodes text: the route runs it in the thread pool
            return None
        try:
            body = self._recommend_in.validate_python(doc, from_attributes=True)
        except ValidationError:
            return None
        if body.text:
            return None
        plan = self.retriever.plan_recommend(
            body.user,
            history=body.history,
            text=body.text,
            attributes={k: v if isinstance(v, list) else [v] for k, v in body.attributes.items()}
            or None,
            k=body.k,
            exclude_known=body.exclude_known,
        )
        res = (await self._run(plan)).to_dict()
        out = self._recommend_out.validate_python(res, from_attributes=True)
        return self._recommend_out.dump_json(out, by_alias=True)

    async def _neighbors(self, doc: dict[str, Any]) -> bytes | None:
        from pydantic import ValidationError

        if doc.get("item") is not None:  # a new item row: embedded in the thread pool
            return None
        try:
            body = self._neighbors_in.validate_python(doc, from_attributes=True)
        except ValidationError:
            return None
        if body.item is not None or body.item_id is None:
            return None
        plan = self.retriever.plan_neighbors(body.item_id, body.k, users_k=body.users_k)
        res = (await self._run(plan)).to_dict()
        out = self._neighbors_out.validate_python(res, from_attributes=True)
        return self._neighbors_out.dump_json(out, by_alias=True)
