"""Degree-distribution plots of a graph (matplotlib, imported lazily; no global backend change)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kgrec._atomic import atomic_path
from kgrec.graph._kg import KnowledgeGraph

#: node types with at most this many nodes get one bar per node instead of a distribution
SMALL = 30


def plot_degrees(g: KnowledgeGraph, out: str | Path, *, dpi: int = 120) -> Path:
    """Write a PNG with one panel per node type: the complementary CDF of degrees (log-log), or
    one bar per node for types with at most ``SMALL`` nodes."""
    from matplotlib.figure import Figure  # no pyplot: leaves a notebook's backend alone

    types = [nt for nt in g.node_types if g.num_nodes(nt)]
    ncol = min(3, len(types))
    nrow = -(-len(types) // ncol)
    fig = Figure(figsize=(4.2 * ncol, 3.3 * nrow))
    axes = fig.subplots(nrow, ncol, squeeze=False)
    from matplotlib.ticker import NullFormatter

    for ax, nt in zip(axes.ravel(), types, strict=False):
        deg = g.degrees(nt)
        ax.set_title(
            f"{nt}: {len(deg):,} nodes\nmedian degree {np.median(deg):g}, max {deg.max():,}",
            fontsize=9,
        )
        ax.tick_params(labelsize=7)
        if len(deg) <= SMALL:
            # few nodes: one bar per node, labelled by its id
            order = np.argsort(deg)
            labels = [str(x)[:18] for x in g.vocabs[nt].ids[order]]
            ax.barh(np.arange(len(deg)), deg[order], color="tab:blue")
            ax.set_yticks(np.arange(len(deg)), labels, fontsize=max(5, 8 - len(deg) // 10))
            ax.set_xlabel("degree (forward edge types, in + out)", fontsize=8)
            ax.grid(True, axis="x", alpha=0.3)
            continue
        pos = deg[deg > 0]
        if len(pos):
            vals, counts = np.unique(pos, return_counts=True)
            ccdf = 1.0 - np.concatenate([[0], np.cumsum(counts)[:-1]]) / len(deg)
            ax.loglog(vals, ccdf, marker=".", linestyle="-", markersize=3)
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.yaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("degree d (forward edge types, in + out)", fontsize=8)
        ax.set_ylabel("share of nodes with degree >= d", fontsize=8)
        ax.grid(True, which="major", alpha=0.3)
        iso = int((deg == 0).sum())
        if iso:
            ax.text(0.02, 0.02, f"{iso:,} isolated", transform=ax.transAxes, fontsize=7)
    for ax in axes.ravel()[len(types) :]:
        ax.axis("off")
    fig.suptitle(f"degree distributions: {g.name}", fontsize=11)
    fig.tight_layout()
    out = Path(out)
    with atomic_path(out, suffix=out.suffix) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png")
    return out
