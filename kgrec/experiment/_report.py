"""Comparison reports: a markdown table, a JSON document and a PNG bar chart with CIs."""

from __future__ import annotations

import json
import math
import platform
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from kgrec._atomic import atomic_path, atomic_write_text
from kgrec.experiment._report_sections import data_lines, fit_lines, strict_json
from kgrec.experiment._runner import Comparison, metric_order

MASKING_NOTE = (
    "Full ranking over every candidate item; each user's training items (and at test time "
    "validation items) are masked before top-k; users without predictions count as 0 and are "
    "never dropped; score ties are broken by random per-user item orders (not by item index); "
    "NDCG's ideal DCG uses min(|relevant|, K) ones; 95% CIs are percentile bootstraps over "
    "users (pooled over seeds); Coverage CIs are over seeds."
)


def cpu_name() -> str:
    """The CPU model (``/proc/cpuinfo``'s model name where there is one), for results files."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def environment() -> dict[str, Any]:
    """Machine and library versions for a results file."""
    import os

    import numpy
    import scipy
    import torch

    cpu = cpu_name()
    try:
        import torch_geometric

        pyg = torch_geometric.__version__
    except ImportError:  # pragma: no cover
        pyg = None
    from kgrec import __version__

    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "torch_geometric": pyg,
        "numpy": numpy.__version__,
        "scipy": scipy.__version__,
        "pandas": pd.__version__,
        "kgrec": __version__,
    }


def _fmt(mean: float, lo: float, hi: float) -> str:
    if any(math.isnan(x) for x in (lo, hi)):
        return f"{mean:.4f}"
    return f"{mean:.4f} [{lo:.4f}, {hi:.4f}]"


def summary_table(comp: Comparison, *, task: str, metrics: list[str] | None = None) -> pd.DataFrame:
    """Wide table for one task: rows models (best primary first), columns metrics as text."""
    s = comp.summary()
    s = s[s["task"] == task]
    metrics = metrics or metric_order(s["metric"].unique())
    prim = s[s["metric"] == comp.options.primary].set_index("model")["mean"]
    models = list(prim.sort_values(ascending=False).index) or list(comp.options.models)
    table = pd.DataFrame(index=models)
    for m in metrics:
        sub = s[s["metric"] == m].set_index("model")
        table[m] = [
            _fmt(sub.loc[mod, "mean"], sub.loc[mod, "ci_low"], sub.loc[mod, "ci_high"])
            if mod in sub.index
            else ""
            for mod in models
        ]
    t = comp.timings.groupby("model")[["fit_s", "eval_s"]].mean()
    table["fit s"] = [f"{t.loc[m, 'fit_s']:.1f}" if m in t.index else "" for m in models]
    table.index.name = "model"
    return table


def to_markdown(comp: Comparison, *, title: str, command: str | None = None) -> str:
    """The human report: one table per task, timings, what was masked, split counts."""
    o = comp.options
    lines = [f"# {title}", ""]
    if command:
        lines += ["```", command, "```", ""]
    lines += [
        f"Protocol **{o.protocol}**, seeds {list(o.seeds)}, models {', '.join(o.models)}.",
        "",
        MASKING_NOTE,
        "",
    ]
    lines += [f"**WARNING**: {w}" for w in comp.warnings] + ([""] if comp.warnings else [])
    lines += data_lines(comp.data, _markdown_table)
    short = [m for m in (f"NDCG@{k}" for k in o.ks)] + [f"Recall@{k}" for k in o.ks]
    short += [f"Hit@{max(o.ks)}", f"MRR@{max(o.ks)}", f"Precision@{max(o.ks)}"]
    short += [f"Coverage@{max(o.ks)}"]
    if o.protocol in ("cold-item",):
        short.append(f"ColdShare@{max(o.ks)}")
    for task in comp.per_user["task"].unique():
        lines += [f"## Task `{task}`", ""]
        table = summary_table(comp, task=task, metrics=short)
        lines.append(_markdown_table(table))
        lines.append("")
    paired = comp.paired()
    if len(paired):
        lines += [f"## Paired tests on {o.primary} (best model vs each other)", ""]
        lines.append(
            _markdown_table(
                paired.assign(
                    mean_diff=paired["mean_diff"].map(lambda x: f"{x:+.4f}"),
                    ci=[
                        f"[{a:+.4f}, {b:+.4f}]"
                        for a, b in zip(paired.ci_low, paired.ci_high, strict=True)
                    ],
                    t_pvalue=paired["t_pvalue"].map(lambda x: f"{x:.2g}"),
                    wilcoxon_pvalue=paired["wilcoxon_pvalue"].map(lambda x: f"{x:.2g}"),
                )[["task", "best", "other", "mean_diff", "ci", "t_pvalue", "wilcoxon_pvalue", "n"]],
                index=False,
            )
        )
        lines.append("")
    lines += new_user_lines(comp)
    lines += fit_lines(comp.fits, comp.shared)
    lines += ["## Wall time per model (mean over seeds, seconds; best_epoch counts from 1)", ""]
    t = comp.timings.groupby("model", sort=False).mean(numeric_only=True).drop(columns="seed")
    lines.append(_markdown_table(t.round(2)))
    lines += ["", "## Splits", ""]
    for p in comp.protocols:
        c = p["split"]["counts"]
        lines.append(f"- seed {p['seed']}: {json.dumps(c)}")
        for note in p["split"]["notes"]:
            lines.append(f"  - {note}")
        for task in p["tests"]:
            for note in task["notes"]:
                lines.append(f"  - {task['task']}: {note}")
    return "\n".join(lines) + "\n"


def new_user_lines(comp: Comparison) -> list[str]:
    """Cold-user protocol: how each model answers a user without any history (k = 0) and
    whether it uses side information (graph / text / profile inputs) at all."""
    t = comp.timings
    if comp.options.protocol != "cold-user" or "users_without_history" not in t.columns:
        return []
    cols = [c for c in ("users_without_history", "side_information") if c in t.columns]
    how = t.groupby("model", sort=False)[cols].agg(lambda s: " / ".join(sorted(set(map(str, s)))))
    return [
        "## Users without history (k = 0)",
        "",
        "Models without a new-user path (no profile attributes or friends to use) answer a user "
        "with no interaction with training popularity, never with tied scores; "
        "`side_information`: the model is built with the graph / text / profile inputs.",
        "",
        _markdown_table(how),
        "",
    ]


def _markdown_table(frame: pd.DataFrame, *, index: bool = True) -> str:
    f = frame.reset_index() if index else frame
    cols = [str(c) for c in f.columns]
    out = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in f.itertuples(index=False):
        out.append("| " + " | ".join(str(v) for v in row) + " |")
    return "\n".join(out)


def to_json(
    comp: Comparison, *, command: str | None = None, extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Everything needed to read the comparison without the per-user rows."""
    summary = comp.summary()
    return {
        "command": command,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "environment": environment(),
        "options": comp.options.to_dict(),
        "masking": MASKING_NOTE,
        "summary": summary.to_dict(orient="records"),
        "paired": comp.paired().to_dict(orient="records"),
        "timings": comp.timings.to_dict(orient="records"),
        "wall_s_per_model": comp.timings.groupby("model")[["fit_s", "eval_s"]]
        .mean()
        .sum(axis=1)
        .to_dict(),
        "protocols": comp.protocols,
        "training": [{k: v for k, v in t.items() if k != "history"} for t in comp.training],
        "fits": comp.fits,
        "shared_fits": comp.shared,
        "warnings": comp.warnings,
        "data_counts": comp.data,
        "notes": {
            "training.best_epoch": "counts from 0 (the loop's epoch index)",
            "fits.best_epoch": "counts from 1, like fits.epochs_run",
            "null": "a value that is not a number (NaN, inf) is written as null",
        },
        **(extra or {}),
    }


