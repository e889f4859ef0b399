"""Converters: a homogeneous view with its offset table, torch-geometric HeteroData, networkx.

torch, torch_geometric and networkx are imported inside the functions that need them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from kgrec._numeric import csr_to_torch
from kgrec.errors import DataError

if TYPE_CHECKING:
    from kgrec.graph._kg import EdgeType, KnowledgeGraph


@dataclass(frozen=True, eq=False)
class HomogeneousGraph:
    """All nodes in one index space ``0..num_nodes-1``.

    ``node_types[k]`` occupies global indices ``offsets[k] .. offsets[k] + counts[k] - 1``
    (never assume items come first: ask :meth:`offset`). ``edge_index`` is ``(2, E)`` int64 of
    global indices; ``edge_type[j]`` indexes ``relations``, the ``(src, relation, dst)`` edge types.
    """

    edge_index: np.ndarray
    edge_type: np.ndarray
    relations: list[EdgeType]
    node_types: list[str]
    offsets: np.ndarray
    counts: np.ndarray

    @property
    def num_nodes(self) -> int:
        return int(self.counts.sum())

    @property
    def num_edges(self) -> int:
        return int(self.edge_index.shape[1])

    def offset(self, node_type: str) -> int:
        """First global index of ``node_type``."""
        return int(self.offsets[self._k(node_type)])

    def _k(self, node_type: str) -> int:
        try:
            return self.node_types.index(node_type)
        except ValueError:
            raise DataError(f"no node type {node_type!r}; have {self.node_types}") from None

    def global_index(self, node_type: str, local: np.ndarray | int) -> np.ndarray:
        """Global indices of local indices of one node type."""
        k = self._k(node_type)
        loc = np.asarray(local, dtype=np.int64)
        if loc.size and (loc.min() < 0 or loc.max() >= self.counts[k]):
            raise DataError(f"{node_type} index outside 0..{int(self.counts[k]) - 1}")
        return loc + self.offsets[k]

    def local_index(self, glob: np.ndarray | int) -> tuple[np.ndarray, np.ndarray]:
        """(node type position in ``node_types``, local index) of global indices."""
        g = np.asarray(glob, dtype=np.int64)
        k = np.searchsorted(self.offsets, g, side="right") - 1
        return k, g - self.offsets[k]

    def node_type_ids(self) -> np.ndarray:
        """Node-type position of every global node (length ``num_nodes``)."""
        return np.repeat(np.arange(len(self.node_types)), self.counts)

    def table(self) -> list[dict]:
        """The node-type/offset table as rows ``{node_type, offset, count}``."""
        return [
            {"node_type": t, "offset": int(o), "count": int(c)}
            for t, o, c in zip(self.node_types, self.offsets, self.counts, strict=True)
        ]

    def to_torch(self):
        """``(edge_index, edge_type)`` as torch int64 tensors."""
        import torch

        return torch.from_numpy(self.edge_index.copy()), torch.from_numpy(self.edge_type.copy())

    def adjacency(self, *, symmetric: bool = True, normalize: str | None = "sym"):
        """A ``torch.sparse_csr_tensor`` adjacency (float32) for propagation ``A @ X``.

        ``symmetric`` adds each edge in both directions (skip it when the graph already holds
        reverse edges); ``normalize``: ``"sym"`` (D^-1/2 A D^-1/2, LightGCN), ``"row"``
        (D^-1 A) or None. Duplicate edges add up.
        """
        import scipy.sparse as sps

        src, dst = self.edge_index
        if symmetric:
            src, dst = np.concatenate([src, dst]), np.concatenate([dst, src])
        n = self.num_nodes
        a = sps.csr_matrix((np.ones(len(src), dtype=np.float32), (src, dst)), shape=(n, n))
        a.sum_duplicates()
        if normalize is not None:
            deg = np.asarray(a.sum(axis=1)).ravel()
            with np.errstate(divide="ignore"):
                if normalize == "sym":
                    d = np.where(deg > 0, deg**-0.5, 0.0).astype(np.float32)
                    a = sps.diags(d) @ a @ sps.diags(d)
                elif normalize == "row":
                    d = np.where(deg > 0, 1.0 / deg, 0.0).astype(np.float32)
                    a = sps.diags(d) @ a
                else:
                    raise ValueError(f"normalize must be 'sym', 'row' or None, not {normalize!r}")
        return csr_to_torch(a)


def to_homogeneous(
    g: KnowledgeGraph,
    *,
    edge_types: Iterable[EdgeType] | None = None,
    node_types: Iterable[str] | None = None,
) -> HomogeneousGraph:
    """One edge_index over all nodes; ``edge_types`` selects (and orders) the relations."""
    nts = list(node_types) if node_types is not None else g.node_types
    missing = [nt for nt in g.node_types if nt not in nts]
    if missing:
        raise DataError(f"node_types must list every node type; missing {missing}")
    counts = np.array([g.num_nodes(nt) for nt in nts], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    off = dict(zip(nts, offsets, strict=True))
    ets = [tuple(e) for e in edge_types] if edge_types is not None else g.edge_types
    parts, types = [], []
    for k, et in enumerate(ets):
        e = g.edge_index(et)
        parts.append(np.stack([e[0] + off[et[0]], e[1] + off[et[2]]]))
        types.append(np.full(e.shape[1], k, dtype=np.int64))
    ei = np.concatenate(parts, axis=1) if parts else np.zeros((2, 0), dtype=np.int64)
    et_arr = np.concatenate(types) if types else np.zeros(0, dtype=np.int64)
    return HomogeneousGraph(ei, et_arr, ets, nts, offsets, counts)


def to_hetero_data(g: KnowledgeGraph):
    """torch-geometric ``HeteroData``: ``num_nodes`` per node type, ``edge_index`` per edge
    type, numeric edge attributes as ``data[edge_type][name]`` tensors."""
    import torch
    from torch_geometric.data import HeteroData

    data = HeteroData()
    for nt in g.node_types:
        data[nt].num_nodes = g.num_nodes(nt)
    for et, e in g.edges.items():
        data[et].edge_index = torch.from_numpy(e.copy())
        for a, x in g.edge_attrs.get(et, {}).items():
            data[et][a] = torch.from_numpy(np.array(x))
    data.validate(raise_on_error=True)
    return data


def to_networkx(g: KnowledgeGraph):
    """``networkx.MultiDiGraph`` with nodes ``(node_type, id)`` (attribute ``node_type``) and one
    edge per graph edge (attribute ``relation``, edge attributes copied; parallel edges kept). Node and edge counts equal
    :meth:`KnowledgeGraph.stats`."""
    import networkx as nx

    G = nx.MultiDiGraph(name=g.name)
    for nt, v in g.vocabs.items():
        G.add_nodes_from(((nt, i) for i in v.ids), node_type=nt)
    for et, e in g.edges.items():
        s_ids = g.vocabs[et[0]].ids[e[0]]
        d_ids = g.vocabs[et[2]].ids[e[1]]
        at = g.edge_attrs.get(et, {})
        names = list(at)
        cols = [at[a].tolist() for a in names]
        if names:
            G.add_edges_from(
                ((et[0], s), (et[2], d), {"relation": et[1], **dict(zip(names, vals, strict=True))})
                for s, d, *vals in zip(s_ids, d_ids, *cols, strict=True)
            )
        else:
            G.add_edges_from(
                ((et[0], s), (et[2], d), {"relation": et[1]})
                for s, d in zip(s_ids, d_ids, strict=True)
            )
    return G
