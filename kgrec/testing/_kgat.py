"""A generated dataset in the KGAT/KGIN ``user item item ...`` format, shaped like amazon-book.

amazon-book (KGAT's preprocessing) has 70,679 users, 24,915 items, 652,514 train and 193,920
test interactions: about 9.2 train and 2.7 test items per user (test ~ 23% of a user's items),
item popularity long-tailed. :func:`write_kgat_like` writes ``train.txt``/``test.txt`` with the
same per-user ratios and a Zipf-like item popularity plus planted taste groups, at any size.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kgrec._atomic import atomic_write_text


def kgat_like_lists(
    n_users: int = 2000,
    n_items: int = 700,
    *,
    per_user: float = 12.0,
    test_share: float = 0.23,
    n_groups: int = 8,
    seed: int = 0,
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per-user (train items, test items): group-biased, popularity-skewed, >= 1 train and
    >= 1 test item per user, no item in both parts."""
    rng = np.random.default_rng(seed)
    pop = 1.0 / np.arange(1, n_items + 1) ** 0.7
    pop = pop[rng.permutation(n_items)]
    item_group = rng.integers(0, n_groups, n_items)
    train, test = [], []
    for _ in range(n_users):
        g = rng.integers(0, n_groups)
        w = pop * np.where(item_group == g, 8.0, 1.0)
        n = int(np.clip(rng.poisson(per_user - 3) + 3, 3, n_items - 1))
        items = rng.choice(n_items, size=n, replace=False, p=w / w.sum())
        n_test = max(1, round(test_share * n))
        test.append(np.sort(items[:n_test]))
        train.append(np.sort(items[n_test:]))
    return train, test


def write_kgat_like(root: str | Path, **kwargs) -> Path:
    """Write ``root/train.txt`` and ``root/test.txt`` (see :func:`kgat_like_lists`)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    train, test = kgat_like_lists(**kwargs)
    for name, lists in (("train", train), ("test", test)):
        lines = [" ".join(map(str, [u, *its.tolist()])) for u, its in enumerate(lists)]
        atomic_write_text(root / f"{name}.txt", "\n".join(lines) + "\n")
    return root
