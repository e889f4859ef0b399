"""The lean path for queries by known ids (kgrec/serve/_fast.py) answers with the very status,
headers and bytes the framework's routes give, and hands everything else (text, new item rows,
unknown ids, invalid bodies, other content types) to the routes unchanged."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("fastapi", reason="kgrec serve needs fastapi")
pytest.importorskip("httpx", reason="fastapi's TestClient needs httpx")

from fastapi.testclient import TestClient

from kgrec.serve import NewItem
from kgrec.serve._app import create_app

ITEM = {
    "title": "Galaxy Raiders",
    "description": "rebels fight an evil empire across the galaxy",
    "attributes": {"class": ["Sci-Fi", "Action"], "release_year": 1997},
}


def _queries(retriever) -> list[tuple[str, object, dict[str, str]]]:
    users = [str(u) for u in retriever.model.user_ids[:6]]
    items = [str(i) for i in retriever.model.item_ids[:9]]
    js = {"content-type": "application/json"}
    out: list[tuple[str, object, dict[str, str]]] = []
    for u in users:
        out.append(("/recommend", {"user": u, "k": 10}, js))
        out.append(("/recommend", {"user": u, "k": 3, "exclude_known": False}, js))
    out += [
        ("/recommend", {"history": items[:3], "k": 10}, js),
        ("/recommend", {"history": items[3:4], "k": 1000}, js),
        ("/recommend", {"history": [items[0], "new-1"], "k": 5}, js),
        ("/recommend", {"user": users[0], "k": True}, js),  # bool k: the models' own 422
        ("/recommend", {"user": users[0], "k": "7"}, js),  # lax int: what the route accepts
        ("/recommend", {"user": "no-such-user"}, js),  # 404 from the route
        ("/recommend", {"history": ["no-such-item"]}, js),
        ("/recommend", {"user": users[0], "history": items[:1]}, js),  # 422
        ("/recommend", {"text": "space opera with rebels", "k": 4}, js),  # thread pool path
        ("/recommend", {"user": users[0], "extra": 1}, js),
        ("/recommend", [1, 2], js),
        ("/recommend", {"user": users[0]}, {"content-type": "text/plain"}),
        ("/recommend", {"user": users[0]}, {"content-type": "application/json; charset=utf-8"}),
        ("/neighbors", {"item_id": "new-1", "k": 5, "users_k": 0}, js),
        ("/neighbors", {"item": ITEM, "k": 3}, js),
        ("/neighbors", {"item_id": "no-such-item"}, js),
        ("/neighbors", {"item_id": items[0], "item": ITEM}, js),
    ]
    for i in items:
        out.append(("/neighbors", {"item_id": i, "k": 10, "users_k": 10}, js))
        out.append(("/neighbors", {"item_id": i, "k": 2}, js))
    return out


def _client(retriever, *, fast: bool) -> TestClient:
    return TestClient(
        create_app(retriever, allow_anonymous_writes=True, warm_up=False, fast=fast),
        raise_server_exceptions=False,
    )


def test_lean_path_gives_the_routes_bytes(retriever):
    retriever.add_items([NewItem.from_dict(ITEM)])  # new-1: a live-added item in the queries
    lean, full = _client(retriever, fast=True), _client(retriever, fast=False)
    statuses = set()
    for path, body, headers in _queries(retriever):
        data = json.dumps(body).encode()
        a = lean.post(path, content=data, headers=headers)
        b = full.post(path, content=data, headers=headers)
        where = f"{path} {body} {headers}"
        assert a.status_code == b.status_code, where
        assert a.content == b.content, where
        for h in ("content-type", "content-length"):
            assert a.headers.get(h) == b.headers.get(h), where
        statuses.add(a.status_code)
    assert {200, 404, 422} <= statuses
    fast = _fast_of(lean.app)  # the middleware stack is built by the requests above
    # every 200 by known ids took the lean path; the rest went to the routes
    assert fast.answered >= 30 and fast.passed >= 8


def test_lean_path_sees_items_added_live(retriever):
    client = _client(retriever, fast=True)
    added = client.post("/items", json={"items": [ITEM]})
    assert added.status_code == 201
    new_id = added.json()["added"][0]["id"]
    r = client.post("/neighbors", json={"item_id": new_id, "k": 1, "users_k": 0})
    assert r.status_code == 200 and r.json()["item_id"] == new_id
    twin = client.post("/neighbors", json={"item": ITEM, "k": 1})
    assert twin.json()["items"][0]["id"] == new_id


def test_lean_path_counts_in_metrics(retriever):
    client = _client(retriever, fast=True)
    user = str(retriever.model.user_ids[0])
    for _ in range(3):
        assert client.post("/recommend", json={"user": user}).status_code == 200
    text = client.get("/metrics").text
    line = next(
        x
        for x in text.splitlines()
        if x.startswith("kgrec_requests_total{") and 'endpoint="/recommend"' in x
    )
    assert 'status="200"' in line and float(line.rsplit(" ", 1)[1]) == 3.0


def test_concurrent_queries_are_batched_with_the_same_answers(retriever):
    """Queries in flight together share one search per index; each gets the ids (and, to float
    precision, the scores) it gets alone."""
    import asyncio

    import httpx

    retriever.add_items([NewItem.from_dict(ITEM)])
    app = create_app(retriever, allow_anonymous_writes=True, warm_up=False)
    users = [str(u) for u in retriever.model.user_ids[:24]]
    items = [str(i) for i in retriever.model.item_ids[:24]]
    bodies = [("/recommend", {"user": u, "k": 10}) for u in users]
    bodies += [("/neighbors", {"item_id": i, "k": 10, "users_k": 5}) for i in items]
    bodies += [("/recommend", {"history": items[j : j + 3], "k": 7}) for j in range(0, 18, 3)]
    bodies += [("/neighbors", {"item_id": "new-1", "k": 4}), ("/recommend", {"user": "nobody"})]

    async def go() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            return await asyncio.gather(*(c.post(p, json=b) for p, b in bodies))

    together = asyncio.run(go())
    alone = _client(retriever, fast=False)
    for (path, body), got in zip(bodies, together, strict=True):
        want = alone.post(path, json=body)
        assert got.status_code == want.status_code, body
        g, w = got.json(), want.json()
        if want.status_code != 200:
            assert g == w
            continue
        for part in ("items", "users"):
            if part in w:
                assert [h["id"] for h in g[part]] == [h["id"] for h in w[part]], body
                assert [h["title"] for h in g[part]] == [h["title"] for h in w[part]]
                np.testing.assert_allclose(
                    [h["score"] for h in g[part]], [h["score"] for h in w[part]], atol=1e-5
                )
        assert {k: v for k, v in g.items() if k not in ("items", "users")} == {
            k: v for k, v in w.items() if k not in ("items", "users")
        }
    fast = _fast_of(app)
    assert fast.batcher.searches > fast.batcher.batches  # some searches ran together


def _fast_of(app):
    guard = app.middleware_stack
    while guard is not None and getattr(guard, "fast", None) is None:
        guard = getattr(guard, "app", None)
    assert guard is not None
    return guard.fast
