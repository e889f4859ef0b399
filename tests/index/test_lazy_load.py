"""A saved exact index loads without torch on the CPU (faiss answers small batches from the
loaded array) and still answers large batches, adds and removes exactly."""

from __future__ import annotations

import numpy as np
import pytest

from kgrec.index import IndexConfig, VectorIndex

pytest.importorskip("faiss")


def test_loaded_exact_index_is_lazy_and_exact(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 16)).astype(np.float32)
    ids = [f"i{j}" for j in range(300)]
    idx = VectorIndex(IndexConfig(metric="cosine", device="cpu")).build(x, ids, fingerprint="f")
    q = rng.normal(size=(200, 16)).astype(np.float32)
    want = idx.search(q, k=5).ids
    idx.save(tmp_path / "idx")
    loaded = VectorIndex.load(tmp_path / "idx", expected_fingerprint="f", device="cpu")
    backend = loaded._backend
    if backend.kind != "torch+faiss":
        pytest.skip(f"exact backend here is {backend.kind}")
    assert backend._x is None  # no tensor made at load
    assert (loaded.search(q[:2], k=5).ids == want[:2]).all()  # small batch: faiss on the array
    assert backend._x is None
    assert (loaded.search(q, k=5).ids == want).all()  # large batch: torch, made now
    loaded.add(x[:1] * 3, ["new"])
    assert loaded.search(x[:1], k=2).ids[0].tolist()[0] in ("i0", "new")
    loaded.save(tmp_path / "again")
    again = VectorIndex.load(tmp_path / "again", expected_fingerprint="f", device="cpu")
    assert len(again) == 301
