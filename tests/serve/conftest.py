"""Shared fixtures: the content model on ml-100k built once per session with a fast hashing text
encoder (so a cold embedding cache costs nothing), and a fresh retriever per test."""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
SPEC = REPO / "graphs" / "movielens-100k.toml"


class HashEncoder:
    """Deterministic bag-of-words text encoder (hashed word counts, L2-normalised): texts sharing
    words get similar vectors, as with a real encoder, at no cost."""

    model_id = "test-hash-encoder"

    def __init__(self, dim: int = 96) -> None:
        self.dim = dim
        self.calls = 0

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        self.calls += 1
        out = np.zeros((len(texts), self.dim), np.float32)
        for r, t in enumerate(texts):
            for w in re.findall(r"[a-z0-9]+", t.lower()):
                h = int.from_bytes(hashlib.blake2b(w.encode(), digest_size=4).digest(), "little")
                out[r, h % self.dim] += 1.0
        n = np.linalg.norm(out, axis=1, keepdims=True)
        return np.divide(out, n, out=np.zeros_like(out), where=n > 0)


@pytest.fixture(scope="session")
def spec(ml100k_dir):
    from kgrec.graph import load_spec

    return load_spec(SPEC)


@functools.cache
def build_content_model():
    """The ml-100k content model with the hashing encoder, built once per session (shared by
    tests/serve and tests/cli)."""
    from kgrec.graph import load_spec
    from kgrec.serve import ContentAdapter

    return ContentAdapter.from_spec(load_spec(SPEC), encoder=HashEncoder())


@pytest.fixture(scope="session")
def content_model(spec):
    return build_content_model()


@pytest.fixture
def retriever(content_model):
    from kgrec.index import IndexConfig
    from kgrec.serve import Retriever

    return Retriever(content_model, config=IndexConfig(metric="cosine", device="cpu")).build()
