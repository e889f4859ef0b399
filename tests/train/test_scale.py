"""Training that scales: sparse embedding updates, batch/lr scaling, EASE's memory refusal."""

from __future__ import annotations

import pytest
import torch

from kgrec.errors import DataError
from kgrec.models.cf.ease import EASE, ease_memory_bytes
from kgrec.models.cf.mf_bpr import MFBPR, MFModule
from kgrec.testing import synthetic_matrix
from kgrec.train import BPRSampler, TrainingOptions
from kgrec.train._optim import CombinedOptimizer, make_optimizer


def test_mf_updates_only_the_rows_a_batch_touched() -> None:
    m = synthetic_matrix(50, 30)
    mod = MFModule(50, 30, 8)
    opt = make_optimizer(mod, 1e-2)
    assert isinstance(opt, CombinedOptimizer)
    batch = next(iter(BPRSampler(m, batch_size=4, seed=0).batches(0)))
    before = mod.user.weight.detach().clone()
    opt.zero_grad()
    mod.loss(batch).backward()
    assert mod.user.weight.grad.is_sparse
    opt.step()
    changed = torch.nonzero((mod.user.weight.detach() != before).any(1)).flatten()
    assert set(changed.tolist()) == set(batch.user.tolist())
    # its state dict round-trips (checkpoints)
    opt2 = make_optimizer(MFModule(50, 30, 8), 1e-2)
    opt2.load_state_dict(opt.state_dict())


def test_weight_decay_falls_back_to_dense_adam() -> None:
    mod = MFModule(5, 4, 2)
    opt = make_optimizer(mod, 1e-2, weight_decay=1e-4)
    assert isinstance(opt, torch.optim.Adam) and not mod.user.sparse


def test_batch_and_lr_scale_with_the_data() -> None:
    o = MFBPR.default_options
    assert o.scaled(45_000) is o  # ml-100k-sized data keep their settings
    big = o.scaled(652_514)
    assert -(-652_514 // big.batch_size) == o.max_steps_per_epoch
    few = o.replace(scaled_steps_per_epoch=3).scaled(652_514)
    assert few.batch_size == -(-652_514 // 3)  # past the 128-step cap: sized for 3 steps
    assert big.lr == pytest.approx(o.lr * (big.batch_size / o.batch_size) ** 0.5)
    with pytest.raises(Exception, match="max_steps_per_epoch"):
        TrainingOptions(max_steps_per_epoch=0)
    with pytest.raises(Exception, match="scaled_steps_per_epoch"):
        TrainingOptions(scaled_steps_per_epoch=0)


def test_ease_refuses_with_the_estimated_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    from kgrec.models.cf import ease

    assert ease_memory_bytes(24_915) > 16 * 2**30  # amazon-book: ~16 GiB
    monkeypatch.setattr(ease, "available_memory_bytes", lambda: 1024)
    with pytest.raises(DataError, match=r"needs about .* GiB .* available"):
        EASE().fit(synthetic_matrix(20, 12))
