"""The shared training loop: order of operations, early stopping, checkpoints and resume."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from kgrec.errors import KgrecError, SpecError
from kgrec.testing import synthetic_matrix
from kgrec.train import CHECKPOINT_NAME, BPRSampler, TrainingOptions, train_loop


class Quadratic(nn.Module):
    """loss = ||w - target||^2 on each batch's target: a convex toy model with loss(batch)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.w = nn.Parameter(torch.randn(3))

    def loss(self, batch: torch.Tensor) -> torch.Tensor:
        return ((self.w - batch) ** 2).sum()


class Batches:
    def __init__(self, n: int = 4) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    def batches(self, epoch: int):
        g = torch.Generator().manual_seed(1000 + epoch)
        for _ in range(self.n):
            yield torch.ones(3) + 0.01 * torch.randn(3, generator=g)


def _validate(model: Quadratic) -> float:
    return -float(((model.w.detach() - 1) ** 2).sum())


def test_loop_minimises_and_restores_best():
    m = Quadratic()
    res = train_loop(
        m, Batches(), TrainingOptions(epochs=40, lr=0.1, patience=0), validate=lambda: _validate(m)
    )
    assert res.epochs_run == 40
    assert torch.allclose(m.w.detach(), torch.ones(3), atol=0.05)
    assert res.best_metric == pytest.approx(_validate(m))


def test_zero_grad_each_step():
    """With gradients accumulating, SGD on this loss would diverge; the loop must not."""
    m = Quadratic()
    opt = torch.optim.SGD(m.parameters(), lr=0.2)
    train_loop(m, Batches(8), TrainingOptions(epochs=5, patience=0), optimizer=opt)
    assert torch.allclose(m.w.detach(), torch.ones(3), atol=0.05)


def test_resume_equals_uninterrupted(tmp_path):
    opts = TrainingOptions(epochs=8, lr=0.05, patience=0, checkpoint_dir=str(tmp_path / "a"))
    full = Quadratic()
    r_full = train_loop(full, Batches(), opts, validate=lambda: _validate(full))

    part = Quadratic()
    train_loop(
        part,
        Batches(),
        opts.replace(epochs=3, checkpoint_dir=str(tmp_path / "b")),
        validate=lambda: _validate(part),
    )
    assert (tmp_path / "b" / CHECKPOINT_NAME).is_file()
    resumed = Quadratic()  # a fresh process would start from new weights
    r = train_loop(
        resumed,
        Batches(),
        opts.replace(checkpoint_dir=str(tmp_path / "b"), resume=True),
        validate=lambda: _validate(resumed),
    )
    assert r.resumed_from == 3
    assert torch.allclose(resumed.w, full.w, atol=1e-6)
    assert [h["loss"] for h in r.history] == pytest.approx([h["loss"] for h in r_full.history])


def test_early_stopping_counts_rounds():
    m = Quadratic()
    values = iter([0.1, 0.3, 0.2, 0.2, 0.2, 0.9])
    res = train_loop(
        m, Batches(), TrainingOptions(epochs=10, patience=3), validate=lambda: next(values)
    )
    assert res.stopped_early and res.best_epoch == 1 and res.epochs_run == 5


def test_nan_loss_raises():
    class Bad(Quadratic):
        def loss(self, batch):
            return self.w.sum() * float("nan")

    with pytest.raises(KgrecError, match="loss became"):
        train_loop(Bad(), Batches(), TrainingOptions(epochs=1))


def test_options_validate_and_roundtrip():
    o = TrainingOptions(epochs=3, lr=0.1)
    assert TrainingOptions.from_dict(o.to_dict()) == o
    with pytest.raises(SpecError, match=r"training\.epochs"):
        TrainingOptions(epochs=0)
    with pytest.raises(SpecError, match="unknown training option"):
        TrainingOptions.from_dict({"epochz": 3})


def test_bpr_sampler_never_draws_positives():
    x = synthetic_matrix(30, 12, density=0.5, seed=2)
    s = BPRSampler(x, batch_size=64, seed=1)
    dense = x.toarray() > 0
    n = 0
    for batch in s.batches(0):
        u, p, neg = batch.user.numpy(), batch.pos.numpy(), batch.neg.numpy()
        assert dense[u, p].all()
        assert not dense[u, neg].any()
        n += len(u)
    assert n == x.nnz and len(s) == -(-x.nnz // 64)
    # deterministic per epoch, different across epochs
    a = next(iter(s.batches(3))).neg
    b = next(iter(s.batches(3))).neg
    c = next(iter(s.batches(4))).neg
    assert torch.equal(a, b) and not torch.equal(a, c)
