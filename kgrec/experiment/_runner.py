"""Run a comparison: split per seed, fit each model, evaluate every task, keep per-user values.

The result is tidy: ``per_user`` has one row per (seed, task, model, user, metric); ``catalog``
holds catalog-level values (coverage); ``timings`` fit / evaluation wall time per model and seed.
:meth:`Comparison.summary` turns per-user values into means with 95% bootstrap confidence
intervals, and :meth:`Comparison.paired` tests every model against the best one on the same users.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from kgrec.data import Positives, make_split
from kgrec.eval import Coverage, Protocol, bootstrap_ci, build_protocol, paired_test, parse_metric
from kgrec.experiment._context import ModelContext
from kgrec.experiment._factory import make_model
from kgrec.experiment._fit import fit_and_evaluate, fit_record, sample_users, validator
from kgrec.experiment._options import PROTOCOL_SPLITS, CompareOptions
from kgrec.models import ContextFactory
from kgrec.train import FitCache

log = logging.getLogger(__name__)


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
    #: what was dropped or filtered before the split (:func:`kgrec.experiment._data.data_summary`)
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
    blend, through its ``shared_fits``). ``data`` (see :func:`kgrec.experiment._data.data_summary`)
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
        # review text from this split's training rows only (ModelContext.for_split)
        seed_context = context.for_split(split) if isinstance(context, ModelContext) else context

        for name in options.models:
            if progress is not None:
                progress(f"seed {seed}: fitting {name}")
            extra = {"context": seed_context} if seed_context is not None else {}
            model = model_factory(name, int(seed), options, **extra)
            fe = fit_and_evaluate(
                model,
                split,
                proto.tests,
                metrics,
                validate=validate,
                cache=cache,
                by=name,
                train=train,
                catalog=catalog,
                batch_size=options.eval_batch_size,
                progress=options.eval_progress,
            )
            model, reused, fit_s, eval_s = fe.model, fe.reused, fe.fit_s, fe.eval_s
            for task, res in zip(proto.tests, fe.results, strict=True):
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
            result = getattr(model, "result_", None)
            row = {"seed": int(seed), "model": name, "fit_s": fit_s, "eval_s": eval_s}
            # how users without any history (cold-user@0) are answered (see Recommender.score)
            side = getattr(model, "new_user_path", False) and (
                getattr(model, "new_users_", None) is not None
            )
            row["users_without_history"] = (
                "side information (profile attributes / friends)" if side else "popularity"
            )
            row["side_information"] = "yes" if isinstance(type(model), ContextFactory) else "no"
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
