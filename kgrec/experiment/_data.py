"""The data section of a comparison report: what was dropped or filtered before the split, and
how many, with the counts named as ``kgrec graph stats`` names them so the two reconcile.

The chain, from the dataset's files to the ranked candidates::

    interactions (graph stats: interactions)
      - rows below the rating threshold                      -> dropped
      = positives (graph stats: positive_interactions, the user|interacts|item edges)
        of which repeated (user, item) pairs                 -> counted, kept as rows
    catalog items (graph stats: nodes.item)
      - items without a positive                             -> in no candidate set
      = ranked items (every task ranks over these)
    catalog users (graph stats: nodes.user)
      - users without a positive                             -> in no task
      = users in the split
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from kgrec.data import Dataset, Positives


def data_summary(
    dataset: Dataset, pos: Positives, *, min_rating: float | None = None
) -> dict[str, Any]:
    """Counts from the dataset to the ranked items and split users (see the module docstring),
    plus ``notes`` in words and ``graph_stats``: the same counts under ``kgrec graph stats``'
    names (``nodes.item``, ``nodes.user``, ``interactions``, ``positive_interactions``)."""
    frame = dataset.interactions.frame
    rows = len(frame)
    if min_rating is not None and "rating" in frame.columns:
        keep = frame["rating"].to_numpy() >= min_rating
    else:
        keep = np.ones(rows, dtype=bool)
    kept = frame.loc[keep, ["user", "item"]]
    repeats = int(kept.duplicated().sum())
    catalog_items = len(dataset.item_ids())
    catalog_users = len(dataset.user_ids())
    ranked = len(pos.items)
    with_pos = int(np.unique(pos.item).size)
    users_split = len(pos.users)
    users_with_pos = int(np.unique(pos.user).size)
    below = int(rows - keep.sum())
    out: dict[str, Any] = {
        "interactions": rows,
        "min_rating": min_rating,
        "below_min_rating": below,
        "positives": len(pos),
        "repeated_pairs": repeats,
        "catalog_items": catalog_items,
        "items_with_positive": with_pos,
        "ranked_items": ranked,
        "catalog_items_not_ranked": catalog_items - ranked,
        "ranked_items_without_positive": ranked - with_pos,
        "catalog_users": catalog_users,
        "users_with_positive": users_with_pos,
        "users_in_split": users_split,
        "catalog_users_not_in_split": catalog_users - users_split,
        "graph_stats": {
            "interactions": rows,
            "positive_interactions": int(keep.sum()),
            "nodes.item": catalog_items,
            "nodes.user": catalog_users,
        },
    }
    out["notes"] = _notes(out)
    return out


def _notes(d: dict[str, Any]) -> list[str]:
    notes = []
    if d["min_rating"] is not None:
        notes.append(
            f"{d['below_min_rating']:,} of {d['interactions']:,} interactions have rating < "
            f"{d['min_rating']:g} and are dropped before splitting; {d['positives']:,} positives "
            "remain"
        )
    else:
        notes.append(f"all {d['interactions']:,} interactions are positives (no rating threshold)")
    notes.append(
        f"{d['repeated_pairs']:,} positives repeat a (user, item) pair already seen; they are kept "
        "as rows (one pair counts once in the training matrix)"
        if d["repeated_pairs"]
        else "no (user, item) pair repeats among the positives"
    )
    notes.append(
        f"{d['catalog_items']:,} catalog items, {d['ranked_items']:,} ranked: "
        f"{d['catalog_items_not_ranked']:,} without a positive, left out of every candidate set"
    )
    if d["ranked_items_without_positive"]:
        notes.append(
            f"{d['ranked_items_without_positive']:,} ranked items have no positive (candidates that "
            "are never relevant)"
        )
    notes.append(
        f"{d['catalog_users']:,} catalog users, {d['users_in_split']:,} in the split: "
        f"{d['catalog_users_not_in_split']:,} without a positive, in no task"
    )
    return notes


def data_table(d: dict[str, Any]) -> pd.DataFrame:
    """The reconciliation as rows: count, value, the ``kgrec graph stats`` field it equals."""
    rows = [
        ("interactions in the dataset", d["interactions"], "interactions"),
        ("below the rating threshold (dropped)", d["below_min_rating"], ""),
        ("positives", d["positives"], "positive_interactions"),
        ("repeated (user, item) pairs among them", d["repeated_pairs"], ""),
        ("catalog items", d["catalog_items"], "nodes.item"),
        ("ranked items (candidates)", d["ranked_items"], ""),
        ("items without a positive (not ranked)", d["catalog_items_not_ranked"], ""),
        ("catalog users", d["catalog_users"], "nodes.user"),
        ("users in the split", d["users_in_split"], ""),
        ("users without a positive (in no task)", d["catalog_users_not_in_split"], ""),
    ]
    return pd.DataFrame(rows, columns=["count", "value", "kgrec graph stats"])
