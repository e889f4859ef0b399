"""Splits: RecBole's per-user counts, determinism, the cold protocols, save/load."""

from __future__ import annotations

import json

import numpy as np
import pytest

from kgrec.data import COLD_TEST, COLD_VALID, TEST, TRAIN, VALID, WARM
from kgrec.errors import DataError
from kgrec.eval import (
    Split,
    build_protocol,
    cold_item_split,
    cold_items_task,
    cold_user_split,
    make_split,
    positives,
    random_split,
    recbole_split_counts,
    split_frame,
    temporal_split,
)
from kgrec.testing import synthetic_dataset


def _recbole_calcu_split_ids(tot, ratios):
    """RecBole 1.2.1 Dataset._calcu_split_ids, transcribed for one group (the reference)."""
    cnt = [int(ratios[i] * tot) for i in range(len(ratios))]
    cnt[0] = tot - sum(cnt[1:])
    for i in range(1, len(ratios)):
        if cnt[0] <= 1:
            break
        if 0 < ratios[-i] * tot < 1:
            cnt[-i] += 1
            cnt[0] -= 1
    return cnt


def test_counts_match_recbole_rounding():
    n = np.arange(0, 60)
    got = recbole_split_counts(n, [0.8, 0.1, 0.1])
    for tot in n:
        assert got[tot].tolist() == _recbole_calcu_split_ids(int(tot), [0.8, 0.1, 0.1]), tot
    assert got[25].tolist() == [21, 2, 2]
    assert got[3].tolist() == [1, 1, 1]
    assert got[2].tolist() == [1, 0, 1]
    assert got[1].tolist() == [1, 0, 0]


@pytest.fixture(scope="module")
def pos():
    return positives(synthetic_dataset(50, 30, seed=1), min_rating=4)


def test_positives_filter_and_vocab(pos):
    ds = synthetic_dataset(50, 30, seed=1)
    frame = ds.interactions.frame
    assert len(pos) == int((frame["rating"] >= 4).sum())
    assert len(pos.users) == frame.loc[frame.rating >= 4, "user"].nunique()
    assert pos.notes and "rating >= 4" in pos.notes[0]
    with pytest.raises(DataError, match="no rating column"):
        positives(synthetic_dataset(10, 10, with_ratings=False), min_rating=4)


def test_random_split_per_user_ratios_and_determinism(pos):
    a = random_split(pos, seed=5)
    b = random_split(pos, seed=5)
    c = random_split(pos, seed=6)
    assert np.array_equal(a.part, b.part)
    assert not np.array_equal(a.part, c.part)
    counts = np.bincount(pos.user, minlength=len(pos.users))
    expected = recbole_split_counts(counts, [0.8, 0.1, 0.1])
    for code in (TRAIN, VALID, TEST):
        got = np.bincount(pos.user[a.part == code], minlength=len(pos.users))
        assert np.array_equal(got, expected[:, code])


def test_random_split_is_recbole_shuffle_then_group(pos):
    """Within each user, parts follow the global torch.randperm order: train, valid, test."""
    import torch

    s = random_split(pos, seed=11)
    perm = torch.randperm(len(pos), generator=torch.Generator().manual_seed(11)).numpy()
    rank = np.empty(len(pos), dtype=np.int64)
    rank[perm] = np.arange(len(pos))
    for u in range(len(pos.users)):
        rows = np.flatnonzero(pos.user == u)
        parts = s.part[rows[np.argsort(rank[rows])]]
        assert np.all(np.diff(parts) >= 0)


def test_temporal_split_leaves_last_out(pos):
    s = temporal_split(pos)
    for u in range(len(pos.users)):
        rows = np.flatnonzero(pos.user == u)
        last = rows[np.argmax(pos.timestamp[rows])]
        if len(rows) >= 2:
            assert s.part[last] == TEST
        assert (s.part[rows] == TEST).sum() == (1 if len(rows) >= 2 else 0)
        assert (s.part[rows] == VALID).sum() == (1 if len(rows) >= 3 else 0)


