"""Comparison runner -> tidy DataFrame -> markdown / JSON / PNG report."""

from __future__ import annotations

import json

import numpy as np
import pytest

from kgrec.errors import SpecError
from kgrec.eval import positives
from kgrec.experiment import CompareOptions, compare, plot, seeds_from, to_markdown, write_report
from kgrec.testing import synthetic_dataset


@pytest.fixture(scope="module")
def pos():
    return positives(synthetic_dataset(60, 40, seed=2), min_rating=4)


@pytest.fixture(scope="module")
def comp(pos):
    opts = CompareOptions(models=("pop", "itemknn", "mf"), seeds=(1, 2), epochs=5, n_boot=200)
    return compare(pos, opts)


def test_tidy_per_user(comp, pos):
    df = comp.per_user
    assert list(df.columns) == ["seed", "task", "model", "user", "metric", "value"]
    assert set(df["model"]) == {"pop", "itemknn", "mf"}
    # every test user has every metric for every model and seed: nobody is dropped
    counts = df.groupby(["seed", "model", "metric"]).size()
    assert counts.nunique() == 1
    assert df["value"].between(0, 1).all()
    assert set(comp.timings.columns) >= {"seed", "model", "fit_s", "eval_s"}
    mf = comp.timings[comp.timings.model == "mf"]
    assert (mf["epochs"] == 5).all()


def test_summary_and_paired(comp):
    s = comp.summary()
    row = s[(s.model == "itemknn") & (s.metric == "NDCG@20")].iloc[0]
    assert row.ci_low <= row["mean"] <= row.ci_high
    assert row.seeds == 2
    assert "Coverage@20" in set(s.metric)
    p = comp.paired()
    assert len(p) == 2 and set(p.columns) >= {"best", "other", "mean_diff", "t_pvalue"}


def test_reports(comp, tmp_path):
    md = to_markdown(comp, title="t", command="kgrec compare x")
    assert "| model |" in md and "NDCG@20" in md and "masked" in md
    paths = write_report(comp, tmp_path / "r", title="t", command="kgrec compare x")
    obj = json.loads(paths["json"].read_text())
    assert obj["command"] == "kgrec compare x"
    assert {"summary", "paired", "timings", "environment", "protocols"} <= set(obj)
    png = paths["png"].read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    assert plot(comp, tmp_path / "p.png").is_file()


@pytest.mark.parametrize("protocol", ["cold-item", "cold-user", "temporal"])
def test_other_protocols(pos, protocol):
    opts = CompareOptions(models=("pop", "itemknn"), protocol=protocol, seeds=(3,), n_boot=50)
    if protocol == "cold-user":  # users with > 20 positives take part (k up to 20)
        pos = positives(synthetic_dataset(100, 80, seed=2), min_rating=4)
    c = compare(pos, opts)
    tasks = set(c.per_user["task"])
    expected = {
        "cold-item": {"warm", "cold", "overall"},
        "cold-user": {"warm"} | {f"cold-user@{k}" for k in (0, 1, 3, 5, 10, 20)},
        "temporal": {"test"},
    }[protocol]
    assert tasks == expected
    if protocol == "cold-item":
        s = c.summary()
        cold = s[(s.task == "cold") & (s.metric == "ColdShare@20")]
        assert np.allclose(cold["mean"], 1.0)  # only cold items are candidates there
        warm = s[(s.task == "warm") & (s.metric == "ColdShare@20")]
        assert np.allclose(warm["mean"], 0.0)
    if protocol == "cold-user":  # the report says how users without history are answered
        md = to_markdown(c, title="t")
        section = md.split("## Users without history (k = 0)")[1].split("\n## ")[0]
        assert "| itemknn | popularity | no |" in section
        assert "| pop | popularity | no |" in section
    else:
        assert "Users without history" not in to_markdown(c, title="t")


def test_options_validation():
    with pytest.raises(SpecError, match="unknown model"):
        CompareOptions(models=("pop", "bogus"))
    with pytest.raises(SpecError, match="protocol"):
        CompareOptions(protocol="nope")
    with pytest.raises(SpecError, match="seeds"):
        seeds_from(0)
    assert seeds_from(3) == (2020, 2021, 2022)


def test_fit_and_evaluate_is_the_runners_step(comp, pos):
    """One model fitted and evaluated alone gives the comparison's per-user values."""
    from kgrec.data import make_split
    from kgrec.eval import build_protocol
    from kgrec.experiment import fit_and_evaluate, make_model

    opts = comp.options
    proto = build_protocol(make_split(pos, "random", seed=1))
    fe = fit_and_evaluate(make_model("itemknn", 1, opts), proto.split, proto.tests, opts.metrics)
    assert fe.fit_s >= 0 and fe.eval_s >= 0 and not fe.reused
    assert [r.task for r in fe.results] == [t.name for t in proto.tests]
    ours = fe.results[0].per_user.set_index("user")["NDCG@20"]
    theirs = comp.per_user.query("seed == 1 and model == 'itemknn' and metric == 'NDCG@20'")
    assert len(ours) == len(theirs)
    np.testing.assert_allclose(ours.loc[theirs["user"]].to_numpy(), theirs["value"].to_numpy())


def test_model_factories_are_a_typed_protocol():
    """Models built from side information are ContextFactory classes; the others are not."""
    from kgrec.models import MODELS, ContextFactory

    built_from_context = {n for n, k in MODELS.items() if isinstance(k, ContextFactory)}
    assert built_from_context == {"hybrid", "textknn", "kgknn", "content2cf"}
