"""Build a :class:`KnowledgeGraph` from a :class:`GraphSpec` and its dataset, vectorised.

Nothing is dropped silently: every item of the catalog and of the interactions is an item node
(with or without KG links); KG entities linked to items become those item nodes; every source
KG triple is kept unless pruning is asked for, and what pruning removes is counted in the notes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from kgrec.data import Dataset, Vocabulary
from kgrec.errors import DataError, SpecError
from kgrec.graph._columns import _column_values, _Lookup, _lookup, _oindex
from kgrec.graph._kg import EdgeType, KnowledgeGraph
from kgrec.graph._prune import prune
from kgrec.graph._spec_types import GraphSpec

log = logging.getLogger(__name__)

#: interaction columns kept (numeric) in the full interaction table; "split" is categorical
NUMERIC_INTER = ("rating", "timestamp", "weight")
CATEGORICAL_INTER = ("split",)


@dataclass
class _Build:
    """What the build stages share: the spec, the dataset and the graph's parts so far."""

    spec: GraphSpec
    ds: Dataset
    say: Callable[[str], None]
    notes: list[str]
    vocabs: dict[str, Vocabulary] = field(default_factory=dict)
    edges: dict[EdgeType, np.ndarray] = field(default_factory=dict)
    attrs: dict[EdgeType, dict[str, np.ndarray]] = field(default_factory=dict)
    categories: dict[str, list[str]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    #: (edge type, source indices, destination ids, edge attributes) of catalog/tag relations
    pending: list[tuple[EdgeType, np.ndarray, np.ndarray, dict[str, np.ndarray]]] = field(
        default_factory=list
    )
    item_entities: dict[str, str] = field(default_factory=dict)
    kg_ets: list[EdgeType] = field(default_factory=list)
    inter: pd.DataFrame | None = None
    tags: pd.DataFrame | None = None
    _lookups: dict[str, _Lookup] = field(default_factory=dict, repr=False)

    @property
    def uidx(self) -> _Lookup:
        return self._lookups["user"]

    @property
    def iidx(self) -> _Lookup:
        return self._lookups["item"]

    def set_node_vocabs(self, item_ids: np.ndarray) -> None:
        self.vocabs["user"] = Vocabulary(self.ds.user_ids(), node_type="user")
        self.vocabs["item"] = Vocabulary(item_ids, node_type="item")
        self._lookups = {t: _Lookup(self.vocabs[t].ids) for t in ("user", "item")}


def build_graph(
    spec: GraphSpec,
    dataset: Dataset | None = None,
    *,
    progress: Callable[[str], None] | None = None,
) -> KnowledgeGraph:
    """Build the graph ``spec`` describes from ``dataset`` (loaded from the spec if None).

    Stages, in order: node vocabularies (items from the catalog, interactions and, if asked, tags),
    interactions, catalog relations, tags, entity vocabularies, the external KG, user-user edges,
    then pruning, reverse relations and the build metadata.
    """
    t0 = time.perf_counter()
    say = progress or (lambda msg: log.info("%s", msg))
    ds = dataset if dataset is not None else spec.load_dataset()
    say(f"loaded dataset {ds.name!r} in {time.perf_counter() - t0:.1f}s")
    b = _Build(spec=spec, ds=ds, say=say, notes=[f"data: {n}" for n in ds.notes])
    _node_vocabs(b)
    _interaction_edges(b)
    _catalog_relations(b)
    _tag_relation(b)
    _entity_vocabs(b)
    _external_kg(b)
    _user_edges(b)
    g = KnowledgeGraph(
        name=spec.name,
        vocabs=b.vocabs,
        edges=b.edges,
        edge_attrs=b.attrs,
        interactions=b.inter,
        item_entities=b.item_entities,
        categories=b.categories,
        meta={},
        notes=b.notes,
    )
    g = _prune_and_reverse(b, g)
    g.meta.update(
        spec=spec.to_dict(),
        spec_digest=spec.digest(),
        spec_path=None if spec.path is None else str(spec.path),
        dataset=ds.name,
        source_root=None if ds.root is None else str(Path(ds.root)),
        interaction_relation=spec.interactions.relation,
        min_rating=spec.interactions.min_rating,
        counts=b.counts,
        build_seconds=round(time.perf_counter() - t0, 3),
    )
    g.validate()
    say(f"built {g!r} in {time.perf_counter() - t0:.1f}s")
    return g


def _node_vocabs(b: _Build) -> None:
    """User and item vocabularies; tags naming unknown items are refused, added or dropped."""
    spec, ds, sp = b.spec, b.ds, b.spec.path
    item_ids = ds.item_ids()
    if spec.tags is not None:
        if ds.tags is None:
            raise SpecError(
                f"dataset {ds.name!r} has no user tags; remove [tags]", key="tags", spec=sp
            )
        tags = ds.tags
        absent = ~tags["item"].isin(_oindex(item_ids)).to_numpy()
        if absent.any():
            n, k = int(absent.sum()), int(tags.loc[absent, "item"].nunique())
            policy = spec.tags.absent_items
            first = tags.loc[absent, "item"].iloc[0]
            if policy == "error":
                raise SpecError(
                    f"{n:,} tag assignment(s) name {k:,} item(s) absent from the catalog and the "
                    f"interactions (e.g. {first!r}); set absent_items to 'add' (as item nodes) or "
                    "'drop'",
                    key="tags.absent_items",
                    spec=sp,
                )
            if policy == "add":
                extra = pd.unique(tags.loc[absent, "item"])
                item_ids = np.concatenate([item_ids, extra])
                b.notes.append(
                    f"tags: {n:,} tag assignments name {k:,} items absent from the catalog and "
                    f"the interactions; added as item nodes without interactions "
                    f"(tags.absent_items = 'add')"
                )
            else:
                tags = tags[~absent]
                b.notes.append(
                    f"tags: dropped {n:,} tag assignments naming {k:,} items absent from the "
                    f"catalog and the interactions (tags.absent_items = 'drop')"
                )
        b.tags = tags
    b.set_node_vocabs(item_ids)


def _interaction_edges(b: _Build) -> None:
    """The full interaction table (ids as indices) and the user -> item edges of its positives."""
    spec, ds, sp = b.spec, b.ds, b.spec.path
    f = ds.interactions.frame
    inter = pd.DataFrame({"user": _lookup(b.uidx, f["user"]), "item": _lookup(b.iidx, f["item"])})
    for c in NUMERIC_INTER:
        if c in f.columns:
            inter[c] = f[c].to_numpy(dtype=np.float64)
    for c in CATEGORICAL_INTER:
        if c in f.columns:
            codes, uniq = pd.factorize(f[c].astype(str), sort=True)
            inter[c] = codes.astype(np.int8 if len(uniq) < 128 else np.int32)
            b.categories[c] = [str(u) for u in uniq]
    ispec = spec.interactions
    if ispec.min_rating is not None:
        if "rating" not in f.columns:
            raise SpecError(
                f"dataset {ds.name!r} has no rating column (columns: {list(f.columns)}); remove "
                "min_rating to take every interaction as positive",
                key="interactions.min_rating",
                spec=sp,
            )
        pos = (inter["rating"] >= ispec.min_rating).to_numpy()
    else:
        pos = np.ones(len(inter), dtype=bool)
    if not len(inter):
        raise DataError(f"dataset {ds.name!r} has no interactions: nothing to build a graph of")
    if not pos.any():
        raise SpecError(
            f"no interaction of {len(inter):,} has rating >= {ispec.min_rating:g} (ratings range "
            f"{inter['rating'].min():g}..{inter['rating'].max():g}): the graph would have no "
            "user-item edges; lower interactions.min_rating",
            key="interactions.min_rating",
            spec=sp,
        )
    avail = [c for c in inter.columns if c not in ("user", "item")]
    want = list(ispec.attributes) if ispec.attributes is not None else avail
    for a in want:
        if a not in avail:
            raise SpecError(
                f"no interaction attribute {a!r}; available: {avail}",
                key="interactions.attributes",
                spec=sp,
            )
    ie: EdgeType = ("user", ispec.relation, "item")
    b.edges[ie] = np.stack([inter["user"].to_numpy()[pos], inter["item"].to_numpy()[pos]])
    # "row": position of each positive edge in the full interaction table (for joins/exports)
    b.attrs[ie] = {"row": np.flatnonzero(pos).astype(np.int64)}
    b.attrs[ie].update({a: inter[a].to_numpy()[pos] for a in want})
    b.counts["interactions"] = len(inter)
    b.counts["positive_interactions"] = int(pos.sum())
    b.inter = inter
    b.say(f"interactions: {len(inter):,} rows, {int(pos.sum()):,} positive edges")


def _catalog_relations(b: _Build) -> None:
    """Item and user columns -> pending (owner, value) relations."""
    spec, ds, sp = b.spec, b.ds, b.spec.path
    for i, r in enumerate(spec.relations):
        table = ds.items if r.on == "item" else ds.users
        if table is None:
            raise SpecError(
                f"dataset {ds.name!r} has no {r.on} table, so {r.on} columns cannot become "
                f"relations",
                key=f"relations[{i}].on",
                spec=sp,
            )
        if r.column not in table.attributes:
            raise SpecError(
                f"no column {r.column!r} in the {r.on} table of {ds.name!r}; available: "
                f"{list(table.attributes)}",
                key=f"relations[{i}].column",
                spec=sp,
            )
        owner = _lookup(b.iidx if r.on == "item" else b.uidx, table.ids)
        own, vals = _column_values(table, r, i, owner, spec, b.notes)
        b.pending.append(((r.on, r.relation, r.node_type), own, vals, {}))
        b.say(f"relation {r.relation!r}: {len(vals):,} edges from column {r.column!r}")


def _tag_relation(b: _Build) -> None:
    """User tags -> a pending item -> tag relation with per-pair counts."""
    spec, tags = b.spec, b.tags
    if tags is None or spec.tags is None:
        return
    pairs = (
        tags.groupby(["item", "tag"], sort=False).size().reset_index(name="count")
        if len(tags)
        else pd.DataFrame({"item": [], "tag": [], "count": []})
    )
    if spec.tags.min_count > 1:
        small = (pairs["count"] < spec.tags.min_count).to_numpy()
        b.notes.append(
            f"tags: {int(small.sum()):,} (item, tag) pairs with fewer than "
            f"{spec.tags.min_count} assignments left out (tags.min_count)"
        )
        pairs = pairs[~small]
    et = ("item", spec.tags.relation, spec.tags.node_type)
    b.pending.append(
        (
            et,
            _lookup(b.iidx, pairs["item"].to_numpy()),
            pairs["tag"].to_numpy(dtype=object),
            {"count": pairs["count"].to_numpy(dtype=np.int64)},
        )
    )
    b.counts["tag_assignments"] = len(tags)
    b.counts["tag_pairs"] = len(pairs)


def _entity_vocabs(b: _Build) -> None:
    """Entity vocabularies of the catalog/tag types, in order of first appearance; their edges."""
    by_type: dict[str, list[np.ndarray]] = {}
    for (_, _, nt), _, vals, _ in b.pending:
        by_type.setdefault(nt, []).append(vals)
    for nt, parts in by_type.items():
        ids = pd.unique(np.concatenate(parts)) if parts else np.array([], dtype=object)
        b.vocabs[nt] = Vocabulary(ids, node_type=nt)
    for et, own, vals, extra in b.pending:
        b.edges[et] = np.stack([own, _lookup(_Lookup(b.vocabs[et[2]].ids), vals)])
        if extra:
            b.attrs[et] = extra


def _external_kg(b: _Build) -> None:
    """External triples; entities linked to items become those item nodes."""
    spec = b.spec
    if spec.kg is None:
        return
    kg_edges, kg_vocab, b.item_entities = _kg_edges(spec, b.ds, b.iidx, b.vocabs, b.notes, b.counts)
    if spec.kg.node_type in b.vocabs:
        raise SpecError(
            f"node type {spec.kg.node_type!r} is already used by a relation",
            key="kg.node_type",
            spec=spec.path,
        )
    b.vocabs[spec.kg.node_type] = kg_vocab
    b.edges.update(kg_edges)
    b.kg_ets = list(kg_edges)


def _user_edges(b: _Build) -> None:
    """User-user edges (friends); every endpoint must be a known user."""
    spec, ds, sp = b.spec, b.ds, b.spec.path
    if spec.user_edges is None:
        return
    if ds.user_edges is None:
        raise SpecError(
            f"dataset {ds.name!r} has no user-user edges; remove [user_edges]",
            key="user_edges",
            spec=sp,
        )
    ue = ds.user_edges
    s = _lookup(b.uidx, ue["src"].to_numpy())
    d = _lookup(b.uidx, ue["dst"].to_numpy())
    bad = (s < 0) | (d < 0)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise SpecError(
            f"{int(bad.sum()):,} user-user edge(s) name users absent from the user table and "
            f"the interactions, e.g. ({ue['src'].iloc[row]!r}, {ue['dst'].iloc[row]!r})",
            key="user_edges",
            spec=sp,
        )
    b.edges[("user", spec.user_edges.relation, "user")] = np.stack([s, d])
    b.counts["user_edges"] = len(ue)


def _prune_and_reverse(b: _Build, g: KnowledgeGraph) -> KnowledgeGraph:
    """Pruning (counted in the notes) and reverse relations, as the spec asks."""
    spec, counts = b.spec, b.counts
    if spec.prune.active:
        g = prune(g, min_entity_degree=spec.prune.min_entity_degree, max_hops=spec.prune.max_hops)
    if b.kg_ets:
        kept = int(sum(g.edges[et].shape[1] for et in b.kg_ets))
        counts["kg_triples_kept"] = kept
        g.notes.append(
            f"kg: {kept:,} of {counts['kg_triples_used']:,} KG triples kept"
            + (" (after pruning)" if spec.prune.active else " (no pruning asked)")
        )
    opts = spec.graph
    if opts.reverse_relations:
        known = sorted({et[1] for et in g.edges})
        bad = [r for r in opts.reverse_exclude if r not in known]
        if bad:
            raise SpecError(
                f"unknown relation(s) {bad}; the graph's relations are {known}",
                key="graph.reverse_exclude",
                spec=spec.path,
            )
        g = g.add_reverse(prefix=opts.reverse_prefix, exclude=opts.reverse_exclude)
    return g


def _kg_edges(spec: GraphSpec, ds: Dataset, iidx: _Lookup, vocabs, notes, counts):
    """KG triples -> typed edges; entities linked to items map onto the item nodes."""
    sp = spec.path
    assert spec.kg is not None
    if ds.kg is None:
        raise SpecError(f"dataset {ds.name!r} has no KG triples; remove [kg]", key="kg", spec=sp)
    tri = ds.kg.frame
    counts["kg_triples"] = len(tri)
    available = [str(r) for r in ds.kg.relations]
    if spec.kg.relations is not None:
        bad = [r for r in spec.kg.relations if r not in set(available)]
        if bad:
            raise SpecError(
                f"unknown KG relation(s) {bad}; the KG has {sorted(available)}",
                key="kg.relations",
                spec=sp,
            )
        tri = tri[tri["relation"].isin(spec.kg.relations)]
        notes.append(
            f"kg: kept the {len(spec.kg.relations)} relations named in kg.relations "
            f"({len(tri):,} of {counts['kg_triples']:,} triples)"
        )
    counts["kg_triples_used"] = len(tri)
    if ds.links is not None:
        links = ds.links.frame
        link_items = _lookup(iidx, links["item"].to_numpy())
        absent = link_items < 0
        if absent.any():
            row = int(np.flatnonzero(absent)[0])
            raise SpecError(
                f"the link file {ds.links.source} names {int(absent.sum()):,} item(s) absent "
                f"from the catalog and the interactions, e.g. {links['item'].iloc[row]!r} "
                f"(row {row + 1}); the {len(iidx):,} known items are e.g. "
                f"{iidx[:5].tolist()}",  # first known ids
                key="kg",
                spec=sp,
            )
        link_ent = _oindex(links["entity"].to_numpy())
        if not link_ent.is_unique:
            dup = link_ent[link_ent.duplicated()][0]
            raise SpecError(
                f"the link file {ds.links.source} links entity {dup!r} to several items; an "
                "entity can be merged into one item node only",
                key="kg",
                spec=sp,
            )
        item_entities = dict(zip(links["item"], links["entity"], strict=True))
    else:
        link_items = np.array([], dtype=np.int64)
        link_ent = _oindex([])
        item_entities = {}
        notes.append("kg: the dataset has no link file; no KG entity is merged into an item")
    h = tri["head"].to_numpy(dtype=object)
    t = tri["tail"].to_numpy(dtype=object)
    rel = tri["relation"].to_numpy(dtype=object)
    hp = link_ent.get_indexer(h)
    tp = link_ent.get_indexer(t)
    ents = pd.unique(np.concatenate([h[hp < 0], t[tp < 0]]))
    vocab = Vocabulary(ents, node_type=spec.kg.node_type)
    eidx = _Lookup(vocab.ids)
    hi = np.where(hp >= 0, link_items[hp] if len(link_items) else -1, _lookup(eidx, h))
    ti = np.where(tp >= 0, link_items[tp] if len(link_items) else -1, _lookup(eidx, t))
    rcode, runiq = pd.factorize(rel)
    key = rcode.astype(np.int64) * 4 + (hp >= 0) * 2 + (tp >= 0)
    kcode, kuniq = pd.factorize(key)
    order = np.argsort(kcode, kind="stable")
    bounds = np.searchsorted(kcode[order], np.arange(len(kuniq) + 1))
    out: dict[EdgeType, np.ndarray] = {}
    nt = spec.kg.node_type
    for j, k in enumerate(kuniq):
        sel = order[bounds[j] : bounds[j + 1]]
        r = str(runiq[k // 4])
        et = ("item" if k & 2 else nt, r, "item" if k & 1 else nt)
        out[et] = np.stack([hi[sel], ti[sel]])
    in_kg = link_ent.isin(_oindex(np.concatenate([h, t])))
    counts["linked_items"] = len(item_entities)
    counts["linked_items_in_kg"] = int(in_kg.sum())
    n_items = len(iidx)
    notes.append(
        f"kg: {len(item_entities):,} of {n_items:,} items linked to KG entities (merged into the "
        f"item nodes); {n_items - len(item_entities):,} unlinked items kept as item nodes with "
        "their interactions"
    )
    if len(item_entities) and int(in_kg.sum()) < len(item_entities):
        notes.append(
            f"kg: {len(item_entities) - int(in_kg.sum()):,} linked entities appear in no triple"
        )
    return out, vocab, item_entities
