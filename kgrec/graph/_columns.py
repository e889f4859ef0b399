"""Catalog columns to graph values, vectorised: id lookups, bucketing of numeric columns, and
the values (with their owners) a relation spec draws from an attribute table. The stages of
:func:`kgrec.graph.build_graph` use these; ``kgrec graph check`` reads ``_column_values`` too.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from kgrec.data import AttributeTable
from kgrec.errors import DataError, SpecError
from kgrec.graph._spec_types import Bucket, GraphSpec, RelationSpec


def _oindex(values) -> pd.Index:
    """An object-dtype index (pandas 3's default arrow strings make lookups slow)."""
    return pd.Index(np.asarray(values, dtype=object), dtype=object)


class _Lookup:
    """Positions of string ids in a fixed id list, vectorised (Arrow hashing when available:
    about 6x faster than a pandas object index for millions of lookups)."""

    def __init__(self, ids) -> None:
        self.ids = np.asarray(ids, dtype=object)
        self._pd: pd.Index | None = None
        self._pa = None

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, k):
        return self.ids[k]

    def get(self, values) -> np.ndarray:
        try:
            import pyarrow as pa
            import pyarrow.compute as pc
        except ImportError:  # pragma: no cover - pyarrow is a dependency
            return self._pandas(values)
        try:
            arr = pa.array(values if isinstance(values, pd.Series) else np.asarray(values, object))
        except (TypeError, ValueError, pa.ArrowException):
            return self._pandas(values)
        if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
            return self._pandas(values)
        if self._pa is None:
            self._pa = pa.array(self.ids, type=pa.large_string())
        out = pc.index_in(arr.cast(pa.large_string()), value_set=self._pa)
        return out.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)

    def _pandas(self, values) -> np.ndarray:
        if self._pd is None:
            self._pd = _oindex(self.ids)
        v = values.to_numpy(dtype=object) if isinstance(values, pd.Series) else values
        return self._pd.get_indexer(np.asarray(v, dtype=object)).astype(np.int64, copy=False)


def _lookup(index: _Lookup | pd.Index, values) -> np.ndarray:
    """Positions of ``values`` in ``index`` (-1 where absent), vectorised."""
    if isinstance(index, _Lookup):
        return index.get(values)
    return index.get_indexer(np.asarray(values, dtype=object)).astype(np.int64, copy=False)


def _fmt(x: float) -> str:
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return f"{x:g}" if x != int(x) or abs(x) >= 1e15 else str(int(x))


def bucket_labels(values: np.ndarray, b: Bucket) -> np.ndarray:
    """Label of each (non-NaN) value's bucket, vectorised over unique buckets."""
    if b.width is not None:
        lo = np.floor((values - b.origin) / b.width) * b.width + b.origin
        uniq, inv = np.unique(lo, return_inverse=True)
        labels = np.array(
            [
                b.label.format(lo=_fmt(u), hi=_fmt(u + b.width), last=_fmt(u + b.width - 1))
                for u in uniq
            ],
            dtype=object,
        )
        return labels[inv]
    edges = np.asarray(b.edges, dtype=np.float64)
    k = np.searchsorted(edges, values, side="right")
    uniq, inv = np.unique(k, return_inverse=True)
    labels = []
    for j in uniq:
        if j == 0:
            labels.append(b.below.format(lo="-inf", hi=_fmt(edges[0]), last=_fmt(edges[0] - 1)))
        elif j == len(edges):
            labels.append(b.above.format(lo=_fmt(edges[-1]), hi="inf", last="inf"))
        else:
            lo, hi = edges[j - 1], edges[j]
            labels.append(b.label.format(lo=_fmt(lo), hi=_fmt(hi), last=_fmt(hi - 1)))
    return np.array(labels, dtype=object)[inv]


def _unbucketable(
    table: AttributeTable, r: RelationSpec, key: str, bad: np.ndarray, value: object, what: str
) -> DataError:
    """The error for a column value that cannot be bucketed (the first of the ``bad`` rows)."""
    row = int(np.flatnonzero(bad)[0])
    return DataError(
        f"{r.column} value {value!r} of {table.node_type} {table.ids[row]!r} is not {what}, so it "
        f"cannot be bucketed as {key}.bucket asks ({int(bad.sum())} such row(s))",
        path=table.source,
        column=r.column,
    )


