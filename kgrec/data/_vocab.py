"""Vocabulary: external ids of one node type <-> contiguous indices 0..n-1."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from kgrec.errors import DataError, UnknownIdError


class Vocabulary:
    """Bijective map between the external (string) ids of one node type and indices 0..n-1.

    Ids are stored as strings: ``"42"`` and ``42`` name the same item. Order is insertion order,
    so a vocabulary built from the same ids in the same order always gives the same indices.
    A plain dict (no pandas): loading a saved index or model needs no dataframe library.
    """

    __slots__ = ("_ids", "_pos", "node_type")

    def __init__(self, ids: Iterable[Any], *, node_type: str) -> None:
        if isinstance(ids, np.ndarray):
            ids = ids.tolist()
        listed = [str(i) for i in ids]
        pos = {s: k for k, s in enumerate(listed)}
        if len(pos) != len(listed):
            seen: set[str] = set()
            dup = list(dict.fromkeys(s for s in listed if s in seen or seen.add(s)))[:5]
            raise DataError(f"duplicate {node_type} ids in vocabulary: {dup}")
        self._ids = np.array(listed, dtype=object)
        self._ids.setflags(write=False)
        self._pos = pos
        self.node_type = node_type

    @classmethod
    def from_unique(cls, ids: Iterable[Any], *, node_type: str) -> Vocabulary:
        """Vocabulary of the distinct ids in order of first appearance."""
        if isinstance(ids, np.ndarray):
            ids = ids.tolist()
        return cls(list(dict.fromkeys(str(i) for i in ids)), node_type=node_type)

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, id_: object) -> bool:
        return str(id_) in self._pos

    def __iter__(self):
        return iter(self._ids.tolist())

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Vocabulary)
            and self.node_type == other.node_type
            and len(self) == len(other)
            and bool((self._ids == other._ids).all())
        )

    def __hash__(self) -> int:  # pragma: no cover - vocabularies are not dict keys
        return hash((self.node_type, len(self)))

    def __repr__(self) -> str:
        return f"Vocabulary(node_type={self.node_type!r}, size={len(self)})"

    @property
    def ids(self) -> np.ndarray:
        """All ids in index order (read-only object array of str)."""
        return self._ids

    def index(self, id_: object) -> int:
        """Index of one id; raises :class:`UnknownIdError` naming the id and the node type."""
        try:
            return self._pos[str(id_)]
        except KeyError:
            raise UnknownIdError(self.node_type, str(id_)) from None

    def indices(self, ids: Sequence[Any] | np.ndarray, *, missing: str = "raise") -> np.ndarray:
        """Vectorised lookup. ``missing="raise"`` names the first unknown id; ``"-1"`` maps it to -1."""
        if missing not in ("raise", "-1"):
            raise ValueError(f"missing must be 'raise' or '-1', not {missing!r}")
        if isinstance(ids, np.ndarray) and ids.dtype.kind == "U":
            arr = ids.tolist()
        else:
            seq = ids.tolist() if hasattr(ids, "tolist") else ids
            arr = [x if isinstance(x, str) else str(x) for x in seq]
        get = self._pos.get
        out = np.array([get(s, -1) for s in arr], dtype=np.int64)
        if missing == "raise" and (out < 0).any():
            pos = int(np.flatnonzero(out < 0)[0])
            raise UnknownIdError(
                self.node_type, arr[pos], hint=f"{int((out < 0).sum())} unknown in this lookup"
            )
        return out

    def id(self, index: int) -> str:
        """External id at ``index``."""
        if not 0 <= index < len(self):
            raise IndexError(f"{self.node_type} index {index} outside 0..{len(self) - 1}")
        return str(self._ids[index])

    def extend(self, ids: Iterable[Any]) -> Vocabulary:
        """A new vocabulary with unseen ``ids`` appended (existing indices unchanged)."""
        fresh = dict.fromkeys(s for s in (str(i) for i in ids) if s not in self._pos)
        return Vocabulary([*self._ids.tolist(), *fresh], node_type=self.node_type)

    def to_json(self) -> dict[str, Any]:
        return {"node_type": self.node_type, "ids": self._ids.tolist()}

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Vocabulary:
        return cls(obj["ids"], node_type=obj["node_type"])

    def dumps(self) -> str:
        return json.dumps(self.to_json())
