"""Model settings from the CLI (`--set`, `--config`, `--help-config`) and the model listing."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from kgrec.cli import cli
from kgrec.cli._settings import ModelSettings, model_classes, settings_factory
from kgrec.cli.models import MODEL_HELP
from kgrec.errors import SpecError
from kgrec.experiment import CompareOptions
from kgrec.models import MODELS
from tests.cli.test_compare_cli import _write_atomic


def test_model_table_matches_registry():
    assert list(MODEL_HELP) == list(MODELS)


def test_compare_help_lists_every_model():
    res = CliRunner().invoke(cli, ["compare", "--help"])
    assert res.exit_code == 0
    for name in MODELS:
        assert f"\n    {name} " in res.output, name


def test_models_command():
    res = CliRunner().invoke(cli, ["models"])
    assert res.exit_code == 0
    for name in MODELS:
        assert res.output.count(f"{name} ") >= 1
    assert res.output.count("uses: ") == len(MODELS)


def test_set_is_typed_and_validated():
    s = ModelSettings.parse(
        ["dim=32", "patience=3", "cf_blend=none", "gate=false", "hybrid.max_seconds=none"],
        models=MODELS,
    )
    s.check(model_classes(["hybrid"]))
    cfg, train = s.resolve("hybrid", *model_classes(["hybrid"])["hybrid"])
    assert cfg == {"dim": 32, "cf_blend": "none", "gate": False}
    assert train == {"patience": 3, "max_seconds": None}
    with pytest.raises(SpecError, match=r"unknown setting 'dimm'.*dim"):
        ModelSettings.parse(["dimm=3"], models=MODELS).check(model_classes(["hybrid"]))
    with pytest.raises(SpecError, match="expected an integer"):
        ModelSettings.parse(["dim=3.5"], models=MODELS).resolve(
            "hybrid", *model_classes(["hybrid"])["hybrid"]
        )
    with pytest.raises(SpecError, match="key=value"):
        ModelSettings.parse(["dim"], models=MODELS)
    # a training option on a model without training is an error, not ignored
    with pytest.raises(SpecError, match="unknown setting 'patience' for pop"):
        ModelSettings.parse(["patience=3"], models=MODELS).check(model_classes(["pop"]))


def test_settings_reach_the_model(tmp_path):
    cfg = tmp_path / "s.toml"
    cfg.write_text("dim = 16\n[training]\npatience = 2\nlr = 0.01\n[lightgcn]\nlayers = 1\n")
    s = ModelSettings.parse(["lr=0.02"], cfg, models=MODELS)
    s.check(model_classes(["mf", "lightgcn"]))
    make = settings_factory(s)
    opts = CompareOptions(models=("mf", "lightgcn"))
    mf, lg = make("mf", 1, opts), make("lightgcn", 1, opts)
    assert (mf.config.dim, mf.options.patience, mf.options.lr) == (16, 2, 0.02)  # --set wins
    assert (lg.config.dim, lg.config.layers) == (16, 1)
    bad = tmp_path / "bad.toml"
    bad.write_text("dim = -1\n")
    with pytest.raises(SpecError, match="dim"):
        settings_factory(ModelSettings.parse([], bad, models=MODELS))("mf", 1, opts)


def test_help_config_lists_settings():
    res = CliRunner().invoke(cli, ["train", "--model", "hybrid", "--help-config"])
    assert res.exit_code == 0, res.output
    for key in ("dim", "cf_blend", "patience", "min_delta", "lr"):
        assert f"  {key} " in res.output
    patience = MODELS["hybrid"].default_options.patience
    assert f"default {patience}" in res.output.split("  patience")[1].splitlines()[0]


def test_train_with_set(tmp_path):
    data = _write_atomic(tmp_path / "tiny")
    out = tmp_path / "run"
    res = CliRunner().invoke(
        cli,
        ["train", str(data), "--model", "mf", "--min-rating", "4", "--out", str(out),
         "--set", "epochs=3", "--set", "dim=8"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "mf epoch 3/3" in res.output
    m = json.loads((out / "metrics.json").read_text())
    assert m["training"]["epochs_run"] == 3
    meta = json.loads((out / "model" / "model.json").read_text())
    assert meta["config"]["dim"] == 8
