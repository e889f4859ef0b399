"""Bootstrap confidence intervals and paired tests."""

from __future__ import annotations

import numpy as np
import pytest

from kgrec.eval import bootstrap_ci, paired_test


def test_bootstrap_ci_covers_mean_and_is_seeded():
    rng = np.random.default_rng(0)
    v = rng.normal(0.3, 0.1, size=500)
    a = bootstrap_ci(v, n_boot=500, seed=1)
    b = bootstrap_ci(v, n_boot=500, seed=1)
    assert a == b
    assert a.low < a.mean < a.high
    # width close to the normal approximation 2 * 1.96 * sd / sqrt(n)
    assert (a.high - a.low) == pytest.approx(2 * 1.96 * v.std() / np.sqrt(v.size), rel=0.2)


def test_bootstrap_ci_empty():
    assert bootstrap_ci(np.array([])).n == 0


def test_paired_test_detects_shift_and_not_noise():
    rng = np.random.default_rng(1)
    base = rng.random(300)
    better = base + 0.05 + rng.normal(0, 0.01, 300)
    t = paired_test(better, base)
    assert t.mean_diff == pytest.approx(0.05, abs=0.01)
    assert t.ci_low > 0 and t.t_pvalue < 1e-6 and t.wilcoxon_pvalue < 1e-6
    same = paired_test(base, base)
    assert same.t_pvalue == 1.0 and same.mean_diff == 0.0
    with pytest.raises(ValueError):
        paired_test(base, base[:10])
