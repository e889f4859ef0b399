"""RecBole atomic export and re-import of a :class:`KnowledgeGraph` (lossless round trip).

``export_recbole(g, DIR)`` writes ``NAME.inter`` (the full interaction table plus a
``positive`` flag), ``NAME.user`` / ``NAME.item`` (every node, in vocabulary order), ``NAME.kg``
(every forward edge not touching users: KG triples, catalog relations, tags; numeric edge
attributes as extra float columns), ``NAME.link`` (EVERY item: its KG entity, or a synthetic
``item:<id>`` entity, so that RecBole's KG datasets keep unlinked items instead of dropping them),
``NAME.uedge`` (user-side edges: user attributes, friends; RecBole ignores this file) and
``NAME.kgrec.json`` (node types, entity vocabularies, edge-type order and metadata).
``import_recbole(DIR)`` reads them back through :func:`kgrec.data.load_atomic_dir`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from kgrec._atomic import atomic_dir
from kgrec.data import Vocabulary, load_atomic_dir, read_atomic
from kgrec.errors import DataError
from kgrec.graph._kg import EdgeType, KnowledgeGraph, et_str

SIDE = ".kgrec.json"
ITEM_PREFIX = "item:"


def _node_names(g: KnowledgeGraph, nt: str, kg_type: str | None) -> np.ndarray:
    """The id each node of type ``nt`` gets in .kg / .uedge files."""
    ids = g.vocabs[nt].ids
    if nt == "item":
        return np.array(
            [g.item_entities.get(i, ITEM_PREFIX + i) for i in ids.tolist()], dtype=object
        )
    if nt == "user" or nt == kg_type:
        return ids.astype(object)
    return np.array([f"{nt}:{i}" for i in ids.tolist()], dtype=object)


def _check_field(values: np.ndarray, what: str) -> None:
    s = pd.Series(values, dtype=object).astype(str)
    bad = s.str.contains("[\t\r\n]", regex=True).to_numpy()
    if bad.any():
        raise DataError(
            f"{what} {s[bad].iloc[0]!r} contains a tab or newline, which RecBole atomic files "
            "cannot hold"
        )


def _write(path: Path, frame: pd.DataFrame) -> None:
    frame.to_csv(path, sep="\t", index=False, na_rep="", lineterminator="\n")


def export_recbole(g: KnowledgeGraph, out: str | Path, *, overwrite: bool = False) -> Path:
    """Write ``g`` as RecBole atomic files into directory ``out`` (atomically)."""
    out = Path(out)
    name = g.name
    kg_type = (g.meta.get("spec") or {}).get("kg", {}).get("node_type")
    names = {nt: _node_names(g, nt, kg_type) for nt in g.node_types}
    # written ids of all non-user nodes must be distinct (they share RecBole's entity space)
    allnames = np.concatenate([names[nt] for nt in g.node_types if nt != "user"])
    if not pd.Index(allnames).is_unique:
        dup = pd.Index(allnames)[pd.Index(allnames).duplicated()][0]
        raise DataError(f"two nodes would share the RecBole entity id {dup!r}; cannot export")
    for nt in g.node_types:
        _check_field(names[nt], f"{nt} id")
    ie = g.interaction_edge_type
    fwd = [et for et in g.forward_edge_types() if et != ie]
    with atomic_dir(out, overwrite=overwrite) as tmp:
        # .inter: the full table
        inter = g.interactions
        if inter is None:
            raise DataError("the graph has no interaction table to export")
        cols = {
            "user_id:token": g.vocabs["user"].ids[inter["user"].to_numpy()],
            "item_id:token": g.vocabs["item"].ids[inter["item"].to_numpy()],
        }
        for c in inter.columns:
            if c in ("user", "item"):
                continue
            if c in g.categories:
                cols[f"{c}:token"] = np.asarray(g.categories[c], dtype=object)[inter[c].to_numpy()]
            else:
                cols[f"{c}:float"] = inter[c].to_numpy(dtype=np.float64)
        pos = np.zeros(len(inter), dtype=np.float64)
        ie_attrs = g.edge_attrs.get(ie, {})
        pos_rows = ie_attrs["row"] if "row" in ie_attrs else _positive_rows(g)
        pos[pos_rows] = 1.0
        cols["positive:float"] = pos
        _write(tmp / f"{name}.inter", pd.DataFrame(cols))
        _write(tmp / f"{name}.user", pd.DataFrame({"user_id:token": g.vocabs["user"].ids}))
        _write(tmp / f"{name}.item", pd.DataFrame({"item_id:token": g.vocabs["item"].ids}))
        _write(
            tmp / f"{name}.link",
            pd.DataFrame({"item_id:token": g.vocabs["item"].ids, "entity_id:token": names["item"]}),
        )
        kg_rows, u_rows = [], []
        attr_names = sorted({a for et in fwd for a in g.edge_attrs.get(et, {})})
        for et in fwd:
            _check_field(np.array([et[1]], dtype=object), "relation")
            e = g.edges[et]
            part = {
                "h": names[et[0]][e[0]],
                "r": np.full(e.shape[1], et[1], dtype=object),
                "t": names[et[2]][e[1]],
            }
            for a in attr_names:
                x = g.edge_attrs.get(et, {}).get(a)
                part[a] = np.full(e.shape[1], np.nan) if x is None else x.astype(np.float64)
            (u_rows if "user" in (et[0], et[2]) else kg_rows).append(pd.DataFrame(part))
        head = ["head_id:token", "relation_id:token", "tail_id:token"]
        kg = (
            pd.concat(kg_rows, ignore_index=True)
            if kg_rows
            else pd.DataFrame({k: [] for k in ["h", "r", "t", *attr_names]})
        )
        kg.columns = [*head, *(f"{a}:float" for a in attr_names)]
        _write(tmp / f"{name}.kg", kg)
        ue = (
            pd.concat(u_rows, ignore_index=True)
            if u_rows
            else pd.DataFrame({k: [] for k in ["h", "r", "t", *attr_names]})
        )
        ue.columns = [
            "src_id:token",
            "relation_id:token",
            "dst_id:token",
            *(f"{a}:float" for a in attr_names),
        ]
        _write(tmp / f"{name}.uedge", ue)
        side = {
            "format": "kgrec-recbole-export",
            "version": 1,
            "name": name,
            "kg_node_type": kg_type,
            "node_types": g.node_types,
            "vocabs": {
                nt: g.vocabs[nt].ids.tolist() for nt in g.node_types if nt not in ("user", "item")
            },
            "edge_types": [list(et) for et in g.edge_types],
            "edge_attrs": [
                [list(et), {a: str(x.dtype) for a, x in v.items()}]
                for et, v in g.edge_attrs.items()
            ],
            "reverse_of": [[list(r), list(f)] for r, f in g.reverse_of.items()],
            "interaction_columns": list(inter.columns),
            "categories": g.categories,
            "meta": g.meta,
            "notes": g.notes,
        }
        (tmp / f"{name}{SIDE}").write_text(
            json.dumps(side, indent=1, default=str), encoding="utf-8"
        )
    return out


def _positive_rows(g: KnowledgeGraph) -> np.ndarray:
    """Rows of the interaction table that are positive edges (rating >= min_rating, or all)."""
    inter = g.interactions
    mr = g.meta.get("min_rating")
    if mr is None:
        return np.arange(len(inter))
    return np.flatnonzero(inter["rating"].to_numpy() >= mr)


def import_recbole(path: str | Path, *, name: str | None = None) -> KnowledgeGraph:
    """Read a directory written by :func:`export_recbole` back into a :class:`KnowledgeGraph`."""
    path = Path(path)
    sides = sorted(path.glob(f"*{SIDE}")) if name is None else [path / f"{name}{SIDE}"]
    if len(sides) != 1 or not sides[0].is_file():
        raise DataError(f"expected one NAME{SIDE} file written by `kgrec graph export`", path=path)
    doc = json.loads(sides[0].read_text(encoding="utf-8"))
    name = doc["name"]
    ds = load_atomic_dir(path, name=name)
    vocabs: dict[str, Vocabulary] = {}
    for nt in doc["node_types"]:
        if nt == "user":
            vocabs[nt] = Vocabulary(ds.user_ids(), node_type="user")
        elif nt == "item":
            vocabs[nt] = Vocabulary(ds.item_ids(), node_type="item")
        else:
            vocabs[nt] = Vocabulary(doc["vocabs"][nt], node_type=nt)
    uidx = pd.Index(vocabs["user"].ids, dtype=object)
    iidx = pd.Index(vocabs["item"].ids, dtype=object)
    # interactions
    f = ds.interactions.frame
    inter = pd.DataFrame(
        {
            "user": uidx.get_indexer(f["user"].to_numpy(dtype=object)).astype(np.int64),
            "item": iidx.get_indexer(f["item"].to_numpy(dtype=object)).astype(np.int64),
        }
    )
    cats = doc["categories"]
    for c in doc["interaction_columns"]:
        if c in ("user", "item"):
            continue
        if c in cats:
            codes = pd.Index(cats[c], dtype=object).get_indexer(
                f[c].astype(str).to_numpy(dtype=object)
            )
            inter[c] = codes.astype(np.int8 if len(cats[c]) < 128 else np.int32)
        else:
            inter[c] = f[c].to_numpy(dtype=np.float64)
    pos = f["positive"].to_numpy(dtype=np.float64) > 0
    # item -> entity links (synthetic item:<id> entities are not real links)
    links = ds.links.frame
    item_entities = {
        i: e for i, e in zip(links["item"], links["entity"], strict=True) if e != ITEM_PREFIX + i
    }
    kg_type = doc["kg_node_type"]
    lookup: dict[str, tuple[str, int]] = {}
    for k, e in enumerate(links["entity"].tolist()):
        lookup[e] = ("item", int(iidx.get_loc(links["item"].iloc[k])))
    for nt in doc["node_types"]:
        if nt in ("user", "item"):
            continue
        for k, i in enumerate(vocabs[nt].ids.tolist()):
            lookup[i if nt == kg_type else f"{nt}:{i}"] = (nt, k)
    ulook = {u: ("user", k) for k, u in enumerate(vocabs["user"].ids.tolist())}
    edge_types = [tuple(et) for et in doc["edge_types"]]
    attr_of = {tuple(et): v for et, v in doc["edge_attrs"]}
    edges: dict[EdgeType, np.ndarray] = {}
    attrs: dict[EdgeType, dict[str, np.ndarray]] = {}
    ie = ("user", doc["meta"].get("interaction_relation", "interacts"), "item")
    edges[ie] = np.stack([inter["user"].to_numpy()[pos], inter["item"].to_numpy()[pos]])
    if attr_of.get(ie):
        rows = np.flatnonzero(pos)
        attrs[ie] = {
            a: (rows if a == "row" else inter[a].to_numpy()[pos]).astype(dt)
            for a, dt in attr_of[ie].items()
        }
    for fname, cols, lk in (
        (f"{name}.kg", ("head_id", "relation_id", "tail_id"), (lookup, lookup)),
        (
            f"{name}.uedge",
            ("src_id", "relation_id", "dst_id"),
            ({**ulook, **lookup}, {**ulook, **lookup}),
        ),
    ):
        raw = read_atomic(path / fname)
        fr = raw.frame
        if not len(fr):
            continue
        src = [lk[0].get(x) for x in fr[cols[0]].tolist()]
        dst = [lk[1].get(x) for x in fr[cols[2]].tolist()]
        for k, (s, d) in enumerate(zip(src, dst, strict=True)):
            if s is None or d is None:
                col = cols[0] if s is None else cols[2]
                raise raw.error(k, col, f"unknown node id {fr[col].iloc[k]!r}")
        types = pd.DataFrame(
            {
                "s": [x[0] for x in src],
                "r": fr[cols[1]].to_numpy(dtype=object),
                "d": [x[0] for x in dst],
            }
        )
        si = np.array([x[1] for x in src], dtype=np.int64)
        di = np.array([x[1] for x in dst], dtype=np.int64)
        for et, rows in types.groupby(["s", "r", "d"], sort=False).indices.items():
            et = tuple(str(x) for x in et)
            rows = np.sort(rows)
            edges[et] = np.stack([si[rows], di[rows]])
            if attr_of.get(et):
                attrs[et] = {
                    a: fr[a].iloc[rows].astype(float).to_numpy().astype(dt)
                    for a, dt in attr_of[et].items()
                }
    reverse_of = {tuple(r): tuple(f) for r, f in doc["reverse_of"]}
    for rev, fwd in reverse_of.items():
        edges[rev] = edges[fwd][::-1].copy()
        if fwd in attrs:
            attrs[rev] = dict(attrs[fwd])
    missing = [et for et in edge_types if et not in edges]
    for et in missing:  # edge types with no edges
        edges[et] = np.zeros((2, 0), dtype=np.int64)
    extra = [et for et in edges if et not in edge_types]
    if extra:
        raise DataError(f"edge types {[et_str(e) for e in extra]} are not in {sides[0].name}")
    g = KnowledgeGraph(
        name=name,
        vocabs=vocabs,
        edges={et: edges[et] for et in edge_types},
        edge_attrs=attrs,
        reverse_of=reverse_of,
        interactions=inter,
        item_entities=item_entities,
        categories=cats,
        meta=doc["meta"],
        notes=doc["notes"],
    )
    return g.validate()
