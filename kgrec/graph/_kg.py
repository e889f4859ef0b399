"""KnowledgeGraph: vocabularies per node type and typed ``(src_type, relation, dst_type)`` edges.

Ids live in vocabularies (one per node type); edges are ``(2, E)`` int64 arrays of local indices.
The graph is treated as immutable: every transform (``filter_edges``, ``add_reverse``,
``prune``) returns a new graph and never changes its input (arrays are marked read-only).
Save/load uses ``.npz`` (``allow_pickle=False``) and JSON, never pickle.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kgrec._atomic import atomic_dir
from kgrec.data import Vocabulary
from kgrec.errors import DataError
from kgrec.graph._kg_checks import et_str, graph_differences, validate_graph
from kgrec.graph._stats import GraphStats

log = logging.getLogger(__name__)

EdgeType = tuple[str, str, str]
FORMAT_VERSION = 1
GRAPH_JSON = "graph.json"
VOCAB_JSON = "vocab.json"
EDGES_NPZ = "edges.npz"
INTER_NPZ = "interactions.npz"


def _frozen(a: np.ndarray) -> np.ndarray:
    """A read-only view (the caller's own array keeps its flags)."""
    v = np.ascontiguousarray(a).view()
    v.flags.writeable = False
    return v


class KnowledgeGraph:
    """Typed heterogeneous graph: users, items, entities of several types, typed edges.

    ``vocabs``: node type -> :class:`Vocabulary`; ``edges``: edge type -> ``(2, E)`` int64
    (row 0 source indices in the source type's vocabulary, row 1 destination indices);
    ``edge_attrs``: edge type -> {name: array of length E} (numeric; categorical attributes are
    integer codes whose labels are in ``categories``); ``reverse_of``: reverse edge type ->
    its forward edge type; ``interactions``: the FULL interaction table (``user``, ``item`` as
    indices plus rating/timestamp/... columns), of which the user-item edges are the positives;
    ``item_entities``: item id -> the external KG entity merged into that item node.
    """

    def __init__(
        self,
        *,
        name: str,
        vocabs: Mapping[str, Vocabulary],
        edges: Mapping[EdgeType, np.ndarray],
        edge_attrs: Mapping[EdgeType, Mapping[str, np.ndarray]] | None = None,
        reverse_of: Mapping[EdgeType, EdgeType] | None = None,
        interactions: pd.DataFrame | None = None,
        item_entities: Mapping[str, str] | None = None,
        categories: Mapping[str, list[str]] | None = None,
        meta: Mapping[str, Any] | None = None,
        notes: Iterable[str] = (),
    ) -> None:
        self.name = name
        self.vocabs: dict[str, Vocabulary] = dict(vocabs)
        self.edges: dict[EdgeType, np.ndarray] = {
            tuple(k): _frozen(np.asarray(v, dtype=np.int64).reshape(2, -1))
            for k, v in edges.items()
        }
        self.edge_attrs: dict[EdgeType, dict[str, np.ndarray]] = {
            tuple(k): {a: _frozen(np.asarray(x)) for a, x in v.items()}
            for k, v in (edge_attrs or {}).items()
            if v
        }
        self.reverse_of: dict[EdgeType, EdgeType] = {
            tuple(k): tuple(v) for k, v in (reverse_of or {}).items()
        }
        # pandas copy-on-write: a shallow copy is cheap and never shares mutations
        self.interactions = None if interactions is None else interactions.copy(deep=False)
        self.item_entities: dict[str, str] = dict(item_entities or {})
        self.categories: dict[str, list[str]] = {k: list(v) for k, v in (categories or {}).items()}
        self.meta: dict[str, Any] = dict(meta or {})
        self.notes: list[str] = list(notes)

    # ------------------------------------------------------------------ basics
    def __repr__(self) -> str:
        return (
            f"KnowledgeGraph({self.name!r}, nodes={ {k: len(v) for k, v in self.vocabs.items()} }, "
            f"edge_types={len(self.edges)}, edges={self.num_edges:,})"
        )

    @property
    def node_types(self) -> list[str]:
        return list(self.vocabs)

    @property
    def edge_types(self) -> list[EdgeType]:
        return list(self.edges)

    def num_nodes(self, node_type: str | None = None) -> int:
        if node_type is None:
            return sum(len(v) for v in self.vocabs.values())
        return len(self.vocab(node_type))

    @property
    def num_edges(self) -> int:
        return int(sum(e.shape[1] for e in self.edges.values()))

    def vocab(self, node_type: str) -> Vocabulary:
        try:
            return self.vocabs[node_type]
        except KeyError:
            raise DataError(
                f"no node type {node_type!r}; the graph has {self.node_types}"
            ) from None

    def edge_index(self, edge_type: EdgeType) -> np.ndarray:
        """``(2, E)`` int64 local indices of one edge type."""
        try:
            return self.edges[tuple(edge_type)]
        except KeyError:
            raise DataError(
                f"no edge type {edge_type!r}; the graph has {[et_str(e) for e in self.edges]}"
            ) from None

    def forward_edge_types(self) -> list[EdgeType]:
        """Edge types that are not reverse copies."""
        return [e for e in self.edges if e not in self.reverse_of]

    @property
    def interaction_edge_type(self) -> EdgeType:
        """The positive user-item edge type."""
        return ("user", self.meta.get("interaction_relation", "interacts"), "item")

    def edge_types_of(self, relation: str) -> list[EdgeType]:
        return [e for e in self.edges if e[1] == relation]

    # ------------------------------------------------------------------ validate
    def validate(self) -> KnowledgeGraph:
        """Check internal consistency; raise :class:`DataError` with a precise message.

        Every edge type must name known node types; indices must be int64 within
        ``0..len(vocab)-1``; edge attributes must have one value per edge; reverse edge types
        must mirror their forward type; interactions must index known users and items.
        """
        validate_graph(self)
        return self

    # ------------------------------------------------------------------ stats
    def degrees(self, node_type: str, *, include_reverse: bool = False) -> np.ndarray:
        """Degree of every node of a type over all edge types, in + out. Reverse edge types
        are skipped unless ``include_reverse`` (they would count each connection twice)."""
        deg = np.zeros(len(self.vocab(node_type)), dtype=np.int64)
        for et, e in self.edges.items():
            if et in self.reverse_of and not include_reverse:
                continue
            s, _, d = et
            if s == node_type:
                deg += np.bincount(e[0], minlength=len(deg))
            if d == node_type:
                deg += np.bincount(e[1], minlength=len(deg))
        return deg

    def stats(self) -> GraphStats:
        """Counts per node type, edge type and relation, and a degree summary per node type."""
        rel: dict[str, int] = {}
        for et, e in self.edges.items():
            if et in self.reverse_of:
                continue
            rel[et[1]] = rel.get(et[1], 0) + int(e.shape[1])
        degree: dict[str, dict[str, float]] = {}
        for nt in self.vocabs:
            deg = self.degrees(nt)
            if len(deg):
                degree[nt] = {
                    "min": float(deg.min()),
                    "median": float(np.median(deg)),
                    "mean": float(deg.mean()),
                    "max": float(deg.max()),
                    "isolated": float((deg == 0).sum()),
                }
            else:
                degree[nt] = dict.fromkeys(("min", "median", "mean", "max", "isolated"), 0.0)
        inter = self.interactions
        ie = self.interaction_edge_type
        return GraphStats(
            name=self.name,
            nodes={k: len(v) for k, v in self.vocabs.items()},
            edges={"|".join(k): int(v.shape[1]) for k, v in self.edges.items()},
            relations=rel,
            reverse_edges=int(sum(self.edges[k].shape[1] for k in self.reverse_of)),
            reverse_types=["|".join(k) for k in self.reverse_of],
            num_nodes=self.num_nodes(),
            num_edges=self.num_edges,
            degree=degree,
            interactions=None if inter is None else len(inter),
            positive_interactions=int(self.edges[ie].shape[1]) if ie in self.edges else None,
            linked_items=(
                len(self.item_entities)
                if self.item_entities or (self.meta.get("spec") or {}).get("kg") is not None
                else None
            ),
            notes=list(self.notes),
        )

    # ------------------------------------------------------------------ transforms (copy)
    def _replace(self, **kw: Any) -> KnowledgeGraph:
        base = dict(
            name=self.name,
            vocabs=self.vocabs,
            edges=self.edges,
            edge_attrs=self.edge_attrs,
            reverse_of=self.reverse_of,
            interactions=self.interactions,
            item_entities=self.item_entities,
            categories=self.categories,
            meta=self.meta,
            notes=self.notes,
        )
        base.update(kw)
        return KnowledgeGraph(**base)

    def copy(self) -> KnowledgeGraph:
        return self._replace(
            edges={k: v.copy() for k, v in self.edges.items()},
            edge_attrs={k: {a: x.copy() for a, x in v.items()} for k, v in self.edge_attrs.items()},
            interactions=None if self.interactions is None else self.interactions.copy(),
        )

    def filter_edges(self, edge_type: EdgeType, keep: np.ndarray) -> KnowledgeGraph:
        """A new graph keeping only the edges of ``edge_type`` where ``keep`` (bool mask) is true;
        its reverse edge type, if any, is filtered the same way. E.g. drop test edges."""
        et = tuple(edge_type)
        e = self.edge_index(et)
        keep = np.asarray(keep, dtype=bool)
        if keep.shape != (e.shape[1],):
            raise DataError(f"mask of shape {keep.shape} for {e.shape[1]} edges of {et_str(et)}")
        targets = [et] + [r for r, f in self.reverse_of.items() if f == et]
        edges = dict(self.edges)
        attrs = dict(self.edge_attrs)
        for t in targets:
            edges[t] = self.edges[t][:, keep]
            if t in self.edge_attrs:
                attrs[t] = {a: x[keep] for a, x in self.edge_attrs[t].items()}
        return self._replace(edges=edges, edge_attrs=attrs)

    def without_reverse(self) -> KnowledgeGraph:
        """A new graph with the reverse edge types removed."""
        keep = self.forward_edge_types()
        return self._replace(
            edges={k: self.edges[k] for k in keep},
            edge_attrs={k: v for k, v in self.edge_attrs.items() if k in keep},
            reverse_of={},
        )

    def add_reverse(self, *, prefix: str = "rev_", exclude: Iterable[str] = ()) -> KnowledgeGraph:
        """A new graph where each forward edge type ``(s, r, d)`` (``r`` not in ``exclude``)
        also has ``(d, prefix + r, s)`` with the same edges reversed and the same attributes."""
        excl = set(exclude)
        edges = dict(self.edges)
        attrs = dict(self.edge_attrs)
        rev_of = dict(self.reverse_of)
        have_rev = set(self.reverse_of.values())
        for et in self.forward_edge_types():
            if et[1] in excl or et in have_rev:
                continue
            r = (et[2], prefix + et[1], et[0])
            if r in edges:
                raise DataError(f"reverse edge type {et_str(r)} already exists as a forward type")
            edges[r] = self.edges[et][::-1].copy()
            if et in self.edge_attrs:
                attrs[r] = dict(self.edge_attrs[et])
            rev_of[r] = et
        return self._replace(edges=edges, edge_attrs=attrs, reverse_of=rev_of)

    def subgraph(self, keep: Mapping[str, np.ndarray]) -> KnowledgeGraph:
        """A new graph keeping, per node type in ``keep``, the nodes where the mask is true;
        indices are renumbered and edges touching removed nodes dropped. Other types unchanged."""
        vocabs = dict(self.vocabs)
        remap: dict[str, np.ndarray] = {}
        for nt, mask in keep.items():
            mask = np.asarray(mask, dtype=bool)
            v = self.vocab(nt)
            if mask.shape != (len(v),):
                raise DataError(f"mask of shape {mask.shape} for {len(v)} {nt!r} nodes")
            new = np.full(len(v), -1, dtype=np.int64)
            new[mask] = np.arange(int(mask.sum()))
            remap[nt] = new
            vocabs[nt] = Vocabulary(v.ids[mask], node_type=nt)
        edges, attrs = {}, {}
        for et, e in self.edges.items():
            s = remap[et[0]][e[0]] if et[0] in remap else e[0]
            d = remap[et[2]][e[1]] if et[2] in remap else e[1]
            ok = (s >= 0) & (d >= 0)
            edges[et] = np.stack([s[ok], d[ok]])
            if et in self.edge_attrs:
                attrs[et] = {a: x[ok] for a, x in self.edge_attrs[et].items()}
        inter = self.interactions
        if inter is not None and ("user" in remap or "item" in remap):
            inter = inter.copy()
            for col in ("user", "item"):
                if col in remap:
                    inter[col] = remap[col][inter[col].to_numpy()]
            inter = inter[(inter["user"] >= 0) & (inter["item"] >= 0)].reset_index(drop=True)
        ie = self.item_entities
        if "item" in remap:
            alive = set(vocabs["item"].ids.tolist())
            ie = {k: v for k, v in ie.items() if k in alive}
        return self._replace(
            vocabs=vocabs, edges=edges, edge_attrs=attrs, interactions=inter, item_entities=ie
        )

    # ------------------------------------------------------------------ converters
    def to_homogeneous(
        self,
        *,
        edge_types: Iterable[EdgeType] | None = None,
        node_types: Iterable[str] | None = None,
    ):
        """One node space: see :class:`kgrec.graph.HomogeneousGraph` (edge_index, relation ids,
        node-type offset table). ``edge_types``/``node_types`` select and order them."""
        from kgrec.graph._convert import to_homogeneous

        return to_homogeneous(self, edge_types=edge_types, node_types=node_types)

    def to_hetero_data(self):
        """A ``torch_geometric.data.HeteroData`` (imported lazily)."""
        from kgrec.graph._convert import to_hetero_data

        return to_hetero_data(self)

    def to_networkx(self):
        """A ``networkx.MultiDiGraph`` with nodes ``(node_type, id)`` (imported lazily)."""
        from kgrec.graph._convert import to_networkx

        return to_networkx(self)

    # ------------------------------------------------------------------ equality
    def equals(self, other: KnowledgeGraph, *, check_meta: bool = False) -> bool:
        """Same vocabularies (ids and order), edge types, edges, attributes and interactions."""
        return not self.differences(other, check_meta=check_meta)

    def differences(self, other: KnowledgeGraph, *, check_meta: bool = False) -> list[str]:
        """Human-readable list of what differs (empty when the graphs are identical)."""
        return graph_differences(self, other, check_meta=check_meta)

    # ------------------------------------------------------------------ save / load
    def save(self, path: str | Path, *, overwrite: bool = False) -> Path:
        """Write the graph to directory ``path`` atomically (npz without pickle + JSON)."""
        from kgrec.graph._kg_io import write_graph

        path = Path(path)
        with atomic_dir(path, overwrite=overwrite) as tmp:
            write_graph(self, tmp)
        return path

    @classmethod
    def load(cls, path: str | Path) -> KnowledgeGraph:
        """Read a graph directory written by :meth:`save` (no pickle anywhere)."""
        from kgrec.graph._kg_io import read_graph

        return read_graph(path)
