"""User-ID dropout (DropoutNet on users) in the hybrid's training loss."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F

from kgrec.models import HybridRecommender
from kgrec.models.hybrid._user_dropout import drop_user_ids
from kgrec.train import TrainingOptions


def test_dropped_users_are_the_fold_in_of_some_of_their_items():
    torch.manual_seed(0)
    rows = torch.tensor([0, 0, 0, 0, 1, 1, 2, 3, 3, 3])  # user 2 has one item: never dropped
    pos = torch.tensor([1, 2, 3, 4, 5, 6, 7, 0, 8, 9])
    users = F.normalize(torch.randn(4, 6), dim=1)
    items = F.normalize(torch.randn(10, 6), dim=1)
    d = drop_user_ids(users, items, rows, pos, rate=0.999, max_k=20)
    assert d.shown.shape == (4, 10) and d.keep.shape == rows.shape
    for u in range(4):
        mine = pos[rows == u]
        shown = torch.nonzero(d.shown[u]).flatten()
        if u == 2:
            assert len(shown) == 0 and torch.equal(d.users[u], users[u])
            continue
        # 1 .. |items| - 1 of the user's own items shown; the rest stay targets
        assert 1 <= len(shown) <= len(mine) - 1
        assert set(shown.tolist()) <= set(mine.tolist())
        kept = pos[(rows == u) & d.keep]
        assert set(kept.tolist()) == set(mine.tolist()) - set(shown.tolist())
        assert torch.allclose(d.users[u], F.normalize(items[shown].sum(0), dim=0), atol=1e-6)
    none = drop_user_ids(users, items, rows, pos, rate=0.0, max_k=20)
    assert torch.equal(none.users, users) and bool(none.keep.all()) and not none.shown.any()


def test_hybrid_trains_with_user_id_dropout_and_is_deterministic():
    rng = np.random.default_rng(0)
    train = sp.csr_matrix((rng.random((60, 40)) < 0.2).astype(np.float32))
    opts = TrainingOptions(epochs=2, batch_size=16, seed=3)

    def fit(rate: float) -> np.ndarray:
        m = HybridRecommender(
            dim=8, layers=1, cf_blend="none", new_users=False, user_id_dropout=rate, options=opts
        )
        return m.fit(train).item_vecs_

    a, b, plain = fit(0.5), fit(0.5), fit(0.0)
    assert np.array_equal(a, b) and not np.allclose(a, plain)
