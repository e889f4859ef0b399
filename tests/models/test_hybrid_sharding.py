"""The hybrid's data-parallel batches: the pair-weighted sum of the ranks' losses (and their
gradients) equals the whole batch's, so N processes take the one-process step."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from kgrec.models.hybrid._recommender import HybridConfig, HybridRecommender, UserBatchSampler
from kgrec.models.hybrid._sharding import shard_batch, shardable
from kgrec.testing import kgat_like_lists


def _train():
    import scipy.sparse as sp

    train, _ = kgat_like_lists(n_users=60, n_items=40, seed=3)
    rows = np.concatenate([[u] * len(t) for u, t in enumerate(train)])
    cols = np.concatenate(train)
    return sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(60, 40))


@pytest.mark.parametrize("ranking", ["softmax", "bpr"])
def test_ranks_losses_and_gradients_sum_to_the_whole_batch(ranking: str) -> None:
    m = _train()
    model = HybridRecommender(HybridConfig(dim=8, ranking=ranking, id_dropout=0.0))
    model._start_fit(m)
    mod = model._build_module(m)
    batch = next(iter(UserBatchSampler(m, batch_size=25, seed=0).batches(0)))

    def grads(b):
        mod.zero_grad(set_to_none=True)
        loss = mod.loss(b)
        loss.backward()
        return float(loss.detach()), [
            p.grad.clone() for p in mod.parameters() if p.grad is not None
        ]

    whole, g_whole = grads(batch)
    total, g_sum = 0.0, None
    weights = []
    for rank in range(3):
        part, w = shard_batch(batch, rank, 3)
        weights.append(w)
        assert part.rows.max() < len(part.users)
        loss, g = grads(part)
        total += w * loss
        g_sum = (
            [w * x for x in g]
            if g_sum is None
            else [a + w * x for a, x in zip(g_sum, g, strict=True)]
        )
    assert sum(weights) == pytest.approx(1.0)
    assert total == pytest.approx(whole, rel=1e-5)
    for a, b in zip(g_sum, g_whole, strict=True):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-4)


def test_non_pair_loss_terms_are_not_sharded_and_short_batches_go_whole() -> None:
    assert shardable(HybridConfig())
    assert not shardable(HybridConfig(reg=1e-4))
    m = _train()
    batch = next(iter(UserBatchSampler(m, batch_size=2, seed=0).batches(0)))
    part, w = shard_batch(batch, 1, 3)
    assert part is batch and w == pytest.approx(1 / 3)
