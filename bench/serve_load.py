"""Bounded load test of ``kgrec serve`` on loopback: closed loop and open loop.

Starts ``kgrec serve SPEC`` as a subprocess on 127.0.0.1 and a random free port, waits for
/health, adds one cold item over HTTP (POST /items, with an API key), then measures with a lean
client in this (separate) process: raw HTTP/1.1 over asyncio streams on keep-alive connections,
uvloop where installed (an httpx client costs more CPU per request than the server does and,
sharing the 2 cores, would cap the figure itself). Every request is a query by known ids, in
the mix: POST /recommend for known users (60%), POST /neighbors for known items (25%), POST
/recommend for new users given 3-item histories (10%), POST /neighbors of the item added live
(5%); a request is an error unless it is a 200 with ``k`` items.

* closed loop: ``--concurrency`` levels (default 1, 8, 32), ``--requests`` each: that many
  connections, each sending its next request when the last one is answered;
* open loop: ``--rates`` (requests/s, Poisson arrivals, seeded), ``--open-seconds`` each; the
  latency of a request counts from its scheduled send time (no coordinated omission), over a
  pool of up to ``--open-connections`` connections.

Beside them, the in-process cost of the same queries (the retriever called directly, and the
whole ASGI app called without a socket, one thread) and the machine's load averages before and
after each phase, so the ratio to the machine's limit is visible. The server is stopped at the
end, whatever happens. Writes bench/results/serve_load.json with the exact commands.

    python bench/serve_load.py
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import random
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
LAUNCH = "import sys; from kgrec.cli import main; sys.exit(main())"
MIX = {"recommend_user": 0.60, "neighbors_item": 0.25, "recommend_history": 0.10,
       "neighbors_added": 0.05}  # fmt: skip
K = 10


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def load() -> dict[str, float]:
    one, five, fifteen = os.getloadavg()
    return {"1min": round(one, 2), "5min": round(five, 2), "15min": round(fifteen, 2)}


def versions() -> dict[str, str]:
    from importlib.metadata import version

    out = {"python": platform.python_version()}
    for pkg in ("kgrec", "fastapi", "uvicorn", "uvloop", "httptools", "pydantic", "starlette",
                "torch", "faiss-cpu", "numpy"):  # fmt: skip
        try:
            out[pkg] = version(pkg)
        except Exception:
            out[pkg] = "absent"
    return out


# ---------------------------------------------------------------------------- the lean client
class Conn:
    """One keep-alive HTTP/1.1 connection: ``request(path, body)`` -> (status, body bytes)."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> Conn:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        sock = self.writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return self

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def request(self, head: bytes, body: bytes, headers: bytes = b"") -> tuple[int, bytes]:
        if self.writer is None:
            await self.open()
        assert self.reader is not None and self.writer is not None
        self.writer.write(
            head + b"Content-Length: " + str(len(body)).encode() + b"\r\n" + headers + b"\r\n"
            + body
        )  # fmt: skip
        raw = await self.reader.readuntil(b"\r\n\r\n")
        lines = raw.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        length, close = 0, False
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"connection" and value.strip().lower() == b"close":
                close = True
        data = await self.reader.readexactly(length) if length else b""
        if close:
            self.close()
        return status, data


def post_head(path: str) -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            ).encode()  # fmt: skip


def is_ok(status: int, data: bytes) -> bool:
    if status != 200:
        return False
    try:
        return len(json.loads(data)["items"]) == K
    except Exception:
        return False


def make_requests(n: int, users: list[str], items: list[str], new_id: str, seed: int) -> list:
    """``n`` (kind, encoded head, encoded body) in the mix (see the module docstring)."""
    rng = random.Random(seed)
    out = []
    heads = {p: post_head(p) for p in ("/recommend", "/neighbors")}
    for _ in range(n):
        x = rng.random()
        if x < 0.60:
            kind, path, body = "recommend_user", "/recommend", {"user": rng.choice(users), "k": K}
        elif x < 0.85:
            kind, path = "neighbors_item", "/neighbors"
            body = {"item_id": rng.choice(items), "k": K, "users_k": K}
        elif x < 0.95:
            kind, path = "recommend_history", "/recommend"
            body = {"history": rng.sample(items, 3), "k": K}
        else:
            kind, path = "neighbors_added", "/neighbors"
            body = {"item_id": new_id, "k": K, "users_k": K}
        out.append((kind, heads[path], json.dumps(body).encode(), path, body))
    return out


