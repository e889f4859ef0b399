"""Metrics against hand-computed cases and a brute-force numpy reference on random data."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from kgrec.eval import (
    MRR,
    NDCG,
    ColdShare,
    Coverage,
    Hit,
    Precision,
    RankingTask,
    Recall,
    default_metrics,
    evaluate,
    parse_metric,
    topk_masked,
)


def _task(targets, mask=None, candidates=None, cold=None, users=None):
    t = sp.csr_matrix(np.asarray(targets, dtype=np.float32))
    m = (
        sp.csr_matrix(t.shape, dtype=np.float32)
        if mask is None
        else sp.csr_matrix(np.asarray(mask, dtype=np.float32))
    )
    u = np.arange(t.shape[0]) if users is None else np.asarray(users)
    return RankingTask("t", u, t, m, m, candidates=candidates, cold=cold)


def _fixed(scores):
    s = torch.tensor(scores, dtype=torch.float32)
    return lambda users, hist: s[torch.as_tensor(users)]


def test_labels():
    assert NDCG(20).label == "NDCG@20"
    assert str(Recall(10)) == "Recall@10"
    assert parse_metric("ndcg@5") == NDCG(5)
    with pytest.raises(ValueError, match="NAME@K"):
        parse_metric("foo@3")
    with pytest.raises(ValueError):
        NDCG(0)


def test_hand_computed_single_user():
    # ranking by score: items 0,1,2,3,4 in that order; relevant = {1, 3, 5}; item 5 is last
    scores = [[5.0, 4.0, 3.0, 2.0, 1.0, 0.0]]
    targets = [[0, 1, 0, 1, 0, 1]]
    r = evaluate(
        _fixed(scores),
        _task(targets),
        [Recall(3), Precision(3), Hit(1), Hit(3), MRR(3), NDCG(3), NDCG(6)],
    )
    row = r.per_user.iloc[0]
    assert row["Recall@3"] == pytest.approx(1 / 3)
    assert row["Precision@3"] == pytest.approx(1 / 3)
    assert row["Hit@1"] == 0.0
    assert row["Hit@3"] == 1.0
    assert row["MRR@3"] == pytest.approx(0.5)
    # DCG@3 = 1/log2(3); IDCG@3 = 1 + 1/log2(3) + 1/log2(4)
    idcg3 = 1 + 1 / math.log2(3) + 1 / math.log2(4)
    assert row["NDCG@3"] == pytest.approx((1 / math.log2(3)) / idcg3)
    dcg6 = 1 / math.log2(3) + 1 / math.log2(5) + 1 / math.log2(7)
    assert row["NDCG@6"] == pytest.approx(dcg6 / idcg3)


def test_ndcg_ideal_uses_min_relevant_k():
    """One relevant item at rank 1 is a perfect NDCG, whatever K (KGAT's bug inflates others)."""
    scores = [[3.0, 2.0, 1.0, 0.0], [3.0, 2.0, 1.0, 0.0]]
    targets = [[1, 0, 0, 0], [0, 1, 1, 1]]
    r = evaluate(_fixed(scores), _task(targets), [NDCG(2)])
    assert r.per_user["NDCG@2"].iloc[0] == pytest.approx(1.0)
    # user 2: hit at rank 2 only; ideal over min(3, 2) = 2 ones, not over the 1 hit
    assert r.per_user["NDCG@2"].iloc[1] == pytest.approx(
        (1 / math.log2(3)) / (1 + 1 / math.log2(3))
    )


def test_masking_removes_training_items():
    scores = [[9.0, 8.0, 1.0, 0.5]]
    targets = [[0, 0, 1, 0]]
    mask = [[1, 1, 0, 0]]
    r = evaluate(_fixed(scores), _task(targets, mask), [Hit(1), Hit(2)])
    assert r.per_user["Hit@1"].iloc[0] == 1.0
    assert set(r.topk[0][:2].tolist()) == {2, 3}


def test_candidates_restrict_ranking():
    scores = [[9.0, 8.0, 1.0, 0.5]]
    targets = [[0, 0, 0, 1]]
    cand = np.array([False, False, False, True])
    r = evaluate(_fixed(scores), _task(targets, candidates=cand), [Hit(1), Hit(3)])
    assert r.per_user["Hit@1"].iloc[0] == 1.0
    assert (r.topk[0][1:] == -1).all()  # nothing else is a candidate


def test_user_without_predictions_scores_zero_not_dropped():
    scores = [[float("nan")] * 4, [-float("inf")] * 4, [1.0, 0.0, 0.0, 0.0]]
    targets = [[1, 0, 0, 0]] * 3
    r = evaluate(_fixed(scores), _task(targets), [NDCG(2), Recall(2), Hit(2), MRR(2), Precision(2)])
    assert len(r.per_user) == 3
    assert (r.per_user.iloc[:2, 1:] == 0).all().all()
    assert r.per_user["NDCG@2"].iloc[2] == 1.0


def test_cold_share_and_coverage():
    scores = [[4.0, 3.0, 2.0, 1.0], [1.0, 2.0, 3.0, 4.0]]
    targets = [[1, 0, 0, 0], [1, 0, 0, 0]]
    cold = np.array([False, True, True, False])
    r = evaluate(
        _fixed(scores),
        _task(targets, cold=cold),
        [ColdShare(2)],
        catalog=[Coverage(1), Coverage(2)],
    )
    assert r.per_user["ColdShare@2"].tolist() == [0.5, 0.5]
    assert r.catalog["Coverage@1"] == pytest.approx(2 / 4)
    assert r.catalog["Coverage@2"] == pytest.approx(4 / 4)


def _reference(scores, targets, mask, k):
    """Brute force: per user, sort unmasked items by score (stable on index), compute by hand."""
    out = {f"{n}@{k}": [] for n in ("Recall", "NDCG", "Hit", "MRR", "Precision")}
    for u in range(scores.shape[0]):
        s = scores[u].astype(np.float64).copy()
        s[mask[u]] = -np.inf
        order = sorted(range(len(s)), key=lambda i: (-s[i], i))[:k]
        order = [i for i in order if np.isfinite(s[i])]
        rel = set(np.flatnonzero(targets[u]).tolist())
        hits = [1.0 if i in rel else 0.0 for i in order] + [0.0] * (k - len(order))
        n_rel = len(rel)
        out[f"Recall@{k}"].append(sum(hits) / n_rel if n_rel else 0.0)
        out[f"Precision@{k}"].append(sum(hits) / k)
        out[f"Hit@{k}"].append(1.0 if sum(hits) else 0.0)
        first = next((r + 1 for r, h in enumerate(hits) if h), None)
        out[f"MRR@{k}"].append(1.0 / first if first else 0.0)
        dcg = sum(h / math.log2(r + 2) for r, h in enumerate(hits))
        idcg = sum(1 / math.log2(r + 2) for r in range(min(n_rel, k)))
        out[f"NDCG@{k}"].append(dcg / idcg if idcg else 0.0)
    return {m: np.array(v) for m, v in out.items()}


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("k", [1, 5, 20])
def test_against_bruteforce_reference(seed, k):
    rng = np.random.default_rng(seed)
    n_users, n_items = 57, 83
    # distinct scores so that the reference's tie order does not matter
    scores = rng.permutation(n_users * n_items).reshape(n_users, n_items).astype(np.float32)
    targets = rng.random((n_users, n_items)) < 0.08
    mask = (rng.random((n_users, n_items)) < 0.2) & ~targets
    targets[3] = False  # a user without targets still gets a row (all zero)
    task = _task(targets, mask)
    metrics = [Recall(k), NDCG(k), Hit(k), MRR(k), Precision(k)]
    r = evaluate(_fixed(scores), task, metrics, batch_size=16)
    ref = _reference(scores, targets, mask, k)
    for m in metrics:
        np.testing.assert_allclose(r.per_user[m.label].to_numpy(), ref[m.label], atol=1e-6)


def test_topk_masked_marks_invalid_slots():
    s = torch.tensor([[1.0, float("nan"), 3.0]])
    items, valid = topk_masked(s, 3, mask=torch.tensor([[False, False, True]]))
    assert items[0, 0].item() == 0
    assert valid.tolist() == [[True, False, False]]


def test_default_metrics_labels():
    labels = [m.label for m in default_metrics((10, 20))]
    assert "NDCG@20" in labels and "ColdShare@10" in labels and len(labels) == 12
