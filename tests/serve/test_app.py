"""The HTTP service: every endpoint, bounds, malformed bodies (4xx, never 5xx), unknown ids
(404 naming the id), items added live and retrievable by the next request."""

from __future__ import annotations

import pytest

pytest.importorskip("fastapi", reason="kgrec serve needs fastapi")
pytest.importorskip("httpx", reason="fastapi's TestClient needs httpx")

from fastapi.testclient import TestClient

from kgrec.serve._app import create_app
from kgrec.serve._schema import MAX_BATCH

ITEM = {
    "title": "Galaxy Raiders",
    "description": "rebels fight an evil empire across the galaxy",
    "attributes": {"class": ["Sci-Fi", "Action"], "release_year": 1997},
}


@pytest.fixture
def client(retriever):
    return TestClient(
        create_app(retriever, allow_anonymous_writes=True, warm_up=False),
        raise_server_exceptions=False,
    )


def test_health_and_openapi(client):
    h = client.get("/health")
    assert h.status_code == 200
    body = h.json()
    assert body["status"] == "ok" and body["items"] == 1682 and body["users"] == 942
    assert body["fingerprint"].startswith("content:") and body["index"]["metric"] == "cosine"
    schema = client.get("/openapi.json").json()
    assert {"/recommend", "/neighbors", "/items", "/items/{item_id}", "/health"} <= set(
        schema["paths"]
    )
    k = schema["components"]["schemas"]["RecommendIn"]["properties"]["k"]
    assert k["minimum"] == 1 and k["maximum"] == 1000


def test_recommend_known_and_new_users(client):
    r = client.post("/recommend", json={"user": "1", "k": 5})
    assert r.status_code == 200
    body = r.json()
    assert body["user_id"] == "1" and body["masked"] == 272 and len(body["items"]) == 5
    assert all(set(h) == {"id", "score", "title"} for h in body["items"])
    r = client.post("/recommend", json={"history": ["50", "181"], "text": "space", "k": 3})
    assert r.status_code == 200 and not {"50", "181"} & {h["id"] for h in r.json()["items"]}


def test_neighbors_known_and_new_item(client):
    r = client.post("/neighbors", json={"item_id": "50", "k": 4, "users_k": 2})
    assert r.status_code == 200
    body = r.json()
    assert len(body["items"]) == 4 and len(body["users"]) == 2 and body["item_id"] == "50"
    r = client.post("/neighbors", json={"item": ITEM, "k": 3, "users_k": 0})
    body = r.json()
    assert r.status_code == 200 and body["users"] == [] and len(body["items"]) == 3
    assert "released_in_decade -> decade:1990s" in body["matched"]
    assert client.get("/health").json()["items"] == 1682  # /neighbors embeds, never adds


def test_added_item_is_retrievable_by_the_next_request(client):
    r = client.post("/items", json={"items": [ITEM, {"title": "Other", "id": "mine"}]})
    assert r.status_code == 201, r.text
    added = [a["id"] for a in r.json()["added"]]
    assert added == ["new-1", "mine"] and r.json()["items"] == 1684
    twin = client.post("/neighbors", json={"item": ITEM, "k": 1}).json()
    assert twin["items"][0]["id"] == "new-1" and twin["items"][0]["title"] == "Galaxy Raiders"
    own = client.post("/neighbors", json={"item_id": "new-1", "k": 3})
    assert own.status_code == 200 and "new-1" not in {h["id"] for h in own.json()["items"]}
    assert client.get("/items/new-1").json() == {
        "id": "new-1", "title": "Galaxy Raiders", "added": True,
    }  # fmt: skip
    assert client.get("/items/50").json()["added"] is False
    rec = client.post("/recommend", json={"history": ["new-1"], "k": 5})
    assert rec.status_code == 200 and rec.json()["masked"] == 1
    dup = client.post("/items", json={"items": [{"title": "again", "id": "mine"}]})
    assert dup.status_code == 409 and "mine" in dup.json()["detail"]


@pytest.mark.parametrize(
    ("method", "path", "body", "needle"),
    [
        ("post", "/recommend", {"user": "nobody"}, "nobody"),
        ("post", "/recommend", {"history": ["50", "zz-9"]}, "zz-9"),
        ("post", "/neighbors", {"item_id": "zz-9"}, "zz-9"),
        ("get", "/items/zz-9", None, "zz-9"),
    ],
)
def test_unknown_ids_are_404_naming_the_id(client, method, path, body, needle):
    r = client.request(method.upper(), path, json=body)
    assert r.status_code == 404
    assert needle in r.json()["detail"]


BAD = [
    ("/recommend", b"{not json"),
    ("/recommend", b"[1, 2]"),
    ("/recommend", {}),
    ("/recommend", {"user": "1", "text": "also text"}),
    ("/recommend", {"user": "1", "k": 0}),
    ("/recommend", {"user": "1", "k": 1001}),
    ("/recommend", {"user": "1", "k": "ten"}),
    ("/recommend", {"user": 1.5e300}),
    ("/recommend", {"user": "1", "extra": True}),
    ("/recommend", {"text": "   "}),
    ("/recommend", {"text": "x" * 10_001}),
    ("/recommend", {"history": ["50"] * 1001}),
    ("/recommend", {"history": "50"}),
    ("/neighbors", {}),
    ("/neighbors", {"item_id": "50", "item": ITEM}),
    ("/neighbors", {"item_id": "50", "users_k": -1}),
    ("/neighbors", {"item": {"description": "no title"}}),
    ("/neighbors", {"item": {**ITEM, "attributes": {"colour": "red"}}}),
    ("/neighbors", {"item": {**ITEM, "attributes": {"class": [{"nested": 1}]}}}),
    ("/items", {"items": []}),
    ("/items", {"items": [{"title": f"t{i}"} for i in range(MAX_BATCH + 1)]}),
    ("/items", {"items": [{"title": ""}]}),
    ("/items", {"items": [{"title": "ok", "attributes": {"bogus": "x"}}]}),
    ("/items", [ITEM]),
    ("/items", None),
]


@pytest.mark.parametrize(("path", "body"), BAD, ids=[f"{p}-{i}" for i, (p, _) in enumerate(BAD)])
def test_malformed_bodies_are_4xx(client, path, body):
    if isinstance(body, bytes):
        r = client.post(path, content=body, headers={"content-type": "application/json"})
    else:
        r = client.post(path, json=body)
    assert 400 <= r.status_code < 500, (r.status_code, r.text)
    assert r.json()["detail"]
    assert client.get("/health").json()["items"] == 1682  # nothing half-added


def test_unknown_attribute_names_the_accepted_ones(client):
    r = client.post("/items", json={"items": [{"title": "x", "attributes": {"colour": "red"}}]})
    assert r.status_code == 422 and "unknown attribute 'colour'" in r.json()["detail"]
    assert "class" in r.json()["detail"]
