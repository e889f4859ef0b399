"""The KGAT/KGIN interaction format: one line per user, ``user item item ...``.

Used by KGAT (Wang et al., KDD 2019) and KGIN (Wang et al., WWW 2021) for their published splits
(``train.txt``, ``test.txt``, sometimes ``valid.txt``): space-separated integers, the first the
user's remapped id, the rest the items of that user in this part. A user line with no item is
allowed (the user has nothing in that part). The part each file is kept in the ``split`` column,
so ``kgrec compare ... --protocol given`` evaluates on exactly that split.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from kgrec.data._dataset import Dataset
from kgrec.data._tables import Interactions
from kgrec.data.sources._local import local_dir
from kgrec.errors import DataError

#: file stem -> part name, in the order they are read
PART_FILES = (("train", "train"), ("valid", "valid"), ("val", "valid"), ("test", "test"))


def read_kgat_lines(path: str | Path, part: str) -> pd.DataFrame:
    """``user, item, split`` rows (string ids) of one ``user item item ...`` file.

    Raises :class:`DataError` naming the file, line and column (token position) of the first
    token that is not a non-negative integer, and of a user listed on two lines."""
    path = Path(path)
    if not path.is_file():
        raise DataError("file not found", path=path)
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"not valid UTF-8 at byte {exc.start}", path=path) from None
    users: list[np.ndarray] = []
    items: list[np.ndarray] = []
    seen: dict[str, int] = {}
    for lineno, line in enumerate(text.splitlines(), start=1):
        tokens = line.split()
        if not tokens:
            continue
        for col, tok in enumerate(tokens, start=1):
            if not tok.isdigit():
                what = "user id" if col == 1 else "item id"
                raise DataError(
                    f"{what} {tok!r} is not a non-negative integer (KGAT/KGIN format: "
                    "'user item item ...')",
                    path=path,
                    line=lineno,
                    column=f"token {col}",
                )
        u = str(int(tokens[0]))
        if u in seen:
            raise DataError(
                f"user {u} is listed again (first on line {seen[u]})",
                path=path,
                line=lineno,
                column="token 1",
            )
        seen[u] = lineno
        its = np.asarray([str(int(t)) for t in tokens[1:]], dtype=object)
        if len(its) != len(set(its.tolist())):
            dup = pd.Series(its).duplicated()
            raise DataError(
                f"item {its[dup.to_numpy()][0]} is listed twice for user {u}",
                path=path,
                line=lineno,
            )
        users.append(np.full(len(its), u, dtype=object))
        items.append(its)
    if not users:
        raise DataError("no user line in file", path=path)
    user = np.concatenate(users)
    item = np.concatenate(items)
    return pd.DataFrame({"user": user, "item": item, "split": np.full(len(user), part)})


def kgat_files(root: Path) -> dict[str, Path]:
    """part -> file for the ``train.txt`` / ``valid.txt`` (or ``val.txt``) / ``test.txt`` in
    ``root`` (an empty dict when there is no ``train.txt``)."""
    out: dict[str, Path] = {}
    for stem, part in PART_FILES:
        p = root / f"{stem}.txt"
        if p.is_file() and part not in out:
            out[part] = p
    return out if "train" in out else {}


def interactions_from_parts(files: dict[str, Path]) -> Interactions:
    """Stack the parts (a pair in two parts is an error naming both files)."""
    frames = [read_kgat_lines(p, part) for part, p in files.items()]
    frame = pd.concat(frames, ignore_index=True)
    dup = frame.duplicated(["user", "item"], keep=False)
    if dup.any():
        rows = frame[dup]
        r = rows.iloc[0]
        parts = sorted(
            set(rows[(rows["user"] == r["user"]) & (rows["item"] == r["item"])]["split"])
        )
        raise DataError(
            f"user {r['user']} item {r['item']} is in more than one part ({parts}); "
            f"{int(dup.sum()) // 2} such pair(s) in all",
            path=", ".join(str(p) for p in files.values()),
        )
    return Interactions(frame, source=", ".join(str(p) for p in files.values()))


def load(path: str | Path | None) -> Dataset:
    """Read ``train.txt``, ``test.txt`` (and ``valid.txt`` when present) from ``path``."""
    root = local_dir(path, dataset="the KGAT/KGIN format", holding="train.txt and test.txt")
    files = kgat_files(root)
    if not files:
        raise DataError("no train.txt (KGAT/KGIN format: 'user item item ...' lines)", path=root)
    if "test" not in files:
        raise DataError("no test.txt next to train.txt", path=root)
    inter = interactions_from_parts(files)
    ds = Dataset(name=root.name or "kgat", interactions=inter, root=root)
    ds.notes.append(
        f"KGAT/KGIN split files {sorted(files)}: the given split is kept in the 'split' column"
    )
    return ds
