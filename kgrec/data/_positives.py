"""Positive interactions over vocabulary indices: what every split protocol cuts.

:func:`positives` keeps a dataset's rows with ``rating >= min_rating`` and maps them onto user and
item vocabularies; a ``split`` column that comes with the data becomes ``Positives.part``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from kgrec.data._dataset import Dataset
from kgrec.data._vocab import Vocabulary
from kgrec.errors import DataError

#: split part codes
TRAIN, VALID, TEST = 0, 1, 2
PART_NAMES = ("train", "valid", "test")
#: accepted values of a ``split`` column -> part code
PART_VALUES = {
    "train": TRAIN,
    "training": TRAIN,
    "valid": VALID,
    "val": VALID,
    "validation": VALID,
    "dev": VALID,
    "test": TEST,
    "testing": TEST,
}


@dataclass(frozen=True, eq=False)
class Positives:
    """Positive user-item pairs over vocabulary indices, in source row order.

    ``timestamp`` is ``None`` when the source has none. Build it with :func:`positives`.
    """

    users: Vocabulary
    items: Vocabulary
    user: np.ndarray
    item: np.ndarray
    timestamp: np.ndarray | None = None
    notes: tuple[str, ...] = ()
    #: given split part per row (0 train, 1 valid, 2 test) when the data carry a split column
    part: np.ndarray | None = None
    #: interaction weight per row (play counts, or ``duplicates = "count"``) when the data carry
    #: one; models use it only when their config asks (``weights = "count" | "log"``)
    weight: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.user)


def _parts_of(values: np.ndarray, source: str | None) -> np.ndarray:
    """Part codes of a ``split`` column; an unknown value is an error naming it and its row."""
    low = pd.Series(values).astype(str).str.strip().str.lower()
    codes = low.map(PART_VALUES)
    bad = codes.isna().to_numpy()
    if bad.any():
        r = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"split value {values[r]!r} is not one of {sorted(PART_VALUES)} "
            f"({int(bad.sum())} such row(s))",
            path=source,
            line=r + 1,
            column="split",
            unit="row",
        )
    return codes.to_numpy(np.int8)


def positives(
    dataset: Dataset,
    *,
    min_rating: float | None = None,
    items: Vocabulary | None = None,
    users: Vocabulary | None = None,
) -> Positives:
    """The dataset's positive interactions (``rating >= min_rating``; all rows when ``None``).

    Rows below ``min_rating`` are dropped entirely, as RecBole's ``val_interval`` does, before any
    split. Vocabularies default to users and items in order of first appearance among the
    positives; pass the graph's vocabularies to split over those instead (items without a positive
    then stay candidates in full ranking).
    """
    frame = dataset.interactions.frame
    notes: list[str] = []
    if min_rating is not None:
        if "rating" not in frame.columns:
            raise DataError(
                f"min_rating={min_rating:g} was given but dataset {dataset.name!r} has no rating "
                "column; leave min_rating unset to treat every interaction as positive"
            )
        keep = frame["rating"].to_numpy() >= min_rating
        notes.append(
            f"kept {int(keep.sum()):,} of {len(frame):,} interactions with rating >= "
            f"{min_rating:g}; the other rows are dropped before splitting"
        )
        frame = frame.loc[keep]
    if len(frame) == 0:
        raise DataError(f"dataset {dataset.name!r} has no positive interaction to split")
    uvocab = users or Vocabulary.from_unique(frame["user"], node_type="user")
    ivocab = items or Vocabulary.from_unique(frame["item"], node_type="item")
    ts = frame["timestamp"].to_numpy(np.float64) if "timestamp" in frame.columns else None
    part = None
    if "split" in frame.columns:
        part = _parts_of(frame["split"].to_numpy(), dataset.interactions.source)
    return Positives(
        users=uvocab,
        items=ivocab,
        user=uvocab.indices(frame["user"].to_numpy()),
        item=ivocab.indices(frame["item"].to_numpy()),
        timestamp=ts,
        notes=tuple(notes),
        part=part,
        weight=frame["weight"].to_numpy(np.float32) if "weight" in frame.columns else None,
    )
