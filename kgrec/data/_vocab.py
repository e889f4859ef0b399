"""Vocabulary: external ids of one node type <-> contiguous indices 0..n-1."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from kgrec.errors import DataError, UnknownIdError


class Vocabulary:
    """Bijective map between the external (string) ids of one node type and indices 0..n-1.

    Ids are stored as strings: ``"42"`` and ``42`` name the same item. Order is insertion order,
    so a vocabulary built from the same ids in the same order always gives the same indices.
    """

    __slots__ = ("_index", "node_type")

    def __init__(self, ids: Iterable[Any], *, node_type: str) -> None:
        index = pd.Index([str(i) for i in ids], dtype=object)
        if not index.is_unique:
            dup = index[index.duplicated()].unique()[:5].tolist()
            raise DataError(f"duplicate {node_type} ids in vocabulary: {dup}")
        self._index = index
        self.node_type = node_type

    @classmethod
    def from_unique(cls, ids: Iterable[Any], *, node_type: str) -> Vocabulary:
        """Vocabulary of the distinct ids in order of first appearance."""
        return cls(pd.unique(pd.Series([str(i) for i in ids], dtype=object)), node_type=node_type)

    def __len__(self) -> int:
        return len(self._index)

    def __contains__(self, id_: object) -> bool:
        return str(id_) in self._index

    def __iter__(self):
        return iter(self._index)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Vocabulary)
            and self.node_type == other.node_type
            and self._index.equals(other._index)
        )

    def __hash__(self) -> int:  # pragma: no cover - vocabularies are not dict keys
        return hash((self.node_type, len(self)))

    def __repr__(self) -> str:
        return f"Vocabulary(node_type={self.node_type!r}, size={len(self)})"

    @property
    def ids(self) -> np.ndarray:
        """All ids in index order (object array of str)."""
        return self._index.to_numpy()

    def index(self, id_: object) -> int:
        """Index of one id; raises :class:`UnknownIdError` naming the id and the node type."""
        try:
            return int(self._index.get_loc(str(id_)))
        except KeyError:
            raise UnknownIdError(self.node_type, str(id_)) from None

    def indices(self, ids: Sequence[Any] | np.ndarray | pd.Series, *, missing: str = "raise"):
        """Vectorised lookup. ``missing="raise"`` names the first unknown id; ``"-1"`` maps it to -1."""
        arr = pd.Index(np.asarray(ids, dtype=object).astype(str), dtype=object)
        out = self._index.get_indexer(arr)
        if missing == "raise" and (out < 0).any():
            pos = int(np.flatnonzero(out < 0)[0])
            raise UnknownIdError(
                self.node_type, arr[pos], hint=f"{int((out < 0).sum())} unknown in this lookup"
            )
        if missing not in ("raise", "-1"):
            raise ValueError(f"missing must be 'raise' or '-1', not {missing!r}")
        return out.astype(np.int64)

    def id(self, index: int) -> str:
        """External id at ``index``."""
        if not 0 <= index < len(self):
            raise IndexError(f"{self.node_type} index {index} outside 0..{len(self) - 1}")
        return str(self._index[index])

    def extend(self, ids: Iterable[Any]) -> Vocabulary:
        """A new vocabulary with unseen ``ids`` appended (existing indices unchanged)."""
        new = [str(i) for i in ids]
        fresh = pd.unique(pd.Series([i for i in new if i not in self._index], dtype=object))
        return Vocabulary([*self._index.tolist(), *fresh.tolist()], node_type=self.node_type)

    def to_json(self) -> dict[str, Any]:
        return {"node_type": self.node_type, "ids": self._index.tolist()}

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Vocabulary:
        return cls(obj["ids"], node_type=obj["node_type"])

    def dumps(self) -> str:
        return json.dumps(self.to_json())
