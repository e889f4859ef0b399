"""Per-epoch progress reports from the training loop, to whoever listens (the CLI).

The loop calls :func:`report_epoch` after every epoch; :func:`epoch_reporter` installs a
callback for the code run inside it (context-local, so concurrent fits do not mix). An
:class:`EpochReport` carries the epoch's loss, validation value, wall time and an ETA that
accounts for early stopping: at most ``patience - rounds without improvement`` more epochs unless
validation improves again, never more than the epoch cap or the time budget allow.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

_REPORTER: contextvars.ContextVar[Callable[[EpochReport], None] | None] = contextvars.ContextVar(
    "kgrec_epoch_reporter", default=None
)


@dataclass(frozen=True)
class EpochReport:
    """One finished epoch. ``eta_s``: seconds until the loop stops if validation does not
    improve again (the early-stopping bound); ``eta_cap_s``: until the epoch cap or budget."""

    epoch: int
    epochs: int
    loss: float
    valid: float | None
    best: float
    best_epoch: int
    epoch_s: float
    elapsed_s: float
    eta_s: float
    eta_cap_s: float
    stop_in: int | None  # epochs until an early stop without improvement (None: no early stop)

    def line(self, label: str = "") -> str:
        """``[label] epoch 3/100  loss 0.4123  valid 0.2510 (best 0.2510 @3)  2.1 s/epoch ...``"""
        head = f"{label} " if label else ""
        parts = [f"{head}epoch {self.epoch + 1}/{self.epochs}", f"loss {self.loss:.4f}"]
        if self.valid is not None:
            parts.append(f"valid {self.valid:.4f} (best {self.best:.4f} @{self.best_epoch + 1})")
        parts.append(f"{self.epoch_s:.1f} s/epoch")
        if self.stop_in is not None:
            parts.append(
                f"ETA {_fmt(self.eta_s)} (early stop in {self.stop_in} unless it improves; "
                f"cap {_fmt(self.eta_cap_s)})"
            )
        else:
            parts.append(f"ETA {_fmt(self.eta_cap_s)}")
        return "  ".join(parts)


def _fmt(s: float) -> str:
    if not math.isfinite(s):
        return "?"
    return f"{s:.0f} s" if s < 120 else f"{s / 60:.1f} min"


@contextlib.contextmanager
def epoch_reporter(callback: Callable[[EpochReport], None]) -> Iterator[None]:
    """Send every epoch of training run inside this block to ``callback``."""
    token = _REPORTER.set(callback)
    try:
        yield
    finally:
        _REPORTER.reset(token)


def report_epoch(
    *,
    epoch: int,
    start_epoch: int,
    row: dict[str, float],
    best: float,
    best_epoch: int,
    bad: int,
    elapsed_s: float,
    options,
    validating: bool,
) -> None:
    """Build the :class:`EpochReport` of ``epoch`` and hand it to the installed callback."""
    cb = _REPORTER.get()
    if cb is None:
        return
    done = epoch + 1 - start_epoch
    per_epoch = elapsed_s / max(1, done)
    left_cap = options.epochs - epoch - 1
    stop_in = None
    left = left_cap
    if validating and options.patience:
        stop_in = max(0, options.patience - bad, options.min_epochs - epoch - 1)
        left = min(left_cap, stop_in)
    cap_s = left_cap * per_epoch
    if options.max_seconds is not None:
        cap_s = min(cap_s, max(0.0, options.max_seconds - elapsed_s))
    cb(
        EpochReport(
            epoch=epoch,
            epochs=options.epochs,
            loss=float(row["loss"]),
            valid=row.get("valid"),
            best=best,
            best_epoch=best_epoch,
            epoch_s=float(row.get("epoch_s", per_epoch)),
            elapsed_s=elapsed_s,
            eta_s=min(left * per_epoch, cap_s),
            eta_cap_s=cap_s,
            stop_in=None if stop_in is None else min(stop_in, left_cap),
        )
    )
