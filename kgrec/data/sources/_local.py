"""The directory a local dataset (one kgrec cannot fetch) is read from."""

from __future__ import annotations

from pathlib import Path

from kgrec.errors import DataError


def local_dir(path: str | Path | None, *, dataset: str, holding: str) -> Path:
    """``path`` as a directory; an error naming the dataset and the files it should hold when
    no path was given, or naming the path when it is not a directory."""
    if path is None:
        raise DataError(
            f"{dataset} is read from a local directory: pass its path (the folder with {holding})"
        )
    root = Path(path)
    if not root.is_dir():
        raise DataError("not a directory", path=root)
    return root
