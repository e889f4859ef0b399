"""The user-text part: a user's words embedded by the model's own text path, blended on validation."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from kgrec.eval import RankingTask, evaluate, parse_metric
from kgrec.models.hybrid._user_text import TextBlend, fit_text_blend, text_item_scores


class _Model:
    """Items on a circle; a text vector is mapped to the item space by a fixed linear map."""

    def __init__(self, n_items: int = 40, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.items = rng.normal(size=(n_items, 8)).astype(np.float32)
        self.map = rng.normal(size=(5, 8)).astype(np.float32)

    def embed_items(self, text: np.ndarray) -> np.ndarray:
        return text @ self.map

    def item_vectors(self) -> torch.Tensor:
        return torch.from_numpy(self.items)


def _task(targets: np.ndarray, n_items: int) -> RankingTask:
    users = np.arange(len(targets))
    t = sp.csr_matrix(
        (np.ones(len(users)), (users, targets)), shape=(len(users), n_items), dtype=np.float32
    )
    empty = sp.csr_matrix((len(users), n_items), dtype=np.float32)
    return RankingTask("cold-user-valid@1", users, t, empty, empty)


def test_text_item_scores_are_cosines():
    m = _Model()
    text = np.random.default_rng(1).normal(size=(3, 5)).astype(np.float32)
    s = text_item_scores(m, text).numpy()
    v = text @ m.map
    want = (v / np.linalg.norm(v, axis=1, keepdims=True)) @ (
        m.items / np.linalg.norm(m.items, axis=1, keepdims=True)
    ).T
    np.testing.assert_allclose(s, want, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="non-empty"):
        text_item_scores(m, np.zeros((0, 5), np.float32))


def test_weight_zero_and_users_without_text_keep_their_scores():
    base = torch.randn(4, 10)
    assert torch.equal(TextBlend(0.0).blend(base, torch.randn(4, 10)), base)
    fn = TextBlend(1.0).score_fn(lambda u, h: base[u], torch.randn(1, 10), {0: 0})
    out = fn(np.array([0, 1, 2, 3]), None)
    # user 0 has text: order changes; users 1..3 have none: their order is their base order
    for r in (1, 2, 3):
        assert torch.equal(out[r].argsort(), base[r].argsort())


def test_fit_chooses_text_only_when_it_helps_validation_users():
    m = _Model(n_items=40)
    rng = np.random.default_rng(3)
    n = 60
    targets = rng.integers(0, 40, size=n)
    # each user's text says which item they want: the map's pseudo-inverse of that item
    pinv = np.linalg.pinv(m.map)
    informative = (m.items[targets] @ pinv).astype(np.float32)
    noise = rng.normal(size=(n, 5)).astype(np.float32)
    base = torch.from_numpy(rng.normal(size=(n, 40)).astype(np.float32))
    task = _task(targets, 40)
    rows = {u: u for u in range(n)}
    ndcg = parse_metric("NDCG@10")

    def metric(fn, t):
        return float(evaluate(fn, t, [ndcg]).per_user[ndcg.label].mean())

    def score(u, h):
        return base[u]

    good = fit_text_blend(score, [(task, text_item_scores(m, informative), rows)], metric)
    assert good.weight > 0 and good.curve[good.weight] > good.curve[0.0]
    # scores that already rank each target first: noise text can only hurt, so weight 0
    sharp = base.clone()
    sharp[torch.arange(n), torch.from_numpy(targets)] += 10.0
    bad = fit_text_blend(lambda u, h: sharp[u], [(task, text_item_scores(m, noise), rows)], metric)
    assert bad.weight == 0.0 and bad.curve[0.0] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="at least one"):
        fit_text_blend(score, [], metric)
