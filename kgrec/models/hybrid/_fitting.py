"""The hybrid's fit around its training loop: the EASE blend matrix (shared with an EASE fitted
elsewhere in the run), a whole-fit time budget with a measured reserve for the parts after
training, and the record of what was chosen on validation (:class:`kgrec.train.FitLog`)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.sparse as sp

from kgrec.train import FitBudget, FitCache, fit_shared

log = logging.getLogger(__name__)

#: validation calls after training: cold-map scales (4) and blend weights (11)
COLD_SCALE_CALLS = 4
BLEND_CALLS = 11


def ease_for_blend(train: sp.csr_matrix, lam: float, cache: FitCache | None) -> tuple[Any, bool]:
    """The :class:`~kgrec.models.EASE` model (L2 ``lam``) on ``train`` for the blend, fitted
    once per run when ``cache`` is given (reused if the EASE baseline ran first, and shared with
    it if it runs later). Returns ``(model, reused)``."""
    from kgrec.models.cf.ease import EASE, EASEConfig

    n = train.shape[1]
    # the default config unless the catalog is over EASE's guard (the hybrid has its own,
    # ease_max_items): the same config as the EASE baseline's, so the two share one fit
    cfg = EASEConfig(reg=lam) if n <= EASEConfig.max_items else EASEConfig(reg=lam, max_items=n)
    return fit_shared(lambda: EASE(cfg), train, cache, by="hybrid blend")


class TimedValidator:
    """Wraps a validation callback and measures its mean wall time (for the budget reserve)."""

    def __init__(self, fn: Callable[[], float]) -> None:
        self.fn, self.calls, self.total_s = fn, 0, 0.0

    def __call__(self) -> float:
        t0 = time.perf_counter()
        try:
            return self.fn()
        finally:
            self.calls += 1
            self.total_s += time.perf_counter() - t0

    @property
    def mean_s(self) -> float:
        return self.total_s / self.calls if self.calls else 0.0


#: the reserve for the parts after training is their measured estimate times this (the times
#: are measured under the same load but vary from call to call)
RESERVE_MARGIN = 1.2


def training_time_left(
    budget: FitBudget, timer: TimedValidator, post_calls: int, post_fixed_s: float
) -> Callable[[], float] | None:
    """``time_left`` for the training loop (called after each epoch): the budget's remainder
    less the reserve for the parts after training (``post_calls`` validation calls at the
    measured mean time plus ``post_fixed_s`` measured before training, with a margin of
    :data:`RESERVE_MARGIN`) and less the last epoch's time, so that no epoch starts that would
    run into the reserve. ``None`` without a budget."""
    if budget.max_seconds is None:
        return None
    last = [time.perf_counter()]  # training starts right after this is built

    def left() -> float:
        now = time.perf_counter()
        epoch_s, last[0] = now - last[0], now
        reserve = RESERVE_MARGIN * (post_calls * timer.mean_s + post_fixed_s)
        return budget.remaining() - reserve - epoch_s

    return left


def ridge_probe_s(x: np.ndarray, lam: float, solves: int) -> float:
    """Measured time of ``solves`` ridge solves of the cold map's shape (one timed, scaled)."""
    from kgrec.models.hybrid._cold_map import ridge

    t0 = time.perf_counter()
    ridge(x, np.zeros((len(x), 1)), lam)
    return solves * (time.perf_counter() - t0)


def budget_note(budget: FitBudget, parts: list[Any]) -> str:
    """One line: the budget and which parts ended inside it."""
    if budget.max_seconds is None:
        return ""
    out = [p.name for p in parts if p.inside_budget is False]
    total = budget.elapsed()
    if not out:
        return f"whole fit {total:.1f} s inside the {budget.max_seconds:g} s budget"
    return (
        f"whole fit {total:.1f} s against a {budget.max_seconds:g} s budget: "
        f"{', '.join(out)} ended past it"
    )