async def closed_loop(host: str, port: int, reqs: list, concurrency: int, max_s: float) -> dict:
    lat: dict[str, list[float]] = {}
    errors: dict[str, int] = {}
    it = iter(reqs)
    deadline = time.perf_counter() + max_s
    conns = [await Conn(host, port).open() for _ in range(concurrency)]

    async def worker(conn: Conn) -> None:
        for kind, head, body, _, _ in it:
            if time.perf_counter() > deadline:
                return
            t = time.perf_counter()
            try:
                ok = is_ok(*await asyncio.wait_for(conn.request(head, body), 10.0))
            except Exception:
                ok = False
                conn.close()
            ms = (time.perf_counter() - t) * 1e3
            if ok:
                lat.setdefault(kind, []).append(ms)
            else:
                errors[kind] = errors.get(kind, 0) + 1

    t0 = time.perf_counter()
    await asyncio.gather(*(worker(c) for c in conns))
    wall = time.perf_counter() - t0
    for c in conns:
        c.close()
    return {"lat": lat, "errors": errors, "wall": wall, "unsent": sum(1 for _ in it)}


async def open_loop(host: str, port: int, reqs: list, rate: float, n_conn: int, seed: int) -> dict:
    lat: dict[str, list[float]] = {}
    errors: dict[str, int] = {}
    pool: asyncio.Queue[Conn] = asyncio.Queue()
    for _ in range(n_conn):
        pool.put_nowait(await Conn(host, port).open())
    rng = np.random.default_rng(seed)
    gaps = rng.exponential(1.0 / rate, len(reqs))
    tasks = []
    most_busy = 0

    async def one(kind: str, head: bytes, body: bytes, scheduled: float) -> None:
        conn = await pool.get()
        try:
            ok = is_ok(*await asyncio.wait_for(conn.request(head, body), 10.0))
        except Exception:
            ok = False
            conn.close()
        ms = (time.perf_counter() - scheduled) * 1e3
        pool.put_nowait(conn)
        if ok:
            lat.setdefault(kind, []).append(ms)
        else:
            errors[kind] = errors.get(kind, 0) + 1

    t0 = time.perf_counter()
    at = t0
    for (kind, head, body, _, _), gap in zip(reqs, gaps, strict=True):
        at += float(gap)
        delay = at - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        most_busy = max(most_busy, n_conn - pool.qsize())
        tasks.append(asyncio.ensure_future(one(kind, head, body, at)))
    await asyncio.gather(*tasks)
    wall = time.perf_counter() - t0
    while not pool.empty():
        pool.get_nowait().close()
    return {"lat": lat, "errors": errors, "wall": wall, "offered_s": at - t0,
            "most_connections_busy": most_busy}  # fmt: skip


def summary(values: list[float]) -> dict[str, float]:
    if not values:
        return {"n": 0}
    a = np.asarray(values)
    return {
        "n": len(a),
        "p50_ms": round(float(np.percentile(a, 50)), 2),
        "p90_ms": round(float(np.percentile(a, 90)), 2),
        "p99_ms": round(float(np.percentile(a, 99)), 2),
        "max_ms": round(float(a.max()), 2),
        "mean_ms": round(float(a.mean()), 2),
    }


def phase_result(res: dict) -> dict[str, Any]:
    all_lat = [x for v in res["lat"].values() for x in v]
    n_err = sum(res["errors"].values())
    done = len(all_lat) + n_err
    return {
        "requests_done": done,
        "errors": n_err,
        "errors_by_kind": res["errors"],
        "wall_s": round(res["wall"], 2),
        "qps": round(done / res["wall"], 1),
        "latency": summary(all_lat),
        "latency_by_kind": {k: summary(v) for k, v in sorted(res["lat"].items())},
    }