def plot(comp: Comparison, path: str | Path, *, metrics: list[str] | None = None) -> Path:
    """Grouped bar chart (one panel per task): mean per model and metric with 95% CI whiskers.

    Rendered with a bare ``Figure`` (Agg canvas on save), never through pyplot."""
    from matplotlib.figure import Figure  # no pyplot: a notebook's backend is left alone

    o = comp.options
    metrics = metrics or [f"NDCG@{max(o.ks)}", f"Recall@{max(o.ks)}"]
    s = comp.summary()
    tasks = list(comp.per_user["task"].unique())
    fig = Figure(figsize=(max(6, 4.5 * len(tasks)), 4))
    axes = fig.subplots(1, len(tasks), squeeze=False)
    width = 0.8 / max(1, len(metrics))
    for ax, task in zip(axes[0], tasks, strict=True):
        st = s[s["task"] == task]
        models = list(o.models)
        for j, m in enumerate(metrics):
            sub = st[st["metric"] == m].set_index("model").reindex(models)
            x = [i + (j - (len(metrics) - 1) / 2) * width for i in range(len(models))]
            err = [
                (sub["mean"] - sub["ci_low"]).clip(lower=0).fillna(0).to_numpy(),
                (sub["ci_high"] - sub["mean"]).clip(lower=0).fillna(0).to_numpy(),
            ]
            ax.bar(x, sub["mean"].to_numpy(), width, yerr=err, capsize=3, label=m)
        ax.set_xticks(range(len(models)))
        ax.set_xticklabels(models, rotation=20)
        ax.set_title(f"{task} ({o.protocol}, {len(o.seeds)} seed(s))")
        ax.set_ylabel("mean over users, 95% CI")
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    return path


def write_report(
    comp: Comparison,
    out_dir: str | Path,
    *,
    title: str,
    command: str | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Path]:
    """Write ``report.md``, ``report.json``, ``report.png`` and ``per_user.csv.gz`` to ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "markdown": out / "report.md",
        "json": out / "report.json",
        "png": out / "report.png",
        "per_user": out / "per_user.csv.gz",
    }
    atomic_write_text(paths["markdown"], to_markdown(comp, title=title, command=command))
    atomic_write_text(
        paths["json"],
        json.dumps(
            strict_json(to_json(comp, command=command, extra=extra)),
            indent=1,
            default=str,
            allow_nan=False,
        ),
    )
    plot(comp, paths["png"])
    with atomic_path(paths["per_user"], suffix=".csv.gz") as tmp:
        comp.per_user.to_csv(tmp, index=False, compression="gzip")
    return paths
