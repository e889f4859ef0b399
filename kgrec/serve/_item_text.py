"""The catalog's text as serving needs it, assembled from a spec and its dataset: a new item's
text rendered like the catalog's rows (:func:`render_item_text`), the free-text columns, the
display titles, and the default text encoder. Shared by the content and hybrid adapters."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from kgrec.serve._protocol import NewItem

log = logging.getLogger(__name__)


def default_encoder() -> Any:
    """The bundled MiniLM behind the on-disk embedding cache (``$KGREC_HOME/embeddings``)."""
    from kgrec.text import CachedEncoder, TransformerEncoder

    return CachedEncoder(TransformerEncoder())


def render_item_text(
    row: NewItem,
    fields: Sequence[str],
    text_cols: set[str],
    delimiters: Mapping[str, str] | None = None,
) -> str:
    """A new item's text in the catalog's rendering (:func:`kgrec.text.render_new_item`: the
    renderer catalog rows go through): title (+ description) in the first free-text fields,
    ``column: a, b`` for the others."""
    from kgrec.text._render import render_new_item

    return render_new_item(row, fields, text_cols, delimiters)


def item_delimiters(spec: Any) -> dict[str, str]:
    """The list delimiters of the spec's item text fields."""
    from kgrec.text._render import item_delimiters as delimiters

    return delimiters(spec)


def text_columns(ds: Any, fields: Sequence[str]) -> set[str]:
    """The free-text columns among ``fields`` of the dataset's item table."""
    if ds.items is None:
        return set()
    return {f for f in fields if ds.items.attributes.get(f) == "text"}


def title_map(ds: Any) -> dict[str, str]:
    """Item id -> its first free-text catalog column (the title), for display."""
    if ds.items is None:
        return {}
    cols = [c for c, kind in ds.items.attributes.items() if kind == "text"]
    if not cols:  # no free-text column declared: a title-like column, said out loud
        import re

        like = [c for c in ds.items.attributes if re.search(r"title|name", c, re.I)]
        if not like:
            return {}
        cols = like[:1]
        log.warning(
            "the catalog declares no free-text column ([source.items] text = [...]); showing "
            "column %r as the item title",
            cols[0],
        )
    f = ds.items.frame
    return {str(i): str(t) for i, t in zip(f["id"], f[cols[0]], strict=True) if t}


class CatalogText:
    """A spec's item text fields over its dataset: renders new items like the catalog's rows."""

    def __init__(self, spec: Any, ds: Any) -> None:
        self.fields = list(spec.text.item_fields)
        self.text_cols = text_columns(ds, self.fields)
        self.delimiters = item_delimiters(spec)
        self.titles = title_map(ds)

    def render(self, row: NewItem) -> str:
        return render_item_text(row, self.fields, self.text_cols, self.delimiters)
