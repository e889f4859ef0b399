"""Run a comparison: split per seed, fit each model, evaluate every task, keep per-user values.

The result is tidy: ``per_user`` has one row per (seed, task, model, user, metric); ``catalog``
holds catalog-level values (coverage); ``timings`` fit / evaluation wall time per model and seed.
:meth:`Comparison.summary` turns per-user values into means with 95% bootstrap confidence
intervals, and :meth:`Comparison.paired` tests every model against the best one on the same users.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from kgrec.errors import SpecError
from kgrec.eval._metrics import Coverage, Metric, default_metrics, parse_metric
from kgrec.eval._positives import Positives
from kgrec.eval._protocol import Protocol, build_protocol
from kgrec.eval._rank import RankingTask, evaluate
from kgrec.eval._splits import make_split
from kgrec.eval._stats import bootstrap_ci, paired_test
from kgrec.train import FitCache

log = logging.getLogger(__name__)

#: CLI protocol name -> split protocol
PROTOCOL_SPLITS = {
    "warm": "random",
    "random": "random",
    "temporal": "temporal",
    "cold-item": "cold-item",
    "cold-user": "cold-user",
    "given": "given",
}


@dataclass(frozen=True)
class CompareOptions:
    """What to compare and how. ``epochs``/``max_seconds`` override the trained models' defaults
    (``None`` keeps each model's own); ``seeds`` are the split and training seeds."""

    models: tuple[str, ...] = ("pop", "itemknn", "ease", "mf", "lightgcn")
    protocol: str = "warm"
    seeds: tuple[int, ...] = (2020,)
    ks: tuple[int, ...] = (10, 20)
    primary: str = "NDCG@20"
    epochs: int | None = None
    max_seconds: float | None = None
    device: str = "cpu"
    n_boot: int = 1000
    eval_batch_size: int | None = None
    #: given protocol without a validation part: share of train carved out for validation
    valid_share: float = 0.0
    #: validate trained models on this many sampled validation users (None: all of them)
    valid_users: int | None = None
    #: progress bar on stderr while evaluating
    eval_progress: bool = False
    #: the hybrid's fine-tuned text tower (``none``, ``top-layers``, ``lora``, ``full``) and a
    #: saved tower to start it from (``--init-text-from``)
    text_finetune: str = "none"
    init_text_from: str | None = None

    def __post_init__(self) -> None:
        from kgrec.models import MODELS

        unknown = [m for m in self.models if m not in MODELS]
        if unknown or not self.models:
            raise SpecError(
                f"unknown model(s) {unknown}; choose from {sorted(MODELS)}", key="models"
            )
        if self.protocol not in PROTOCOL_SPLITS:
            raise SpecError(
                f"unknown protocol {self.protocol!r}; choose from {sorted(PROTOCOL_SPLITS)}",
                key="protocol",
            )
        if not self.seeds:
            raise SpecError("at least one seed is needed", key="seeds")
        if not self.ks or min(self.ks) < 1:
            raise SpecError(f"cutoffs must be >= 1, got {list(self.ks)}", key="ks")
        parse_metric(self.primary)
        if not 0.0 <= self.valid_share < 1.0:
            raise SpecError(
                f"valid_share must be in [0, 1), got {self.valid_share}", key="valid_share"
            )
        if self.valid_users is not None and self.valid_users < 1:
            raise SpecError(f"valid_users must be >= 1, got {self.valid_users}", key="valid_users")
        if self.epochs is not None and self.epochs < 1:
            raise SpecError(f"epochs must be >= 1, got {self.epochs}", key="epochs")
        if self.text_finetune not in ("none", "lora", "top-layers", "full"):
            raise SpecError(
                f"unknown text-finetune mode {self.text_finetune!r}; use none, lora, top-layers "
                "or full",
                key="text_finetune",
            )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def metrics(self) -> list[Metric]:
        return default_metrics(tuple(self.ks))


def make_model(name: str, seed: int, options: CompareOptions, *, context: Any | None = None):
    """Build the recommender ``name`` with the comparison's seed / epoch / device overrides.

    ``context`` (a :class:`kgrec.models.hybrid.ModelContext`: dataset, positives, graph spec) is
    handed to models that need side information (those with a ``from_context`` constructor)."""
    from kgrec.models import MODELS
    from kgrec.train import TrainingOptions

    klass = MODELS[name]
    defaults = getattr(klass, "default_options", None)
    if isinstance(defaults, TrainingOptions):
        changes: dict[str, Any] = {"seed": int(seed), "device": options.device}
        if options.epochs is not None:
            changes["epochs"] = options.epochs
        if options.max_seconds is not None:
            changes["max_seconds"] = options.max_seconds
        opts = defaults.replace(**changes)
        fields = getattr(klass.config_class, "__dataclass_fields__", {})
        if hasattr(klass, "from_context") and "text_finetune" in fields:
            cfg = klass.config_class(
                text_finetune=options.text_finetune, text_init_from=options.init_text_from or ""
            )
            return klass.from_context(context, options=opts, config=cfg)
        if hasattr(klass, "from_context"):
            return klass.from_context(context, options=opts)
        return klass(options=opts)
    if hasattr(klass, "from_context"):
        return klass.from_context(context)
    return klass()


@dataclass
class Comparison:
    """Tidy results of :func:`compare` (see the module docstring)."""

    options: CompareOptions
    per_user: pd.DataFrame
    catalog: pd.DataFrame
    timings: pd.DataFrame
    protocols: list[dict[str, Any]] = field(default_factory=list)
    training: list[dict[str, Any]] = field(default_factory=list)
    #: per model and seed: choices on validation, stop reason, epochs, parts and budget, warning
    fits: list[dict[str, Any]] = field(default_factory=list)
    #: per seed: fitted models shared between models of the run (fitted once, reused)
    shared: list[dict[str, Any]] = field(default_factory=list)
    #: what was dropped or filtered before the split (:func:`kgrec.eval._data.data_summary`)
    data: dict[str, Any] | None = None

    @property
    def warnings(self) -> list[str]:
        return [f["warning"] for f in self.fits if f.get("warning")]

    def summary(self, *, level: float = 0.95) -> pd.DataFrame:
        """Mean, bootstrap CI (users resampled), users and seed spread per task/model/metric."""
        rows = []
        for (task, model, metric), g in self.per_user.groupby(
            ["task", "model", "metric"], sort=False
        ):
            ci = bootstrap_ci(g["value"].to_numpy(), level=level, n_boot=self.options.n_boot)
            seed_means = g.groupby("seed")["value"].mean()
            rows.append(
                {
                    "task": task,
                    "model": model,
                    "metric": metric,
                    "mean": ci.mean,
                    "ci_low": ci.low,
                    "ci_high": ci.high,
                    "n": ci.n,
                    "seeds": int(seed_means.size),
                    "seed_std": float(seed_means.std(ddof=1)) if seed_means.size > 1 else 0.0,
                }
            )
        for (task, model, metric), g in self.catalog.groupby(
            ["task", "model", "metric"], sort=False
        ):
            v = g["value"].to_numpy()
            sd = float(v.std(ddof=1)) if v.size > 1 else float("nan")
            half = 1.96 * sd / np.sqrt(v.size) if v.size > 1 else float("nan")
            rows.append(
                {
                    "task": task,
                    "model": model,
                    "metric": metric,
                    "mean": float(v.mean()),
                    "ci_low": float(v.mean() - half),
                    "ci_high": float(v.mean() + half),
                    "n": int(v.size),
                    "seeds": int(v.size),
                    "seed_std": sd if v.size > 1 else 0.0,
                }
            )
        return pd.DataFrame(rows)

    def paired(self, metric: str | None = None) -> pd.DataFrame:
        """Each model against the best one (by mean ``metric``) on the same (seed, user) rows."""
        metric = metric or self.options.primary
        out = []
        sub = self.per_user[self.per_user["metric"] == metric]
        for task, g in sub.groupby("task", sort=False):
            wide = g.pivot_table(index=["seed", "user"], columns="model", values="value")
            wide = wide.dropna()
            if wide.shape[1] < 2:
                continue
            best = wide.mean().idxmax()
            for model in wide.columns:
                if model == best:
                    continue
                t = paired_test(wide[best].to_numpy(), wide[model].to_numpy())
                out.append(
                    {"task": task, "metric": metric, "best": best, "other": model, **t.to_dict()}
                )
        return pd.DataFrame(out)


def sample_users(task: RankingTask, n: int | None, seed: int) -> RankingTask:
    """``task`` restricted to ``n`` users drawn without replacement (seeded); ``task`` itself when
    ``n`` is ``None`` or not smaller than its user count. For cheap per-epoch validation."""
    if n is None or len(task.users) <= n:
        return task
    rng = np.random.default_rng([int(seed), 17])
    users = np.sort(rng.choice(task.users, size=int(n), replace=False))
    note = f"validation on {n:,} of {len(task.users):,} users sampled with seed {seed}"
    return replace(task, users=users, notes=(*task.notes, note))


def model_weights(model: Any) -> str:
    """How ``model`` reads interaction weights: its config's ``weights`` (``"none"`` for
    models without one)."""
    return str(getattr(getattr(model, "config", None), "weights", "none"))


def validator(task: RankingTask, metric: Metric) -> Callable[[Any], float]:
    """The validation callback of trained models: mean ``metric`` of a model on ``task``
    (continuous scores, so no random tie-breaking)."""

    def validate(model: Any) -> float:
        r = evaluate(model.score, task, [metric], tie_seed=None)
        return float(r.per_user[metric.label].mean())

    return validate


def compare(
    pos: Positives,
    options: CompareOptions,
    *,
    progress: Callable[[str], None] | None = None,
    model_factory: Callable[..., Any] = make_model,
    context: Any | None = None,
    data: dict[str, Any] | None = None,
) -> Comparison:
    """Split ``pos`` per seed, fit and evaluate every model on every task of the protocol.

    ``context`` (dataset, positives, graph spec) is passed to ``model_factory`` as a keyword
    when given, for models that need side information (the hybrid). Within a seed, a model whose
    fit is shareable (EASE) is fitted once and handed to every model that reuses it (the hybrid's
    blend, through its ``shared_fits``). ``data`` (see :func:`kgrec.eval._data.data_summary`)
    is carried into the report."""
    metrics = options.metrics
    valid_metric = parse_metric(options.primary)
    catalog = [Coverage(k) for k in options.ks]
    per_user: list[pd.DataFrame] = []
    cat_rows: list[dict[str, Any]] = []
    timing_rows: list[dict[str, Any]] = []
    protocols: list[dict[str, Any]] = []
    training: list[dict[str, Any]] = []
    fits: list[dict[str, Any]] = []
    shared: list[dict[str, Any]] = []
    for seed in options.seeds:
        kw = {"valid_share": options.valid_share} if options.protocol == "given" else {}
        split = make_split(pos, PROTOCOL_SPLITS[options.protocol], seed=int(seed), **kw)
        proto: Protocol = build_protocol(split)
        protocols.append({"seed": int(seed), **proto.describe()})
        train = split.train_matrix()

        # early stopping, blend weights, ...; none without validation users (given split
        # without a validation part: fixed epochs, last weights)
        vtask = sample_users(proto.valid, options.valid_users, int(seed))
        validate = validator(vtask, valid_metric) if len(vtask.users) else None
        cache = FitCache()  # one seed's fitted models, shared between models (EASE)

        for name in options.models:
            if progress is not None:
                progress(f"seed {seed}: fitting {name}")
            extra = {"context": context} if context is not None else {}
            model = model_factory(name, int(seed), options, **extra)
            if hasattr(model, "shared_fits"):
                model.shared_fits = cache
            t0 = time.perf_counter()
            reused = False
            weights = model_weights(model)
            if weights != "none":  # its own matrix: never shared with a binary fit
                model.fit(split.train_matrix(weights), validate=validate)
            elif getattr(type(model), "shareable_fit", False):
                model, reused = cache.fitted(model, train, by=name)
            else:
                model.fit(train, validate=validate)
            fit_s = time.perf_counter() - t0
            t1 = time.perf_counter()
            for task in proto.tests:
                res = evaluate(
                    model.score,
                    task,
                    metrics,
                    catalog=catalog,
                    batch_size=options.eval_batch_size,
                    progress=options.eval_progress,
                )
                long = res.per_user.melt(id_vars="user", var_name="metric", value_name="value")
                long.insert(0, "model", name)
                long.insert(0, "task", task.name)
                long.insert(0, "seed", int(seed))
                per_user.append(long)
                for label, value in res.catalog.items():
                    cat_rows.append(
                        {
                            "seed": int(seed),
                            "task": task.name,
                            "model": name,
                            "metric": label,
                            "value": value,
                        }
                    )
            eval_s = time.perf_counter() - t1
            result = getattr(model, "result_", None)
            row = {"seed": int(seed), "model": name, "fit_s": fit_s, "eval_s": eval_s}
            # how users without any history (cold-user@0) are answered (see Recommender.score)
            side = getattr(model, "new_user_path", False) and (
                getattr(model, "new_users_", None) is not None
            )
            row["users_without_history"] = (
                "side information (profile attributes / friends)" if side else "popularity"
            )
            row["side_information"] = (
                "yes" if callable(getattr(type(model), "from_context", None)) else "no"
            )
            if result is not None:
                row.update(epochs=result.epochs_run, best_epoch=result.best_epoch + 1)
                training.append(
                    {
                        "seed": int(seed),
                        "model": name,
                        **result.to_dict(),
                        "history": result.history,
                    }
                )
            timing_rows.append(row)
            rec = fit_record(model, name, int(seed), fit_s, options, reused=reused)
            fits.append(rec)
            if rec.get("warning"):
                log.warning("%s", rec["warning"])
            log.info("seed %s %s: fit %.1fs, eval %.1fs", seed, name, fit_s, eval_s)
        shared.append({"seed": int(seed), "fitted": list(cache.fits), "reused": list(cache.hits)})
        cache.clear()
    frame = pd.concat(per_user, ignore_index=True)
    return Comparison(
        options=options,
        per_user=frame,
        catalog=pd.DataFrame(cat_rows, columns=["seed", "task", "model", "metric", "value"]),
        timings=pd.DataFrame(timing_rows),
        protocols=protocols,
        training=training,
        fits=fits,
        shared=shared,
        data=data,
    )


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


def seeds_from(n: int, *, base: int = 2020) -> tuple[int, ...]:
    """``n`` seeds: ``base, base + 1, ...`` (2020 first, RecBole's default seed)."""
    if n < 1:
        raise SpecError(f"--seeds must be >= 1, got {n}", key="seeds")
    return tuple(base + i for i in range(n))


def metric_order(labels: Sequence[str]) -> list[str]:
    """Stable, readable metric order: by cutoff, then Recall, NDCG, Hit, MRR, Precision, ..."""
    rank = {
        "Recall": 0,
        "NDCG": 1,
        "Hit": 2,
        "MRR": 3,
        "Precision": 4,
        "ColdShare": 5,
        "Coverage": 6,
    }

    def key(label: str) -> tuple[int, int, str]:
        name, _, k = label.partition("@")
        return (int(k) if k.isdigit() else 0, rank.get(name, 9), label)

    return sorted(set(labels), key=key)
