"""Declarative graph specs: one TOML file per catalog (``graphs/<name>.toml``).

A spec says where the data comes from (a registered dataset or plain files), which interactions
are positive user-item edges, which catalog columns become entity types and relations, the
external KG, tags, user-user edges, reverse relations, pruning and the text of items and users.
Every key is checked: an unknown key, column or relation is a :class:`SpecError` naming the key
and the alternatives. See ``graphs/movielens-100k.toml`` for an annotated example.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kgrec.errors import SpecError
from kgrec.graph._spec_keys import _check_keys, _get, _name, _table, _type_name
from kgrec.graph._spec_source import _parse_relation, _parse_source
from kgrec.graph._spec_types import (
    ABSENT_CHOICES,
    GraphOptions,
    GraphSpec,
    InteractionSpec,
    KGSpec,
    PruneSpec,
    TagSpec,
    TextSpec,
    UserEdgeSpec,
)


def load_spec(path: str | Path, *, data_path: str | Path | None = None) -> GraphSpec:
    """Read and validate ``path`` (TOML). ``data_path`` overrides ``[source] path``."""
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise SpecError("spec file not found", spec=path) from None
    except UnicodeDecodeError as exc:
        raise SpecError(f"not valid UTF-8 at byte {exc.start}", spec=path) from None
    try:
        obj = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"invalid TOML: {exc}", spec=path) from None
    spec = _parse(obj, base=path.resolve().parent, spec=path)
    from dataclasses import replace

    spec = replace(spec, path=path.resolve())
    if data_path is not None:
        spec = spec.with_data_path(data_path)
    return spec


_TOP = (
    "name",
    "description",
    "source",
    "interactions",
    "relations",
    "kg",
    "tags",
    "user_edges",
    "graph",
    "prune",
    "text",
)


#: a graph's name names its cache directory ($KGREC_HOME/graphs/<name>): no separators, no ".."
_GRAPH_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")


def _graph_name(v: Any, spec: Any) -> str:
    name = _name(v, "name", spec)
    if not _GRAPH_NAME.fullmatch(name) or ".." in name:
        raise SpecError(
            f"{name!r} is not a valid graph name: use letters, digits, '_', '-' and '.', starting "
            "with a letter or digit, no '..' and no path separators (it names a directory "
            "under $KGREC_HOME/graphs)",
            key="name",
            spec=spec,
        )
    return name


def _parse(obj: Mapping[str, Any], *, base: Path, spec: Any) -> GraphSpec:
    _check_keys(obj, _TOP, "", spec)
    if "name" not in obj:
        raise SpecError("missing required key (the graph's name)", key="name", spec=spec)
    name = _graph_name(obj["name"], spec)
    source = _parse_source(_table(obj, "source", spec, required=True), base, spec)

    it = _table(obj, "interactions", spec)
    _check_keys(it, ("min_rating", "relation", "attributes"), "interactions", spec)
    mr = _get(it, "min_rating", (int, float), "interactions", spec)
    if mr is not None and not math.isfinite(mr):
        raise SpecError("must be a finite number", key="interactions.min_rating", spec=spec)
    attrs = _get(it, "attributes", list, "interactions", spec)
    inter = InteractionSpec(
        min_rating=None if mr is None else float(mr),
        relation=_name(it.get("relation", "interacts"), "interactions.relation", spec),
        attributes=None if attrs is None else tuple(str(a) for a in attrs),
    )

    rels_raw = obj.get("relations", [])
    if not isinstance(rels_raw, list):
        raise SpecError("expected an array of tables ([[relations]])", key="relations", spec=spec)
    relations = tuple(_parse_relation(r, i, spec) for i, r in enumerate(rels_raw))
    seen: dict[str, int] = {}
    for i, r in enumerate(relations):
        if r.relation in seen:
            raise SpecError(
                f"relation name {r.relation!r} already used by relations[{seen[r.relation]}]",
                key=f"relations[{i}].relation",
                spec=spec,
            )
        seen[r.relation] = i

    kg = None
    if "kg" in obj:
        k = _table(obj, "kg", spec)
        _check_keys(k, ("node_type", "relations"), "kg", spec)
        kr = _get(k, "relations", list, "kg", spec)
        kg = KGSpec(
            node_type=_type_name(k.get("node_type", "entity"), "kg.node_type", spec),
            relations=None if kr is None else tuple(str(x) for x in kr),
        )
    tags = None
    if "tags" in obj:
        t = _table(obj, "tags", spec)
        _check_keys(t, ("relation", "node_type", "absent_items", "min_count"), "tags", spec)
        absent = _get(t, "absent_items", str, "tags", spec, "error")
        if absent not in ABSENT_CHOICES:
            raise SpecError(
                f"{absent!r} is not one of {list(ABSENT_CHOICES)}",
                key="tags.absent_items",
                spec=spec,
            )
        mc = _get(t, "min_count", int, "tags", spec, 1)
        if mc < 1:
            raise SpecError("must be >= 1", key="tags.min_count", spec=spec)
        tags = TagSpec(
            relation=_name(t.get("relation", "tagged"), "tags.relation", spec),
            node_type=_type_name(t.get("node_type", "tag"), "tags.node_type", spec),
            absent_items=absent,
            min_count=mc,
        )
    user_edges = None
    if "user_edges" in obj:
        u = _table(obj, "user_edges", spec)
        _check_keys(u, ("relation",), "user_edges", spec)
        user_edges = UserEdgeSpec(
            relation=_name(u.get("relation", "friend_of"), "user_edges.relation", spec)
        )

    g = _table(obj, "graph", spec)
    _check_keys(g, ("reverse_relations", "reverse_prefix", "reverse_exclude"), "graph", spec)
    opts = GraphOptions(
        reverse_relations=_get(g, "reverse_relations", bool, "graph", spec, True),
        reverse_prefix=_name(g.get("reverse_prefix", "rev_"), "graph.reverse_prefix", spec),
        reverse_exclude=tuple(str(x) for x in _get(g, "reverse_exclude", list, "graph", spec, [])),
    )
    p = _table(obj, "prune", spec)
    _check_keys(p, ("min_entity_degree", "max_hops"), "prune", spec)
    prune = PruneSpec(
        min_entity_degree=_get(p, "min_entity_degree", int, "prune", spec, 0),
        max_hops=_get(p, "max_hops", int, "prune", spec, 0),
    )
    for k in ("min_entity_degree", "max_hops"):
        if getattr(prune, k) < 0:
            raise SpecError("must be >= 0", key=f"prune.{k}", spec=spec)

    tx = _table(obj, "text", spec)
    _check_keys(
        tx,
        ("item_fields", "item_tags", "item_reviews", "user_reviews", "max_review_chars"),
        "text",
        spec,
    )
    text = TextSpec(
        item_fields=[str(x) for x in _get(tx, "item_fields", list, "text", spec, [])],
        item_tags=_get(tx, "item_tags", bool, "text", spec, False),
        item_reviews=_get(tx, "item_reviews", bool, "text", spec, False),
        user_reviews=_get(tx, "user_reviews", bool, "text", spec, False),
        max_review_chars=_get(tx, "max_review_chars", int, "text", spec, 2000),
    )
    if text.max_review_chars < 1:
        raise SpecError("must be >= 1", key="text.max_review_chars", spec=spec)
    if text.item_tags and tags is None:
        raise SpecError("needs a [tags] section", key="text.item_tags", spec=spec)

    # relation names must be unique across the whole graph
    names = {inter.relation: "interactions.relation"}
    for i, r in enumerate(relations):
        _unique_relation(names, r.relation, f"relations[{i}].relation", spec)
    if tags is not None:
        _unique_relation(names, tags.relation, "tags.relation", spec)
    if user_edges is not None:
        _unique_relation(names, user_edges.relation, "user_edges.relation", spec)
    description = _get(obj, "description", str, "", spec, "")
    return GraphSpec(
        name=name,
        source=source,
        interactions=inter,
        relations=relations,
        kg=kg,
        tags=tags,
        user_edges=user_edges,
        graph=opts,
        prune=prune,
        text=text,
        description=description,
    )


def _unique_relation(names: dict[str, str], rel: str, key: str, spec: Any) -> None:
    if rel in names:
        raise SpecError(
            f"relation name {rel!r} is already used by {names[rel]}", key=key, spec=spec
        )
    names[rel] = key
