"""`kgrec serve`: options, loopback default, and the app it would run."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from kgrec.cli import cli
from tests.serve.conftest import SPEC, build_content_model

pytest.importorskip("fastapi", reason="kgrec serve needs fastapi")
pytest.importorskip("uvicorn", reason="kgrec serve needs uvicorn")


def test_help_documents_loopback_default():
    res = CliRunner().invoke(cli, ["serve", "--help"])
    assert res.exit_code == 0
    assert "--host" in res.output and "127.0.0.1" in res.output and "/neighbors" in res.output


def test_serve_binds_loopback_and_serves_the_retriever(ml100k_dir, monkeypatch):
    from fastapi.testclient import TestClient

    model = build_content_model()
    monkeypatch.setattr("kgrec.serve._load.load_model", lambda spec, name="content", **kw: model)
    seen = {}

    def fake_run(app, **kw):
        seen.update(kw, app=app)

    monkeypatch.setattr("uvicorn.run", fake_run)
    res = CliRunner().invoke(cli, ["serve", str(SPEC), "--port", "8123"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert seen["host"] == "127.0.0.1" and seen["port"] == 8123
    client = TestClient(seen["app"])
    assert client.get("/health").json()["items"] == 1682
    r = client.post("/neighbors", json={"item_id": "1", "k": 2})
    assert r.status_code == 200 and len(r.json()["items"]) == 2


def test_bad_port_is_a_usage_error():
    res = CliRunner().invoke(cli, ["serve", str(SPEC), "--port", "70000"])
    assert res.exit_code == 2 and "70000" in res.output