# ------------------------------------------------------------------------- in-process cost
async def in_process_cost(spec: str, model: str, reqs: list, repeats: int) -> dict[str, Any]:
    """Per-query cost inside one process and thread: the retriever called directly, and the
    whole ASGI app (guard, lean path, metrics) called without a socket."""
    import torch

    torch.set_num_threads(1)
    from kgrec.serve import NewItem, load_retriever
    from kgrec.serve._app import create_app

    r = load_retriever(spec, model)
    new_id = r.add_items([NewItem.from_dict(GALAXY)])[0].id
    for i, (kind, head, _, path, b) in enumerate(reqs):  # this process's own added item
        if kind == "neighbors_added":
            b = {**b, "item_id": new_id}
            reqs[i] = (kind, head, json.dumps(b).encode(), path, b)

    def direct(path: str, b: dict[str, Any]) -> Any:
        if path == "/recommend":
            return r.recommend(b.get("user"), history=b.get("history", ()), k=b["k"]).to_dict()
        return r.neighbors(b["item_id"], b["k"], users_k=b["users_k"]).to_dict()

    by_kind: dict[str, list[float]] = {}
    for _ in range(repeats):
        for kind, _, _, path, b in reqs:
            t = time.perf_counter()
            direct(path, b)
            by_kind.setdefault(kind, []).append((time.perf_counter() - t) * 1e6)
    app = create_app(r, allow_anonymous_writes=False, warm_up=False)

    async def asgi(path: str, body: bytes) -> int:
        scope = {"type": "http", "method": "POST", "path": path, "raw_path": path.encode(),
                 "query_string": b"", "http_version": "1.1", "scheme": "http", "root_path": "",
                 "server": ("127.0.0.1", 80), "client": ("127.0.0.1", 1),
                 "headers": [(b"host", b"127.0.0.1"), (b"content-type", b"application/json"),
                             (b"content-length", str(len(body)).encode())]}  # fmt: skip
        msgs = [{"type": "http.request", "body": body, "more_body": False}]
        status = [0]

        async def receive() -> dict[str, Any]:
            return msgs.pop() if msgs else {"type": "http.disconnect"}

        async def send(m: dict[str, Any]) -> None:
            if m["type"] == "http.response.start":
                status[0] = m["status"]

        await app(scope, receive, send)
        return status[0]

    async def run_asgi() -> list[float]:
        out = []
        for _ in range(repeats):
            for _, _, body, path, _ in reqs:
                t = time.perf_counter()
                assert await asgi(path, body) == 200
                out.append((time.perf_counter() - t) * 1e6)
        return out

    asgi_us = await run_asgi()
    mean_direct = float(np.mean([x for v in by_kind.values() for x in v]))
    mean_asgi = float(np.mean(asgi_us))
    return {
        "what": "one thread, no socket, the bench's mix; retriever = Retriever.recommend/"
        "neighbors + to_dict; asgi = the whole app (guard, lean path, metrics) per request",
        "queries": len(asgi_us),
        "retriever_us_by_kind": {
            k: round(float(np.mean(v)), 1) for k, v in sorted(by_kind.items())
        },
        "retriever_us_mean": round(mean_direct, 1),
        "asgi_us_mean": round(mean_asgi, 1),
        "asgi_us_p50": round(float(np.percentile(asgi_us, 50)), 1),
        "limit_qps_one_core_asgi": round(1e6 / mean_asgi, 0),
        "limit_qps_two_cores_retriever_only": round(2e6 / mean_direct, 0),
    }


GALAXY = {"title": "Galaxy Raiders", "description": "rebels fight an evil galactic empire",
          "attributes": {"class": ["Sci-Fi", "Action"], "release_year": 1997}}  # fmt: skip


# ----------------------------------------------------------------------------------- main
async def wait_ready(conn_host: str, port: int, proc: subprocess.Popen, timeout: float) -> float:
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"kgrec serve exited with status {proc.returncode}")
        try:
            c = await Conn(conn_host, port).open()
            status, _ = await c.request(b"GET /health HTTP/1.1\r\nHost: x\r\n", b"")
            c.close()
            if status == 200:
                return time.perf_counter() - t0
        except Exception:
            pass
        await asyncio.sleep(0.25)
    raise TimeoutError(f"server not ready after {timeout} s")


