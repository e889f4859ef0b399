"""Report sections on what shaped a result: the data (what was dropped, reconciled with
``kgrec graph stats``), each model's fit per seed (choices on validation with candidates and
scores, stop reason, epochs, budget), fits shared within a run, warnings; and strict JSON."""

from __future__ import annotations

import math
from typing import Any

from kgrec.experiment._data import data_table

STOP_REASONS = {
    "patience": "early stopping (patience {patience})",
    "epoch_cap": "the epoch cap",
    "time_budget": "the time budget (--max-seconds)",
}


def _num(x: Any) -> str:
    return f"{x:g}" if isinstance(x, float) else str(x)


def data_lines(data: dict[str, Any] | None, markdown_table: Any) -> list[str]:
    """``## Data``: the reconciliation table and the notes."""
    if not data:
        return []
    table = data_table(data)
    table["value"] = table["value"].map(lambda v: f"{v:,}")
    lines = ["## Data: what was dropped or filtered", ""]
    lines.append(markdown_table(table, index=False))
    lines.append("")
    lines += [f"- {n}" for n in data["notes"]]
    lines += [
        "",
        "Counts in the `kgrec graph stats` column equal that command's fields for the graph "
        "built from the same spec.",
        "",
    ]
    return lines


def choice_line(c: dict[str, Any], metric: str | None) -> str:
    pairs = []
    for cand, score in zip(c["candidates"], c["scores"], strict=True):
        txt = f"{_num(cand)}: {score:.4f}"
        pairs.append(f"**{txt}**" if cand == c["chosen"] else txt)
    return (
        f"  - {c['name']} = **{_num(c['chosen'])}** (validation {metric or ''}; {c['rule']}): "
        + ", ".join(pairs)
    )


def fit_lines(fits: list[dict[str, Any]], shared: list[dict[str, Any]]) -> list[str]:
    """``## Fits``: one block per model and seed, then the shared fits and the warnings."""
    if not fits:
        return []
    lines = ["## Fits: choices on validation, training, budget (per model and seed)", ""]
    for f in fits:
        lines.append(f"- **{f['model']}**, seed {f['seed']}: fit {f['fit_s']:.1f} s")
        if f.get("reused"):
            lines.append(f"  - {f['reused']}")
        if "epochs_run" in f:
            reason = STOP_REASONS.get(f["stop_reason"], f["stop_reason"]).format(
                patience=f.get("patience")
            )
            best = (
                f"best epoch {f['best_epoch']} (validation {f['valid_metric']} "
                f"{f['best_valid']:.4f}, its weights kept)"
                if f.get("best_valid") is not None
                else "no validation: last epoch kept"
            )
            lines.append(
                f"  - training: {f['epochs_run']} of at most {f['epoch_cap']} epochs, {best}; "
                f"stopped by {reason}"
            )
        for c in f.get("choices", []):
            lines.append(choice_line(c, f.get("valid_metric")))
        if f.get("settings"):
            s = ", ".join(f"{k} {v}" for k, v in f["settings"].items())
            lines.append(f"  - fixed settings (not chosen on validation): {s}")
        parts = f.get("parts") or []
        if parts:
            bits = []
            for p in parts:
                b = f"{p['name']} {p['wall_s']:.1f} s"
                if p.get("shared"):
                    b += " (shared fit, reused)"
                if p.get("inside_budget") is False:
                    b += " (past the budget)"
                bits.append(b)
            lines.append("  - parts: " + ", ".join(bits))
        if f.get("budget_s") is None:
            lines.append("  - budget: none (--max-seconds not given)")
        elif "inside_budget" not in f:
            lines.append("  - budget: does not apply (not a trained model)")
        else:
            inside = "inside" if f.get("inside_budget") else "over"
            lines.append(
                f"  - budget: {f['budget_s']:g} s for the whole fit; {f['fit_s']:.1f} s, {inside}"
            )
        for n in f.get("notes", []):
            lines.append(f"  - {n}")
        if f.get("warning"):
            lines.append(f"  - **WARNING**: {f['warning']}")
    lines.append("")
    for s in shared:
        if s["fitted"] or s["reused"]:
            lines.append(
                f"- shared fits, seed {s['seed']}: fitted once: {', '.join(s['fitted']) or '-'}; "
                f"reused: {', '.join(s['reused']) or '-'}"
            )
    lines.append("")
    return lines


def strict_json(obj: Any) -> Any:
    """``obj`` with every non-finite float (NaN, inf) as ``None``, numpy scalars as Python ones,
    so that ``json.dumps(..., allow_nan=False)`` writes strict JSON."""
    if isinstance(obj, dict):
        return {str(k): strict_json(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [strict_json(v) for v in obj]
    if hasattr(obj, "item") and callable(obj.item) and getattr(obj, "ndim", 1) == 0:
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj
