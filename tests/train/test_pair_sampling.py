"""BPR pair sampling: per interaction (the default) or per user (KGAT's sampler)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from kgrec.errors import SpecError
from kgrec.models.cf.mf_bpr import MFBPR
from kgrec.testing import synthetic_matrix
from kgrec.train import BPRSampler, TrainingOptions


def _skewed() -> sp.csr_matrix:
    """User 0 has 40 positives, users 1..9 one each, user 10 none."""
    rows = [0] * 40 + list(range(1, 10))
    cols = list(range(40)) + list(range(40, 49))
    return sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(11, 60))


def _pairs(sampler: BPRSampler, epoch: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    bs = list(sampler.batches(epoch))
    return tuple(
        np.concatenate([getattr(b, k).numpy() for b in bs]) for k in ("user", "pos", "neg")
    )


def test_user_pairs_weigh_every_user_alike_and_are_true_positives() -> None:
    m = _skewed()
    counts = np.zeros(m.shape[0])
    s = BPRSampler(m, batch_size=16, seed=3, pairs="user")
    assert len(s) == -(-m.nnz // 16)  # as many pairs per epoch as interactions
    for epoch in range(200):
        u, p, n = _pairs(s, epoch)
        assert len(u) == m.nnz
        assert np.all(np.asarray(m[u, p]).ravel() == 1)  # drawn positives are positives
        assert not np.any(np.asarray(m[u, n]).ravel())  # negatives never are
        counts += np.bincount(u, minlength=m.shape[0])
    assert counts[10] == 0  # a user without positives is never drawn
    share = counts[:10] / counts.sum()
    np.testing.assert_allclose(share, 0.1, atol=0.02)  # uniform over the 10 active users
    # the default passes over interactions: user 0 takes 40 of 49 pairs
    u, _, _ = _pairs(BPRSampler(m, batch_size=16, seed=3), 0)
    assert np.sum(u == 0) == 40


def test_user_pairs_are_a_function_of_seed_and_epoch() -> None:
    m = synthetic_matrix(40, 30)
    a = _pairs(BPRSampler(m, batch_size=8, seed=1, pairs="user"), 2)
    b = _pairs(BPRSampler(m, batch_size=8, seed=1, pairs="user"), 2)
    c = _pairs(BPRSampler(m, batch_size=8, seed=1, pairs="user"), 3)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a[0], c[0])


def test_pair_sampling_is_a_checked_training_option() -> None:
    with pytest.raises(SpecError, match="pair_sampling"):
        TrainingOptions(pair_sampling="items")
    with pytest.raises(ValueError, match="pairs"):
        BPRSampler(_skewed(), pairs="items")
    assert TrainingOptions().pair_sampling == "interaction"  # the default is unchanged
    m = synthetic_matrix(60, 40)
    opts = MFBPR.default_options.replace(epochs=2, pair_sampling="user", patience=0)
    model = MFBPR(dim=8, options=opts).fit(m)
    assert model.fit_options_.pair_sampling == "user"
    assert bool(torch.isfinite(model.score(np.arange(5))).all())
