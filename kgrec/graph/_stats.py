"""Counts of a graph (:class:`GraphStats`) and their text form for ``kgrec graph build/stats``."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

MAX_LISTED = 30  # edge types listed by GraphStats.to_text


@dataclass
class GraphStats:
    """Counts of a graph: nodes per type, edges per edge type and per relation, degrees."""

    name: str
    nodes: dict[str, int]
    edges: dict[str, int]  # "src|relation|dst" -> count
    relations: dict[str, int]  # relation -> count (over all its edge types)
    reverse_edges: int
    num_nodes: int
    num_edges: int
    degree: dict[str, dict[str, float]]  # node type -> min/median/mean/max/isolated
    interactions: int | None = None
    positive_interactions: int | None = None
    linked_items: int | None = None
    reverse_types: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_text(self) -> str:
        out = [f"graph: {self.name}"]
        out.append(f"  nodes  {self.num_nodes:,}   edges  {self.num_edges:,}")
        if self.interactions is not None:
            out.append(
                f"  interactions  {self.interactions:,} (positive user-item edges "
                f"{self.positive_interactions:,})"
            )
        if self.linked_items is not None:
            out.append(f"  items linked to KG entities  {self.linked_items:,}")
        out.append("  nodes per type:")
        w = max(len(k) for k in self.nodes) if self.nodes else 4
        for k, v in self.nodes.items():
            out.append(f"    {k:<{w}}  {v:>10,}")
        out.append("  edges per relation (forward; all edge types of a relation summed):")
        fwd = {k: v for k, v in self.relations.items()}
        w = max((len(k) for k in fwd), default=4)
        for k, v in fwd.items():
            out.append(f"    {k:<{w}}  {v:>10,}")
        fwd_types = {k: v for k, v in self.edges.items() if k not in self.reverse_types}
        shown = sorted(fwd_types.items(), key=lambda kv: -kv[1])[:MAX_LISTED]
        out.append(
            "  edges per forward edge type (src|relation|dst)"
            + (
                f", largest {MAX_LISTED} of {len(fwd_types)}:"
                if len(fwd_types) > MAX_LISTED
                else ":"
            )
        )
        w = max((len(k) for k, _ in shown), default=4)
        for k, v in shown:
            out.append(f"    {k:<{w}}  {v:>10,}")
        if len(fwd_types) > MAX_LISTED:
            out.append("    ... (all edge types: --json)")
        if self.reverse_edges:
            out.append(
                f"  reverse edge types: {len(self.reverse_types)} with {self.reverse_edges:,} "
                "edges (each mirrors a forward type)"
            )
        out.append(
            "  degree per node type (forward edge types, in + out; reverse copies not counted):"
        )
        out.append(
            f"    {'type':<{max(4, *(len(k) for k in self.degree))}}  "
            f"{'min':>6} {'median':>8} {'mean':>9} {'max':>8} {'isolated':>9}"
        )
        w = max(4, *(len(k) for k in self.degree))
        for k, d in self.degree.items():
            out.append(
                f"    {k:<{w}}  {d['min']:>6,.0f} {d['median']:>8,.1f} {d['mean']:>9,.2f} "
                f"{d['max']:>8,.0f} {d['isolated']:>9,.0f}"
            )
        for n in self.notes:
            out.append(f"  note: {n}")
        return "\n".join(out)
