"""Fixtures for kgrec.text: one real encoder per module (loading it costs seconds) and a fast,
deterministic fake encoder for cache and composition logic."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest

from kgrec.data import AttributeTable, Dataset, Interactions
from kgrec.text import EncoderKey


@pytest.fixture(scope="session")
def encoder():
    """The bundled all-MiniLM-L6-v2, loaded once per session (skipped with a reason where the package is absent)."""
    from kgrec.text import ModelNotFoundError, TransformerEncoder

    try:
        enc = TransformerEncoder(threads=1, progress=False)
    except ModelNotFoundError as exc:
        pytest.skip(f"default text model unavailable: {exc}")
    return enc.load()


class FakeEncoder:
    """Deterministic vectors from each text's sha256; records every text it was asked for."""

    def __init__(self, dim: int = 8, model_id: str = "fake", max_length: int = 16) -> None:
        self._dim, self._model_id, self.max_length = dim, model_id, max_length
        self.calls: list[list[str]] = []

    @property
    def model_id(self) -> str:
        return self._model_id

    @property
    def dim(self) -> int:
        return self._dim

    def cache_key(self) -> EncoderKey:
        return EncoderKey(
            self._model_id, "0" * 64, self.max_length, "mean", True, "fp32", self._dim
        )

    def encode(self, texts):
        texts = list(texts)
        self.calls.append(texts)
        out = np.empty((len(texts), self._dim), np.float32)
        for i, t in enumerate(texts):
            seed = int.from_bytes(hashlib.sha256(t.encode()).digest()[:8], "little")
            v = np.random.default_rng(seed).standard_normal(self._dim)
            out[i] = v / np.linalg.norm(v)
        return out

    @property
    def seen(self) -> list[str]:
        return [t for c in self.calls for t in c]


@pytest.fixture
def fake():
    return FakeEncoder()


def review_dataset() -> Dataset:
    """3 items with a catalog, 3 users; reviews in train/val/test rows."""
    inter = pd.DataFrame(
        {
            "user": ["u1", "u1", "u2", "u2", "u3", "u3"],
            "item": ["i1", "i2", "i1", "i3", "i2", "i3"],
            "rating": [5.0, 4.0, 3.0, 5.0, 2.0, 4.0],
            "review": [
                "great strings, bright tone",
                "the tuner holds pitch",
                "strings broke after a week",
                "TEST-ONLY secret review",
                "VAL-ONLY review text",
                "",
            ],
            "split": ["train", "train", "train", "test", "val", "train"],
        }
    )
    items = AttributeTable(
        pd.DataFrame(
            {
                "id": ["i1", "i2", "i3"],
                "title": ["Guitar Strings", "Clip Tuner", "Capo"],
                "genre": [("accessory", "strings"), ("tuner",), ()],
                "year": [2010.0, float("nan"), 1234567.5],
            }
        ),
        node_type="item",
        attributes={"title": "text", "genre": "tokens", "year": "float"},
    )
    return Dataset(name="tiny-reviews", interactions=Interactions(inter), items=items)
