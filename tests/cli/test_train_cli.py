"""`kgrec train`: fit, save, and resume from the checkpoint."""

from __future__ import annotations

import json

from click.testing import CliRunner

from kgrec.cli import cli
from kgrec.models import Recommender
from tests.cli.test_compare_cli import _write_atomic


def test_train_and_resume(tmp_path):
    data = _write_atomic(tmp_path / "tiny")
    out = tmp_path / "run"
    args = ["train", str(data), "--model", "mf", "--min-rating", "4", "--out", str(out)]
    res = CliRunner().invoke(cli, [*args, "--epochs", "2", "--no-progress"])
    assert res.exit_code == 0, res.output
    assert (out / "checkpoint" / "checkpoint.pt").is_file()
    first = json.loads((out / "metrics.json").read_text())
    assert first["training"]["epochs_run"] == 2
    res = CliRunner().invoke(cli, [*args, "--epochs", "4", "--no-progress"])
    assert res.exit_code == 0, res.output
    assert "resumed from epoch 2" in res.output
    model = Recommender.load(out / "model")
    assert model.name == "mf" and model.item_vectors().shape[0] == first["split"]["counts"]["items"]


def test_bad_settings_are_refused_before_anything_is_written(tmp_path, capsys):
    """A bad --set or --nproc / --max-seconds was found after the split was written into --out
    (or not at all: --nproc 0 and --max-seconds -5 ran as if unset)."""
    from kgrec.cli import main

    data = _write_atomic(tmp_path / "tiny")
    base = ["train", str(data), "--model", "mf", "--no-progress"]
    cases = [
        (["--set", "dim=-3"], "dim must be >= 1"),
        (["--set", "lr=-1"], "lr"),
        (["--set", "epochs=abc"], "expected an integer"),
        (["--max-seconds", "-5"], "max_seconds must be a positive number"),
        (["--max-seconds", "nan"], "max_seconds must be a positive number"),
    ]
    for i, (extra, needle) in enumerate(cases):
        out = tmp_path / f"run{i}"
        assert main([*base, "--out", str(out), *extra]) == 2, extra
        assert needle in capsys.readouterr().err, extra
        assert not out.exists(), extra  # nothing written for a refused command
    res = CliRunner().invoke(cli, [*base, "--out", str(tmp_path / "r"), "--nproc", "0"])
    assert res.exit_code == 2 and "--nproc" in res.output
    assert not (tmp_path / "r").exists()
