"""`kgrec index build|info` through the click runner."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from kgrec.cli import cli, main
from kgrec.index import VectorIndex


@pytest.fixture
def vectors(tmp_path):
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((20, 16))
    x = (centres[rng.integers(0, 20, 1500)] + 0.3 * rng.standard_normal((1500, 16))).astype("f4")
    path = tmp_path / "emb.npy"
    np.save(path, x)
    ids = tmp_path / "ids.txt"
    ids.write_text("\n".join(f"item-{i}" for i in range(len(x))) + "\n")
    return path, ids, x


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_build_then_info(vectors, tmp_path):
    path, ids, x = vectors
    out = tmp_path / "idx"
    res = invoke(
        "index", "build", str(path), "--ids", str(ids), "-o", str(out),
        "--factory", "HNSW16", "--metric", "cosine", "--device", "cpu",
        "--fingerprint", "m1", "--json",
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    summary = json.loads(res.output)
    assert summary["type"] == "hnsw" and summary["size"] == 1500 and summary["dim"] == 16
    assert summary["self_check"]["recall"] >= 0.95
    idx = VectorIndex.load(out, expected_fingerprint="m1")
    assert idx.search(x[3], 1).ids[0, 0] == "item-3"

    res = invoke("index", "info", str(out))
    assert res.exit_code == 0, res.output
    for needle in ("type         hnsw", "size         1500", "dim          16", "metric       cosine",
                   "fingerprint  m1", "device       cpu", "self-check   recall@10 = "):  # fmt: skip
        assert needle in res.output
    info = json.loads(invoke("index", "info", str(out), "--json", "-k", "5").output)
    assert info["self_check"]["k"] == 5 and info["factory"] == "HNSW16,Flat"


def test_build_default_ids_ivf_and_tune(vectors, tmp_path):
    path, _, _ = vectors
    out = tmp_path / "ivf"
    res = invoke("index", "build", str(path), "-o", str(out), "--factory", "IVF32,Flat",
                 "--nprobe", "1", "--tune", "0.99", "--json")  # fmt: skip
    summary = json.loads(res.output)
    assert summary["self_check"]["recall"] >= 0.99 and summary["nprobe"] > 1
    assert VectorIndex.load(out).vocabulary.ids[:2].tolist() == ["0", "1"]


@pytest.mark.parametrize("target", ["1.5", "0", "nan"])
def test_tune_outside_0_1_is_a_usage_error_before_anything_is_written(
    vectors, tmp_path, capsys, target
):
    path, _, _ = vectors
    out = tmp_path / "idx"
    assert main(["index", "build", str(path), "-o", str(out), "--tune", target]) == 2
    assert "Invalid value for --tune: a recall in (0, 1]" in capsys.readouterr().err
    assert not out.exists()


def test_errors_are_clear(vectors, tmp_path, capsys):
    path, _, _ = vectors
    out = tmp_path / "idx"
    assert main(["index", "build", str(path), "-o", str(out), "--factory", "LSH"]) == 2
    assert "unsupported index factory 'LSH'" in capsys.readouterr().err
    short = tmp_path / "short.txt"
    short.write_text("a\nb\n")
    assert main(["index", "build", str(path), "-o", str(out), "--ids", str(short)]) == 2
    assert "2 ids for 1500 vectors" in capsys.readouterr().err
    bad = tmp_path / "bad.npy"
    np.save(bad, np.array([1.0, np.nan, 2.0]))
    assert main(["index", "build", str(bad), "-o", str(out)]) == 2
    assert "expected a 2-D array" in capsys.readouterr().err
    assert main(["index", "build", str(path), "-o", str(out), "--device", "cpu"]) == 0
    capsys.readouterr()
    assert main(["index", "info", str(out), "--expect-fingerprint", "other"]) == 2
    assert "not the expected 'other'" in capsys.readouterr().err
    res = CliRunner().invoke(cli, ["index", "build", str(path), "-o", str(out)])
    assert res.exit_code == 2 and "already exists" in res.output
