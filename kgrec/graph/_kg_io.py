"""A :class:`KnowledgeGraph` on disk: ``graph.json`` (types, meta, notes, stats),
``vocab.json`` (ids per node type), ``edges.npz`` and ``interactions.npz`` (``allow_pickle=False``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from kgrec.data import Vocabulary
from kgrec.errors import DataError
from kgrec.graph._kg import (
    EDGES_NPZ,
    FORMAT_VERSION,
    GRAPH_JSON,
    INTER_NPZ,
    VOCAB_JSON,
    KnowledgeGraph,
)


def write_graph(g: KnowledgeGraph, tmp: Path) -> None:
    """Write ``g``'s files into directory ``tmp`` (the caller makes it atomic)."""
    ets = list(g.edges)
    arrays: dict[str, np.ndarray] = {}
    attr_names: list[list[str]] = []
    for i, et in enumerate(ets):
        arrays[f"e{i}"] = g.edges[et]
        names = list(g.edge_attrs.get(et, {}))
        attr_names.append(names)
        for j, a in enumerate(names):
            arrays[f"e{i}_a{j}"] = g.edge_attrs[et][a]
    np.savez(tmp / EDGES_NPZ, **arrays)
    inter_cols: list[str] = []
    if g.interactions is not None:
        inter_cols = list(g.interactions.columns)
        np.savez(
            tmp / INTER_NPZ,
            **{f"c{j}": g.interactions[c].to_numpy() for j, c in enumerate(inter_cols)},
        )
    with (tmp / VOCAB_JSON).open("w", encoding="utf-8") as f:
        json.dump({nt: v.ids.tolist() for nt, v in g.vocabs.items()}, f)
    doc = {
        "format": "kgrec-graph",
        "version": FORMAT_VERSION,
        "name": g.name,
        "node_types": list(g.vocabs),
        "edge_types": [list(et) for et in ets],
        "edge_attrs": attr_names,
        "reverse_of": [[list(r), list(f)] for r, f in g.reverse_of.items()],
        "interaction_columns": inter_cols,
        "item_entities": g.item_entities,
        "categories": g.categories,
        "meta": g.meta,
        "notes": g.notes,
        "stats": g.stats().to_dict(),
    }
    (tmp / GRAPH_JSON).write_text(json.dumps(doc, indent=1, default=str), encoding="utf-8")


def read_graph(path: str | Path) -> KnowledgeGraph:
    """Read a graph directory written by :meth:`save` (no pickle anywhere)."""
    path = Path(path)
    gj = path / GRAPH_JSON
    if not gj.is_file():
        raise DataError(
            f"not a kgrec graph directory (no {GRAPH_JSON}); build one with "
            "`kgrec graph build SPEC`",
            path=path,
        )
    try:
        doc = json.loads(gj.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(f"invalid JSON: {exc.msg}", path=gj, line=exc.lineno) from None
    if doc.get("format") != "kgrec-graph" or doc.get("version") != FORMAT_VERSION:
        raise DataError(
            f"unsupported graph format {doc.get('format')!r} version {doc.get('version')!r} "
            f"(expected kgrec-graph {FORMAT_VERSION})",
            path=gj,
        )
    vj = json.loads((path / VOCAB_JSON).read_text(encoding="utf-8"))
    vocabs = {nt: Vocabulary(vj[nt], node_type=nt) for nt in doc["node_types"]}
    edges, attrs = {}, {}
    with np.load(path / EDGES_NPZ, allow_pickle=False) as z:
        for i, et in enumerate(doc["edge_types"]):
            et = tuple(et)
            edges[et] = z[f"e{i}"]
            names = doc["edge_attrs"][i]
            if names:
                attrs[et] = {a: z[f"e{i}_a{j}"] for j, a in enumerate(names)}
    inter = None
    if doc["interaction_columns"]:
        with np.load(path / INTER_NPZ, allow_pickle=False) as z:
            inter = pd.DataFrame({c: z[f"c{j}"] for j, c in enumerate(doc["interaction_columns"])})
    g = KnowledgeGraph(
        name=doc["name"],
        vocabs=vocabs,
        edges=edges,
        edge_attrs=attrs,
        reverse_of={tuple(r): tuple(f) for r, f in doc["reverse_of"]},
        interactions=inter,
        item_entities=doc["item_entities"],
        categories=doc["categories"],
        meta=doc["meta"],
        notes=doc["notes"],
    )
    return g.validate()
