"""Sequential RecBole interactions (``item_id_list:token_seq``): expanded into one row per event.

A sequential ``.inter`` file holds, per row, a user's history (``item_id_list``, space-separated,
oldest first) and the next item (``item_id``); RecBole's augmented files repeat every prefix.
:func:`expand_item_lists` turns the rows into interactions: the events of the longest sequence per
user, in order, with ``timestamp`` = the event's time from ``timestamp_list`` (and ``timestamp``)
where the file has them, else its position in the sequence. A user-item pair seen again later in
the sequence keeps its first event; how many repeats there were is said in the notes. No column is
dropped silently: other columns are refused with their names.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from kgrec.data._io import RawTable
from kgrec.errors import DataError

LIST = "item_id_list"
TIMES = "timestamp_list"


def expand_item_lists(raw: RawTable) -> tuple[RawTable, list[str]]:
    """``(RawTable of user_id, item_id, timestamp rows, notes)`` (see the module docstring)."""
    cols = raw.columns
    known = {"user_id", "item_id", LIST, TIMES, "timestamp", "item_length"}
    other = [c for c in cols if c not in known]
    if other:
        raise DataError(
            f"sequential interactions ({LIST}) with other columns {other}: kgrec expands "
            f"{LIST} + item_id (+ {TIMES}/timestamp) into events and would drop them",
            path=raw.path,
            column=other[0],
        )
    raw.require(["user_id", LIST], what="sequential interactions")
    users, items, times, lines = [], [], [], []
    has_t = TIMES in cols
    best: dict[str, int] = {}  # user -> row of their longest sequence
    seqs: list[tuple[list[str], list[str] | None]] = []
    f = raw.frame
    for r in range(len(f)):
        seq = str(f[LIST].iat[r] or "").split()
        ts = str(f[TIMES].iat[r] or "").split() if has_t else None
        if "item_id" in cols and str(f["item_id"].iat[r] or "").strip():
            seq.append(str(f["item_id"].iat[r]).strip())
            if ts is not None:
                last = str(f["timestamp"].iat[r]).strip() if "timestamp" in cols else ""
                ts.append(last or (ts[-1] if ts else "0"))
        if ts is not None and len(ts) != len(seq):
            raise raw.error(r, TIMES, f"{len(ts)} times for {len(seq)} items")
        seqs.append((seq, ts))
        u = str(f["user_id"].iat[r]).strip()
        if u not in best or len(seq) > len(seqs[best[u]][0]):
            best[u] = r
    for u, r in best.items():
        seq, ts = seqs[r]
        users += [u] * len(seq)
        items += seq
        times += ts if ts is not None else [str(k) for k in range(len(seq))]
        lines += [int(raw.lines[r])] * len(seq)
    frame = pd.DataFrame({"user_id": users, "item_id": items, "timestamp": times}, dtype=object)
    dup = frame.duplicated(["user_id", "item_id"]).to_numpy()
    notes = [
        f"{raw.path}: {len(f):,} sequential rows ({LIST}) expanded into {len(frame):,} events of "
        f"{len(best):,} users, timestamps = "
        + ("the file's times" if has_t else "the position in each user's sequence")
    ]
    if dup.any():
        notes.append(
            f"{int(dup.sum()):,} repeated user-item events in the sequences: the first of each "
            "pair kept"
        )
        frame = frame[~dup].reset_index(drop=True)
        lines = list(np.asarray(lines)[~dup])
    out = RawTable(raw.path, frame, np.asarray(lines, dtype=np.int64))
    out.types = {"user_id": "token", "item_id": "token", "timestamp": "float"}
    return out, notes
