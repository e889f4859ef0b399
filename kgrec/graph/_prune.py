"""Pruning a built graph: weakly attached or far entities go, users and items never do, and
what is removed is counted in the graph's notes."""

from __future__ import annotations

import numpy as np

from kgrec.graph._kg import KnowledgeGraph, et_str


def prune(g: KnowledgeGraph, *, min_entity_degree: int = 0, max_hops: int = 0) -> KnowledgeGraph:
    """A new graph without weakly attached or far entities (users and items are never removed).

    ``min_entity_degree``: entity nodes (all types other than user/item) with fewer edges go
    (one pass). ``max_hops``: entity nodes farther than ``max_hops`` from every item, walking
    item/entity edges in both directions (not through users), go; entity types attached to users
    (user attributes) are exempt. Counts of what was removed go to the notes.
    """
    etypes = [nt for nt in g.node_types if nt not in ("user", "item")]
    keep = {nt: np.ones(g.num_nodes(nt), dtype=bool) for nt in etypes}
    notes: list[str] = []
    if min_entity_degree > 1:
        for nt in etypes:
            low = g.degrees(nt) < min_entity_degree
            keep[nt] &= ~low
            if low.any():
                notes.append(
                    f"prune: {int(low.sum()):,} {nt!r} nodes with degree < {min_entity_degree} "
                    "removed (prune.min_entity_degree)"
                )
    if max_hops > 0:
        user_side = {
            x
            for (s, _, d) in g.edges
            for x in (s, d)
            if "user" in (s, d) and x not in ("user", "item")
        }
        hop_types = ["item", *[nt for nt in etypes if nt not in user_side]]
        offs, n = {}, 0
        for nt in hop_types:
            offs[nt] = n
            n += g.num_nodes(nt)
        rows, cols = [], []
        for (s, _, d), e in g.edges.items():
            if s in offs and d in offs:
                rows += [e[0] + offs[s], e[1] + offs[d]]
                cols += [e[1] + offs[d], e[0] + offs[s]]
        import scipy.sparse as sps

        if rows:
            r_ = np.concatenate(rows)
            c_ = np.concatenate(cols)
            adj = sps.csr_matrix((np.ones(len(r_), dtype=np.float32), (r_, c_)), shape=(n, n))
        else:
            adj = sps.csr_matrix((n, n), dtype=np.float32)
        seen = np.zeros(n, dtype=bool)
        seen[: g.num_nodes("item")] = True
        frontier = seen.copy()
        for _ in range(max_hops):
            reach = (adj @ frontier.astype(np.float32)) > 0
            frontier = reach & ~seen
            if not frontier.any():
                break
            seen |= frontier
        for nt in hop_types[1:]:
            far = ~seen[offs[nt] : offs[nt] + g.num_nodes(nt)]
            if far.any():
                notes.append(
                    f"prune: {int((far & keep[nt]).sum()):,} {nt!r} nodes farther than "
                    f"{max_hops} hop(s) from every item removed (prune.max_hops)"
                )
            keep[nt] &= ~far
    before = {et: e.shape[1] for et, e in g.edges.items()}
    out = g.subgraph(keep)
    lost = {et: before[et] - out.edges[et].shape[1] for et in before}
    dropped = sum(lost.values())
    if dropped:
        notes.append(
            f"prune: {dropped:,} edges removed with those nodes: "
            + ", ".join(f"{et_str(et)} {n:,}" for et, n in lost.items() if n)
        )
    out.notes = list(g.notes) + notes
    return out
