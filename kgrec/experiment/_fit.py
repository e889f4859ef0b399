"""Fit one model on a split and evaluate it on tasks: the step every run is made of.

:func:`fit_and_evaluate` is what :func:`~kgrec.experiment.compare` does per model and seed, what
``kgrec train`` does once and what the benches call; :func:`fit_record` says what shaped the fit
(epochs, stop reason, choices made on validation, time budget) for the reports.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import scipy.sparse as sp

from kgrec.data import Split
from kgrec.eval import Coverage, EvalResult, Metric, RankingTask, evaluate
from kgrec.experiment._factory import model_weights
from kgrec.experiment._options import CompareOptions
from kgrec.train import FitCache


def sample_users(task: RankingTask, n: int | None, seed: int) -> RankingTask:
    """``task`` restricted to ``n`` users drawn without replacement (seeded); ``task`` itself when
    ``n`` is ``None`` or not smaller than its user count. For cheap per-epoch validation."""
    if n is None or len(task.users) <= n:
        return task
    rng = np.random.default_rng([int(seed), 17])
    users = np.sort(rng.choice(task.users, size=int(n), replace=False))
    note = f"validation on {n:,} of {len(task.users):,} users sampled with seed {seed}"
    return replace(task, users=users, notes=(*task.notes, note))


def validator(task: RankingTask, metric: Metric) -> Callable[[Any], float]:
    """The validation callback of trained models: mean ``metric`` of a model on ``task``
    (continuous scores, so no random tie-breaking)."""

    def validate(model: Any) -> float:
        r = evaluate(model.score, task, [metric], tie_seed=None)
        return float(r.per_user[metric.label].mean())

    return validate


@dataclass
class FitEvaluation:
    """One model fitted on one split: the fitted model (``reused`` when a shared fit of an
    identical model was handed back), fit and evaluation wall time, one result per task."""

    model: Any
    fit_s: float
    eval_s: float
    results: list[EvalResult] = field(default_factory=list)
    reused: bool = False


def fit_model(
    model: Any,
    split: Split,
    *,
    validate: Callable[[Any], float] | None = None,
    cache: FitCache | None = None,
    by: str = "",
    train: sp.csr_matrix | None = None,
) -> tuple[Any, bool]:
    """``(fitted model, reused)``: ``model`` fitted on ``split``'s training part, weighted as its
    config says. A model whose fit is shareable (EASE) on the binary matrix goes through
    ``cache`` (fitted once per run and seed, reused by models that share it, e.g. the hybrid's
    blend through its ``shared_fits``). ``train`` is the binary training matrix when the caller
    already holds it."""
    if cache is not None and hasattr(model, "shared_fits"):
        model.shared_fits = cache
    weights = model_weights(model)
    if weights != "none":  # its own matrix: never shared with a binary fit
        model.fit(split.train_matrix(weights), validate=validate)
        return model, False
    train = split.train_matrix() if train is None else train
    if cache is not None and getattr(type(model), "shareable_fit", False):
        return cache.fitted(model, train, by=by)
    model.fit(train, validate=validate)
    return model, False


def evaluate_tasks(
    model: Any,
    tasks: Sequence[RankingTask],
    metrics: Sequence[Metric],
    *,
    catalog: Sequence[Coverage] = (),
    batch_size: int | None = None,
    progress: bool = False,
) -> list[EvalResult]:
    """``model`` on every task: per-user metric values (and catalog values such as coverage)."""
    return [
        evaluate(
            model.score, task, metrics, catalog=catalog, batch_size=batch_size, progress=progress
        )
        for task in tasks
    ]


def fit_and_evaluate(
    model: Any,
    split: Split,
    tasks: Sequence[RankingTask],
    metrics: Sequence[Metric],
    *,
    validate: Callable[[Any], float] | None = None,
    cache: FitCache | None = None,
    by: str = "",
    train: sp.csr_matrix | None = None,
    catalog: Sequence[Coverage] = (),
    batch_size: int | None = None,
    progress: bool = False,
) -> FitEvaluation:
    """Fit ``model`` on ``split`` (:func:`fit_model`), then evaluate it on ``tasks``
    (:func:`evaluate_tasks`), timing both."""
    t0 = time.perf_counter()
    model, reused = fit_model(model, split, validate=validate, cache=cache, by=by, train=train)
    fit_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    results = evaluate_tasks(
        model, tasks, metrics, catalog=catalog, batch_size=batch_size, progress=progress
    )
    return FitEvaluation(model, fit_s, time.perf_counter() - t1, results, reused)


#: validation rounds in which a new best means "still rising" when a cap stops training
RISING_WINDOW = 3


def fit_record(
    model: Any, name: str, seed: int, fit_s: float, options: CompareOptions, *, reused: bool
) -> dict[str, Any]:
    """What shaped one model's fit on one seed: its training (epochs run, best epoch counted
    from 1, stop reason), every choice made on validation with candidates and scores, the parts
    of the fit against the ``max_seconds`` budget, and a warning when a cap (epochs or time)
    stopped training while the validation metric was still rising."""
    rec: dict[str, Any] = {"seed": seed, "model": name, "fit_s": fit_s, "valid_metric": None}
    flog = getattr(model, "fit_log_", None)
    result = getattr(model, "result_", None)
    if reused:
        rec["reused"] = "fitted once earlier in this run and shared"
    if result is not None:
        opts = getattr(model, "options", None)
        patience = getattr(opts, "patience", 0)
        rising = result.still_improving(RISING_WINDOW, getattr(opts, "min_delta", 0.0))
        validated = any("valid" in r for r in result.history)
        rec.update(
            valid_metric=options.primary if validated else None,
            epochs_run=result.epochs_run,
            epoch_cap=getattr(opts, "epochs", None),
            best_epoch=result.best_epoch + 1 if result.best_epoch >= 0 else None,
            best_valid=result.best_metric if validated else None,
            stop_reason=result.stop_reason,
            patience=patience,
            still_rising=rising,
        )
        if result.stop_reason in ("epoch_cap", "time_budget") and rising:
            cap = (
                f"its epoch cap ({result.epochs_run} epochs)"
                if result.stop_reason == "epoch_cap"
                else f"the time budget (after {result.epochs_run} epochs)"
            )
            rec["warning"] = (
                f"{name} (seed {seed}) was stopped by {cap} while validation {options.primary} "
                f"was still rising (new best at epoch {rec['best_epoch']} within the last "
                f"{RISING_WINDOW} rounds): it had not converged; raise --epochs / --max-seconds"
            )
    if flog is not None:
        d = flog.to_dict()
        rec["valid_metric"] = rec["valid_metric"] or (options.primary if d["choices"] else None)
        rec.update(choices=d["choices"], settings=d["settings"], parts=d["parts"])
        rec["notes"] = d["notes"]
    else:
        rec["parts"] = [{"name": "training" if result is not None else "fit", "wall_s": fit_s}]
    budget = options.max_seconds
    rec["budget_s"] = budget
    if budget is not None:
        if flog is None and result is not None:
            rec["parts"][0]["inside_budget"] = fit_s <= budget
        if flog is not None or result is not None:  # trained models only
            rec["inside_budget"] = fit_s <= budget
    return rec
