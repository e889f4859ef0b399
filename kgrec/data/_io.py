"""Readers for CSV/TSV, JSONL, Parquet and RecBole atomic files, with line-exact error locations.

Every reader returns a :class:`RawTable`: string columns plus the source line (or row) of each
record, so that validation further on can say ``file, line, column`` for any bad value.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from kgrec.errors import DataError

#: RecBole atomic-file field types (``name:type`` headers).
ATOMIC_TYPES = ("token", "token_seq", "float", "float_seq")
ATOMIC_SUFFIXES = (".inter", ".item", ".user", ".kg", ".link", ".net")


@dataclass
class RawTable:
    """Records read from one file, all values still strings (or parquet-native types).

    ``lines[i]`` is the 1-based line of record ``i`` in ``path`` (the row number for Parquet,
    where ``unit == "row"``). ``types`` holds declared types where the format has them (RecBole).
    """

    path: str
    frame: pd.DataFrame
    lines: np.ndarray
    unit: str = "line"
    types: dict[str, str] = field(default_factory=dict)

    @property
    def columns(self) -> list[str]:
        return list(self.frame.columns)

    def __len__(self) -> int:
        return len(self.frame)

    def error(self, row: int, column: str | None, message: str) -> DataError:
        """A :class:`DataError` located at record ``row`` (0-based) of this table."""
        return DataError(
            message, path=self.path, line=int(self.lines[row]), column=column, unit=self.unit
        )

    def require(self, columns: list[str] | tuple[str, ...], *, what: str = "") -> None:
        """Raise a header error naming the missing columns and those available."""
        missing = [c for c in columns if c not in self.frame.columns]
        if missing:
            raise DataError(
                f"header does not match: missing column(s) {missing}{' for ' + what if what else ''}"
                f"; the file has {self.columns}",
                path=self.path,
                line=1 if self.unit == "line" else None,
                column=missing[0],
            )


def _decode(data: bytes, path: str, encoding: str, delimiter: str | None, header: list[str] | None):
    """Decode ``data``; an undecodable byte is reported by line and column."""
    if encoding.replace("-", "").lower() in ("utf8", "utf8sig") and data.startswith(
        b"\xef\xbb\xbf"
    ):
        data = data[3:]
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        start = exc.start
        line_start = data.rfind(b"\n", 0, start) + 1
        line_no = data.count(b"\n", 0, start) + 1
        column: str | None = None
        if delimiter is not None:
            field_no = data.count(delimiter.encode(), line_start, start)
            names = header
            if names is None and line_no > 1:
                first = data[: data.find(b"\n")].decode(encoding, "replace").rstrip("\r")
                names = first.split(delimiter)
            if names is not None and field_no < len(names):
                column = names[field_no]
            else:
                column = f"#{field_no + 1}"
        raise DataError(
            f"byte 0x{data[start]:02x} at character {start - line_start + 1} of the line is not "
            f"valid {encoding} ({exc.reason}); pass the file's encoding (e.g. encoding='latin-1')",
            path=path,
            line=line_no,
            column=column,
        ) from None


def _read_bytes(path: Path, name: str) -> bytes:
    """The file's bytes, or one :class:`DataError` saying why they cannot be read."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise DataError("file not found", path=name) from None
    except IsADirectoryError:
        raise DataError("is a directory, not a file", path=name) from None
    except PermissionError:
        raise DataError("permission denied: cannot read the file", path=name) from None
    except OSError as exc:  # symlink loops (ELOOP), I/O errors ...
        raise DataError(f"cannot read the file: {exc.strerror or exc}", path=name) from None


