"""Load a spec's source: a registered dataset, or plain files named in ``[source.*]``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from kgrec.data import (
    AttributeTable,
    Dataset,
    Interactions,
    Links,
    Triples,
    load_dataset,
    read_table,
)
from kgrec.errors import DataError, SpecError

if TYPE_CHECKING:
    from kgrec.graph._spec_types import FileSpec, GraphSpec


def _read(f: FileSpec):
    return read_table(f.file, delimiter=f.delimiter)


def _attr_table(f: FileSpec, node_type: str) -> AttributeTable:
    """Every column other than the id is a string attribute (``token``) or free ``text``:
    the spec's relations decide how to split or bucket them."""
    raw = _read(f)
    id_col = f.columns["id"]
    raw.require([id_col, *f.text], what=f"{node_type} table")
    # JSON-lines catalogs: a column holding lists is multi-valued as it is (no delimiter)
    listy = {c for c in raw.columns if raw.frame[c].map(lambda v: isinstance(v, list)).any()}
    attrs = {
        c: ("text" if c in f.text else "tokens" if c in listy else "token")
        for c in raw.columns
        if c != id_col
    }
    return AttributeTable.from_raw(raw, node_type=node_type, id_column=id_col, attributes=attrs)


def load_source(spec: GraphSpec) -> Dataset:
    """The :class:`Dataset` a spec describes."""
    src = spec.source
    if src.path is not None and not src.path.is_dir():
        raise SpecError(
            f"data directory {src.path} does not exist; give your copy of the dataset with "
            "--data-path DIR (Python: load_spec(path, data_path=DIR))",
            key="source.path",
            spec=spec.path,
        )
    if src.dataset is not None:
        return load_dataset(src.dataset, path=src.path)
    files = src.files
    fi = files["interactions"]
    c = fi.columns
    raw = _read(fi)
    inter = Interactions.from_raw(
        raw,
        user=c["user"],
        item=c["item"],
        rating=c.get("rating"),
        timestamp=c.get("timestamp"),
        weight=c.get("weight"),
        on_duplicate=fi.duplicates,
        rating_range=fi.rating_range,
    )
    ds = Dataset(name=spec.name, interactions=inter, root=src.path or fi.file.parent)
    merged = len(raw) - len(inter)
    if merged:
        what = {
            "first": "the first row of each pair kept",
            "last": "the last row of each pair kept",
            "count": "merged into one row per pair with weight = number of rows",
        }[fi.duplicates]
        ds.notes.append(
            f"{merged:,} repeated user-item row(s) in {fi.file.name}: {what} "
            f'(source.interactions.duplicates = "{fi.duplicates}")'
        )
    if "items" in files:
        ds.items = _attr_table(files["items"], "item")
    if "users" in files:
        ds.users = _attr_table(files["users"], "user")
    if "kg" in files:
        k = files["kg"].columns
        ds.kg = Triples.from_raw(
            _read(files["kg"]), head=k["head"], relation=k["relation"], tail=k["tail"]
        )
        if ds.kg.duplicates_dropped:
            ds.notes.append(
                f"{ds.kg.duplicates_dropped:,} duplicate KG triple(s) in {files['kg'].file.name} "
                "dropped (a repeated fact is one edge)"
            )
    if "links" in files:
        k = files["links"].columns
        raw = _read(files["links"])
        ds.links = Links.from_raw(raw, item=k["item"], entity=k["entity"])
        known = ds.item_ids()
        try:
            ds.links.check_items(known, lines=raw.lines)
        except DataError as exc:
            raise SpecError(
                f"{exc}; the {len(known):,} known items are e.g. {list(known[:5])}",
                key="source.links.file",
                spec=spec.path,
            ) from None
    if "user_edges" in files:
        k = files["user_edges"].columns
        raw = _read(files["user_edges"])
        raw.require([k["src"], k["dst"]], what="user-user edges")
        ds.user_edges = pd.DataFrame(
            {
                "src": raw.frame[k["src"]].astype(str).str.strip().to_numpy(),
                "dst": raw.frame[k["dst"]].astype(str).str.strip().to_numpy(),
            }
        )
        empty = (ds.user_edges == "").any(axis=1).to_numpy()
        if empty.any():
            row = int(empty.argmax())
            raise DataError(
                "missing user id", path=raw.path, line=int(raw.lines[row]), column=k["src"]
            )
    return ds
