"""The HTTP service behind ``kgrec serve``: a FastAPI app over one :class:`Retriever`.

Endpoints: ``POST /recommend``, ``POST /neighbors``, ``POST /items`` (adds cold items live:
retrievable by the next request), ``GET /items/{id}``, ``POST /users/{id}/events`` (interactions
of a known or new user, applied to their next recommendations), ``GET /health`` (liveness),
``GET /ready`` (200 once the text encoder has warmed up, 503 before), ``GET /metrics``
(Prometheus); the OpenAPI schema at ``/openapi.json`` (docs at ``/docs``) lists every status
code and error body.

Guards: every body is a pydantic model with bounds (``k`` in 1..1000, at most 256 items per
``POST /items``, 1000 history ids, 10,000 characters of text) plus a body limit (413) and a
limit on the text one request may ask to encode (422); NaN/Infinity and invalid unicode are
422, never echoed into a 500. Writes (``POST /items``, ``POST /users/{id}/events``) need the API
key (header ``X-API-Key`` or ``Authorization: Bearer``; 401 without it) when one is configured,
and are refused (403) without one unless anonymous writes were allowed. With a journal attached
to the retriever every write is durable before it is acknowledged (503 when it cannot be).
Invalid input is a 4xx, never a 5xx: 422 for malformed bodies and unusable values, 404 naming
the unknown id, 409 for an id that already exists.
"""

import contextlib
import logging
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

from kgrec.errors import KgrecError, UnknownIdError
from kgrec.serve._fast import FastQueries
from kgrec.serve._guards import (
    MAX_BODY,
    MAX_WORK_CHARS,
    GuardMiddleware,
    Metrics,
    check_api_key,
    use_query_lru,
)
from kgrec.serve._journal import JournalError
from kgrec.serve._protocol import NewItem
from kgrec.serve._results import DuplicateIdError
from kgrec.serve._retriever import Retriever

log = logging.getLogger(__name__)


def _work_chars(items: list[NewItem]) -> int:
    return sum(
        len(i.title) + len(i.description) + sum(len(v) for vs in i.attributes.values() for v in vs)
        for i in items
    )


