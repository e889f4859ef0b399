"""The :class:`Split` of positive interactions (part codes, cold roles, reveal order, the
vocabularies) and its persistence: ``.npz`` arrays without pickle and a JSON sidecar, reloaded
exactly. The protocols that make splits are in :mod:`kgrec.data._splits`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from kgrec._atomic import atomic_path, atomic_write_text
from kgrec.data._positives import PART_NAMES, TRAIN, Positives
from kgrec.data._tables import WEIGHT_MODES
from kgrec.data._vocab import Vocabulary
from kgrec.errors import DataError

#: item_role / user_role codes
WARM, COLD_VALID, COLD_TEST = 0, 1, 2
PROTOCOLS = ("random", "temporal", "cold-item", "cold-user", "given")
_FORMAT = "kgrec.split/1"


@dataclass(frozen=True, eq=False)
class Split:
    """One split of positive interactions: index arrays, part codes and the vocabularies.

    ``part[r]`` is 0 (train), 1 (validation) or 2 (test) for interaction ``r``. ``item_role`` /
    ``user_role`` (cold protocols) are 0 warm, 1 cold-validation, 2 cold-test per item / user.
    ``reveal`` (cold-user) is the position of each interaction in its held-out user's seeded
    reveal order (-1 for warm users).
    """

    protocol: str
    users: Vocabulary
    items: Vocabulary
    user: np.ndarray
    item: np.ndarray
    part: np.ndarray
    seed: int
    params: dict[str, Any] = field(default_factory=dict)
    item_role: np.ndarray | None = None
    user_role: np.ndarray | None = None
    reveal: np.ndarray | None = None
    notes: tuple[str, ...] = ()
    #: interaction weight per row, from :attr:`Positives.weight` (``None``: the data have none)
    weight: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise DataError(f"unknown split protocol {self.protocol!r}; known: {list(PROTOCOLS)}")
        n = len(self.user)
        if len(self.item) != n or len(self.part) != n:
            raise DataError("split arrays user, item and part must have the same length")
        if n and (self.user.min() < 0 or self.user.max() >= len(self.users)):
            raise DataError("split user index outside the user vocabulary")
        if n and (self.item.min() < 0 or self.item.max() >= len(self.items)):
            raise DataError("split item index outside the item vocabulary")
        if self.weight is not None and len(self.weight) != n:
            raise DataError("split weight must have one value per interaction")

    @classmethod
    def of(
        cls,
        pos: Positives,
        protocol: str,
        part: np.ndarray,
        seed: int,
        params: dict[str, Any],
        **extra: Any,
    ) -> Split:
        """The split of ``pos`` (its vocabularies and rows) with ``part`` per row; ``notes``
        default to the positives' own."""
        extra.setdefault("notes", pos.notes)
        extra.setdefault("weight", pos.weight)
        return cls(protocol, pos.users, pos.items, pos.user, pos.item, part, seed, params, **extra)

    @property
    def n_users(self) -> int:
        return len(self.users)

    @property
    def n_items(self) -> int:
        return len(self.items)

    def mask(self, *parts: int) -> np.ndarray:
        """Boolean row mask of the interactions in ``parts``."""
        return np.isin(self.part, np.asarray(parts, dtype=np.int8))

    def matrix(
        self, *parts: int, rows: np.ndarray | None = None, weights: str = "none"
    ) -> sp.csr_matrix:
        """``n_users x n_items`` CSR matrix of the interactions in ``parts`` (and ``rows``):
        binary (``weights="none"``), or valued by the interaction weights (``"count"``) or
        their ``log1p`` (``"log"``), which the data must carry."""
        if weights not in WEIGHT_MODES:
            raise DataError(f"weights must be one of {WEIGHT_MODES}, got {weights!r}")
        keep = self.mask(*parts)
        if rows is not None:
            keep &= rows
        if weights == "none":
            data = np.ones(int(keep.sum()), dtype=np.float32)
        elif self.weight is None:
            raise DataError(
                f"weights={weights!r} needs interaction weights, and these data have none: give "
                'the spec duplicates = "count" (repeats become a count) or a weight column'
            )
        else:
            data = self.weight[keep].astype(np.float32)
            if weights == "log":
                data = np.log1p(data)
        m = sp.csr_matrix(
            (data, (self.user[keep], self.item[keep])), shape=(self.n_users, self.n_items)
        )
        m.sum_duplicates()
        if weights == "none":
            m.data[:] = 1.0
        return m

    def train_matrix(self, weights: str = "none") -> sp.csr_matrix:
        return self.matrix(TRAIN, weights=weights)

    def counts(self) -> dict[str, int]:
        """Interactions per part, plus user and item counts."""
        out = {name: int((self.part == i).sum()) for i, name in enumerate(PART_NAMES)}
        out["users"] = self.n_users
        out["items"] = self.n_items
        out["interactions"] = len(self.part)
        if self.item_role is not None:
            out["cold_valid_items"] = int((self.item_role == COLD_VALID).sum())
            out["cold_test_items"] = int((self.item_role == COLD_TEST).sum())
        if self.user_role is not None:
            out["cold_valid_users"] = int((self.user_role == COLD_VALID).sum())
            out["cold_test_users"] = int((self.user_role == COLD_TEST).sum())
        return out

    def describe(self) -> dict[str, Any]:
        """JSON-able description: protocol, seed, parameters, counts and notes."""
        return {
            "protocol": self.protocol,
            "seed": self.seed,
            "params": dict(self.params),
            "counts": self.counts(),
            "notes": list(self.notes),
        }

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path) -> Path:
        """Write ``path`` (``.npz``, arrays, no pickle) and ``path.json`` (vocabularies, meta)."""
        path = Path(path)
        if path.suffix != ".npz":
            path = path.with_suffix(".npz")
        arrays: dict[str, np.ndarray] = {
            "user": self.user.astype(np.int64),
            "item": self.item.astype(np.int64),
            "part": self.part.astype(np.int8),
        }
        for name in ("item_role", "user_role", "reveal", "weight"):
            value = getattr(self, name)
            if value is not None:
                arrays[name] = np.asarray(value)
        with atomic_path(path, suffix=".npz") as tmp, tmp.open("wb") as f:
            np.savez(f, **arrays)
        meta = {
            "format": _FORMAT,
            "protocol": self.protocol,
            "seed": self.seed,
            "params": self.params,
            "notes": list(self.notes),
            "users": self.users.to_json(),
            "items": self.items.to_json(),
        }
        atomic_write_text(path.with_suffix(".json"), json.dumps(meta, indent=1))
        return path

    @classmethod
    def load(cls, path: str | Path) -> Split:
        """Read a split written by :meth:`save`."""
        path = Path(path)
        if path.suffix != ".npz":
            path = path.with_suffix(".npz")
        meta_path = path.with_suffix(".json")
        if not path.is_file() or not meta_path.is_file():
            raise DataError(f"split files {path} and {meta_path} are both needed", path=path)
        meta = json.loads(meta_path.read_text())
        if meta.get("format") != _FORMAT:
            raise DataError(
                f"not a kgrec split (format {meta.get('format')!r}, expected {_FORMAT!r})",
                path=meta_path,
            )
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        return cls(
            protocol=meta["protocol"],
            users=Vocabulary.from_json(meta["users"]),
            items=Vocabulary.from_json(meta["items"]),
            user=arrays["user"],
            item=arrays["item"],
            part=arrays["part"],
            seed=int(meta["seed"]),
            params=meta["params"],
            item_role=arrays.get("item_role"),
            user_role=arrays.get("user_role"),
            reveal=arrays.get("reveal"),
            notes=tuple(meta.get("notes", ())),
            weight=arrays.get("weight"),
        )


def split_frame(split: Split) -> pd.DataFrame:
    """The split as a DataFrame of external ids and part names (for inspection or export)."""
    return pd.DataFrame(
        {
            "user": split.users.ids[split.user],
            "item": split.items.ids[split.item],
            "part": np.asarray(PART_NAMES, dtype=object)[split.part],
        }
    )
