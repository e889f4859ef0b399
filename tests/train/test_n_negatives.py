"""Several BPR negatives per positive (``TrainingOptions.n_negatives``) for MF and LightGCN."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from kgrec.errors import SpecError
from kgrec.models.cf.lightgcn import LightGCN
from kgrec.models.cf.mf_bpr import MFBPR, MFModule
from kgrec.testing import synthetic_matrix
from kgrec.train import BPRSampler, PairBatch, TrainingOptions


def test_n_negatives_is_a_checked_option_with_an_unchanged_default() -> None:
    assert TrainingOptions().n_negatives == 1
    assert MFBPR.default_options.n_negatives == 1
    with pytest.raises(SpecError, match="n_negatives"):
        TrainingOptions(n_negatives=0)
    opts = TrainingOptions.from_dict({**TrainingOptions().to_dict(), "n_negatives": 4})
    assert opts.n_negatives == 4


def test_sampler_draws_k_true_negatives_per_pair() -> None:
    m = synthetic_matrix(40, 30)
    s = BPRSampler(m, batch_size=16, seed=1, n_negatives=3)
    dense = m.toarray()
    rows = 0
    for b in s.batches(0):
        assert b.neg.shape == (len(b.user), 3)
        for k in range(3):
            assert not dense[b.user.numpy(), b.neg[:, k].numpy()].any()
        rows += len(b.user)
    assert rows == m.nnz  # still one pass over the positives


def test_mf_loss_with_k_negatives_is_the_mean_of_the_pairwise_losses() -> None:
    torch.manual_seed(0)
    mod = MFModule(5, 7, 4)
    user, pos = torch.tensor([0, 1, 2]), torch.tensor([1, 2, 3])
    neg = torch.tensor([[4, 5], [6, 0], [1, 4]])
    k2 = mod.loss(PairBatch(user, pos, neg))
    singles = [mod.loss(PairBatch(user, pos, neg[:, k])) for k in range(2)]
    torch.testing.assert_close(k2, (singles[0] + singles[1]) / 2)


@pytest.mark.parametrize("cls", [MFBPR, LightGCN])
def test_models_train_with_several_negatives(cls: type) -> None:
    m = synthetic_matrix(60, 40)
    opts = cls.default_options.replace(epochs=2, n_negatives=4, patience=0)
    model = cls(dim=8, options=opts).fit(m)
    assert model.fit_options_.n_negatives == 4
    one = cls(dim=8, options=opts.replace(n_negatives=1)).fit(m)
    assert np.isfinite(np.asarray(model.score(np.arange(5)))).all()
    # a different objective: the trained vectors differ from the one-negative run's
    assert not np.allclose(model.user_vecs_, one.user_vecs_)
