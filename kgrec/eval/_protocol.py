"""Protocols: which ranking tasks a split yields for validation and for test.

* ``random`` / ``temporal`` / ``given``: validation ranks all items, masking training items; test ranks all
  items, masking training and validation items.
* ``cold-item``: validation = warm validation (warm items, cold items masked: CF baselines cannot
  score them, and early stopping should not depend on that). Test tasks:
  ``warm`` (warm test interactions, cold items masked), ``cold`` (interactions of the cold test
  items, ranked among the cold test items only), ``overall`` (both, ranked among every item, with
  training and validation items masked).
* ``cold-user``: validation = warm users' validation. Test tasks: ``warm`` (warm users), and
  ``cold-user@k`` for each ``k``: held-out test users with their first ``k`` interactions (in the
  split's seeded reveal order) revealed as history and masked, the rest as targets. Only held-out
  users with more than ``max(k)`` interactions take part, so all ``k`` share one user set; the
  number left out is recorded in the task notes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from kgrec.data._positives import TEST, TRAIN, VALID
from kgrec.data._split import COLD_TEST, COLD_VALID, WARM, Split
from kgrec.eval._rank import RankingTask


@dataclass(frozen=True)
class Protocol:
    """The tasks of one split: one validation task (early stopping) and the test tasks."""

    split: Split
    valid: RankingTask
    tests: tuple[RankingTask, ...]

    def describe(self) -> dict:
        return {
            "split": self.split.describe(),
            "valid": self.valid.describe(),
            "tests": [t.describe() for t in self.tests],
        }


def _users_with(m: sp.csr_matrix) -> np.ndarray:
    return np.flatnonzero(m.getnnz(axis=1) > 0)


def _restrict(m: sp.csr_matrix, items: np.ndarray) -> sp.csr_matrix:
    """Keep only the columns flagged in ``items`` (bool per item)."""
    d = sp.diags(items.astype(np.float32))
    out = (m @ d).tocsr()
    out.eliminate_zeros()
    return out


def cold_items_task(split: Split, which: str = "test") -> RankingTask:
    """The interactions of the held-out ``which`` (``test`` or ``valid``) items of a cold-item
    split, ranked among those items only (no history, nothing masked): the protocol's ``cold``
    test task, or its mirror on the cold validation items for choices that must not see test."""
    assert split.item_role is not None
    part, role = {"test": (TEST, COLD_TEST), "valid": (VALID, COLD_VALID)}[which]
    items = split.item_role == role
    targets = _restrict(split.matrix(part), items)
    train = split.matrix(TRAIN)
    return RankingTask(
        "cold" if which == "test" else "cold-valid",
        _users_with(targets),
        targets,
        sp.csr_matrix(train.shape, dtype=np.float32),
        train,
        candidates=items,
        cold=split.item_role != WARM,
    )


def cold_users_tasks(split: Split, which: str = "test") -> tuple[RankingTask, ...]:
    """The ``cold-user@k`` tasks of a cold-user split's held-out ``which`` (``test`` or
    ``valid``) users: the first ``k`` of their interactions revealed (history, masked), the rest
    the targets; users with <= max(k) interactions left out (noted). The ``valid`` mirror is for
    choices that must not see test (e.g. how a new-user path weighs prior against history)."""
    assert split.user_role is not None and split.reveal is not None
    part, role = {"test": (TEST, COLD_TEST), "valid": (VALID, COLD_VALID)}[which]
    ks = [int(k) for k in split.params.get("reveal_k", (0, 1, 3, 5, 10, 20))]
    kmax = max(ks)
    held = np.flatnonzero(split.user_role == role)
    n_per = np.bincount(split.user, minlength=split.n_users)
    eligible = held[n_per[held] > kmax]
    note = (
        f"{len(held) - len(eligible)} of {len(held)} held-out {which} users have "
        f"<= {kmax} positives and are left out of every cold-user@k task"
    )
    rows = (split.part == part) & (split.user_role[split.user] == role)
    prefix = "cold-user" if which == "test" else "cold-user-valid"
    tasks = []
    for k in ks:
        revealed = split.matrix(part, rows=rows & (split.reveal < k))
        targets = split.matrix(part, rows=rows & (split.reveal >= k))
        tasks.append(
            RankingTask(f"{prefix}@{k}", eligible, targets, revealed, revealed, notes=(note,))
        )
    return tuple(tasks)


def build_protocol(split: Split) -> Protocol:
    """Validation and test tasks for ``split`` (see the module docstring)."""
    train = split.matrix(TRAIN)
    valid = split.matrix(VALID)
    test = split.matrix(TEST)
    seen = (train + valid).tocsr()
    seen.data[:] = 1.0
    if split.protocol in ("random", "temporal", "given"):
        v = RankingTask("valid", _users_with(valid), valid, train, train)
        t = RankingTask("test", _users_with(test), test, seen, train)
        return Protocol(split, v, (t,))
    if split.protocol == "cold-item":
        assert split.item_role is not None
        warm_items = split.item_role == WARM
        cold_items = ~warm_items
        wv = _restrict(valid, warm_items)
        wt = _restrict(test, warm_items)
        v = RankingTask(
            "valid", _users_with(wv), wv, train, train, candidates=warm_items, cold=cold_items
        )
        warm = RankingTask(
            "warm", _users_with(wt), wt, seen, train, candidates=warm_items, cold=cold_items
        )
        cold = cold_items_task(split, "test")
        overall = RankingTask("overall", _users_with(test), test, seen, train, cold=cold_items)
        return Protocol(split, v, (warm, cold, overall))
    if split.protocol == "cold-user":
        assert split.user_role is not None and split.reveal is not None
        warm_users = split.user_role == WARM
        wv = valid.multiply(warm_users[:, None].astype(np.float32)).tocsr()
        wt = test.multiply(warm_users[:, None].astype(np.float32)).tocsr()
        v = RankingTask("valid", _users_with(wv), wv, train, train)
        tasks = [RankingTask("warm", _users_with(wt), wt, seen, train)]
        tasks.extend(cold_users_tasks(split, "test"))
        return Protocol(split, v, tuple(tasks))
    raise ValueError(f"no protocol for split {split.protocol!r}")  # pragma: no cover