def _column_values(
    table: AttributeTable,
    r: RelationSpec,
    i: int,
    owner: np.ndarray,
    spec: GraphSpec,
    notes: list[str],
) -> tuple[np.ndarray, np.ndarray]:
    """(owner index, value string) pairs for one relation column; empty values and the values
    listed in ``missing`` are skipped (the latter counted in ``notes``)."""
    key = f"relations[{i}]"
    typ = table.attributes[r.column]
    col = table.frame[r.column]
    if r.missing and r.bucket is not None and typ not in ("int", "float", "tokens"):
        stripped = col.astype(str).str.strip()
        unknown = stripped.isin(r.missing).to_numpy()
        if unknown.any():
            notes.append(
                f"{r.relation}: {int(unknown.sum()):,} {table.node_type}(s) with {r.column} in "
                f"{list(r.missing)} (relations[{i}].missing) get no {r.relation!r} edge"
            )
            col = stripped.where(~unknown, "")
    if r.bucket is not None:
        if typ in ("int", "float"):
            vals = col.to_numpy(dtype=np.float64)
        elif typ == "tokens":
            raise SpecError(
                f"column {r.column!r} is multi-valued; only single-valued columns can be bucketed",
                key=f"{key}.bucket",
                spec=spec.path,
            )
        else:
            text = col.astype(str).str.strip()
            vals = pd.to_numeric(text.where(text != "", None), errors="coerce").to_numpy(
                dtype=np.float64
            )
            bad = np.isnan(vals) & (text != "").to_numpy()
            if bad.any():
                raise _unbucketable(table, r, key, bad, text.iloc[int(np.argmax(bad))], "a number")
        inf = np.isinf(vals)
        if inf.any():
            raise _unbucketable(table, r, key, inf, float(vals[int(np.argmax(inf))]), "finite")
        ok = ~np.isnan(vals)
        return owner[ok], bucket_labels(vals[ok], r.bucket)
    if typ == "tokens":
        if r.delimiter is not None:
            raise SpecError(
                f"column {r.column!r} is already multi-valued (split by the dataset loader); "
                "remove 'delimiter'",
                key=f"{key}.delimiter",
                spec=spec.path,
            )
        lengths = col.map(len).to_numpy(dtype=np.int64)
        flat = np.fromiter(
            (str(v).strip() for t in col for v in t), dtype=object, count=int(lengths.sum())
        )
        own = np.repeat(owner, lengths)
    else:
        if typ in ("int", "float"):
            num = col.to_numpy(dtype=np.float64)
            ok = ~np.isnan(num)
            return owner[ok], np.array([_fmt(x) for x in num[ok]], dtype=object)
        text = col.astype(str)
        if r.delimiter is not None:
            lengths, flat = _split(text, r.delimiter)
            own = np.repeat(owner, lengths)
        else:
            flat = text.str.strip().to_numpy(dtype=object)
            own = owner
    keep = flat != ""
    if r.missing:
        unknown = pd.Series(flat, dtype=object).isin(r.missing).to_numpy()
        if unknown.any():
            notes.append(
                f"{r.relation}: {int(unknown.sum()):,} {r.column} value(s) in {list(r.missing)} "
                f"(relations[{i}].missing) get no {r.relation!r} edge"
            )
            keep &= ~unknown
    return own[keep], flat[keep]


def _split(text: pd.Series, delimiter: str) -> tuple[np.ndarray, np.ndarray]:
    """Split each string on ``delimiter``: (number of parts per row, stripped parts)."""
    try:
        import pyarrow as pa
        import pyarrow.compute as pc

        lists = pc.split_pattern(pa.array(text, type=pa.large_string()), pattern=delimiter)
        lengths = pc.list_value_length(lists).to_numpy(zero_copy_only=False).astype(np.int64)
        flat = pc.utf8_trim_whitespace(pc.list_flatten(lists))
        return lengths, np.asarray(flat.to_numpy(zero_copy_only=False), dtype=object)
    except ImportError:  # pragma: no cover - pyarrow is a dependency
        parts = text.str.split(delimiter, regex=False)
        lengths = parts.map(len).to_numpy(dtype=np.int64)
        flat = pd.Series(parts.explode().to_numpy(dtype=object), dtype=object).str.strip()
        return lengths, flat.to_numpy(dtype=object)
