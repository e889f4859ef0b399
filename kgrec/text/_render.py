"""One text renderer for catalog rows and new items, so that training and serving see the same
text for the same item.

An item's text is its ``fields`` (the spec's ``text.item_fields``) rendered in order and joined by
``". "``: free-text columns as they are, other columns as ``column: a, b, c``. A multi-valued
value is joined by ``", "`` whether it came as a list (RecBole ``token_seq``, JSON lines, a new
item's ``--attr a|b``) or as a delimited string split by the spec's relation ``delimiter`` for
that column; empty values are skipped. A new item's title and description take the places of the
first and second free-text fields (title first when there is none).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np


def item_delimiters(spec: Any) -> dict[str, str]:
    """Catalog column -> delimiter of its multi-valued item relation in ``spec``."""
    return {
        r.column: r.delimiter
        for r in getattr(spec, "relations", ())
        if r.on == "item" and r.delimiter is not None
    }


def render_value(value: Any, delimiter: str | None = None) -> str:
    """One value as text: lists (and delimited strings) joined by ``", "``; 1995.0 -> "1995"."""
    if isinstance(value, (tuple, list)):
        parts = [str(v).strip() for v in value]
        if delimiter is not None:
            parts = [q.strip() for p in parts for q in p.split(delimiter)]
        return ", ".join(p for p in parts if p)
    if value is None:
        return ""
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        return np.format_float_positional(value, trim="-")
    s = str(value).strip()
    if delimiter is not None and delimiter in s:
        return ", ".join(p.strip() for p in s.split(delimiter) if p.strip())
    return s


def render_text(
    values: Mapping[str, Any],
    fields: Sequence[str],
    text_columns: set[str] | frozenset[str],
    delimiters: Mapping[str, str] | None = None,
) -> str:
    """The text of one item from its ``values`` (column -> value), see the module docstring."""
    delimiters = delimiters or {}
    parts = []
    for f in fields:
        v = render_value(values.get(f), None if f in text_columns else delimiters.get(f))
        if v:
            parts.append(v if f in text_columns else f"{f}: {v}")
    return ". ".join(parts)


def new_item_values(
    title: str,
    description: str,
    attributes: Mapping[str, Sequence[str]],
    fields: Sequence[str],
    text_columns: set[str] | frozenset[str],
) -> tuple[dict[str, Any], list[str]]:
    """``(values, fields)`` of a new item for :func:`render_text`: title and description in the
    first two free-text fields (prepended when the fields have none), attributes as lists."""
    values: dict[str, Any] = {k: list(v) for k, v in attributes.items()}
    free = [f for f in fields if f in text_columns]
    fields = list(fields)
    if not free:
        fields = ["\0title", *fields]
        free = ["\0title"]
    values[free[0]] = title
    if description.strip():
        if len(free) > 1:
            values[free[1]] = description
        else:
            values[free[0]] = ". ".join(p.strip() for p in (title, description) if p.strip())
    return values, fields


def render_new_item(
    row: Any,
    fields: Sequence[str],
    text_columns: set[str] | frozenset[str],
    delimiters: Mapping[str, str] | None = None,
) -> str:
    """A :class:`~kgrec.serve.NewItem`'s text, rendered exactly like a catalog row."""
    values, flds = new_item_values(
        row.title, row.description, row.attributes, fields, set(text_columns) | {"\0title"}
    )
    return render_text(values, flds, set(text_columns) | {"\0title"}, delimiters)
