"""Typed, validated tables: interactions, item catalog / user attributes, KG triples, links.

Each constructor takes a :class:`RawTable` (strings plus source lines) and a column mapping, and
either returns a clean table or raises :class:`DataError` naming the file, line and column of the
first bad value. Nothing is dropped silently.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from kgrec.data._columns import _duplicates, _ids, _numbers, _text, _where
from kgrec.data._io import RawTable
from kgrec.errors import DataError

#: how a model reads interaction weights: binary, the weight itself, or its log1p
WEIGHT_MODES = ("none", "count", "log")

log = logging.getLogger(__name__)

AttrType = Literal["token", "tokens", "int", "float", "text"]
#: what to do with repeated user-item rows (``duplicates`` in ``[source.interactions]``)
DUPLICATE_CHOICES: tuple[str, ...] = ("error", "first", "last", "count")
DUPLICATES_HINT = (
    'to keep repeats, set duplicates = "first" | "last" | "count" in [source.interactions] of '
    "the spec (count: one row per pair with weight = number of rows)"
)
ATTR_TYPES: tuple[str, ...] = ("token", "tokens", "int", "float", "text")


def merge_duplicates(frame: pd.DataFrame, how: str) -> tuple[pd.DataFrame, int]:
    """``(frame, rows merged)`` with one row per user-item pair.

    ``first``/``last``: that occurrence's row (in file order); ``count``: the first row's order,
    the last row's rating and other values, the latest timestamp, and ``weight`` = number of rows
    (the sum of ``weight`` where the file has one)."""
    dup = frame.duplicated(["user", "item"], keep=False)
    n = int(frame.duplicated(["user", "item"]).sum())
    if not n:
        return frame, 0
    if how in ("first", "last"):
        return frame.drop_duplicates(["user", "item"], keep=how).reset_index(drop=True), n
    if how != "count":
        raise ValueError(f"duplicates must be one of {list(DUPLICATE_CHOICES)}, got {how!r}")
    out = frame.copy()
    if "weight" not in out.columns:
        out["weight"] = 1.0
    rep = out[dup.to_numpy()]
    g = rep.groupby(["user", "item"], sort=False)
    merged = g.last()
    merged["weight"] = g["weight"].sum()
    if "timestamp" in rep.columns:
        merged["timestamp"] = g["timestamp"].max()
    first_pos = g.apply(lambda x: x.index[0], include_groups=False)
    merged = merged.reset_index()
    merged.index = first_pos.to_numpy()
    keep = out[~dup.to_numpy()]
    out = pd.concat([keep, merged[out.columns]]).sort_index(kind="stable").reset_index(drop=True)
    return out, n


@dataclass(frozen=True, eq=False)
class Interactions:
    """User-item interactions: ``user``, ``item`` (str ids), and optionally ``rating``,
    ``timestamp``, ``review`` and any extra columns (``split``, ``weight`` ...), one row each."""

    frame: pd.DataFrame
    source: str | None = None
    rating_range: tuple[float, float] | None = None

    @classmethod
    def from_raw(
        cls,
        raw: RawTable,
        *,
        user: str = "user",
        item: str = "item",
        rating: str | None = None,
        timestamp: str | None = None,
        review: str | None = None,
        weight: str | None = None,
        extra: Mapping[str, str] | None = None,
        rating_range: tuple[float, float] | None = None,
        on_duplicate: Literal["error", "keep", "first", "last", "count"] = "error",
    ) -> Interactions:
        """Validate and type ``raw`` (``weight``: a non-negative count such as plays). ``extra``
        maps output names to source columns to keep. ``on_duplicate``: repeated user-item rows
        are an ``error`` (naming the option), kept as they are (``keep``), or merged into one row
        (``first``, ``last``, ``count``: see :func:`merge_duplicates`)."""
        needed = [c for c in (user, item, rating, timestamp, review, weight) if c] + list(
            (extra or {}).values()
        )
        raw.require(needed, what="interactions")
        out = pd.DataFrame(
            {"user": _ids(raw, user, what="user"), "item": _ids(raw, item, what="item")}
        )
        if rating:
            out["rating"] = _numbers(raw, rating, what="rating", value_range=rating_range)
        if timestamp:
            out["timestamp"] = _numbers(raw, timestamp, what="timestamp", allow_missing=True)
        if review:
            out["review"] = _text(raw, review)
        if weight:
            out["weight"] = _numbers(raw, weight, what="weight", value_range=(0.0, np.inf))
        for name, col in (extra or {}).items():
            out[name] = raw.frame[col].to_numpy()
        if on_duplicate == "error":
            _duplicates(raw, out[["user", "item"]], item, "user-item pair", DUPLICATES_HINT)
        elif on_duplicate != "keep":
            out, _ = merge_duplicates(out, on_duplicate)
        return cls(out, source=raw.path, rating_range=rating_range)

    @classmethod
    def concat(cls, parts: Sequence[Interactions], *, on_duplicate: str = "error") -> Interactions:
        """Stack several tables (e.g. train/val/test files); duplicates across files are errors."""
        frame = pd.concat([p.frame for p in parts], ignore_index=True)
        if on_duplicate == "error":
            dup = frame.duplicated(["user", "item"])
            if dup.any():
                r = frame[dup].iloc[0]
                raise DataError(
                    f"duplicate user-item pair ({r['user']!r}, {r['item']!r}) across "
                    f"{[p.source for p in parts]}"
                )
        return cls(
            frame,
            source=", ".join(str(p.source) for p in parts),
            rating_range=parts[0].rating_range,
        )

    def __len__(self) -> int:
        return len(self.frame)

    @property
    def users(self) -> np.ndarray:
        return pd.unique(self.frame["user"])

    @property
    def items(self) -> np.ndarray:
        return pd.unique(self.frame["item"])

    def has(self, column: str) -> bool:
        return column in self.frame.columns


@dataclass(frozen=True, eq=False)
class AttributeTable:
    """One row per entity (an item catalog or a user table): ``id`` plus typed attributes.

    ``attributes`` maps column -> type: ``token`` (categorical), ``tokens`` (multi-valued,
    stored as tuples), ``int``/``float`` (numeric, NaN where empty), ``text`` (free text).
    """

    frame: pd.DataFrame
    node_type: str
    attributes: dict[str, str] = field(default_factory=dict)
    source: str | None = None

    @classmethod
    def from_raw(
        cls,
        raw: RawTable,
        *,
        node_type: str,
        id_column: str,
        attributes: Mapping[str, str],
        delimiters: Mapping[str, str] | None = None,
        require_text: bool = False,
    ) -> AttributeTable:
        """Validate ``raw``: unique, non-empty ids; typed attributes; optionally non-empty text."""
        raw.require([id_column, *attributes], what=f"{node_type} table")
        ids = _ids(raw, id_column, what=node_type)
        _duplicates(raw, ids, id_column, f"{node_type} id")
        out = {"id": ids}
        for col, typ in attributes.items():
            if typ not in ATTR_TYPES:
                raise DataError(
                    f"unknown attribute type {typ!r}; use one of {list(ATTR_TYPES)}",
                    path=raw.path,
                    column=col,
                )
            if typ in ("int", "float"):
                out[col] = _numbers(raw, col, what=col, integer=typ == "int", allow_missing=True)
            elif typ == "tokens":
                delim = (delimiters or {}).get(col, "|")
                if not delim:
                    raise DataError(
                        "empty delimiter for a multi-valued column", path=raw.path, column=col
                    )
                out[col] = [
                    tuple(
                        v
                        for v in (x if isinstance(x, (list, tuple)) else str(x or "").split(delim))
                        if str(v).strip()
                    )
                    for x in raw.frame[col]
                ]
            else:
                out[col] = _text(raw, col)
        frame = pd.DataFrame(out)
        text_cols = [c for c, t in attributes.items() if t == "text"]
        if require_text and text_cols:
            empty = np.ones(len(frame), bool)
            for c in text_cols:
                empty &= (frame[c] == "").to_numpy()
            if empty.any():
                row = int(np.flatnonzero(empty)[0])
                raise raw.error(
                    row,
                    text_cols[0],
                    f"empty text for {node_type} {ids[row]!r} "
                    f"(all of {text_cols} are empty; {int(empty.sum())} such row(s))",
                )
        return cls(frame, node_type=node_type, attributes=dict(attributes), source=raw.path)

    def __len__(self) -> int:
        return len(self.frame)

    @property
    def ids(self) -> np.ndarray:
        return self.frame["id"].to_numpy()

    def text_columns(self) -> list[str]:
        return [c for c, t in self.attributes.items() if t == "text"]


@dataclass(frozen=True, eq=False)
class Triples:
    """Knowledge-graph triples ``head, relation, tail`` (entity ids and relation names as str);
    repeated triples are dropped (``duplicates_dropped`` says how many)."""

    frame: pd.DataFrame
    source: str | None = None
    duplicates_dropped: int = 0

    @classmethod
    def from_raw(
        cls, raw: RawTable, *, head: str = "head", relation: str = "relation", tail: str = "tail"
    ) -> Triples:
        raw.require([head, relation, tail], what="KG triples")
        frame = pd.DataFrame(
            {
                "head": _ids(raw, head, what="head entity"),
                "relation": _ids(raw, relation, what="relation"),
                "tail": _ids(raw, tail, what="tail entity"),
            }
        )
        dup = frame.duplicated().to_numpy()
        if dup.any():  # a repeated triple is one fact, not parallel edges: dropped and reported
            first = int(np.flatnonzero(dup)[0])
            log.warning(
                "%s: %d duplicate KG triple(s) dropped (first: %s %s)",
                raw.path, int(dup.sum()), tuple(frame.iloc[first]), _where(raw, np.asarray([first])),
            )  # fmt: skip
            frame = frame[~dup].reset_index(drop=True)
        return cls(frame, source=raw.path, duplicates_dropped=int(dup.sum()))

    def __len__(self) -> int:
        return len(self.frame)

    @property
    def entities(self) -> np.ndarray:
        return pd.unique(pd.concat([self.frame["head"], self.frame["tail"]], ignore_index=True))

    @property
    def relations(self) -> np.ndarray:
        return pd.unique(self.frame["relation"])


@dataclass(frozen=True, eq=False)
class Links:
    """Item -> KG entity links, at most one entity per item."""

    frame: pd.DataFrame
    source: str | None = None

    @classmethod
    def from_raw(cls, raw: RawTable, *, item: str = "item", entity: str = "entity") -> Links:
        raw.require([item, entity], what="item-entity links")
        frame = pd.DataFrame(
            {"item": _ids(raw, item, what="item"), "entity": _ids(raw, entity, what="entity")}
        )
        _duplicates(raw, frame["item"], item, "linked item")
        return cls(frame, source=raw.path)

    def __len__(self) -> int:
        return len(self.frame)

    def check_items(self, known: np.ndarray | pd.Index, *, lines: np.ndarray | None = None) -> None:
        """Every linked item must be a known item; the first absent one is named."""
        absent = ~self.frame["item"].isin(pd.Index(known)).to_numpy()
        if absent.any():
            row = int(np.flatnonzero(absent)[0])
            raise DataError(
                f"link names item {self.frame['item'].iloc[row]!r} that is in neither the catalog "
                f"nor the interactions ({int(absent.sum())} such link(s))",
                path=self.source,
                line=None if lines is None else int(lines[row]),
                column="item",
            )