async def main_async(args: argparse.Namespace, cmd_out: list[str]) -> dict:
    host, port = "127.0.0.1", free_port()
    exe = Path(sys.executable).with_name("kgrec")
    launcher = [str(exe)] if exe.is_file() else [sys.executable, "-c", LAUNCH]
    key = secrets.token_hex(16)  # writes need an API key (kgrec serve --api-key-file)
    key_file = Path(tempfile.mkdtemp()) / "api-key"
    key_file.write_text(key)
    cmd = [*launcher, "serve", str(args.spec), "--host", host, "--port", str(port),
           "--model", args.model, "--api-key-file", str(key_file), *args.server_arg]  # fmt: skip
    cmd_out.extend(cmd[len(launcher) :])
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, start_new_session=True)  # fmt: skip
    phases: dict[str, Any] = {"closed_loop": [], "open_loop": []}
    try:
        startup = await wait_ready(host, port, proc, args.startup_timeout)
        c = await Conn(host, port).open()
        _, hb = await c.request(b"GET /health HTTP/1.1\r\nHost: x\r\n", b"")
        health = json.loads(hb)
        t = time.perf_counter()
        status, ab = await c.request(
            post_head("/items"), json.dumps({"items": [GALAXY]}).encode(),
            f"X-API-Key: {key}\r\n".encode(),
        )  # fmt: skip
        add_ms = (time.perf_counter() - t) * 1e3
        if status != 201:
            raise RuntimeError(f"POST /items: {status} {ab[:200]!r}")
        new_id = json.loads(ab)["added"][0]["id"]
        _, nb = await c.request(post_head("/neighbors"),
                                json.dumps({"item": GALAXY, "k": 1}).encode())  # fmt: skip
        twin_top1 = json.loads(nb)["items"][0]["id"] == new_id
        c.close()
        from kgrec.eval import positives
        from kgrec.graph import load_spec

        spec = load_spec(args.spec)
        pos = positives(spec.load_dataset(), min_rating=spec.interactions.min_rating)
        users = [str(u) for u in pos.users.ids]
        items = [str(i) for i in pos.items.ids]
        # warm-up (not measured): first requests pay lazy initialisation
        await closed_loop(host, port, make_requests(500, users, items, new_id, args.seed + 1),
                          8, 60)  # fmt: skip
        for i, conc in enumerate(args.concurrency):
            reqs = make_requests(args.requests, users, items, new_id, seed=args.seed + 10 + i)
            before = load()
            res = await closed_loop(host, port, reqs, conc, args.max_seconds)
            phases["closed_loop"].append({"concurrency": conc, "load_before": before,
                                          "load_after": load(), "requests_unsent": res["unsent"],
                                          **phase_result(res)})  # fmt: skip
        for i, rate in enumerate(args.rates):
            n = max(1, int(rate * args.open_seconds))
            reqs = make_requests(n, users, items, new_id, seed=args.seed + 100 + i)
            before = load()
            res = await open_loop(host, port, reqs, rate, args.open_connections, args.seed + i)
            phases["open_loop"].append({"offered_rps": rate, "arrivals": "poisson",
                                        "offered_s": round(res["offered_s"], 2),
                                        "most_connections_busy": res["most_connections_busy"],
                                        "load_before": before, "load_after": load(),
                                        **phase_result(res)})  # fmt: skip
        server_metrics = None
        try:
            c = await Conn(host, port).open()
            _, mb = await c.request(b"GET /metrics HTTP/1.1\r\nHost: x\r\n", b"")
            c.close()
            server_metrics = sum(
                float(line.rsplit(" ", 1)[1]) for line in mb.decode().splitlines()
                if line.startswith("kgrec_requests_total{") and 'status="200"' in line
            )  # fmt: skip
        except Exception:
            pass
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    cost = None
    if args.in_process_repeats:
        cost = await in_process_cost(str(args.spec), args.model,
                               make_requests(500, users, items, new_id, args.seed + 7),
                               args.in_process_repeats)  # fmt: skip
    from kgrec.experiment import cpu_name

    return {
        "health": health, "startup_s": round(startup, 2), "add_item_ms": round(add_ms, 1),
        "added_item_id": new_id, "added_item_retrieved_as_top1_of_its_twin": twin_top1,
        "server_200s_counted_by_metrics": server_metrics, "in_process": cost,
        "cpu": cpu_name(), **phases,
    }  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--spec", default=str(REPO / "graphs" / "movielens-100k.toml"))
    p.add_argument("--model", default="content")
    p.add_argument("--requests", type=int, default=10_000, help="per closed-loop level")
    p.add_argument("--concurrency", default="1,8,32", help="closed-loop levels")
    p.add_argument("--rates", default="100,200,500,1000", help="open-loop offered requests/s")
    p.add_argument("--open-seconds", type=float, default=10.0)
    p.add_argument("--open-connections", type=int, default=64)
    p.add_argument("--max-seconds", type=float, default=120.0, help="cap on each closed loop")
    p.add_argument("--startup-timeout", type=float, default=180.0)
    p.add_argument("--in-process-repeats", type=int, default=4, help="0: skip")
    p.add_argument("--server-arg", action="append", default=[],
                   help="extra argument for kgrec serve (repeatable)")  # fmt: skip
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=str(REPO / "bench" / "results" / "serve_load.json"))
    args = p.parse_args()
    args.concurrency = [int(x) for x in str(args.concurrency).split(",") if x]
    args.rates = [float(x) for x in str(args.rates).split(",") if x]
    if not 1 <= args.requests <= 1_000_000 or not all(1 <= c <= 1024 for c in args.concurrency):
        p.error("--requests must be in 1..1e6 and --concurrency levels in 1..1024")
    if not all(0 < r <= 100_000 for r in args.rates) or not 0 < args.open_seconds <= 600:
        p.error("--rates must be in (0, 1e5] and --open-seconds in (0, 600]")
    try:
        import uvloop

        loop_kind = "uvloop"
        runner: Any = uvloop.run
    except ImportError:
        loop_kind, runner = "asyncio", asyncio.run
    server_cmd: list[str] = []
    start_load = load()
    uptime = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    res = runner(main_async(args, server_cmd))
    health = res.pop("health")
    result = {
        "benchmark": "serve_load",
        "command": "python " + " ".join(shlex.quote(a) for a in sys.argv),
        "server_command": "kgrec " + " ".join(shlex.quote(c) for c in server_cmd),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {
            "cores": os.cpu_count(),
            "cpu": res.pop("cpu"),
            "platform": platform.platform(),
            "load_at_start": start_load,
            "uptime_at_start": uptime,
            "load_at_end": load(),
            "note": "shared machine (other jobs may run); client and server share the cores",
        },
        "client": {
            "kind": f"raw HTTP/1.1 keep-alive over asyncio streams ({loop_kind}), one process "
            "separate from the server's",
            "closed_loop": "N connections, each sends its next request when answered",
            "open_loop": "Poisson arrivals at the offered rate; latency from the scheduled "
            f"send time; a pool of {args.open_connections} connections",
        },
        "versions": versions(),
        "model": health["model"],
        "fingerprint": health["fingerprint"],
        "items": health["items"],
        "users": health["users"],
        "index": health["index"],
        "mix": MIX,
        "k": K,
        **res,
    }
    from kgrec._atomic import atomic_write_text

    atomic_write_text(Path(args.out), json.dumps(result, indent=1) + "\n")
    bad = False
    for ph in result["closed_loop"]:
        lat = ph["latency"]
        print(f"closed c={ph['concurrency']}: {ph['qps']} QPS, p50 {lat.get('p50_ms')} ms, "
              f"p99 {lat.get('p99_ms')} ms, {ph['errors']} errors")  # fmt: skip
        bad |= bool(ph["errors"] or ph["requests_unsent"])
    for ph in result["open_loop"]:
        lat = ph["latency"]
        print(f"open {ph['offered_rps']}/s: {ph['qps']} done/s, p50 {lat.get('p50_ms')} ms, "
              f"p99 {lat.get('p99_ms')} ms, {ph['errors']} errors")  # fmt: skip
        bad |= bool(ph["errors"])
    if result["in_process"]:
        print(
            f"in process: {result['in_process']['asgi_us_mean']} us/request (asgi), "
            f"{result['in_process']['retriever_us_mean']} us (retriever) -> {args.out}"
        )
    if bad:
        sys.exit(1)


if __name__ == "__main__":
    main()