def create_app(
    retriever: Retriever,
    *,
    api_key: str | None = None,
    allow_anonymous_writes: bool = False,
    max_body: int = MAX_BODY,
    max_work_chars: int = MAX_WORK_CHARS,
    query_cache: int = 4096,
    warm_up: bool = True,
    fast: bool = True,
    batch: bool = True,
) -> Any:
    """A FastAPI app serving ``retriever`` (fastapi is imported here, not at package import).

    ``api_key``: writes need it; without one, writes are refused unless
    ``allow_anonymous_writes``. ``query_cache``: texts kept in the in-memory query LRU.
    ``warm_up``: encode one text at start-up (``/ready`` turns true after it). ``fast``: answer
    queries by known ids on the lean path (:mod:`kgrec.serve._fast`; same bytes as the routes);
    ``batch``: run the searches of concurrent lean-path queries together."""
    from typing import Annotated

    from fastapi import Depends, FastAPI, Header, Path, Request
    from fastapi.concurrency import run_in_threadpool
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse, Response

    from kgrec.serve._schema import (
        AddIn,
        AddOut,
        ErrorOut,
        EventIn,
        EventOut,
        HealthOut,
        ItemOut,
        NeighborsIn,
        NeighborsOut,
        ReadyOut,
        RecommendIn,
        RecommendOut,
        ValidationErrorOut,
    )

    started = time.monotonic()
    use_query_lru(retriever.model, maxsize=query_cache)
    ready = threading.Event()

    def _warm() -> None:
        try:
            retriever.model.embed_user((), "warm up")
        except Exception as exc:  # a model without text still serves ids
            log.warning("encoder warm-up failed: %s", exc)
        ready.set()

    @contextlib.asynccontextmanager
    async def lifespan(_: Any) -> AsyncIterator[None]:
        if warm_up:
            threading.Thread(target=_warm, name="kgrec-warm-up", daemon=True).start()
        else:
            ready.set()
        yield
        if retriever.journal is not None:  # a clean shutdown folds the journal into a snapshot
            retriever.journal.close()

    app = FastAPI(
        lifespan=lifespan,
        title="kgrec",
        description="Cold-start retrieval: similar items, likely users, recommendations for "
        "known or new users, and cold items added live.",
        version="1",
    )

    def err(*codes: int) -> dict[int | str, dict[str, Any]]:
        names = {
            401: "API key missing or wrong",
            403: "writes are disabled (no API key configured)",
            404: "unknown id (named in the body)",
            409: "id already exists",
            413: "request body too large",
            422: "invalid body or value (the value is never echoed)",
            503: "cannot persist the change (journal)",
        }
        return {
            c: {"model": ValidationErrorOut if c == 422 else ErrorOut, "description": names[c]}
            for c in codes
        }

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        issues = [
            {
                "type": str(e.get("type", "")),
                "loc": [str(x) if not isinstance(x, int) else x for x in e.get("loc", ())],
                "msg": str(e.get("msg", "")),
            }
            for e in exc.errors()
        ]
        return JSONResponse(status_code=422, content={"detail": issues})

    @app.exception_handler(UnknownIdError)
    async def _unknown(_: Request, exc: UnknownIdError) -> JSONResponse:
        return JSONResponse(
            status_code=404, content={"detail": str(exc), "id": str(exc.id), "type": exc.node_type}
        )

    @app.exception_handler(DuplicateIdError)
    async def _duplicate(_: Request, exc: DuplicateIdError) -> JSONResponse:
        return JSONResponse(status_code=409, content={"detail": str(exc)})

    @app.exception_handler(JournalError)
    async def _unavailable(_: Request, exc: JournalError) -> JSONResponse:
        log.error("journal: %s", exc)
        return JSONResponse(status_code=503, content={"detail": "cannot persist the change"})

    @app.exception_handler(KgrecError)
    async def _invalid(_: Request, exc: KgrecError) -> JSONResponse:
        return JSONResponse(status_code=422, content={"detail": str(exc)})

    class _Denied(Exception):
        def __init__(self, status: int, detail: str) -> None:
            self.status, self.detail = status, detail

    @app.exception_handler(_Denied)
    async def _denied(_: Request, exc: _Denied) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return JSONResponse(status_code=exc.status, content={"detail": exc.detail}, headers=headers)

    def require_write(
        x_api_key: Annotated[str | None, Header(include_in_schema=True)] = None,
        authorization: Annotated[str | None, Header()] = None,
    ) -> None:
        if api_key is None:
            if not allow_anonymous_writes:
                raise _Denied(
                    403, "writes are disabled: start the server with --api-key-file (or "
                    "--allow-anonymous-writes)",
                )  # fmt: skip
            return
        given = x_api_key
        if given is None and authorization and authorization.lower().startswith("bearer "):
            given = authorization[7:].strip()
        if not check_api_key(given, api_key):
            raise _Denied(401, "missing or wrong API key (header X-API-Key)")

    @app.get("/health", response_model=HealthOut)
    def health() -> dict[str, Any]:
        """Liveness, model fingerprint, index sizes."""
        return {"status": "ok", **retriever.info(), "uptime_s": time.monotonic() - started}

    @app.get("/ready", response_model=ReadyOut, responses={503: {"model": ReadyOut}})
    def ready_() -> Any:
        """Readiness: 200 once the text encoder has warmed up (first text query is fast)."""
        if ready.is_set():
            return {"status": "ready", "ready": True}
        return JSONResponse(status_code=503, content={"status": "warming up", "ready": False})

    # Queries by known ids take well under a millisecond (exact search over the indexes): they
    # run inline on the event loop, which measured faster than a hop to the thread pool. Anything
    # that encodes text (new items, new users' text) runs in the thread pool.
    @app.post("/recommend", response_model=RecommendOut, responses=err(404, 413, 422))
    async def recommend(body: RecommendIn) -> dict[str, Any]:
        """Top-k items for a known user, or a new user (history and/or text); known items
        masked."""

        def run() -> dict[str, Any]:
            return retriever.recommend(
                body.user,
                history=body.history,
                text=body.text,
                attributes={
                    k: v if isinstance(v, list) else [v] for k, v in body.attributes.items()
                }
                or None,
                k=body.k,
                exclude_known=body.exclude_known,
            ).to_dict()

        return await run_in_threadpool(run) if body.text else run()

    @app.post("/neighbors", response_model=NeighborsOut, responses=err(404, 413, 422))
    async def neighbors(body: NeighborsIn) -> dict[str, Any]:
        """Similar items and likely users of a known item or a new item row."""
        if body.item is not None:
            item = body.item.to_item()
            return (
                await run_in_threadpool(retriever.neighbors, item, body.k, users_k=body.users_k)
            ).to_dict()
        assert body.item_id is not None
        return retriever.neighbors(body.item_id, body.k, users_k=body.users_k).to_dict()

    def write_route(path: str, out: Any, *codes: int) -> Any:
        """A write endpoint: POST, 201 on success, behind the API key (``require_write``)."""
        return app.post(
            path,
            response_model=out,
            status_code=201,
            responses=err(401, 403, *codes, 413, 422, 503),
            dependencies=[Depends(require_write)],
        )

    @write_route("/items", AddOut, 409)
    def add_items(body: AddIn) -> dict[str, Any]:
        """Add cold items live (embedded from text + attributes); retrievable at once."""
        rows = [i.to_item() for i in body.items]
        work = _work_chars(rows)
        if work > max_work_chars:
            raise KgrecError(
                f"the items hold {work:,} characters of text; at most {max_work_chars:,} per "
                "request (send fewer items per request)"
            )
        added = retriever.add_items(rows)
        return {"added": [a.to_dict() for a in added], "items": retriever.info()["items"]}

    @app.get("/items/{item_id}", response_model=ItemOut, responses=err(404, 422))
    def get_item(item_id: Annotated[str, Path(min_length=1, max_length=256)]) -> dict[str, Any]:
        """Whether an item is indexed, and its title."""
        if not retriever.has_item(item_id):
            raise UnknownIdError("item", item_id, hint="not indexed")
        return {
            "id": item_id,
            "title": retriever.title(item_id),
            "added": retriever.is_added(item_id),
        }

    @write_route("/users/{user_id}/events", EventOut, 404)
    def add_events(
        user_id: Annotated[str, Path(min_length=1, max_length=256)], body: EventIn
    ) -> dict[str, Any]:
        """Record interactions of a known or new user; their next recommendations use them."""
        rec = retriever.add_events(
            user_id,
            body.items,
            rating=body.rating,
            attributes={k: v if isinstance(v, list) else [v] for k, v in body.attributes.items()},
            text=body.text,
        )
        return {"user_id": user_id, "seq": rec.seq, "events": len(retriever.user_events(user_id))}

    metrics: Metrics | None = None
    try:
        metrics = Metrics([r.path for r in app.routes if hasattr(r, "path")], retriever.info)
    except ImportError:  # pragma: no cover - prometheus-client is a dependency
        log.warning("prometheus-client is not installed: no /metrics")
    if metrics is not None:
        m = metrics

        @app.get(
            "/metrics", response_class=Response, responses={200: {"content": {"text/plain": {}}}}
        )
        def metrics_() -> Response:
            """Prometheus metrics: requests and latency per endpoint, index sizes."""
            data, ctype = m.render()
            return Response(content=data, media_type=ctype)

        m.endpoints.add("/metrics")
    lean = FastQueries(retriever, batch=batch) if fast else None
    app.add_middleware(GuardMiddleware, max_body=max_body, metrics=metrics, fast=lean)
    return app
