"""Bounded load test of ``kgrec serve`` on loopback.

Starts ``kgrec serve SPEC`` as a subprocess on 127.0.0.1 and a random free port, waits for
/health, adds one cold item over HTTP (POST /items), then sends ``--requests`` requests at
``--concurrency`` with httpx/asyncio: a mix of POST /recommend for known users (60%), POST
/neighbors for known items (25%), POST /recommend for new users given 3-item histories (10%)
and POST /neighbors of the item added live (5%). Every request has a timeout, the run has a
wall-clock cap (``--max-seconds``), and the server is stopped at the end, whatever happens.
Writes bench/results/serve_load.json: the exact command, machine, versions, errors, latency
percentiles (ms) and QPS, overall and per endpoint.

    python bench/serve_load.py --requests 10000 --concurrency 32
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import random
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
LAUNCH = "import sys; from kgrec.cli import main; sys.exit(main())"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def versions() -> dict[str, str]:
    from importlib.metadata import version

    out = {"python": platform.python_version()}
    for pkg in (
        "kgrec",
        "fastapi",
        "uvicorn",
        "httpx",
        "pydantic",
        "starlette",
        "torch",
        "faiss-cpu",
        "numpy",
    ):
        try:
            out[pkg] = version(pkg)
        except Exception:
            out[pkg] = "absent"
    return out


async def wait_ready(client, base: str, proc: subprocess.Popen, timeout: float) -> float:
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"kgrec serve exited with status {proc.returncode}")
        try:
            r = await client.get(f"{base}/health", timeout=2.0)
            if r.status_code == 200:
                return time.perf_counter() - t0
        except Exception:
            pass
        await asyncio.sleep(0.25)
    raise TimeoutError(f"server not ready after {timeout} s")


def make_requests(n: int, users: list[str], items: list[str], new_id: str, seed: int) -> list:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        x = rng.random()
        if x < 0.60:
            out.append(("recommend_user", "/recommend", {"user": rng.choice(users), "k": 10}))
        elif x < 0.85:
            out.append(
                (
                    "neighbors_item",
                    "/neighbors",
                    {"item_id": rng.choice(items), "k": 10, "users_k": 10},
                )
            )
        elif x < 0.95:
            out.append(
                ("recommend_history", "/recommend", {"history": rng.sample(items, 3), "k": 10})
            )
        else:
            out.append(
                ("neighbors_added", "/neighbors", {"item_id": new_id, "k": 10, "users_k": 10})
            )
    return out


async def run_load(base: str, reqs: list, concurrency: int, max_seconds: float) -> dict:
    import httpx

    lat: dict[str, list[float]] = {}
    errors: dict[str, int] = {}
    queue: asyncio.Queue = asyncio.Queue()
    for r in reqs:
        queue.put_nowait(r)
    deadline = time.perf_counter() + max_seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async with httpx.AsyncClient(limits=limits, timeout=10.0) as client:

        async def worker() -> None:
            while time.perf_counter() < deadline:
                try:
                    kind, path, body = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                t = time.perf_counter()
                try:
                    resp = await client.post(base + path, json=body)
                    ok = resp.status_code == 200 and len(resp.json()["items"]) == 10
                except Exception:
                    ok = False
                dt_ms = (time.perf_counter() - t) * 1e3
                if ok:
                    lat.setdefault(kind, []).append(dt_ms)
                else:
                    errors[kind] = errors.get(kind, 0) + 1

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - t0
    return {"lat": lat, "errors": errors, "wall": wall, "unsent": queue.qsize()}


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


async def main_async(args: argparse.Namespace) -> dict:
    import httpx

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    exe = Path(sys.executable).with_name("kgrec")
    launcher = [str(exe)] if exe.is_file() else [sys.executable, "-c", LAUNCH]
    import secrets
    import tempfile

    key = secrets.token_hex(16)  # writes need an API key (kgrec serve --api-key-file)
    key_file = Path(tempfile.mkdtemp()) / "api-key"
    key_file.write_text(key)
    cmd = [*launcher, "serve", str(args.spec), "--host", "127.0.0.1", "--port", str(port),
           "--model", args.model, "--api-key-file", str(key_file)]  # fmt: skip
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
    proc = subprocess.Popen(
        cmd,
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        async with httpx.AsyncClient() as client:
            startup = await wait_ready(client, base, proc, args.startup_timeout)
            health = (await client.get(f"{base}/health")).json()
            t = time.perf_counter()
            added = await client.post(
                f"{base}/items",
                json={"items": [{"title": "Galaxy Raiders", "description": "rebels fight an evil galactic empire",
                                 "attributes": {"class": ["Sci-Fi", "Action"], "release_year": 1997}}]},
                timeout=120.0, headers={"X-API-Key": key},
            )  # fmt: skip
            add_ms = (time.perf_counter() - t) * 1e3
            added.raise_for_status()
            new_id = added.json()["added"][0]["id"]
            check = (await client.post(f"{base}/neighbors", json={"item": {"title": "Galaxy Raiders", "description": "rebels fight an evil galactic empire", "attributes": {"class": ["Sci-Fi", "Action"], "release_year": 1997}}, "k": 1})).json()  # fmt: skip
        from kgrec.graph import load_spec

        spec = load_spec(args.spec)
        from kgrec.eval import positives

        pos = positives(spec.load_dataset(), min_rating=spec.interactions.min_rating)
        users = [str(u) for u in pos.users.ids]
        items = [str(i) for i in pos.items.ids]
        # warm-up (not measured): first requests pay lazy initialisation
        await run_load(
            base, make_requests(200, users, items, new_id, seed=args.seed + 1), args.concurrency, 60
        )
        reqs = make_requests(args.requests, users, items, new_id, seed=args.seed)
        res = await run_load(base, reqs, args.concurrency, args.max_seconds)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    from kgrec.eval._report import cpu_name

    all_lat = [x for v in res["lat"].values() for x in v]
    n_err = sum(res["errors"].values())
    done = len(all_lat) + n_err
    return {
        "benchmark": "serve_load",
        "command": "python " + " ".join(shlex.quote(a) for a in sys.argv),
        "server_command": "kgrec " + " ".join(shlex.quote(c) for c in cmd[len(launcher) :]),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {
            "cores": os.cpu_count(),
            "cpu": cpu_name(),
            "platform": platform.platform(),
            "note": "shared machine: other jobs were running; client and server share the 2 cores",
        },
        "versions": versions(),
        "model": health["model"],
        "fingerprint": health["fingerprint"],
        "items": health["items"],
        "users": health["users"],
        "index": health["index"],
        "startup_s": round(startup, 2),
        "add_item_ms": round(add_ms, 1),
        "added_item_id": new_id,
        "added_item_retrieved_as_top1_of_its_twin": check["items"][0]["id"] == new_id,
        "requests_planned": args.requests,
        "requests_done": done,
        "requests_unsent": res["unsent"],
        "concurrency": args.concurrency,
        "errors": n_err,
        "errors_by_kind": res["errors"],
        "wall_s": round(res["wall"], 2),
        "qps": round(done / res["wall"], 1),
        "latency": summary(all_lat),
        "latency_by_kind": {k: summary(v) for k, v in sorted(res["lat"].items())},
        "mix": {
            "recommend_user": 0.60,
            "neighbors_item": 0.25,
            "recommend_history": 0.10,
            "neighbors_added": 0.05,
        },
    }


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--spec", default=str(REPO / "graphs" / "movielens-100k.toml"))
    p.add_argument("--model", default="content")
    p.add_argument("--requests", type=int, default=10_000)
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--max-seconds", type=float, default=300.0, help="cap on the measured phase")
    p.add_argument("--startup-timeout", type=float, default=180.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=str(REPO / "bench" / "results" / "serve_load.json"))
    args = p.parse_args()
    if not 1 <= args.requests <= 1_000_000 or not 1 <= args.concurrency <= 1024:
        p.error("--requests must be in 1..1e6 and --concurrency in 1..1024")
    result = asyncio.run(main_async(args))
    from kgrec._atomic import atomic_write_text

    atomic_write_text(Path(args.out), json.dumps(result, indent=1) + "\n")
    lat = result["latency"]
    print(
        f"{result['requests_done']} requests, {result['errors']} errors, {result['qps']} QPS, "
        f"p50 {lat.get('p50_ms')} ms, p99 {lat.get('p99_ms')} ms -> {args.out}"
    )
    if result["errors"] or result["requests_unsent"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
