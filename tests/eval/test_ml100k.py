"""ml-100k against RecBole 1.2.1 (PEERS.md): split counts (fast) and baseline NDCG@20 (slow)."""

from __future__ import annotations

import pytest

from kgrec.data.sources import ml100k


def _require_ml100k() -> None:
    if not ml100k.is_cached():
        pytest.skip("ml-100k is not cached under $KGREC_HOME (run `kgrec data fetch ml-100k`)")


@pytest.fixture(scope="module")
def pos():
    _require_ml100k()
    from kgrec.data import load_dataset
    from kgrec.eval import positives

    return positives(load_dataset("ml-100k"), min_rating=4)


def test_counts_match_recbole(pos):
    from kgrec.eval import random_split

    assert (len(pos.users), len(pos.items), len(pos)) == (942, 1447, 55375)
    c = random_split(pos, seed=2020).counts()
    assert (c["train"], c["valid"], c["test"]) == (45063, 5156, 5156)


@pytest.mark.slow
@pytest.mark.parametrize(("model", "recbole"), [("itemknn", 0.2336), ("mf", 0.2244)])
def test_ndcg20_within_7pct_of_recbole(pos, model, recbole):
    from kgrec.experiment import CompareOptions, compare

    comp = compare(pos, CompareOptions(models=(model,), seeds=(2020,), n_boot=100))
    s = comp.summary()
    ndcg = float(s[(s.metric == "NDCG@20") & (s.task == "test")]["mean"].iloc[0])
    assert abs(ndcg / recbole - 1) <= 0.07, ndcg
