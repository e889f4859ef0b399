"""Guards of the HTTP service: request-body limits and strict JSON (an ASGI middleware), API-key
checks for writes, Prometheus metrics, and the bounded in-memory LRU that text queries use.

* :class:`GuardMiddleware`: a body over ``max_body`` bytes is a 413 (also for chunked bodies,
  counted as they arrive); a JSON body holding ``NaN``/``Infinity`` or a lone surrogate (invalid
  unicode) is a 422 that never echoes the value; metrics per endpoint (count by status, latency
  histogram) when ``metrics`` is given; queries by known ids answered by ``fast``
  (:mod:`kgrec.serve._fast`) without the framework where given.
* :func:`check_api_key`: constant-time comparison (:func:`hmac.compare_digest`).
* :class:`QueryLRU`: text -> vector for queries, in memory, at most ``maxsize`` entries; reads
  the shared embedding cache but never writes it (no shard per query, no rewrite on the request
  path).
"""

from __future__ import annotations

import hmac
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from kgrec.serve._fast import FastQueries

#: largest request body accepted (bytes); 256 new items of 10,000 characters fit in ~3 MB
MAX_BODY = 4 * 1024 * 1024
#: most characters of text one request may ask to encode (all items and text fields together)
MAX_WORK_CHARS = 200_000

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON (non-finite numbers are refused)")


def _bad_unicode(obj: Any) -> str | None:
    """A description of the first string (key or value) that is not valid unicode, else None."""
    stack = [obj]
    while stack:
        x = stack.pop()
        if isinstance(x, str):
            try:
                x.encode("utf-8")
            except UnicodeEncodeError:
                return "a string holds a lone surrogate (invalid unicode)"
        elif isinstance(x, dict):
            stack.extend(x.keys())
            stack.extend(x.values())
        elif isinstance(x, list):
            stack.extend(x)
    return None


_UNPARSED = object()


def parse_strict(body: bytes) -> tuple[Any, str | None]:
    """``(document, None)`` for a strict JSON ``body``; ``(_UNPARSED, why)`` where it holds
    NaN/Infinity or invalid UTF-8 or unicode; ``(_UNPARSED, None)`` for a plain syntax error
    (left to the framework's own 422)."""
    try:
        doc = json.loads(body, parse_constant=_reject_constant)
    except ValueError as exc:
        msg = str(exc)
        if "not valid JSON" in msg:
            return _UNPARSED, msg
        if isinstance(exc, UnicodeDecodeError):
            return _UNPARSED, "the body is not valid UTF-8"
        return _UNPARSED, None
    problem = _bad_unicode(doc)
    return (_UNPARSED, problem) if problem else (doc, None)


def strict_json_problem(body: bytes) -> str | None:
    """Why ``body`` is not strict JSON (NaN/Infinity, invalid UTF-8 or unicode), else None.
    Plain syntax errors are left to the framework's own 422."""
    return parse_strict(body)[1]


