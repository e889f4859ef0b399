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
