"""Exceptions raised by kgrec, each saying what went wrong and where."""

from __future__ import annotations

from pathlib import Path


class KgrecError(Exception):
    """Base class of every error kgrec raises on purpose."""


class DataError(KgrecError, ValueError):
    """Bad input data, located by file, line (or row) and column where known.

    ``str(err)`` reads ``path, line 12, column 'rating': message``.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | Path | None = None,
        line: int | None = None,
        column: str | None = None,
        unit: str = "line",
    ) -> None:
        self.message = message
        self.path = str(path) if path is not None else None
        self.line = line
        self.column = column
        self.unit = unit
        super().__init__(str(self))

    def __str__(self) -> str:
        where = []
        if self.path is not None:
            where.append(self.path)
        if self.line is not None:
            where.append(f"{self.unit} {self.line}")
        if self.column is not None:
            where.append(f"column {self.column!r}")
        return f"{', '.join(where)}: {self.message}" if where else self.message


class UnknownIdError(KgrecError, KeyError):
    """An external id that a vocabulary does not contain."""

    def __init__(self, node_type: str, id_: object, *, hint: str = "") -> None:
        self.node_type = node_type
        self.id = id_
        self.hint = hint
        super().__init__(str(self))

    def __str__(self) -> str:  # KeyError would repr() the message
        msg = f"unknown {self.node_type} id {self.id!r}"
        return f"{msg} ({self.hint})" if self.hint else msg


class FetchError(KgrecError, RuntimeError):
    """A dataset could not be obtained (registry unreachable, checksum mismatch ...)."""


class SpecError(KgrecError, ValueError):
    """A declarative spec that names something absent or is otherwise invalid."""

    def __init__(self, message: str, *, key: str | None = None, spec: str | Path | None = None):
        self.message = message
        self.key = key
        self.spec = str(spec) if spec is not None else None
        super().__init__(str(self))

    def __str__(self) -> str:
        where = [w for w in (self.spec, f"key {self.key!r}" if self.key else None) if w]
        return f"{', '.join(where)}: {self.message}" if where else self.message
