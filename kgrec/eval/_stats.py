"""Uncertainty: percentile bootstrap confidence intervals and paired tests over per-user values."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class Interval:
    """A mean with its bootstrap confidence interval."""

    mean: float
    low: float
    high: float
    n: int
    level: float = 0.95

    def to_dict(self) -> dict:
        return asdict(self)


def bootstrap_ci(
    values: np.ndarray, *, level: float = 0.95, n_boot: int = 1000, seed: int = 0
) -> Interval:
    """Percentile bootstrap CI of the mean of ``values`` (resampling users with replacement)."""
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        return Interval(float("nan"), float("nan"), float("nan"), 0, level)
    rng = np.random.default_rng(seed)
    means = np.empty(n_boot)
    chunk = max(1, 2_000_000 // max(1, v.size))
    for s in range(0, n_boot, chunk):
        e = min(n_boot, s + chunk)
        idx = rng.integers(0, v.size, size=(e - s, v.size))
        means[s:e] = v[idx].mean(axis=1)
    alpha = (1 - level) / 2
    lo, hi = np.quantile(means, [alpha, 1 - alpha])
    return Interval(float(v.mean()), float(lo), float(hi), int(v.size), level)


@dataclass(frozen=True)
class PairedTest:
    """Paired comparison of two models on the same users: ``diff = a - b``."""

    mean_diff: float
    ci_low: float
    ci_high: float
    t_pvalue: float
    wilcoxon_pvalue: float
    n: int

    def to_dict(self) -> dict:
        return asdict(self)


def paired_test(
    a: np.ndarray, b: np.ndarray, *, level: float = 0.95, n_boot: int = 1000, seed: int = 0
) -> PairedTest:
    """Paired t-test, Wilcoxon signed-rank test and a bootstrap CI of the mean difference.

    ``a`` and ``b`` are per-user values of two models on the same users in the same order.
    """
    from scipy import stats

    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"paired values need equal shapes, got {a.shape} and {b.shape}")
    d = a - b
    ci = bootstrap_ci(d, level=level, n_boot=n_boot, seed=seed)
    if d.size < 2 or np.allclose(d, 0):
        tp = wp = 1.0
    else:
        tp = float(stats.ttest_rel(a, b).pvalue)
        wp = float(stats.wilcoxon(d, zero_method="wilcox").pvalue) if np.any(d != 0) else 1.0
        if np.isnan(tp):
            tp = 1.0
    return PairedTest(ci.mean, ci.low, ci.high, tp, wp, int(d.size))