async def _send_json(send: Send, status: int, content: dict[str, Any]) -> None:
    body = json.dumps(content).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class Metrics:
    """Prometheus metrics of one app, in their own registry (text format at ``/metrics``)."""

    def __init__(self, endpoints: Sequence[str], info: Callable[[], dict[str, Any]]) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry()
        self.endpoints = set(endpoints)
        self.requests = Counter(
            "kgrec_requests", "HTTP requests", ["endpoint", "method", "status"],
            registry=self.registry,
        )  # fmt: skip
        self.latency = Histogram(
            "kgrec_request_seconds", "Request latency (seconds)", ["endpoint"],
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10),
            registry=self.registry,
        )  # fmt: skip
        items = Gauge("kgrec_index_items", "Items in the item index", registry=self.registry)
        added = Gauge("kgrec_added_items", "Items added live", registry=self.registry)
        users = Gauge("kgrec_index_users", "Users in the user index", registry=self.registry)
        items.set_function(lambda: info()["items"])
        added.set_function(lambda: info()["added_items"])
        users.set_function(lambda: info()["users"])

    def endpoint(self, scope: Scope) -> str:
        route = scope.get("route")
        path = getattr(route, "path", None) or scope.get("path", "")
        return path if path in self.endpoints else "other"

    def observe(self, endpoint: str, method: str, status: int, seconds: float) -> None:
        self.requests.labels(endpoint, method, str(status)).inc()
        self.latency.labels(endpoint).observe(seconds)

    def render(self) -> tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class GuardMiddleware:
    """Body limit (413), strict JSON (422) and metrics around an ASGI app (see the module
    docstring)."""

    def __init__(
        self,
        app: Any,
        *,
        max_body: int = MAX_BODY,
        metrics: Metrics | None = None,
        fast: FastQueries | None = None,
    ):
        self.app = app
        self.max_body = max_body
        self.metrics = metrics
        self.fast = fast

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        status = {"code": 500}

        async def send_wrapper(msg: dict[str, Any]) -> None:
            if msg["type"] == "http.response.start":
                status["code"] = int(msg["status"])
            await send(msg)

        try:
            await self._guarded(scope, receive, send_wrapper)
        finally:
            if self.metrics is not None:
                self.metrics.observe(
                    self.metrics.endpoint(scope), scope.get("method", ""), status["code"],
                    time.perf_counter() - t0,
                )  # fmt: skip

    async def _guarded(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("method") not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None:
            try:
                too_big = int(declared) > self.max_body
            except ValueError:
                too_big = False
            if too_big:
                await _send_json(send, 413, {"detail": f"request body over {self.max_body} bytes"})
                return
        chunks, size = [], 0
        while True:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                return
            chunk = msg.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                await _send_json(send, 413, {"detail": f"request body over {self.max_body} bytes"})
                return
            chunks.append(chunk)
            if not msg.get("more_body", False):
                break
        body = b"".join(chunks)
        doc, problem = parse_strict(body) if body else (_UNPARSED, None)
        if problem is not None:
            await _send_json(
                send, 422, {"detail": [{"type": "json_invalid", "loc": ["body"], "msg": problem}]}
            )
            return
        if self.fast is not None and doc is not _UNPARSED and scope.get("path") in self.fast.paths:
            answer = await self.fast.answer(scope, doc)
            if answer is not None:  # the same status, headers and bytes as the routes give
                await send(
                    {
                        "type": "http.response.start",
                        "status": 200,
                        "headers": [
                            (b"content-length", str(len(answer)).encode()),
                            (b"content-type", b"application/json"),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": answer})
                return
        sent = False

        async def replay() -> dict[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


def check_api_key(given: str | None, expected: str) -> bool:
    """Constant-time comparison of an API key."""
    if given is None:
        return False
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"), expected.encode("utf-8"))


class QueryLRU:
    """A text encoder for queries: vectors from the shared cache where present (read only),
    else encoded and kept in a bounded in-memory LRU (``maxsize`` texts)."""

    def __init__(self, encoder: Any, *, maxsize: int = 4096) -> None:
        self.inner = getattr(encoder, "encoder", encoder)  # a CachedEncoder's own encoder
        self.shared = getattr(encoder, "cache", None)
        self._key = encoder.cache_key() if hasattr(encoder, "cache_key") else None
        self.wrapped = encoder
        self.maxsize = maxsize
        self._lru: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def __getattr__(self, name: str) -> Any:  # model_id, dim, cache_key ... of the encoder
        return getattr(self.wrapped, name)

    def __len__(self) -> int:
        return len(self._lru)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        out: list[np.ndarray | None] = [None] * len(texts)
        with self._lock:
            for i, t in enumerate(texts):
                v = self._lru.get(t)
                if v is not None:
                    self._lru.move_to_end(t)
                    out[i] = v
                    self.hits += 1
        missing = [i for i, v in enumerate(out) if v is None]
        if missing:
            self.misses += len(missing)
            todo = [texts[i] for i in missing]
            vecs = self._from_shared(todo)
            if vecs is None:
                vecs = np.asarray(self.inner.encode(todo), np.float32)
            with self._lock:
                for i, v in zip(missing, vecs, strict=True):
                    out[i] = v
                    self._lru[texts[i]] = v
                    self._lru.move_to_end(texts[i])
                while len(self._lru) > self.maxsize:
                    self._lru.popitem(last=False)
        if not texts:
            return np.zeros((0, int(getattr(self.wrapped, "dim", 0) or 0)), np.float32)
        return np.stack([np.asarray(v, np.float32) for v in out])  # type: ignore[arg-type]

    def _from_shared(self, texts: list[str]) -> np.ndarray | None:
        if self.shared is None or self._key is None:
            return None
        try:
            from kgrec.text._cache import text_hashes

            found, vectors = self.shared.lookup(self._key, text_hashes(texts))
        except Exception:  # the shared cache is an optimisation only
            return None
        if not found.all():
            return None
        return np.asarray(vectors, np.float32)


def use_query_lru(model: Any, *, maxsize: int = 4096) -> QueryLRU | None:
    """Swap ``model.encoder_`` (after the model is built) for a :class:`QueryLRU`."""
    enc = getattr(model, "encoder_", None)
    if enc is None or isinstance(enc, QueryLRU):
        return enc
    lru = QueryLRU(enc, maxsize=maxsize)
    model.encoder_ = lru
    return lru
