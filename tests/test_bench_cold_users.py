"""bench/cold_users.py assemble: a dataset without runs here is kept from the previous file."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench" / "cold_users.py"


@pytest.fixture(scope="module")
def cold_users():
    spec = importlib.util.spec_from_file_location("bench_cold_users", BENCH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _entry(models: list[str], value: float) -> dict:
    ms = {m: {"ndcg20": value, "ci": [value, value]} for m in models}
    return {"commands": [f"run {models}"], "tasks": {"cold-user@0": {"users": 3, "models": ms}}}


def test_carry_over_keeps_the_other_dataset(cold_users, tmp_path, capsys):
    old = {
        "created": "2026-01-01T00:00:00+00:00",
        "datasets": {"a": _entry(["pop", "hybrid"], 0.25), "b": _entry(["pop", "hybrid"], 0.5)},
    }
    (tmp_path / "cold_users.json").write_text(json.dumps(old))
    out = {"created": "2026-02-02T00:00:00+00:00", "datasets": {"b": _entry(["pop"], 0.75)}}
    cold_users._carry_over(out, tmp_path)
    kept = out["datasets"]["a"]
    assert kept["tasks"] == old["datasets"]["a"]["tasks"]
    assert kept["commands"] == old["datasets"]["a"]["commands"]
    assert kept["assembled"]["at"] == old["created"]
    assert kept["assembled"]["commit"] is None
    assert old["created"] in kept["carried_over"]
    # the rerun dataset is the new entry, and the model it lost is reported
    assert out["datasets"]["b"] == _entry(["pop"], 0.75)
    assert "b: models of the previous entry without parts here, dropped: hybrid" in (
        capsys.readouterr().err
    )


def test_carry_over_keeps_a_recorded_assembly(cold_users, tmp_path):
    rec = {"at": "2026-01-01T00:00:00+00:00", "commit": "abc", "run_commits": ["abc"]}
    old = {"created": "2026-01-05T00:00:00+00:00", "datasets": {"a": _entry(["pop"], 0.25)}}
    old["datasets"]["a"]["assembled"] = rec
    (tmp_path / "cold_users.json").write_text(json.dumps(old))
    out = {"created": "2026-02-02T00:00:00+00:00", "datasets": {}}
    cold_users._carry_over(out, tmp_path)
    assert out["datasets"]["a"]["assembled"] == rec
    assert rec["at"] in out["datasets"]["a"]["carried_over"]
