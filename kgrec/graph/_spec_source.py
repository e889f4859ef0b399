"""Parsers of a spec's ``[source]`` table (a registered dataset or plain files, their columns)
and of its ``[[relations]]`` entries (catalog columns -> entity types and relations, buckets)."""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import Any

from kgrec.errors import SpecError
from kgrec.graph._spec_keys import _check_keys, _get, _name, _type_name
from kgrec.graph._spec_types import (
    DUPLICATE_CHOICES,
    ON_CHOICES,
    Bucket,
    FileSpec,
    RelationSpec,
    SourceSpec,
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
