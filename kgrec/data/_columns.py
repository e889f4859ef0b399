"""Column readers of raw tables: ids, numbers and text as written, each bad value a
:class:`DataError` naming its file, line (or row) and column, and the first duplicated key with
where it first stood. The typed tables of :mod:`kgrec.data._tables` are built from these.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from kgrec.data._io import RawTable
from kgrec.errors import DataError


def _is_missing(v: object) -> bool:
    """None, NaN, pandas' NA/NaT: a null from JSON, Parquet or a nullable column."""
    if v is None or v is pd.NA or v is pd.NaT:
        return True
    return isinstance(v, float | np.floating) and bool(np.isnan(v))


def _where(raw: RawTable, rows: np.ndarray, limit: int = 10) -> str:
    """``lines 2, 3`` (at most ``limit`` named, then a count) for error messages."""
    shown = ", ".join(str(int(raw.lines[r])) for r in rows[:limit])
    more = f" and {len(rows) - limit} more" if len(rows) > limit else ""
    return f"{raw.unit}{'s' if len(rows) > 1 else ''} {shown}{more}"


def _wrong_type(
    raw: RawTable, column: str, rows: list[int], message: Callable[[object, str, str], str]
) -> DataError:
    """The error for values of the wrong type in ``column`` on ``rows``: the first named with
    its value, all counted; ``message(value, type name, where)`` words it."""
    v = raw.frame[column].iloc[rows[0]]
    return raw.error(rows[0], column, message(v, type(v).__name__, _where(raw, np.asarray(rows))))


def _ids(raw: RawTable, column: str, *, what: str) -> pd.Series:
    """A required id column as stripped strings exactly as written; a missing or empty id, a
    float id (Parquet ``1.0`` would never match a catalog's ``1``) or a list/object is an error
    naming the rows."""
    raw.require([column], what=what)
    col = raw.frame[column]
    if pd.api.types.is_float_dtype(col.dtype) or pd.api.types.is_bool_dtype(col.dtype):
        sample = col.dropna()
        example = repr(sample.iloc[0].item()) if len(sample) else "null"
        raise DataError(
            f"{what} ids are stored as floats (dtype {str(col.dtype).lower()}, e.g. {example}): "
            "ids must be strings or integers, or '1.0' would never match '1'; write the column "
            "as strings or integers",
            path=raw.path,
            column=column,
        )
    values: list[str | None] = []
    odd: list[int] = []
    for r, v in enumerate(col):
        if _is_missing(v):
            values.append(None)
        elif isinstance(v, str | int | np.integer) and not isinstance(v, bool | np.bool_):
            values.append(str(v).strip())
        else:
            odd.append(r)
            values.append(None)
    if odd:
        raise _wrong_type(
            raw,
            column,
            odd,
            lambda v, t, w: f"{what} id {v!r} is a {t}, not a string or integer ({w})",
        )
    out = pd.Series(values, dtype=object)
    bad = (out.isna() | (out == "")).to_numpy()
    if bad.any():
        rows = np.flatnonzero(bad)
        raise raw.error(
            int(rows[0]),
            column,
            f"missing {what} id (null or empty) on {_where(raw, rows)}; every row needs one",
        )
    return out


def _numbers(
    raw: RawTable,
    column: str,
    *,
    what: str,
    value_range: tuple[float, float] | None = None,
    integer: bool = False,
    allow_missing: bool = False,
) -> np.ndarray:
    """Parse a numeric column; the first unparsable, NaN or out-of-range value is an error."""
    col = raw.frame[column]
    if pd.api.types.is_numeric_dtype(col.dtype) and not pd.api.types.is_bool_dtype(col.dtype):
        values = col.to_numpy(dtype=np.float64, na_value=np.nan)
        text = None
    else:
        nonscalar = [r for r, v in enumerate(col) if isinstance(v, list | dict | tuple)]
        if nonscalar:
            raise raw.error(nonscalar[0], column, f"{what} is a list or object, not a number")
        text = pd.Series([None if _is_missing(v) else str(v).strip() for v in col], dtype=object)
        values = pd.to_numeric(text.replace("", None), errors="coerce").to_numpy(dtype=np.float64)
    nan = np.isnan(values)
    if nan.any():
        empty = (
            np.zeros(len(values), bool) if text is None else (text.isna() | (text == "")).to_numpy()
        )
        literal_nan = (
            nan
            & ~empty
            & (
                text.str.lower().isin(["nan", "-nan", "+nan"]).to_numpy()
                if text is not None
                else True
            )
        )
        unparsable = nan & ~empty & ~literal_nan
        if unparsable.any():
            row = int(np.flatnonzero(unparsable)[0])
            raise raw.error(row, column, f"{what} {text[row]!r} is not a number")
        if literal_nan.any():
            row = int(np.flatnonzero(literal_nan)[0])
            raise raw.error(row, column, f"{what} is NaN")
        if not allow_missing:
            row = int(np.flatnonzero(nan)[0])
            raise raw.error(row, column, f"missing {what} ({int(nan.sum())} such row(s))")
    finite = ~nan
    if np.isinf(values).any():
        row = int(np.flatnonzero(np.isinf(values))[0])
        raise raw.error(row, column, f"{what} is infinite")
    if value_range is not None:
        lo, hi = value_range
        out = finite & ((values < lo) | (values > hi))
        if out.any():
            row = int(np.flatnonzero(out)[0])
            raise raw.error(
                row,
                column,
                f"{what} {values[row]:g} outside the allowed range [{lo:g}, {hi:g}] "
                f"({int(out.sum())} such row(s))",
            )
    if integer:
        frac = finite & (values != np.round(values))
        if frac.any():
            row = int(np.flatnonzero(frac)[0])
            raise raw.error(row, column, f"{what} {values[row]!r} is not an integer")
    return values


def _text(raw: RawTable, column: str) -> pd.Series:
    """A single-valued column as stripped strings; a JSON list or object is an error (declare
    the column multi-valued to read lists), never one token like ``"['Action', 'Drama']"``."""
    col = raw.frame[column]
    nonscalar = [r for r, v in enumerate(col) if isinstance(v, list | dict | tuple)]
    if nonscalar:
        raise _wrong_type(
            raw,
            column,
            nonscalar,
            lambda v, t, w: (
                f"value {v!r:.80} is a {t}, but the column is single-valued ({w}); "
                "declare it multi-valued (a relation with a delimiter, or JSON lists in every row) or "
                "write one value per row"
            ),
        )
    return pd.Series(["" if _is_missing(v) else str(v).strip() for v in col], dtype=object)


def _duplicates(
    raw: RawTable, keys: pd.DataFrame | pd.Series, column: str, what: str, hint: str = ""
) -> None:
    """Raise naming the second occurrence of the first duplicated key and where the first was."""
    dup = keys.duplicated(keep="first").to_numpy()
    if not dup.any():
        return
    row = int(np.flatnonzero(dup)[0])
    key = keys.iloc[row]
    if isinstance(keys, pd.DataFrame):
        same = (keys == key).all(axis=1).to_numpy()
        key = tuple(key)
    else:
        same = (keys == key).to_numpy()
    first = int(np.flatnonzero(same)[0])
    raise raw.error(
        row,
        column,
        f"duplicate {what} {key!r} (first at {raw.unit} {int(raw.lines[first])}); "
        f"{int(dup.sum())} duplicate row(s) in all" + (f"; {hint}" if hint else ""),
    )