def test_cold_item_split(pos):
    s = cold_item_split(pos, seed=3, cold_share=0.2)
    n_present = len(np.unique(pos.item))
    cold = s.item_role != WARM
    assert cold.sum() == round(0.2 * n_present)
    # cold items never appear in training; cold-valid -> valid, cold-test -> test
    assert not np.isin(pos.item[s.part == TRAIN], np.flatnonzero(cold)).any()
    assert np.all(s.part[s.item_role[pos.item] == COLD_VALID] == VALID)
    assert np.all(s.part[s.item_role[pos.item] == COLD_TEST] == TEST)
    proto = build_protocol(s)
    names = [t.name for t in proto.tests]
    assert names == ["warm", "cold", "overall"]
    warm, coldt, overall = proto.tests
    assert coldt.candidates.sum() == (s.item_role == COLD_TEST).sum()
    assert not warm.candidates[cold].any()
    assert overall.candidates is None
    assert overall.targets.nnz == warm.targets.nnz + coldt.targets.nnz
    # the mirror task on the cold validation items: all their validation rows, nothing else
    cv = cold_items_task(s, "valid")
    assert cv.name == "cold-valid" and cv.mask.nnz == 0  # candidates are unseen: no mask
    assert (cv.history != s.matrix(TRAIN)).nnz == 0  # users' known items, for fold-in
    assert np.array_equal(cv.candidates, s.item_role == COLD_VALID)
    assert cv.targets.nnz == int((s.item_role[pos.item] == COLD_VALID).sum())
    assert not cv.targets[:, ~cv.candidates].nnz


def test_cold_user_split(pos):
    s = cold_user_split(pos, seed=4, reveal_k=(0, 1, 3))
    cold_users = np.flatnonzero(s.user_role != WARM)
    assert not np.isin(pos.user[s.part == TRAIN], cold_users).any()
    proto = build_protocol(s)
    names = [t.name for t in proto.tests]
    assert names == ["warm", "cold-user@0", "cold-user@1", "cold-user@3"]
    t0, t1, t3 = proto.tests[1:]
    assert np.array_equal(t0.users, t3.users)  # same users for every k
    assert t0.history.nnz == 0
    assert t1.history[t1.users].getnnz(axis=1).tolist() == [1] * len(t1.users)
    assert t3.targets.nnz == t0.targets.nnz - 3 * len(t0.users)
    # revealed items are masked and never targets
    assert (t3.targets.multiply(t3.mask)).nnz == 0


def test_save_load_roundtrip(pos, tmp_path):
    for proto in ("random", "temporal", "cold-item", "cold-user"):
        s = make_split(pos, proto, seed=9)
        path = s.save(tmp_path / f"{proto}.npz")
        meta = json.loads(path.with_suffix(".json").read_text())
        assert meta["protocol"] == proto
        t = Split.load(path)
        assert np.array_equal(t.part, s.part) and np.array_equal(t.item, s.item)
        assert t.users == s.users and t.items == s.items
        for name in ("item_role", "user_role", "reveal"):
            a, b = getattr(s, name), getattr(t, name)
            assert (a is None and b is None) or np.array_equal(a, b)
        assert t.counts() == s.counts()
    frame = split_frame(s)
    assert set(frame["part"]) <= {"train", "valid", "test"}


def test_bad_inputs(pos, tmp_path):
    with pytest.raises(DataError, match="unknown protocol"):
        make_split(pos, "nope")
    with pytest.raises(DataError, match="ratios"):
        random_split(pos, ratios=(0.5, 0.5))
    with pytest.raises(DataError, match="share"):
        cold_item_split(pos, cold_share=1.5)
    with pytest.raises(DataError, match="both needed"):
        Split.load(tmp_path / "missing.npz")


def test_split_over_given_vocabulary():
    """Splitting over a graph's vocabulary keeps items without positives as candidates."""
    from kgrec.data import Vocabulary

    ds = synthetic_dataset(30, 20, seed=2)
    items = Vocabulary([*(f"i{j}" for j in range(20)), "extra-1", "extra-2"], node_type="item")
    p = positives(ds, min_rating=4, items=items)
    s = random_split(p, seed=1)
    assert s.n_items == 22 and s.items == items
    proto = build_protocol(s)
    assert proto.tests[0].n_candidates == 22
