"""Amazon 2014 Musical Instruments 5-core with full review text (read from a directory).

``train.csv``/``val.csv``/``test.csv`` hold ``user_ids, item_ids, ratings``; the review text of
each rating comes from ``item_reviews/<item>.json`` (``[{"review": ..., "id": user}]``). The given
split is kept in the ``split`` column, so that review text of validation/test rows can be kept out
of anything trained.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from kgrec.data._dataset import Dataset
from kgrec.data._io import read_delimited
from kgrec.data._tables import Interactions
from kgrec.data.sources._local import local_dir
from kgrec.errors import DataError

SPLITS = ("train", "val", "test")


def _read_reviews(root: Path) -> dict[tuple[str, str], str]:
    """(user, item) -> review text, from every ``item_reviews/<item>.json``."""
    out: dict[tuple[str, str], str] = {}
    folder = root / "item_reviews"
    for f in sorted(folder.glob("*.json")):
        try:
            records = json.loads(f.read_bytes().decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise DataError(f"not valid UTF-8 at byte {exc.start}", path=f) from None
        except json.JSONDecodeError as exc:
            raise DataError(
                f"invalid JSON at character {exc.colno}: {exc.msg}", path=f, line=exc.lineno
            ) from None
        if not isinstance(records, list):
            raise DataError("expected a JSON list of {review, id} objects", path=f, line=1)
        for k, rec in enumerate(records):
            if not isinstance(rec, dict) or "review" not in rec or "id" not in rec:
                raise DataError(
                    f"record {k} lacks 'review' or 'id'", path=f, line=1, column="review"
                )
            out[(str(rec["id"]), f.stem)] = str(rec["review"] or "").strip()
    return out


def load(path: str | Path | None) -> Dataset:
    """Load ratings from the three split files and attach each rating's review text."""
    root = local_dir(
        path, dataset="amazon-instruments", holding="train.csv, val.csv, test.csv, item_reviews/"
    )
    parts = []
    for split in SPLITS:
        raw = read_delimited(root / f"{split}.csv")
        raw.frame["split"] = split
        parts.append(
            Interactions.from_raw(
                raw,
                user="user_ids",
                item="item_ids",
                rating="ratings",
                rating_range=(1.0, 5.0),
                extra={"split": "split"},
            )
        )
    inter = Interactions.concat(parts)
    if not (root / "item_reviews").is_dir():
        raise DataError("missing folder item_reviews/", path=root)
    reviews = _read_reviews(root)
    keys = list(zip(inter.frame["user"], inter.frame["item"], strict=True))
    missing = [k for k in keys if k not in reviews]
    if missing:
        raise DataError(
            f"{len(missing)} rating(s) have no review in item_reviews/, e.g. "
            f"user {missing[0][0]!r} item {missing[0][1]!r}",
            path=root / "item_reviews",
        )
    frame = inter.frame.copy()
    frame["review"] = pd.Series([reviews[k] for k in keys], dtype=object)
    inter = Interactions(frame, source=inter.source, rating_range=inter.rating_range)
    return Dataset(name="amazon-instruments", interactions=inter, root=root)
