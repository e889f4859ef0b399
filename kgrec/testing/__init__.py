"""Test helpers that ship with kgrec: synthetic data and reusable contract-test mixins."""

from kgrec.testing._kgat import kgat_like_lists, write_kgat_like
from kgrec.testing._synthetic import synthetic_dataset, synthetic_matrix

__all__ = [
    "ColdStartContract",
    "IndexContract",
    "RecommenderContract",
    "TextEncoderContract",
    "clustered_vectors",
    "kgat_like_lists",
    "synthetic_dataset",
    "synthetic_matrix",
    "write_kgat_like",
]


def __getattr__(name: str):
    # the contract mixins import pytest: only when asked for
    if name == "RecommenderContract":
        from kgrec.testing._contracts import RecommenderContract

        return RecommenderContract
    if name in ("IndexContract", "clustered_vectors"):
        from kgrec.testing import _index_contract

        return getattr(_index_contract, name)
    if name == "ColdStartContract":
        from kgrec.testing._coldstart_contract import ColdStartContract

        return ColdStartContract
    if name == "TextEncoderContract":
        from kgrec.testing._encoder_contract import TextEncoderContract

        return TextEncoderContract
    raise AttributeError(f"module 'kgrec.testing' has no attribute {name!r}")
