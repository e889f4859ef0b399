"""Checks of a :class:`~kgrec.graph.KnowledgeGraph`: internal consistency
(:meth:`~kgrec.graph.KnowledgeGraph.validate`, a :class:`DataError` with a precise message) and
the differences between two graphs (:meth:`~kgrec.graph.KnowledgeGraph.differences`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from kgrec.errors import DataError

if TYPE_CHECKING:
    from kgrec.graph._kg import KnowledgeGraph


def et_str(et: tuple[str, str, str]) -> str:
    """``src -[relation]-> dst`` for messages."""
    return f"({et[0]}, {et[1]}, {et[2]})"


def validate_graph(self: KnowledgeGraph) -> None:
    """Raise :class:`DataError` where ``self`` is inconsistent (see ``KnowledgeGraph.validate``)."""
    for nt in ("user", "item"):
        if nt not in self.vocabs:
            raise DataError(f"graph {self.name!r}: missing node type {nt!r}")
    for nt, v in self.vocabs.items():
        if v.node_type != nt:
            raise DataError(f"vocabulary under {nt!r} has node_type {v.node_type!r}")
    for et, e in self.edges.items():
        if len(et) != 3 or not all(isinstance(x, str) and x for x in et):
            raise DataError(f"edge type {et!r} is not (src_type, relation, dst_type)")
        s, _, d = et
        for role, nt, row in (("source", s, 0), ("destination", d, 1)):
            if nt not in self.vocabs:
                raise DataError(
                    f"edge type {et_str(et)}: {role} node type {nt!r} has no vocabulary "
                    f"(node types: {self.node_types})"
                )
            if e.dtype != np.int64 or e.ndim != 2 or e.shape[0] != 2:
                raise DataError(
                    f"edge type {et_str(et)}: expected a (2, E) int64 array, got "
                    f"{e.dtype} {e.shape}"
                )
            if e.shape[1]:
                n = len(self.vocabs[nt])
                bad = (e[row] < 0) | (e[row] >= n)
                if bad.any():
                    k = int(np.flatnonzero(bad)[0])
                    raise DataError(
                        f"edge type {et_str(et)}: edge {k} has {role} index {int(e[row, k])} "
                        f"outside 0..{n - 1} of node type {nt!r} ({int(bad.sum())} such edges)"
                    )
    for et, attrs in self.edge_attrs.items():
        if et not in self.edges:
            raise DataError(f"edge attributes for absent edge type {et_str(et)}")
        n = self.edges[et].shape[1]
        for a, x in attrs.items():
            if len(x) != n:
                raise DataError(
                    f"edge type {et_str(et)}: attribute {a!r} has {len(x)} values for {n} edges"
                )
    for rev, fwd in self.reverse_of.items():
        if rev not in self.edges or fwd not in self.edges:
            raise DataError(f"reverse map {et_str(rev)} -> {et_str(fwd)} names an absent edge type")
        if (rev[0], rev[2]) != (fwd[2], fwd[0]) or not np.array_equal(
            self.edges[rev], self.edges[fwd][::-1]
        ):
            raise DataError(f"edge type {et_str(rev)} is not the reverse of {et_str(fwd)}")
    if self.interactions is not None:
        for col, nt in (("user", "user"), ("item", "item")):
            x = self.interactions[col].to_numpy()
            n = len(self.vocabs[nt])
            bad = (x < 0) | (x >= n)
            if bad.any():
                k = int(np.flatnonzero(bad)[0])
                raise DataError(f"interaction row {k}: {col} index {int(x[k])} outside 0..{n - 1}")


def graph_differences(
    self: KnowledgeGraph, other: KnowledgeGraph, *, check_meta: bool
) -> list[str]:
    """What differs between ``self`` and ``other`` (empty when the graphs are identical)."""
    out: list[str] = []
    if list(self.vocabs) != list(other.vocabs):
        out.append(f"node types {list(self.vocabs)} vs {list(other.vocabs)}")
    for nt in self.vocabs:
        if nt in other.vocabs and self.vocabs[nt] != other.vocabs[nt]:
            out.append(f"vocabulary {nt!r} differs")
    if set(self.edges) != set(other.edges):
        out.append(f"edge types differ: {sorted(set(self.edges) ^ set(other.edges))}")
    for et in self.edges:
        if et in other.edges and not np.array_equal(self.edges[et], other.edges[et]):
            out.append(f"edges of {et_str(et)} differ")
        a, b = self.edge_attrs.get(et, {}), other.edge_attrs.get(et, {})
        if set(a) != set(b):
            out.append(f"edge attributes of {et_str(et)}: {sorted(a)} vs {sorted(b)}")
        for k in set(a) & set(b):
            if not np.array_equal(a[k], b[k], equal_nan=a[k].dtype.kind == "f"):
                out.append(f"edge attribute {k!r} of {et_str(et)} differs")
    if self.reverse_of != other.reverse_of:
        out.append("reverse edge types differ")
    if (self.interactions is None) != (other.interactions is None):
        out.append("one graph has no interaction table")
    elif self.interactions is not None:
        try:
            pd.testing.assert_frame_equal(self.interactions, other.interactions, check_like=False)
        except AssertionError as exc:
            out.append(f"interactions differ: {str(exc).splitlines()[0]}")
    if self.item_entities != other.item_entities:
        out.append("item -> entity links differ")
    if self.categories != other.categories:
        out.append("categories differ")
    if check_meta and self.meta != other.meta:
        out.append("meta differs")
    return out
