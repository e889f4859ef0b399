"""Tiny synthetic interaction data with planted structure, for fast tests."""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from kgrec.data import Dataset, Interactions


def synthetic_matrix(
    n_users: int = 60,
    n_items: int = 40,
    *,
    n_groups: int = 3,
    density: float = 0.25,
    noise: float = 0.02,
    seed: int = 0,
) -> sp.csr_matrix:
    """Binary user-item matrix with ``n_groups`` taste clusters: a user mostly likes the items of
    their group (so CF models can learn something), plus a little noise. Every user has >= 3
    positives and at least one non-positive."""
    rng = np.random.default_rng(seed)
    ug = rng.integers(0, n_groups, n_users)
    ig = np.arange(n_items) % n_groups
    p = np.where(ug[:, None] == ig[None, :], density * n_groups, noise)
    m = rng.random((n_users, n_items)) < np.clip(p, 0, 0.95)
    for u in range(n_users):
        if m[u].sum() < 3:
            m[u, rng.choice(np.flatnonzero(ig == ug[u]), 3, replace=False)] = True
        if m[u].all():
            m[u, 0] = False
    return sp.csr_matrix(m.astype(np.float32))


def synthetic_dataset(
    n_users: int = 60,
    n_items: int = 40,
    *,
    seed: int = 0,
    with_ratings: bool = True,
    name: str = "synthetic",
) -> Dataset:
    """A :class:`Dataset` over :func:`synthetic_matrix` with string ids, ratings 1-5 (positives
    rated 4-5, a few extra low ratings) and increasing timestamps."""
    rng = np.random.default_rng(seed + 1)
    m = synthetic_matrix(n_users, n_items, seed=seed).tocoo()
    rows = [(int(u), int(i), float(rng.integers(4, 6))) for u, i in zip(m.row, m.col, strict=True)]
    dense = m.toarray() > 0
    neg = np.argwhere(~dense)
    extra = neg[rng.choice(len(neg), size=min(len(neg), n_users), replace=False)]
    rows += [(int(u), int(i), float(rng.integers(1, 4))) for u, i in extra]
    order = rng.permutation(len(rows))
    frame = pd.DataFrame(
        {
            "user": [f"u{rows[j][0]}" for j in order],
            "item": [f"i{rows[j][1]}" for j in order],
            "rating": [rows[j][2] for j in order],
            "timestamp": np.arange(len(rows), dtype=np.float64) * 10.0,
        }
    )
    if not with_ratings:
        frame = frame.drop(columns="rating")
    return Dataset(name=name, interactions=Interactions(frame, source="synthetic"))
