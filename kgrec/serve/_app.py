"""The HTTP service behind ``kgrec serve``: a FastAPI app over one :class:`Retriever`.

Endpoints: ``POST /recommend``, ``POST /neighbors``, ``POST /items`` (adds cold items live:
retrievable by the next request), ``GET /items/{id}``, ``POST /users/{id}/events`` (interactions
of a known or new user, applied to their next recommendations), ``GET /health``; with a journal
attached to the retriever every write is durable before it is acknowledged (503 when it cannot
be); the OpenAPI schema at
``/openapi.json`` (docs at ``/docs``). Every body is a pydantic model with bounds (``k`` in
1..1000, at most 256 items per ``POST /items``, 1000 history ids, 10,000 characters of text);
invalid input is a 4xx, never a 5xx: 422 for malformed bodies and unusable values, 404 naming
the unknown id, 409 for an id that already exists.
"""

import contextlib
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from kgrec.errors import KgrecError, UnknownIdError
from kgrec.serve._journal import JournalError
from kgrec.serve._retriever import DuplicateIdError, Retriever

log = logging.getLogger(__name__)


def create_app(retriever: Retriever) -> Any:
    """A FastAPI app serving ``retriever`` (fastapi is imported here, not at package import)."""
    from typing import Annotated

    from fastapi import FastAPI, Path, Request
    from fastapi.concurrency import run_in_threadpool
    from fastapi.responses import JSONResponse

    from kgrec.serve._schema import (
        AddIn,
        AddOut,
        EventIn,
        EventOut,
        HealthOut,
        ItemOut,
        NeighborsIn,
        NeighborsOut,
        RecommendIn,
        RecommendOut,
    )

    started = time.monotonic()

    @contextlib.asynccontextmanager
    async def lifespan(_: Any) -> AsyncIterator[None]:
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

    @app.get("/health", response_model=HealthOut)
    def health() -> dict[str, Any]:
        """Liveness, model fingerprint, index sizes."""
        return {"status": "ok", **retriever.info(), "uptime_s": time.monotonic() - started}

    # Queries by known ids take well under a millisecond (exact search over the indexes): they
    # run inline on the event loop, which measured faster than a hop to the thread pool. Anything
    # that encodes text (new items, new users' text) runs in the thread pool.
    @app.post("/recommend", response_model=RecommendOut)
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

    @app.post("/neighbors", response_model=NeighborsOut)
    async def neighbors(body: NeighborsIn) -> dict[str, Any]:
        """Similar items and likely users of a known item or a new item row."""
        if body.item is not None:
            item = body.item.to_item()
            return (
                await run_in_threadpool(retriever.neighbors, item, body.k, users_k=body.users_k)
            ).to_dict()
        assert body.item_id is not None
        return retriever.neighbors(body.item_id, body.k, users_k=body.users_k).to_dict()

    @app.post("/items", response_model=AddOut, status_code=201)
    def add_items(body: AddIn) -> dict[str, Any]:
        """Add cold items live (embedded from text + attributes); retrievable at once."""
        added = retriever.add_items([i.to_item() for i in body.items])
        return {"added": [a.to_dict() for a in added], "items": retriever.info()["items"]}

    @app.get("/items/{item_id}", response_model=ItemOut)
    def get_item(item_id: Annotated[str, Path(min_length=1, max_length=256)]) -> dict[str, Any]:
        """Whether an item is indexed, and its title."""
        if not retriever.has_item(item_id):
            raise UnknownIdError("item", item_id, hint="not indexed")
        return {
            "id": item_id,
            "title": retriever.title(item_id),
            "added": retriever.is_added(item_id),
        }

    @app.post("/users/{user_id}/events", response_model=EventOut, status_code=201)
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

    return app
