"""Render item and user text as a spec's ``[text]`` section says (vectorised, leakage-safe).

Review text is taken from TRAINING rows only: rows whose ``split`` is ``"train"`` when the
dataset has a split column, or the rows of ``train_mask`` when given. Without either, reviews are
refused rather than silently leaking evaluation text.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from kgrec.data import Dataset
from kgrec.errors import SpecError
from kgrec.graph._spec import GraphSpec


def _render(value: object) -> str:
    if isinstance(value, (tuple, list)):
        return ", ".join(str(v) for v in value)
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    return str(value).strip()


def _train_rows(ds: Dataset, train_mask: np.ndarray | None, key: str, spec: GraphSpec):
    f = ds.interactions.frame
    if "review" not in f.columns:
        raise SpecError(
            f"dataset {ds.name!r} has no review text (columns: {list(f.columns)})",
            key=key,
            spec=spec.path,
        )
    if train_mask is not None:
        mask = np.asarray(train_mask, dtype=bool)
        if mask.shape != (len(f),):
            raise ValueError(f"train_mask of shape {mask.shape} for {len(f)} interactions")
    elif "split" in f.columns:
        mask = (f["split"].astype(str) == "train").to_numpy()
    else:
        raise SpecError(
            "review text needs the training rows: the dataset has no 'split' column, so pass "
            "train_mask (the rows of your training split)",
            key=key,
            spec=spec.path,
        )
    return f.loc[mask & (f["review"].astype(str) != "").to_numpy()]


def _joined_reviews(rows: pd.DataFrame, by: str, limit: int) -> pd.Series:
    text = rows.groupby(by, sort=False)["review"].agg(lambda s: " ".join(s.astype(str)))
    return text.str.slice(0, limit)


def graph_item_ids(spec: GraphSpec, ds: Dataset) -> np.ndarray:
    """The item ids a graph built from ``spec`` has, in its vocabulary order: the dataset's
    items, then items known only from tags when ``tags.absent_items = "add"``."""
    ids = ds.item_ids()
    if spec.tags is not None and spec.tags.absent_items == "add" and ds.tags is not None:
        absent = ~ds.tags["item"].isin(pd.Index(np.asarray(ids, dtype=object), dtype=object))
        ids = np.concatenate([ids, pd.unique(ds.tags.loc[absent, "item"].to_numpy(dtype=object))])
    return np.asarray(ids, dtype=object)


def item_texts(
    spec: GraphSpec,
    ds: Dataset,
    *,
    train_mask: np.ndarray | None = None,
    ids: np.ndarray | None = None,
) -> pd.Series:
    """Text per item: the ``text.item_fields`` columns (free text as is, other columns as
    ``column: value``), the item's tags (``text.item_tags``, most frequent first) and its
    training reviews (``text.item_reviews``), joined by ``". "``.

    Index: ``ids`` (e.g. ``graph.vocabs["item"].ids``), by default the graph's items
    (:func:`graph_item_ids`); items without any text get ``""``."""
    ids = pd.Index(
        np.asarray(graph_item_ids(spec, ds) if ids is None else ids, dtype=object), dtype=object
    )
    parts: list[pd.Series] = []
    t = spec.text
    if t.item_fields:
        if ds.items is None:
            raise SpecError(
                f"dataset {ds.name!r} has no item catalog", key="text.item_fields", spec=spec.path
            )
        attrs = ds.items.attributes
        bad = [c for c in t.item_fields if c not in attrs]
        if bad:
            raise SpecError(
                f"unknown column(s) {bad}; the item catalog has {list(attrs)}",
                key="text.item_fields",
                spec=spec.path,
            )
        frame = ds.items.frame.set_index("id")
        for c in t.item_fields:
            col = frame[c].map(_render)
            if attrs[c] != "text":
                col = col.where(col == "", f"{c}: " + col)
            parts.append(col.reindex(ids).fillna(""))
    if t.item_tags:
        if ds.tags is None:
            raise SpecError(
                f"dataset {ds.name!r} has no tags", key="text.item_tags", spec=spec.path
            )
        counts = ds.tags.groupby(["item", "tag"], sort=False).size().reset_index(name="n")
        counts = counts.sort_values(["item", "n"], ascending=[True, False], kind="stable")
        tags = counts.groupby("item", sort=False)["tag"].agg(lambda s: ", ".join(s.astype(str)))
        parts.append(("tags: " + tags).reindex(ids).fillna(""))
    if t.item_reviews:
        rows = _train_rows(ds, train_mask, "text.item_reviews", spec)
        parts.append(_joined_reviews(rows, "item", t.max_review_chars).reindex(ids).fillna(""))
    if not parts:
        return pd.Series("", index=ids, dtype=object)
    out = parts[0].astype(str)
    for p in parts[1:]:
        p = p.astype(str)
        out = out.where(p == "", out.where(out == "", out + ". ") + p)
    return out.rename("text")


def user_texts(
    spec: GraphSpec,
    ds: Dataset,
    *,
    train_mask: np.ndarray | None = None,
    ids: np.ndarray | None = None,
) -> pd.Series:
    """Text per user (index: ``ids``, default the dataset's users): their training reviews
    when ``text.user_reviews``, else empty strings."""
    ids = pd.Index(np.asarray(ds.user_ids() if ids is None else ids, dtype=object), dtype=object)
    if not spec.text.user_reviews:
        return pd.Series("", index=ids, dtype=object, name="text")
    rows = _train_rows(ds, train_mask, "text.user_reviews", spec)
    return (
        _joined_reviews(rows, "user", spec.text.max_review_chars)
        .reindex(ids)
        .fillna("")
        .rename("text")
    )
