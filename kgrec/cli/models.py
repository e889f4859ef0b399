"""``kgrec models``: every registered model with one line each and the side information it uses.

The table is kept here (not built from :data:`kgrec.models.MODELS`) so that ``kgrec --help`` and
``kgrec compare --help`` stay fast (no torch import); a test keeps it in step with the registry.
"""

from __future__ import annotations

import click

#: short name -> (what it is, side information it uses)
MODEL_HELP: dict[str, tuple[str, str]] = {
    "pop": ("most popular items (training interaction counts)", "interactions only"),
    "itemknn": ("item-item cosine kNN (k=100)", "interactions only"),
    "ease": ("EASE: closed-form linear item-item model (L2 250)", "interactions only"),
    "mf": ("matrix factorisation trained with BPR", "interactions only"),
    "lightgcn": ("LightGCN graph propagation trained with BPR", "interactions only"),
    "hybrid": (
        "KG + text hybrid: typed KG/attribute links + text vectors fused with IDs, LightGCN "
        "propagation, softmax ranking loss, EASE blend; variants by --set kg=false, text=false, "
        "cf_blend=none, align=0.1, cold_map=content",
        "needs a graph spec: KG/attribute relations, item text (and optionally user links)",
    ),
    "textknn": ("cold-start baseline: cosine of item text vectors to the user's mean", "item text"),
    "kgknn": ("cold-start baseline: cosine of IDF entity bags to the user's mean", "KG links"),
    "content2cf": (
        "cold-start baseline: PureSVD factors, ridge-regressed from content for new items",
        "item text + KG links",
    ),
}


def models_help() -> str:
    """One line per model, for ``--models`` help texts."""
    return "; ".join(
        f"{n}: {d.split(':')[0] if n == 'hybrid' else d}" for n, (d, _) in MODEL_HELP.items()
    )


@click.command("models")
def models() -> None:
    """List every model kgrec can train or compare, with the side information each uses.

    Use the short names with `kgrec compare --models a,b` and `kgrec train --model NAME`; each
    model's settings are listed by `kgrec train --model NAME --help-config`.
    """
    width = max(map(len, MODEL_HELP))
    for name, (what, side) in MODEL_HELP.items():
        click.echo(f"{name:<{width}}  {what}")
        click.echo(f"{'':<{width}}  uses: {side}")
