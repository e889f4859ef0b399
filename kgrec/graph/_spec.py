"""Declarative graph specs: one TOML file per catalog (``graphs/<name>.toml``).

A spec says where the data comes from (a registered dataset or plain files), which interactions
are positive user-item edges, which catalog columns become entity types and relations, the
external KG, tags, user-user edges, reverse relations, pruning and the text of items and users.
Every key is checked: an unknown key, column or relation is a :class:`SpecError` naming the key
and the alternatives. See ``graphs/movielens-100k.toml`` for an annotated example.
"""

from __future__ import annotations

import itertools
import math
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kgrec.errors import SpecError
from kgrec.graph._spec_types import (
    ABSENT_CHOICES,
    DUPLICATE_CHOICES,
    ON_CHOICES,
    RESERVED_TYPES,
    Bucket,
    FileSpec,
    GraphOptions,
    GraphSpec,
    InteractionSpec,
    KGSpec,
    PruneSpec,
    RelationSpec,
    SourceSpec,
    TagSpec,
    TextSpec,
    UserEdgeSpec,
)

#: per file-table kind: required column keys, optional column keys
_FILE_TABLES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "interactions": (("user", "item"), ("rating", "timestamp", "weight")),
    "items": (("id",), ()),
    "users": (("id",), ()),
    "kg": (("head", "relation", "tail"), ()),
    "links": (("item", "entity"), ()),
    "user_edges": (("src", "dst"), ()),
}


def _check_keys(obj: Mapping[str, Any], allowed: tuple[str, ...], where: str, spec: Any) -> None:
    for k in obj:
        if k not in allowed:
            key = f"{where}.{k}" if where else k
            raise SpecError(f"unknown key; allowed here: {sorted(allowed)}", key=key, spec=spec)


def _get(obj: Mapping[str, Any], key: str, typ: Any, where: str, spec: Any, default: Any = None):
    """``obj[key]`` checked against ``typ`` (a type or tuple); ``default`` when absent."""
    if key not in obj:
        return default
    v = obj[key]
    ok = isinstance(v, typ) and not (isinstance(v, bool) and bool not in _as_tuple(typ))
    if not ok:
        names = "/".join(t.__name__ for t in _as_tuple(typ))
        raise SpecError(
            f"expected {names}, got {type(v).__name__} {v!r}",
            key=f"{where}.{key}" if where else key,
            spec=spec,
        )
    return v


def _as_tuple(t: Any) -> tuple:
    return t if isinstance(t, tuple) else (t,)


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


def _name(v: Any, key: str, spec: Any) -> str:
    if not isinstance(v, str) or not v.strip():
        raise SpecError(f"expected a non-empty string, got {v!r}", key=key, spec=spec)
    return v.strip()


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


def _type_name(v: Any, key: str, spec: Any) -> str:
    name = _name(v, key, spec)
    if name in RESERVED_TYPES:
        raise SpecError(
            f"node type {name!r} is reserved for the graph's own {name}s; name the entity type "
            "something else (e.g. 'genre', 'entity')",
            key=key,
            spec=spec,
        )
    return name


def _table(obj: Mapping[str, Any], key: str, spec: Any, *, required: bool = False) -> dict:
    if key not in obj:
        if required:
            raise SpecError("missing required section", key=key, spec=spec)
        return {}
    v = obj[key]
    if not isinstance(v, dict):
        raise SpecError(f"expected a table ([{key}]), got {type(v).__name__}", key=key, spec=spec)
    return v


def _parse_source(src: dict, base: Path, spec: Any) -> SourceSpec:
    _check_keys(src, ("dataset", "path", *_FILE_TABLES), "source", spec)
    dataset = _get(src, "dataset", str, "source", spec)
    path = _get(src, "path", str, "source", spec)
    root = (base / Path(path).expanduser()).resolve() if path is not None else None
    files: dict[str, FileSpec] = {}
    for kind, (required, optional) in _FILE_TABLES.items():
        if kind not in src:
            continue
        where = f"source.{kind}"
        t = src[kind]
        if not isinstance(t, dict):
            raise SpecError("expected a table", key=where, spec=spec)
        extra = ("text", "delimiter") if kind in ("items", "users") else ("delimiter",)
        if kind == "interactions":
            extra = ("delimiter", "duplicates", "rating_range")
        _check_keys(t, ("file", *required, *optional, *extra), where, spec)
        if "file" not in t:
            raise SpecError("missing required key", key=f"{where}.file", spec=spec)
        f = Path(_name(t["file"], f"{where}.file", spec)).expanduser()
        f = (root or base) / f if not f.is_absolute() else f
        cols: dict[str, str] = {}
        for c in required:
            cols[c] = _name(t.get(c, c), f"{where}.{c}", spec)
        for c in optional:
            if c in t:
                cols[c] = _name(t[c], f"{where}.{c}", spec)
        delim = _get(t, "delimiter", str, where, spec)
        if delim is not None and not delim:
            raise SpecError("empty delimiter", key=f"{where}.delimiter", spec=spec)
        dups = _get(t, "duplicates", str, where, spec, "error")
        if dups not in DUPLICATE_CHOICES:
            raise SpecError(
                f"{dups!r} is not one of {list(DUPLICATE_CHOICES)} (error: repeated user-item "
                "rows are an error; first/last: keep that row; count: one row with weight = "
                "number of rows)",
                key=f"{where}.duplicates",
                spec=spec,
            )
        rr = _get(t, "rating_range", list, where, spec)
        if rr is not None:
            if (
                len(rr) != 2
                or not all(isinstance(x, int | float) and not isinstance(x, bool) for x in rr)
                or not all(math.isfinite(x) for x in rr)
                or rr[0] > rr[1]
            ):
                raise SpecError(
                    f"expected [low, high], two finite numbers with low <= high, got {rr!r}",
                    key=f"{where}.rating_range",
                    spec=spec,
                )
            if "rating" not in cols:
                raise SpecError(
                    "a rating range needs a rating column (rating = ...)",
                    key=f"{where}.rating_range",
                    spec=spec,
                )
        files[kind] = FileSpec(
            file=f,
            columns=cols,
            text=tuple(str(x) for x in _get(t, "text", list, where, spec, [])),
            delimiter=delim,
            duplicates=dups,
            rating_range=None if rr is None else (float(rr[0]), float(rr[1])),
        )
    if dataset is None and not files:
        raise SpecError(
            "give a registered dataset (dataset = ...) or files "
            f"([source.interactions] file = ...; tables: {list(_FILE_TABLES)})",
            key="source",
            spec=spec,
        )
    if dataset is not None and files:
        raise SpecError(
            f"give either a registered dataset or files, not both (files: {sorted(files)})",
            key="source.dataset",
            spec=spec,
        )
    if dataset is None and "interactions" not in files:
        raise SpecError("file sources need [source.interactions]", key="source", spec=spec)
    if dataset is not None:
        from kgrec.data import DATASETS

        if dataset not in DATASETS:
            raise SpecError(
                f"unknown dataset {dataset!r}; registered: {sorted(DATASETS)}",
                key="source.dataset",
                spec=spec,
            )
    return SourceSpec(dataset=dataset, path=root, files=files)


