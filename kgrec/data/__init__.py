"""Typed, validated data: vocabularies, tables, readers and the dataset registry."""

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
from kgrec.data.sources import DATASETS, DatasetSource, get_source, load_atomic_dir, load_dataset

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
