"""kill -9 and restart of ``kgrec serve --index-dir``: the 10 items and 10 user events added over
HTTP come back (items retrievable by their ids, events applied), and a new automatic id is not
one handed out before the kill."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

httpx = pytest.importorskip("httpx", reason="the restart test talks HTTP through httpx")
pytest.importorskip("uvicorn", reason="kgrec serve needs uvicorn")

REPO = Path(__file__).resolve().parents[2]
SPEC = REPO / "graphs" / "movielens-100k.toml"


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(index_dir: Path, port: int, log: Path) -> subprocess.Popen:
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE", "OMP_NUM_THREADS": "1"}
    cmd = [
        str(Path(sys.executable).parent / "kgrec"),
        "serve",
        str(SPEC),
        "--index-dir",
        str(index_dir),
    ]
    cmd += ["--port", str(port), "--snapshot-every", "7", "--allow-anonymous-writes"]
    proc = subprocess.Popen(cmd, stdout=log.open("ab"), stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"kgrec serve exited {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.5)
    proc.kill()
    pytest.fail("kgrec serve did not come up in 240 s")


def test_items_and_events_survive_kill_9(tmp_path, ml100k_dir):
    port, log, idx = _port(), tmp_path / "serve.log", tmp_path / "index"
    url = f"http://127.0.0.1:{port}"
    proc = _start(idx, port, log)
    try:
        with httpx.Client(base_url=url, timeout=60) as c:
            ids = []
            for n in range(10):  # one request each: every acknowledgement must be durable
                item = {"title": f"Live item {n}", "description": "a starship crew far from home"}
                if n % 2:
                    item["id"] = f"mine-{n}"
                r = c.post("/items", json={"items": [item]})
                assert r.status_code == 201, r.text
                ids.append(r.json()["added"][0]["id"])
            assert ids[::2] == [f"new-{n}" for n in range(1, 6)]
            for n in range(10):
                user = "1" if n < 5 else "fresh-user"
                r = c.post(f"/users/{user}/events", json={"items": [ids[n], "50"][: 1 + n % 2]})
                assert r.status_code == 201, r.text
            before = c.post("/recommend", json={"user": "1", "k": 10}).json()
            fresh = c.post("/recommend", json={"user": "fresh-user", "k": 10}).json()
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    proc = _start(idx, port, log)
    try:
        with httpx.Client(base_url=url, timeout=60) as c:
            for n, i in enumerate(ids):
                got = c.get(f"/items/{i}").json()
                assert got == {"id": i, "title": f"Live item {n}", "added": True}
            assert c.get("/health").json()["added_items"] == 10
            assert c.post("/recommend", json={"user": "1", "k": 10}).json() == before
            assert c.post("/recommend", json={"user": "fresh-user", "k": 10}).json() == fresh
            assert fresh["masked"] == len(set(ids[5:]) | {"50"})
            r = c.post("/items", json={"items": [{"title": "After the restart"}]})
            # the server's own log in the message: a 500 here was seen once, under load
            assert r.status_code == 201, (r.text, log.read_text()[-4000:])
            assert r.json()["added"][0]["id"] == "new-6"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
