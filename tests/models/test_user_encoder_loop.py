"""The user encoder trains through the shared loop (kgrec.train): progress reports, checkpoints
and resume, deterministic batches per epoch."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from kgrec.models.hybrid._new_user_tasks import ValidTask
from kgrec.models.hybrid._user_encoder import DroppedIdSampler, UserEncoder, UserEncoderConfig
from kgrec.train import CHECKPOINT_NAME, epoch_reporter
from tests.models.test_new_users import N_ITEMS, first_users, planted

CFG = UserEncoderConfig(epochs=8, patience=8, batch_size=16, max_steps_per_epoch=4)


def _data(seed: int = 3):
    r, f, _ = planted(seed)
    train, val = first_users(r), np.arange(200, r.shape[0])
    items = np.random.default_rng(seed).normal(size=(N_ITEMS, 8)).astype(np.float32)
    empty = sp.csr_matrix((len(val), N_ITEMS), dtype=np.float32)
    return train, f, items, [ValidTask(0, val, empty, r[val])]


def _weights(enc: UserEncoder) -> dict[str, np.ndarray]:
    return enc.state("")


def test_encoder_epochs_are_reported_by_the_shared_loop():
    train, f, items, valid = _data()
    got = []
    with epoch_reporter(got.append):
        enc = UserEncoder(CFG, seed=0).fit(train, f, items, valid)
    assert [r.epoch for r in got] == list(range(len(enc.curve_)))
    assert [round(r.valid, 5) for r in got] == enc.curve_
    assert got[-1].best_epoch == enc.best_epoch_ == enc.result_.best_epoch
    assert enc.result_.epochs_run == len(enc.curve_)


def test_an_interrupted_encoder_fit_resumes_to_the_same_weights(tmp_path):
    train, f, items, valid = _data()
    whole = UserEncoder(CFG, seed=0).fit(train, f, items, valid)

    def stop_at_epoch_4(report) -> None:  # called before the loop writes that epoch's checkpoint
        if report.epoch == 4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt), epoch_reporter(stop_at_epoch_4):
        UserEncoder(CFG, seed=0).fit(train, f, items, valid, checkpoint_dir=str(tmp_path))
    assert (tmp_path / CHECKPOINT_NAME).is_file()
    resumed = UserEncoder(CFG, seed=0).fit(
        train, f, items, valid, checkpoint_dir=str(tmp_path), resume=True
    )
    assert resumed.result_.resumed_from == 4
    assert resumed.curve_ == whole.curve_ and resumed.best_epoch_ == whole.best_epoch_
    a, b = _weights(whole), _weights(resumed)
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def test_sampler_batches_are_a_function_of_the_epoch():
    train = _data()[0]
    users = np.flatnonzero(train.getnnz(axis=1) >= 2)

    def make() -> DroppedIdSampler:
        return DroppedIdSampler(
            train, users, lambda b: None, batch_size=16, max_steps_per_epoch=3, max_k=20, seed=1
        )

    seq = make()
    epochs = [list(seq.batches(e)) for e in range(3)]
    assert len(epochs[0]) == len(seq) == 3
    direct = make()
    for e in (2, 0, 1, 2):
        again = list(direct.batches(e))
        assert len(again) == len(epochs[e])
        for (s0, t0, _), (s1, t1, _) in zip(epochs[e], again, strict=True):
            assert torch.equal(s0, s1) and torch.equal(t0, t1)
            assert float((s0 * t0).sum()) == 0.0 and bool(((s0 + t0) <= 1).all())
    assert not torch.equal(epochs[0][0][0] + epochs[0][0][1], epochs[1][0][0] + epochs[1][0][1])


def test_every_rank_fits_the_encoder_alone(monkeypatch):
    """Inside a torch.distributed group (faked here: rank 0 of 2) the encoder's training does
    not all-reduce gradients (``train_loop(local=True)``), and fits exactly as one process."""
    import kgrec.train._loop as loop

    train, f, items, valid = _data()
    alone = UserEncoder(CFG, seed=0).fit(train, f, items, valid)
    synced = []
    monkeypatch.setattr(loop, "world", lambda: (0, 2))
    monkeypatch.setattr(loop, "sync_gradients", lambda *a: synced.append(1))
    in_group = UserEncoder(CFG, seed=0).fit(train, f, items, valid)
    assert synced == []
    a, b = _weights(alone), _weights(in_group)
    assert all(np.array_equal(a[k], b[k]) for k in a)

    class Tiny(torch.nn.Module):  # the same world, without local: the loop does sync
        def __init__(self) -> None:
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))

        def loss(self, batch) -> torch.Tensor:
            return ((self.w - batch) ** 2).sum()

    class One:
        def batches(self, epoch):
            return [torch.ones(1)]

        def __len__(self) -> int:
            return 1

    from kgrec.train import TrainingOptions

    loop.train_loop(Tiny(), One(), TrainingOptions(epochs=2, patience=0))
    assert len(synced) == 2
