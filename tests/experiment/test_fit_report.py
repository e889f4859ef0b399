"""What shaped a result, in the report: choices on validation, stop reasons, the cap warning,
the whole-fit budget, fits shared within a run, the data section, strict JSON (issue 18)."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest
import torch
from torch import nn

from kgrec.eval import positives
from kgrec.experiment import (
    CompareOptions,
    compare,
    data_summary,
    make_model,
    to_json,
    to_markdown,
    write_report,
)
from kgrec.models import Popularity
from kgrec.testing import synthetic_dataset, synthetic_matrix
from kgrec.train import FitCache, TrainingOptions, train_loop


@pytest.fixture(scope="module")
def ds():
    return synthetic_dataset(60, 40, seed=2)


@pytest.fixture(scope="module")
def pos(ds):
    return positives(ds, min_rating=4)


class _Toy(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.zeros(1))

    def loss(self, batch: torch.Tensor) -> torch.Tensor:
        return ((self.w - batch) ** 2).sum()


class _Batches:
    def __len__(self) -> int:
        return 1

    def batches(self, epoch: int):
        yield torch.ones(1)


class ScriptedTrainer(Popularity):
    """Popularity scores, trained by the shared loop against a scripted validation curve."""

    name = "scripted"

    def __init__(self, curve, options: TrainingOptions) -> None:
        super().__init__()
        self.curve, self.options = curve, options

    def fit(self, train, *, validate=None):
        super().fit(train)
        values = iter(self.curve)
        self.result_ = train_loop(_Toy(), _Batches(), self.options, validate=lambda: next(values))
        return self


def _factory(curves):
    def make(name, seed, options, **_):
        if name in curves:
            epochs, patience, curve = curves[name]
            return ScriptedTrainer(curve, TrainingOptions(epochs=epochs, patience=patience))
        return make_model(name, seed, options)

    return make


def test_cap_while_improving_is_warned(pos, tmp_path):
    curves = {
        "pop": (6, 3, [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]),  # still rising at its 6-epoch cap
        "itemknn": (20, 2, [0.5, 0.4, 0.3, 0.2, 0.1] + [0.0] * 15),  # early stopping
    }
    comp = compare(
        pos,
        CompareOptions(models=("pop", "itemknn"), seeds=(1,), n_boot=20),
        model_factory=_factory(curves),
    )
    rising, stopped = comp.fits
    assert rising["stop_reason"] == "epoch_cap" and rising["epochs_run"] == 6
    assert rising["best_epoch"] == 6 and rising["still_rising"]
    assert "epoch cap (6 epochs)" in rising["warning"] and "still rising" in rising["warning"]
    assert stopped["stop_reason"] == "patience" and stopped["best_epoch"] == 1
    assert stopped["epochs_run"] == 3 and "warning" not in stopped
    md = to_markdown(comp, title="t")
    assert md.count("**WARNING**: pop (seed 1) was stopped by its epoch cap") == 2  # top + fit
    assert "itemknn (seed 1) was stopped" not in md
    assert "stopped by early stopping (patience 2)" in md
    obj = json.loads(write_report(comp, tmp_path, title="t")["json"].read_text())
    assert obj["warnings"] == [rising["warning"]]


def test_cap_after_a_plateau_is_not_warned(pos):
    curves = {"pop": (8, 0, [0.1, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5])}  # converged by epoch 2
    comp = compare(
        pos, CompareOptions(models=("pop",), seeds=(1,), n_boot=20), model_factory=_factory(curves)
    )
    (fit,) = comp.fits
    assert fit["stop_reason"] == "epoch_cap" and not fit["still_rising"] and "warning" not in fit


def test_time_budget_is_the_stop_reason():
    m = _Toy()
    vals = itertools.count()
    opts = TrainingOptions(epochs=50)
    res = train_loop(m, _Batches(), opts, validate=lambda: next(vals), time_left=lambda: -1.0)
    assert res.stop_reason == "time_budget" and res.epochs_run == 1


@pytest.fixture(scope="module")
def hybrid_runs(pos):
    def run(models):
        opts = CompareOptions(models=models, seeds=(3,), epochs=3, n_boot=20)
        return compare(pos, opts)

    return {
        "ease,hybrid": run(("ease", "hybrid")),
        "hybrid,ease": run(("hybrid", "ease")),
        "hybrid": run(("hybrid",)),
        "ease": run(("ease",)),
    }


def _values(comp, model):
    df = comp.per_user[comp.per_user.model == model]
    return df.sort_values(["task", "user", "metric"])["value"].to_numpy()


def test_ease_is_fitted_once_and_shared(hybrid_runs):
    first, second = hybrid_runs["ease,hybrid"], hybrid_runs["hybrid,ease"]
    assert first.shared[0]["fitted"] == ["ease (for ease)"]
    assert first.shared[0]["reused"] == ["ease (by hybrid blend)"]
    assert second.shared[0]["fitted"] == ["ease (for hybrid blend)"]
    assert second.shared[0]["reused"] == ["ease (by ease)"]
    hyb = next(f for f in first.fits if f["model"] == "hybrid")
    ease_part = next(p for p in hyb["parts"] if p["name"] == "ease")
    assert ease_part["shared"]
    assert next(f for f in second.fits if f["model"] == "ease")["reused"]
    alone = hybrid_runs["hybrid"].fits[0]
    assert not next(p for p in alone["parts"] if p["name"] == "ease").get("shared")


def test_shared_and_separate_fits_give_identical_scores(hybrid_runs):
    for shared in ("ease,hybrid", "hybrid,ease"):
        np.testing.assert_array_equal(
            _values(hybrid_runs[shared], "hybrid"), _values(hybrid_runs["hybrid"], "hybrid")
        )
        np.testing.assert_array_equal(
            _values(hybrid_runs[shared], "ease"), _values(hybrid_runs["ease"], "ease")
        )


def test_hybrid_choices_are_reported(hybrid_runs):
    comp = hybrid_runs["ease,hybrid"]
    hyb = next(f for f in comp.fits if f["model"] == "hybrid")
    (blend,) = [c for c in hyb["choices"] if c["name"] == "blend_weight"]
    assert blend["candidates"] == [i / 10 for i in range(11)] and len(blend["scores"]) == 11
    assert blend["scores"][blend["candidates"].index(blend["chosen"])] == max(blend["scores"])
    assert hyb["valid_metric"] == "NDCG@20" and hyb["settings"]["cf_blend"] == "auto -> ease"
    assert {"epochs_run", "best_epoch", "stop_reason"} <= set(hyb)
    md = to_markdown(comp, title="t")
    assert f"blend_weight = **{blend['chosen']:g}**" in md
    assert "shared fits, seed 3: fitted once: ease (for ease); reused: ease (by hybrid blend)" in md


def test_cache_refuses_models_that_are_not_shareable():
    with pytest.raises(TypeError, match="shareable_fit"):
        FitCache().fitted(Popularity(), synthetic_matrix(20, 30))


def test_budget_covers_the_whole_hybrid_fit(pos):
    from kgrec.eval import make_split

    split = make_split(pos, "random", seed=1)
    train = split.train_matrix()
    tight = make_model("hybrid", 1, CompareOptions(models=("hybrid",), max_seconds=1e-3))
    tight.fit(train, validate=lambda m: 0.0)
    assert tight.result_.stop_reason == "time_budget" and tight.result_.epochs_run == 1
    parts = {p.name: p for p in tight.fit_log_.parts}
    assert set(parts) == {"ease", "training", "blend"}
    assert parts["blend"].inside_budget is False
    assert "blend ended past it" in tight.fit_log_.notes[-1].replace("ease, training, ", "")
    assert tight.fit_log_.notes[0].startswith("training left")
    loose = make_model("hybrid", 1, CompareOptions(models=("hybrid",), max_seconds=600, epochs=2))
    loose.fit(train, validate=lambda m: 0.0)
    assert all(p.inside_budget for p in loose.fit_log_.parts)
    assert "inside the 600 s budget" in loose.fit_log_.notes[-1]


def test_data_section_and_strict_json(ds, pos, tmp_path):
    data = data_summary(ds, pos, min_rating=4)
    frame = ds.interactions.frame
    assert data["below_min_rating"] == int((frame.rating < 4).sum())
    assert data["positives"] == len(pos) == data["interactions"] - data["below_min_rating"]
    comp = compare(pos, CompareOptions(models=("pop",), seeds=(1,), n_boot=20), data=data)
    md = to_markdown(comp, title="t")
    assert (
        "## Data: what was dropped or filtered" in md
        and "| catalog items | 40 | nodes.item |" in md
    )
    obj = to_json(comp)
    assert any(isinstance(v, float) and math.isnan(v) for r in obj["summary"] for v in r.values())
    text = write_report(comp, tmp_path, title="t")["json"].read_text()

    def no_constants(name):
        raise AssertionError(f"non-strict JSON constant {name}")

    loaded = json.loads(text, parse_constant=no_constants)
    assert loaded["data_counts"]["catalog_items"] == 40


def test_data_counts_reconcile_with_graph_stats(ds, tmp_path):
    from kgrec.graph import build_graph, load_spec

    frame = ds.interactions.frame.copy()
    items = sorted(frame["item"].unique())
    frame.loc[frame["item"].isin(items[:3]), "rating"] = 1  # 3 catalog items without a positive
    frame.to_csv(tmp_path / "inter.csv", index=False)
    (tmp_path / "items.csv").write_text("item,title\n" + "".join(f"{i},t{i}\n" for i in items))
    spec_path = tmp_path / "tiny.toml"
    spec_path.write_text(
        'name = "tiny"\n[source.interactions]\nfile = "inter.csv"\nuser = "user"\n'
        'item = "item"\nrating = "rating"\ntimestamp = "timestamp"\n'
        '[source.items]\nfile = "items.csv"\nid = "item"\n[interactions]\nmin_rating = 4\n'
    )
    spec = load_spec(spec_path)
    dataset = spec.load_dataset()
    data = data_summary(dataset, positives(dataset, min_rating=4), min_rating=4)
    st = build_graph(spec).stats()
    g = data["graph_stats"]
    assert g["nodes.item"] == st.nodes["item"] == len(items) == data["catalog_items"]
    assert g["nodes.user"] == st.nodes["user"]
    assert g["interactions"] == st.interactions == len(frame)
    assert g["positive_interactions"] == st.positive_interactions == data["positives"]
    assert data["catalog_items_not_ranked"] == 3 == len(items) - data["ranked_items"]
    assert "3 without a positive, left out of every candidate set" in data["notes"][2]


def test_ml100k_data_section():
    from kgrec.data.sources import ml100k

    if not ml100k.is_cached():
        pytest.skip("ml-100k is not cached under $KGREC_HOME (run `kgrec data fetch ml-100k`)")
    from kgrec.data import load_dataset

    dataset = load_dataset("ml-100k")
    data = data_summary(dataset, positives(dataset, min_rating=4), min_rating=4)
    assert (data["catalog_items"], data["ranked_items"], data["catalog_items_not_ranked"]) == (
        1682,
        1447,
        235,
    )
    assert (data["interactions"], data["positives"], data["below_min_rating"]) == (
        100_000,
        55_375,
        44_625,
    )
    assert (data["catalog_users"], data["users_in_split"], data["repeated_pairs"]) == (943, 942, 0)
