"""``kgrec graph check``: validate a spec against its files and say what a build would make."""

from __future__ import annotations

import numpy as np

from kgrec.errors import SpecError
from kgrec.graph._spec_types import GraphSpec


def check_spec(spec: GraphSpec) -> str:
    """Load ``spec``'s source (every file read and validated, as a build would) and describe the
    graph it would build: tables, each relation with its distinct values and edges, the KG, the
    item text. Raises the same errors a build would for missing columns."""
    from kgrec.graph._columns import _column_values

    ds = spec.load_dataset()
    out = [f"spec {spec.name}: OK ({spec.path})", ds.summary().to_text(), ""]
    inter = ds.interactions.frame
    n_pos = len(inter)
    if spec.interactions.min_rating is not None:
        if "rating" not in inter.columns:
            raise SpecError(
                "the interactions have no rating column",
                key="interactions.min_rating",
                spec=spec.path,
            )
        n_pos = int((inter["rating"] >= spec.interactions.min_rating).sum())
    out.append(
        f"would build: user -{spec.interactions.relation}-> item, {n_pos:,} positive edges"
        + (
            f" (rating >= {spec.interactions.min_rating:g})"
            if spec.interactions.min_rating is not None
            else ""
        )
    )
    for i, r in enumerate(spec.relations):
        table = ds.items if r.on == "item" else ds.users
        key = f"relations[{i}]"
        if table is None:
            raise SpecError(f"the source has no {r.on} table", key=f"{key}.on", spec=spec.path)
        if r.column not in table.attributes:
            raise SpecError(
                f"no column {r.column!r} in the {r.on} table; columns: {sorted(table.attributes)}",
                key=f"{key}.column",
                spec=spec.path,
            )
        notes: list[str] = []
        own, vals = _column_values(table, r, i, np.arange(len(table)), spec, notes)
        distinct = len(set(vals.tolist()))
        example = ", ".join(repr(v) for v in list(dict.fromkeys(vals.tolist()))[:3])
        out.append(
            f"  {r.on} -{r.relation}-> {r.node_type}: column {r.column!r}"
            + (f" split on {r.delimiter!r}" if r.delimiter else "")
            + (" bucketed" if r.bucket else "")
            + f", {distinct:,} {r.node_type} nodes, {len(vals):,} edges"
            + f", {len(np.unique(own)):,} of {len(table):,} {r.on}s (e.g. {example})"
        )
        out += [f"    note: {n}" for n in notes]
    if spec.kg is not None:
        kg = ds.kg
        if kg is None:
            raise SpecError(f"dataset {ds.name!r} has no KG triples; remove [kg]", key="kg")
        linked = 0 if ds.links is None else len(ds.links)
        if ds.links is not None:
            ent = ds.links.frame["entity"]
            if ent.duplicated().any():
                dup = ent[ent.duplicated()].iloc[0]
                raise SpecError(
                    f"the link file {ds.links.source} links entity {dup!r} to several items; an "
                    "entity can be merged into one item node only",
                    key="source.links",
                    spec=spec.path,
                )
        out.append(
            f"  KG: {0 if kg is None else len(kg):,} triples, {linked:,} items linked to entities"
        )
    fields = spec.text.item_fields
    if ds.items is not None:
        missing = [f for f in fields if f not in ds.items.attributes]
        if missing:
            raise SpecError(
                f"text fields {missing} are not catalog columns; columns: "
                f"{sorted(ds.items.attributes)}",
                key="text.item_fields",
                spec=spec.path,
            )
    if fields:
        out.append(f"item text: {fields} rendered as 'field: value' lines")
    else:
        out.append("warning: no item text ([text] item_fields is empty): the hybrid uses no text")
    if ds.items is not None:
        free = ds.items.text_columns()
        if not free:
            out.append(
                "note: no free-text column declared ([source.items] text = [...]); every "
                "catalog column is read as a category value"
            )
    return "\n".join(out)
