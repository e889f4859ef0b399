"""Seeded, savable splits of positive interactions over vocabulary indices.

Four protocols:

* ``random``: per user, the user's interactions in a seeded random order are cut by ratio
  (RecBole's ``RS [0.8, 0.1, 0.1]``, ``order: RO``, ``group_by: user``). The order is a global
  ``torch.randperm`` of the interaction rows under ``seed`` (what RecBole's ``Interaction.shuffle``
  does), and the per-user counts follow RecBole 1.2.1's ``_calcu_split_ids``: validation and test
  get ``floor(ratio * n)`` each, training the rest, and a user with fewer than 10 interactions still
  gets one validation and one test interaction while at least two stay in training.
* ``temporal``: per user, the last interaction (by timestamp, ties by row order) is the test item,
  the one before it the validation item (RecBole's leave-one-out, ``order: TO``).
* ``cold-item``: ``cold_share`` of the items are held out with all their interactions, half for
  validation and half for test (split by item); the warm items' interactions are split at random as
  above. Cold evaluation ranks among cold test items only, warm evaluation masks cold items,
  overall evaluation ranks everything.
* ``cold-user``: ``cold_share`` of the users are held out with all their interactions (half for
  validation, half for test); each held-out user's interactions get a seeded reveal order, so that
  at test time the first ``k`` can be shown to the model and the rest are targets.
* ``given``: the parts come with the data (a ``split`` column: KGAT/KGIN ``train.txt``/
  ``test.txt``, RecBole ``.train.inter``/``.valid.inter``/``.test.inter``, split files named on
  the command line), so published tables can be reproduced on their own split. Without a
  validation part, ``valid_share`` > 0 carves a seeded per-user validation slice out of train;
  otherwise there is no validation (trained models run their configured epochs and keep the last
  weights).

A :class:`Split` stores one row per positive interaction (user index, item index, part) plus the
vocabularies, so it can be saved next to a graph and reloaded exactly (``.npz`` without pickle and a
JSON sidecar).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from kgrec.data._positives import PART_NAMES, TEST, TRAIN, VALID, Positives
from kgrec.data._split import COLD_TEST, COLD_VALID, WARM, Split
from kgrec.errors import DataError


def recbole_split_counts(n: np.ndarray, ratios: Sequence[float]) -> np.ndarray:
    """Per-group part sizes exactly as RecBole 1.2.1's ``Dataset._calcu_split_ids``.

    Every part but the first is ``int(ratio * n)``; the first takes the rest. Then, from the last
    part backwards and while the first part has more than one row, a part whose ``ratio * n`` lies
    strictly between 0 and 1 gets one row from the first part. Returns an ``(len(n), parts)`` array.
    """
    tot = sum(ratios)
    r = [float(x) / tot for x in ratios]
    n = np.asarray(n, dtype=np.int64)
    cnt = np.zeros((len(n), len(r)), dtype=np.int64)
    for i in range(1, len(r)):
        cnt[:, i] = np.floor(r[i] * n.astype(np.float64)).astype(np.int64)
    cnt[:, 0] = n - cnt[:, 1:].sum(axis=1)
    active = np.ones(len(n), dtype=bool)
    for i in range(1, len(r)):
        active &= cnt[:, 0] > 1
        frac = r[-i] * n.astype(np.float64)
        bump = active & (frac > 0) & (frac < 1)
        cnt[bump, len(r) - i] += 1
        cnt[bump, 0] -= 1
    return cnt


def _randperm(n: int, seed: int) -> np.ndarray:
    import torch

    gen = torch.Generator().manual_seed(int(seed))
    return torch.randperm(n, generator=gen).numpy()


def _ratio_parts(
    user: np.ndarray, order: np.ndarray, ratios: Sequence[float], n_users: int
) -> np.ndarray:
    """Part code per row: rows taken in ``order``, grouped by user, cut by RecBole's counts."""
    part = np.empty(len(user), dtype=np.int8)
    u = user[order]
    grouped = order[np.argsort(u, kind="stable")]  # by user, within user in `order`
    counts = np.bincount(user, minlength=n_users)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    ug = user[grouped]
    pos = np.arange(len(grouped)) - starts[ug]
    cnt = recbole_split_counts(counts, ratios)
    c0 = cnt[ug, 0]
    c1 = c0 + cnt[ug, 1]
    codes = np.where(pos < c0, TRAIN, np.where(pos < c1, VALID, TEST)).astype(np.int8)
    part[grouped] = codes
    return part