def _split_lines(text: str) -> list[str]:
    """Split on LF, dropping a trailing CR (CRLF and mixed endings both work)."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [ln[:-1] if ln.endswith("\r") else ln for ln in lines]


def read_delimited(
    path: str | Path,
    *,
    delimiter: str = ",",
    header: bool | list[str] = True,
    encoding: str = "utf-8",
    quoting: bool = True,
    display: str | None = None,
) -> RawTable:
    """Read a CSV/TSV file. ``header=[...]`` names the columns of a file without a header row.

    ``quoting=False`` splits on the delimiter only (TSV, HetRec ``.dat``); ``True`` follows CSV
    quoting rules (fields may contain delimiters and newlines). Blank lines are skipped; a record
    with the wrong number of fields is an error naming its line.
    """
    path = Path(path)
    name = display or str(path)
    if not delimiter:
        raise DataError("empty delimiter", path=name)
    if quoting and len(delimiter) != 1:
        raise DataError(
            f"a CSV delimiter must be one character, got {delimiter!r} (for a multi-character "
            "separator use a .tsv/.dat/.txt file, split on the separator as it is)",
            path=name,
        )
    data = _read_bytes(path, name)
    names = header if isinstance(header, list) else None
    text = _decode(data, name, encoding, delimiter, names)
    rows: list[list[str]] = []
    lines: list[int] = []
    if quoting:
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
        prev = 0
        try:
            for rec in reader:
                start, prev = prev + 1, reader.line_num
                if rec:
                    rows.append(rec)
                    lines.append(start)
        except csv.Error as exc:
            raise DataError(f"malformed CSV: {exc}", path=name, line=reader.line_num) from None
    else:
        for no, ln in enumerate(_split_lines(text), start=1):
            if ln:
                rows.append(ln.split(delimiter))
                lines.append(no)
    if isinstance(header, list):
        columns = header
    else:
        if not rows:
            raise DataError("empty file: no header row", path=name, line=1)
        columns = rows.pop(0)
        lines.pop(0)
        if len(set(columns)) != len(columns):
            dup = sorted({c for c in columns if columns.count(c) > 1})
            raise DataError(f"duplicate column names in header: {dup}", path=name, line=1)
    width = len(columns)
    for rec, no in zip(rows, lines, strict=True):
        if len(rec) != width:
            raise DataError(
                f"expected {width} fields {columns}, found {len(rec)}"
                + (" (more fields than the header names)" if len(rec) > width else ""),
                path=name,
                line=no,
                column=columns[len(rec)] if len(rec) < width else None,
            )
    frame = (
        pd.DataFrame(rows, columns=columns, dtype=object)
        if rows
        else pd.DataFrame({c: pd.Series([], dtype=object) for c in columns})
    )
    return RawTable(name, frame, np.asarray(lines, dtype=np.int64))


def read_atomic(
    path: str | Path, *, encoding: str = "utf-8", display: str | None = None
) -> RawTable:
    """Read a RecBole atomic file (tab-separated, header of ``name:type`` fields)."""
    table = read_delimited(path, delimiter="\t", quoting=False, encoding=encoding, display=display)
    names, types = [], {}
    for raw in table.columns:
        name, sep, typ = raw.partition(":")
        if not sep or typ not in ATOMIC_TYPES:
            raise DataError(
                f"atomic header field {raw!r} is not 'name:type' with type in {list(ATOMIC_TYPES)}",
                path=table.path,
                line=1,
                column=raw,
            )
        names.append(name)
        types[name] = typ
    table.frame.columns = names
    table.types = types
    return table


def read_jsonl(
    path: str | Path, *, encoding: str = "utf-8", display: str | None = None
) -> RawTable:
    """Read JSON Lines: one object per line; the columns are the union of keys in first-seen order."""
    path = Path(path)
    name = display or str(path)
    data = _read_bytes(path, name)
    text = _decode(data, name, encoding, None, None)
    records, lines = [], []
    for no, ln in enumerate(_split_lines(text), start=1):
        if not ln.strip():
            continue
        try:  # numbers stay the text they were written as: ids are never coerced (1.0 != 1)
            obj = json.loads(ln, parse_float=str, parse_int=str, parse_constant=str)
        except json.JSONDecodeError as exc:
            raise DataError(
                f"invalid JSON at character {exc.colno}: {exc.msg}", path=name, line=no
            ) from None
        if not isinstance(obj, dict):
            raise DataError(
                f"expected a JSON object, found {type(obj).__name__}", path=name, line=no
            )
        records.append(obj)
        lines.append(no)
    frame = pd.DataFrame.from_records(records) if records else pd.DataFrame()
    frame = frame.astype(object).where(frame.notna(), None)
    for col in frame.columns:  # booleans become strings like every other reader's values
        frame[col] = [
            v if v is None or isinstance(v, str | list | dict) else str(v) for v in frame[col]
        ]
    return RawTable(name, frame, np.asarray(lines, dtype=np.int64))


def read_parquet(path: str | Path, *, display: str | None = None) -> RawTable:
    """Read a Parquet file; locations are row numbers (1-based)."""
    path = Path(path)
    name = display or str(path)
    if not path.exists():
        raise DataError("file not found", path=name)
    if path.is_dir():
        raise DataError("is a directory, not a file", path=name)
    try:  # nullable dtypes: an integer column with nulls stays integer (not float 1.0)
        frame = pd.read_parquet(path, dtype_backend="numpy_nullable")
    except PermissionError:
        raise DataError("permission denied: cannot read the file", path=name) from None
    except Exception as exc:  # pyarrow raises several types for corrupt files
        raise DataError(f"not a readable Parquet file: {exc}", path=name) from None
    return RawTable(name, frame.reset_index(drop=True), np.arange(1, len(frame) + 1), unit="row")


def read_table(
    path: str | Path, *, encoding: str = "utf-8", delimiter: str | None = None
) -> RawTable:
    """Read any supported file, choosing the reader by suffix.

    ``.csv`` CSV; ``.tsv``/``.tab``/``.dat``/``.txt`` tab-separated; ``.jsonl``/``.ndjson`` JSON
    Lines; ``.parquet``/``.pq`` Parquet; ``.inter .item .user .kg .link .net`` RecBole atomic.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in ATOMIC_SUFFIXES:
        return read_atomic(path, encoding=encoding)
    if suffix in (".jsonl", ".ndjson"):
        return read_jsonl(path, encoding=encoding)
    if suffix in (".parquet", ".pq"):
        return read_parquet(path)
    if suffix == ".csv":
        return read_delimited(path, delimiter=delimiter or ",", encoding=encoding)
    if suffix in (".tsv", ".tab", ".dat", ".txt"):
        return read_delimited(path, delimiter=delimiter or "\t", encoding=encoding, quoting=False)
    raise DataError(
        f"unsupported file type {suffix!r}; use .csv, .tsv, .jsonl, .parquet or a RecBole atomic "
        f"suffix {list(ATOMIC_SUFFIXES)}",
        path=str(path),
    )
