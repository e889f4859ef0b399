"""What shaped a fit, beyond its training loop: choices made on validation, the parts of the fit
and their time against a whole-fit budget, and fitted models shared within one run.

Models fill a :class:`FitLog` (``model.fit_log_``); the comparison runner turns it into the
report's per-model, per-seed record. :class:`FitBudget` is ``--max-seconds`` for a whole fit
(training and whatever follows it); :class:`FitCache` lets a model reuse a model another one
fitted on the same training matrix (the hybrid's EASE blend and the EASE baseline).
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

log = logging.getLogger(__name__)


@dataclass
class Choice:
    """One setting chosen on the validation callback: every candidate with its validation score,
    the chosen value and the rule that picked it."""

    name: str
    candidates: list[Any]
    scores: list[float]
    chosen: Any
    rule: str = "highest validation score"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "candidates": list(self.candidates),
            "scores": [float(s) for s in self.scores],
            "chosen": self.chosen,
            "rule": self.rule,
        }

    @classmethod
    def from_curve(cls, name: str, curve: dict[Any, float], chosen: Any, rule: str) -> Choice:
        keys = list(curve)
        return cls(name, keys, [float(curve[k]) for k in keys], chosen, rule)


@dataclass
class FitPart:
    """A timed part of a fit (``training``, ``cold_map``, ``blend``, ...); ``shared``: the part
    reused a model fitted elsewhere in the run instead of fitting its own."""

    name: str
    wall_s: float
    inside_budget: bool | None = None
    shared: bool = False
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "wall_s": self.wall_s}
        if self.inside_budget is not None:
            out["inside_budget"] = self.inside_budget
        if self.shared:
            out["shared"] = True
        if self.note:
            out["note"] = self.note
        return out


class FitBudget:
    """A wall-time budget (seconds, ``None``: unlimited) for a whole fit, from its creation."""

    def __init__(self, max_seconds: float | None) -> None:
        self.max_seconds = max_seconds
        self.t0 = time.perf_counter()

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0

    def remaining(self) -> float:
        if self.max_seconds is None:
            return float("inf")
        return self.max_seconds - self.elapsed()

    def inside(self) -> bool | None:
        """Whether the fit is (still) inside the budget; ``None`` without a budget."""
        return None if self.max_seconds is None else self.elapsed() <= self.max_seconds


@dataclass
class FitLog:
    """What a model's fit did besides its training loop (see the module docstring)."""

    choices: list[Choice] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    parts: list[FitPart] = field(default_factory=list)
    budget_s: float | None = None
    notes: list[str] = field(default_factory=list)

    def part(self, name: str, budget: FitBudget | None = None, **kw: Any) -> _PartTimer:
        """``with log.part("blend", budget): ...`` times a part and records whether it ended
        inside ``budget``."""
        return _PartTimer(self, name, budget, kw)

    def to_dict(self) -> dict[str, Any]:
        return {
            "choices": [c.to_dict() for c in self.choices],
            "settings": dict(self.settings),
            "parts": [p.to_dict() for p in self.parts],
            "budget_s": self.budget_s,
            "notes": list(self.notes),
        }


class _PartTimer:
    def __init__(self, log_: FitLog, name: str, budget: FitBudget | None, kw: dict[str, Any]):
        self.log, self.name, self.budget, self.kw = log_, name, budget, kw

    def __enter__(self) -> FitPart:
        self.t0 = time.perf_counter()
        self.part = FitPart(self.name, 0.0, **self.kw)
        return self.part

    def __exit__(self, *exc: object) -> None:
        self.part.wall_s = time.perf_counter() - self.t0
        if self.budget is not None:
            self.part.inside_budget = self.budget.inside()
        self.log.parts.append(self.part)


def matrix_fingerprint(m: sp.spmatrix) -> str:
    """A content hash of a training matrix as every model sees it: binarised (shape and the
    positions of its stored entries, duplicates summed)."""
    c = sp.csr_matrix(m, copy=True)
    c.sum_duplicates()
    c.sort_indices()
    h = hashlib.sha1(np.asarray(c.shape, np.int64).tobytes())
    for a in (c.indptr.astype(np.int64), c.indices.astype(np.int64)):
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def fit_key(model: Any, train: sp.spmatrix) -> tuple[str, str, str]:
    """(class, config, training matrix) identity of a deterministic fit."""
    cfg = getattr(model, "config", None)
    cfg_repr = repr(sorted(cfg.to_dict().items())) if hasattr(cfg, "to_dict") else repr(cfg)
    return (type(model).__qualname__, cfg_repr, matrix_fingerprint(train))


class FitCache:
    """Fitted models shared within one run, keyed by class, config and training matrix.

    Only models whose fit is a deterministic function of (config, training matrix) and does not
    use the validation callback belong here (their class sets ``shareable_fit = True``): a
    closed-form model such as EASE. ``hits``/``fits`` count what was reused and fitted."""

    def __init__(self) -> None:
        self._store: dict[tuple[str, str, str], Any] = {}
        self.fits: list[str] = []
        self.hits: list[str] = []

    def __len__(self) -> int:
        return len(self._store)

    def fitted(self, model: Any, train: sp.spmatrix, *, by: str = "") -> tuple[Any, bool]:
        """``(fitted model, reused)``: the stored fit of an identical model on ``train``, or
        ``model`` fitted now (and stored). ``by`` names the requester for the log."""
        if not getattr(type(model), "shareable_fit", False):
            raise TypeError(f"{type(model).__name__} does not declare shareable_fit")
        key = fit_key(model, train)
        label = f"{getattr(model, 'name', type(model).__name__)}"
        if key in self._store:
            self.hits.append(f"{label} (by {by})" if by else label)
            log.info("reusing the %s fitted earlier in this run%s", label, f" ({by})" * bool(by))
            return self._store[key], True
        model.fit(train)
        self._store[key] = model
        self.fits.append(f"{label} (for {by})" if by else label)
        return model, False

    def clear(self) -> None:
        self._store.clear()


def fit_shared(
    make: Callable[[], Any], train: sp.spmatrix, cache: FitCache | None, *, by: str = ""
) -> tuple[Any, bool]:
    """A fitted ``make()`` through ``cache`` when there is one, else fitted here."""
    model = make()
    if cache is None:
        return model.fit(train), False
    return cache.fitted(model, train, by=by)


def parts_summary(parts: Sequence[FitPart]) -> str:
    """``training 12.3 s, cold_map 1.0 s, blend 0.4 s (shared ease)``."""
    bits = []
    for p in parts:
        extra = " (reused)" if p.shared else ""
        bits.append(f"{p.name} {p.wall_s:.1f} s{extra}")
    return ", ".join(bits)