def _check_ratios(ratios: Sequence[float]) -> tuple[float, ...]:
    r = tuple(float(x) for x in ratios)
    if len(r) != 3 or any(x < 0 for x in r) or r[0] <= 0:
        raise DataError(f"ratios must be three non-negative numbers (train > 0), got {list(r)}")
    return r


def random_split(
    pos: Positives, *, seed: int = 2020, ratios: Sequence[float] = (0.8, 0.1, 0.1)
) -> Split:
    """Per-user random split by ratio, RecBole-compatible (see the module docstring)."""
    r = _check_ratios(ratios)
    order = _randperm(len(pos), seed)
    part = _ratio_parts(pos.user, order, r, len(pos.users))
    return Split.of(
        pos,
        "random",
        part,
        seed,
        {"ratios": list(r), "group_by": "user", "order": "random (torch.randperm)"},
    )


def temporal_split(pos: Positives, *, seed: int = 0) -> Split:
    """Per-user leave-last-out: last interaction -> test, the one before -> validation.

    A user with two interactions gives one to test and none to validation; a user with one keeps
    it in training (RecBole's ``_split_index_by_leave_one_out``). ``seed`` is recorded only.
    """
    if pos.timestamp is None:
        raise DataError("temporal split needs interaction timestamps; this dataset has none")
    ts = np.nan_to_num(pos.timestamp, nan=-np.inf)
    rows = np.arange(len(pos))
    order = np.lexsort((rows, ts, pos.user))  # by user, then time, then row
    u = pos.user[order]
    counts = np.bincount(pos.user, minlength=len(pos.users))
    ends = np.cumsum(counts)
    from_end = ends[u] - 1 - (np.arange(len(order)))  # 0 for a user's last interaction
    n_u = counts[u]
    leave = np.minimum(2, n_u - 1)
    codes = np.full(len(order), TRAIN, dtype=np.int8)
    codes[(from_end == 0) & (leave >= 1)] = TEST
    codes[(from_end == 1) & (leave >= 2)] = VALID
    part = np.empty(len(pos), dtype=np.int8)
    part[order] = codes
    return Split.of(
        pos,
        "temporal",
        part,
        seed,
        {"leave_out": 2, "order": "timestamp"},
    )


