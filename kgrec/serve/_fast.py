"""The lean path of the HTTP service for queries by known ids.

``POST /recommend`` for a known user or a history of item ids and ``POST /neighbors`` of a known
item id take well under a millisecond inside kgrec; through the web framework (routing,
dependency solving, the request object, exception middleware) they cost several times that.
:class:`FastQueries` answers them straight from the ASGI guard
(:class:`~kgrec.serve._guards.GuardMiddleware`), after the guard's body limit and strict-JSON
check, with the very validation and serialisation the routes use (pydantic ``TypeAdapter`` s of
the same request and response models, python-mode validation of the parsed JSON, JSON bytes from
the response model), so the status, headers and bytes are those of the full path.

It only ever answers a success. Anything else — a body the models refuse, a query with text
(encoded in the thread pool by the route), a new item row, an unknown id, any error — returns
``None`` and the request goes through the framework unchanged, which gives the documented 4xx.
"""

from __future__ import annotations

import logging
from typing import Any

from kgrec.serve._retriever import Retriever

log = logging.getLogger(__name__)

#: the JSON content types the framework parses as JSON; anything else takes the full path
_JSON_TYPES = (b"application/json",)


def _is_json(headers: list[tuple[bytes, bytes]]) -> bool:
    for name, value in headers:
        if name == b"content-type":
            return value.split(b";", 1)[0].strip().lower() in _JSON_TYPES
    return False


class FastQueries:
    """Known-id ``/recommend`` and ``/neighbors`` answered as JSON bytes, or ``None`` (the full
    path then answers); see the module docstring."""

    paths = frozenset({"/recommend", "/neighbors"})

    def __init__(self, retriever: Retriever) -> None:
        from pydantic import TypeAdapter

        from kgrec.serve._schema import NeighborsIn, NeighborsOut, RecommendIn, RecommendOut

        self.retriever = retriever
        self._recommend_in = TypeAdapter(RecommendIn)
        self._recommend_out = TypeAdapter(RecommendOut)
        self._neighbors_in = TypeAdapter(NeighborsIn)
        self._neighbors_out = TypeAdapter(NeighborsOut)
        self.answered = self.passed = 0

    def answer(self, scope: dict[str, Any], doc: Any) -> bytes | None:
        """The 200 body of ``scope``'s query (``doc``: its parsed JSON body), or ``None``."""
        if scope.get("method") != "POST" or not isinstance(doc, dict):
            return None
        if not _is_json(scope.get("headers") or []):
            return None
        path = scope.get("path")
        try:
            if path == "/recommend":
                out = self._recommend(doc)
            elif path == "/neighbors":
                out = self._neighbors(doc)
            else:
                return None
        except Exception:  # the full path answers it (and reports it as it always has)
            out = None
        if out is None:
            self.passed += 1
        else:
            self.answered += 1
        return out

    def _recommend(self, doc: dict[str, Any]) -> bytes | None:
        from pydantic import ValidationError

        if doc.get("text") is not None:  # encodes text: the route runs it in the thread pool
            return None
        try:
            body = self._recommend_in.validate_python(doc, from_attributes=True)
        except ValidationError:
            return None
        if body.text:
            return None
        res = self.retriever.recommend(
            body.user,
            history=body.history,
            text=body.text,
            attributes={k: v if isinstance(v, list) else [v] for k, v in body.attributes.items()}
            or None,
            k=body.k,
            exclude_known=body.exclude_known,
        ).to_dict()
        out = self._recommend_out.validate_python(res, from_attributes=True)
        return self._recommend_out.dump_json(out, by_alias=True)

    def _neighbors(self, doc: dict[str, Any]) -> bytes | None:
        from pydantic import ValidationError

        if doc.get("item") is not None:  # a new item row: embedded in the thread pool
            return None
        try:
            body = self._neighbors_in.validate_python(doc, from_attributes=True)
        except ValidationError:
            return None
        if body.item is not None or body.item_id is None:
            return None
        res = self.retriever.neighbors(body.item_id, body.k, users_k=body.users_k).to_dict()
        out = self._neighbors_out.validate_python(res, from_attributes=True)
        return self._neighbors_out.dump_json(out, by_alias=True)
