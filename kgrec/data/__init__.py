"""Typed, validated data: vocabularies, tables, readers, the dataset registry, positives and splits.

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
    from kgrec.data._positives import PART_NAMES, TEST, TRAIN, VALID, Positives, positives
    from kgrec.data._split import COLD_TEST, COLD_VALID, PROTOCOLS, WARM, Split, split_frame
    from kgrec.data._splits import (
        cold_item_split,
        cold_user_split,
        make_split,
        random_split,
        recbole_split_counts,
        temporal_split,
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
    "PART_NAMES": "_positives",
    "TEST": "_positives",
    "TRAIN": "_positives",
    "VALID": "_positives",
    "Positives": "_positives",
    "positives": "_positives",
    "COLD_TEST": "_split",
    "COLD_VALID": "_split",
    "PROTOCOLS": "_split",
    "WARM": "_split",
    "Split": "_split",
    "split_frame": "_split",
    "cold_item_split": "_splits",
    "cold_user_split": "_splits",
    "make_split": "_splits",
    "random_split": "_splits",
    "recbole_split_counts": "_splits",
    "temporal_split": "_splits",
    "DATASETS": "sources",
    "DatasetSource": "sources",
    "get_source": "sources",
    "load_atomic_dir": "sources",
    "load_dataset": "sources",
}

__all__ = [
    "COLD_TEST",
    "COLD_VALID",
    "DATASETS",
    "PART_NAMES",
    "PROTOCOLS",
    "TEST",
    "TRAIN",
    "VALID",
    "WARM",
    "AttributeTable",
    "Dataset",
    "DatasetSource",
    "DatasetSummary",
    "Interactions",
    "Links",
    "Positives",
    "RawTable",
    "Split",
    "Triples",
    "Vocabulary",
    "cold_item_split",
    "cold_user_split",
    "get_source",
    "kgrec_home",
    "load_atomic_dir",
    "load_dataset",
    "make_split",
    "positives",
    "random_split",
    "read_atomic",
    "read_delimited",
    "read_jsonl",
    "read_parquet",
    "read_table",
    "recbole_split_counts",
    "split_frame",
    "temporal_split",
]


__getattr__, __dir__ = lazy_exports(__name__, _WHERE, globals())