def _roles(n: int, share: float, seed: int, what: str) -> np.ndarray:
    """Seeded roles: ``share`` of ``n`` held out, the first half cold-valid, the rest cold-test."""
    if not 0 < share < 1:
        raise DataError(f"cold {what} share must be in (0, 1), got {share}")
    n_cold = round(share * n)
    if n_cold < 2:
        raise DataError(f"{n} {what}s are too few to hold out {share:.0%} (needs at least 2)")
    perm = np.random.default_rng([int(seed), 7]).permutation(n)
    role = np.zeros(n, dtype=np.int8)
    role[perm[: n_cold // 2]] = COLD_VALID
    role[perm[n_cold // 2 : n_cold]] = COLD_TEST
    return role


def _hold_out(
    pos: Positives,
    of_row: np.ndarray,
    n: int,
    cold_share: float,
    seed: int,
    kind: str,
    r: tuple[float, float, float],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Roles of the ``n`` items or users (``of_row``: each row's item or user index; only those
    with a positive take part), and the parts of the rows: a held-out entity's rows go to
    validation or test by its role, the others are split per user at random by ``r``.
    Returns ``(role, warm row mask, seeded row permutation, part)``."""
    present = np.flatnonzero(np.bincount(of_row, minlength=n) > 0)
    role = np.zeros(n, dtype=np.int8)
    role[present] = _roles(len(present), cold_share, seed, kind)
    row_role = role[of_row]
    warm = row_role == WARM
    order = _randperm(len(pos), seed)
    wrows = np.flatnonzero(warm)
    remap = np.full(len(pos), -1, dtype=np.int64)
    remap[wrows] = np.arange(len(wrows))
    part = np.empty(len(pos), dtype=np.int8)
    part[wrows] = _ratio_parts(pos.user[wrows], remap[order[warm[order]]], r, len(pos.users))
    part[row_role == COLD_VALID] = VALID
    part[row_role == COLD_TEST] = TEST
    return role, warm, order, part


def cold_item_split(
    pos: Positives,
    *,
    seed: int = 2020,
    cold_share: float = 0.2,
    ratios: Sequence[float] = (0.8, 0.1, 0.1),
) -> Split:
    """Hold out ``cold_share`` of the items (those with a positive) with all their interactions.

    Half of the held-out items are validation items, half test items; the warm items'
    interactions are split per user at random by ``ratios``.
    """
    r = _check_ratios(ratios)
    item_role, _, _, part = _hold_out(pos, pos.item, len(pos.items), cold_share, seed, "item", r)
    return Split.of(
        pos,
        "cold-item",
        part,
        seed,
        {"cold_share": cold_share, "ratios": list(r), "cold_split": "by item, half/half"},
        item_role=item_role,
    )


def cold_user_split(
    pos: Positives,
    *,
    seed: int = 2020,
    cold_share: float = 0.2,
    ratios: Sequence[float] = (0.8, 0.1, 0.1),
    reveal_k: Sequence[int] = (0, 1, 3, 5, 10, 20),
) -> Split:
    """Hold out ``cold_share`` of the users with all their interactions (half validation, half
    test); each held-out user's interactions get a seeded reveal order for the ``k``-shot tasks."""
    r = _check_ratios(ratios)
    ks = sorted({int(k) for k in reveal_k})
    if not ks or ks[0] < 0:
        raise DataError(f"reveal_k must be non-negative integers, got {list(reveal_k)}")
    user_role, warm, order, part = _hold_out(
        pos, pos.user, len(pos.users), cold_share, seed, "user", r
    )
    # reveal order: a cold user's interactions in the seeded permutation order
    reveal = np.full(len(pos), -1, dtype=np.int64)
    cold_rows = order[~warm[order]]
    g = cold_rows[np.argsort(pos.user[cold_rows], kind="stable")]
    counts = np.bincount(pos.user[g], minlength=len(pos.users))
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    reveal[g] = np.arange(len(g)) - starts[pos.user[g]]
    return Split.of(
        pos,
        "cold-user",
        part,
        seed,
        {"cold_share": cold_share, "ratios": list(r), "reveal_k": ks},
        user_role=user_role,
        reveal=reveal,
    )


def given_split(pos: Positives, *, seed: int = 2020, valid_share: float = 0.0) -> Split:
    """The split the data came with (``pos.part``); see the module docstring.

    ``valid_share`` (0 <= share < 1) is used only when there is no validation part: that share of
    each user's training interactions becomes validation, in a seeded random order, with
    RecBole's per-user counts (rounded down, but one row for a user with at least two training
    rows whose share is below one)."""
    if pos.part is None:
        raise DataError(
            "protocol 'given' needs the split to come with the data: a 'split' column "
            "(train/valid/test), KGAT/KGIN train.txt/test.txt, RecBole NAME.train.inter/"
            "NAME.valid.inter/NAME.test.inter, or --split-files train=... test=..."
        )
    if not 0.0 <= float(valid_share) < 1.0:
        raise DataError(f"valid_share must be in [0, 1), got {valid_share}")
    part = pos.part.astype(np.int8).copy()
    if not (part == TRAIN).any() or not (part == TEST).any():
        raise DataError(
            f"the given split needs train and test rows; it has {PART_NAMES[0]}="
            f"{int((part == TRAIN).sum())}, {PART_NAMES[2]}={int((part == TEST).sum())}"
        )
    notes = list(pos.notes)
    params: dict[str, Any] = {"source": "given", "valid_share": float(valid_share)}
    has_valid = bool((part == VALID).any())
    if has_valid:
        notes.append("validation: the given validation part")
    elif valid_share > 0:
        tr = np.flatnonzero(part == TRAIN)
        order = tr[_randperm(len(tr), seed)]
        r = _ratio_parts(
            pos.user[order],
            np.arange(len(order)),
            (1 - valid_share, valid_share, 0.0),
            len(pos.users),
        )
        part[order[r == 1]] = VALID
        notes.append(
            f"validation: {int((part == VALID).sum()):,} rows ({valid_share:.0%} of each user's "
            f"training rows, seed {seed}) carved out of the given train part"
        )
    else:
        notes.append(
            "no validation part: trained models run their configured epochs and keep the last "
            "weights (no early stopping)"
        )
    return Split.of(pos, "given", part, seed, params, notes=tuple(notes))


def make_split(pos: Positives, protocol: str, *, seed: int = 2020, **kwargs: Any) -> Split:
    """Split ``pos`` by protocol name (``random``/``warm``, ``temporal``, ``cold-item``, ``cold-user``)."""
    table = {
        "random": random_split,
        "warm": random_split,
        "temporal": temporal_split,
        "cold-item": cold_item_split,
        "cold-user": cold_user_split,
        "given": given_split,
    }
    try:
        fn = table[protocol]
    except KeyError:
        raise DataError(f"unknown protocol {protocol!r}; choose one of {sorted(table)}") from None
    return fn(pos, seed=seed, **kwargs)