_REL_KEYS = ("column", "relation", "node_type", "on", "delimiter", "bucket", "missing")
_BUCKET_KEYS = ("width", "origin", "edges", "label", "below", "above")


def _parse_relation(r: Any, i: int, spec: Any) -> RelationSpec:
    where = f"relations[{i}]"
    if not isinstance(r, dict):
        raise SpecError("expected a table", key=where, spec=spec)
    _check_keys(r, _REL_KEYS, where, spec)
    for k in ("column", "relation", "node_type"):
        if k not in r:
            raise SpecError("missing required key", key=f"{where}.{k}", spec=spec)
    on = _get(r, "on", str, where, spec, "item")
    if on not in ON_CHOICES:
        raise SpecError(f"{on!r} is not one of {list(ON_CHOICES)}", key=f"{where}.on", spec=spec)
    delim = _get(r, "delimiter", str, where, spec)
    if delim is not None and delim == "":
        raise SpecError(
            "empty delimiter: give the separator of the multi-valued column (e.g. '|'), "
            "or remove the key for a single-valued column",
            key=f"{where}.delimiter",
            spec=spec,
        )
    bucket = None
    if "bucket" in r:
        b = r["bucket"]
        bw = f"{where}.bucket"
        if not isinstance(b, dict):
            raise SpecError("expected a table {width = ...} or {edges = [...]}", key=bw, spec=spec)
        _check_keys(b, _BUCKET_KEYS, bw, spec)
        width = _get(b, "width", (int, float), bw, spec)
        edges = _get(b, "edges", list, bw, spec)
        if (width is None) == (edges is None):
            raise SpecError("give exactly one of 'width' or 'edges'", key=bw, spec=spec)
        if width is not None and not (math.isfinite(width) and width > 0):
            raise SpecError("must be a positive number", key=f"{bw}.width", spec=spec)
        if edges is not None:
            if not edges or not all(
                isinstance(e, (int, float)) and not isinstance(e, bool) for e in edges
            ):
                raise SpecError(
                    "expected a non-empty list of numbers", key=f"{bw}.edges", spec=spec
                )
            if any(b2 <= a for a, b2 in itertools.pairwise(edges)):
                raise SpecError("must be strictly increasing", key=f"{bw}.edges", spec=spec)
        bucket = Bucket(
            width=None if width is None else float(width),
            origin=float(_get(b, "origin", (int, float), bw, spec, 0.0)),
            edges=None if edges is None else tuple(float(e) for e in edges),
            label=_get(b, "label", str, bw, spec, "{lo}-{hi}"),
            below=_get(b, "below", str, bw, spec, "<{hi}"),
            above=_get(b, "above", str, bw, spec, "{lo}+"),
        )
        for lk in ("label", "below", "above"):
            fmt = getattr(bucket, lk)
            try:
                fmt.format(lo=1, hi=2, last=1)
            except (KeyError, IndexError, ValueError) as exc:
                raise SpecError(
                    f"bad format string {fmt!r} ({exc}); use the fields {{lo}}, {{hi}} and {{last}}",
                    key=f"{bw}.{lk}",
                    spec=spec,
                ) from None
        if delim is not None:
            raise SpecError(
                "a bucketed column is single-valued: remove 'delimiter' or 'bucket'",
                key=f"{where}.delimiter",
                spec=spec,
            )
    return RelationSpec(
        column=_name(r["column"], f"{where}.column", spec),
        relation=_name(r["relation"], f"{where}.relation", spec),
        node_type=_type_name(r["node_type"], f"{where}.node_type", spec),
        on=on,
        delimiter=delim,
        bucket=bucket,
        missing=tuple(str(x) for x in _get(r, "missing", list, where, spec, [])),
    )
