"""Typed, validated data: vocabularies, tables, readers and the dataset registry.

Names load lazily (PEP 562): ``from kgrec.data import Vocabulary`` does not import pandas, so a
saved index or model loads without the dataframe stack.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kgrec._lazy import lazy_exports

if TYPE_CHECKING:
    from kgrec.data._dataset import Dataset, DatasetSummary, kgrec_home
    from kgrec.data._io import (
        RawTable,
        read_atomic,
        read_delimited,
        read_jsonl,
        read_parquet,
        read_table,
    )
    from kgrec.data._tables import AttributeTable, Interactions, Links, Triples
    from kgrec.data._vocab import Vocabulary
    from kgrec.data.sources import (
        DATASETS,
        DatasetSource,
        get_source,
        load_atomic_dir,
        load_dataset,
    )

_WHERE = {
    "Dataset": "_dataset",
    "DatasetSummary": "_dataset",
    "kgrec_home": "_dataset",
    "RawTable": "_io",
    "read_atomic": "_io",
    "read_delimited": "_io",
    "read_jsonl": "_io",
    "read_parquet": "_io",
    "read_table": "_io",
    "AttributeTable": "_tables",
    "Interactions": "_tables",
    "Links": "_tables",
    "Triples": "_tables",
    "Vocabulary": "_vocab",
    "DATASETS": "sources",
    "DatasetSource": "sources",
    "get_source": "sources",
    "load_atomic_dir": "sources",
    "load_dataset": "sources",
}

__all__ = [
    "DATASETS",
    "AttributeTable",
    "Dataset",
    "DatasetSource",
    "DatasetSummary",
    "Interactions",
    "Links",
    "RawTable",
    "Triples",
    "Vocabulary",
    "get_source",
    "kgrec_home",
    "load_atomic_dir",
    "load_dataset",
    "read_atomic",
    "read_delimited",
    "read_jsonl",
    "read_parquet",
    "read_table",
]


__getattr__, __dir__ = lazy_exports(__name__, _WHERE, globals())
