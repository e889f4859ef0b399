"""Reusable contract tests for retrieval indexes.

Mix :class:`IndexContract` into a test class, set ``config`` (an :class:`IndexConfig`),
``index_type`` and, for lossy indexes, ``min_recall``; every behaviour the rest of kgrec relies
on (recall against exact search, persistence, live add/remove, fingerprints, input errors) is
then checked for that index, on a generated clustered set (override the ``data`` fixture to use
another).
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest

from kgrec.errors import DataError, UnknownIdError
from kgrec.index import (
    FingerprintMismatchError,
    IndexConfig,
    IndexUsageError,
    VectorIndex,
    recall_at_k,
)

FINGERPRINT = "model-a@1"


def clustered_vectors(n: int, dim: int, *, n_queries: int = 200, seed: int = 0):
    """Normalised Gaussian-mixture vectors (n / 50 components) and fresh queries from it."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((max(1, n // 50), dim)).astype(np.float32)

    def draw(m: int) -> np.ndarray:
        x = centres[rng.integers(0, len(centres), m)] + 0.4 * rng.standard_normal((m, dim))
        x = x.astype(np.float32)
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    return draw(n), draw(n_queries)


class IndexContract:
    """Behaviour every :class:`VectorIndex` configuration must show."""

    config: ClassVar[IndexConfig]
    index_type: ClassVar[str]
    min_recall: ClassVar[float] = 0.95

    # fixtures --------------------------------------------------------------------------------
    @pytest.fixture(scope="class")
    @classmethod
    def data(cls):
        """(vectors, queries, ids) of a 3000 x 16 clustered set."""
        x, q = clustered_vectors(3000, 16)
        return x, q, [f"item-{i}" for i in range(len(x))]

    @pytest.fixture(scope="class")
    @classmethod
    def built(cls, data) -> VectorIndex:
        x, _, ids = data
        return VectorIndex(cls.config).build(x, ids, fingerprint=FINGERPRINT)

    @pytest.fixture(scope="class")
    @classmethod
    def truth(cls, data) -> np.ndarray:
        x, q, ids = data
        exact = VectorIndex(IndexConfig(factory="Flat", device="cpu")).build(x, ids)
        return exact.search(q, 10).ids

    @pytest.fixture(scope="class")
    @classmethod
    def saved(cls, built, tmp_path_factory) -> Path:
        return built.save(tmp_path_factory.mktemp("index") / "idx")

    @pytest.fixture
    def fresh(self, saved) -> VectorIndex:
        """A private copy to mutate (loading is cheap)."""
        return VectorIndex.load(saved)

    def test_backend_implements_the_protocol(self, built, fresh) -> None:
        from kgrec.index import IndexBackend

        for index in (built, fresh):
            assert isinstance(index._backend, IndexBackend), type(index._backend)

    # recall ----------------------------------------------------------------------------------
    def test_recall_against_exact(self, built, data, truth):
        _, q, _ = data
        recall = recall_at_k(built.search(q, 10).ids, truth)
        assert recall >= self.min_recall, f"recall@10 {recall:.3f} < {self.min_recall}"

    def test_self_check_measures_recall(self, built):
        report = built.self_check(10)
        assert report.n_queries > 0
        assert report.index_type == self.index_type
        assert self.min_recall <= report.recall <= 1.0

    def test_info(self, built, data):
        x, _, _ = data
        info = built.info()
        assert (info.type, info.size, info.dim) == (self.index_type, len(x), x.shape[1])
        assert info.metric == self.config.metric
        assert info.fingerprint == FINGERPRINT
        assert info.device == "cpu"

    def test_results_are_sorted_ids_with_scores(self, built, data):
        _, q, ids = data
        res = built.search(q[:5], 7)
        assert res.ids.shape == res.scores.shape == (5, 7)
        assert set(res.ids.ravel()) <= set(ids)
        assert np.all(np.diff(res.scores, axis=1) <= 1e-5)

    # persistence -----------------------------------------------------------------------------
    def test_save_load_round_trip_is_identical(self, built, saved, data):
        _, q, _ = data
        loaded = VectorIndex.load(saved, expected_fingerprint=FINGERPRINT)
        a, b = built.search(q, 10), loaded.search(q, 10)
        assert np.array_equal(a.ids, b.ids)
        np.testing.assert_allclose(a.scores, b.scores, rtol=1e-6, atol=1e-6)
        assert loaded.info() == built.info()
        assert loaded.self_check().recall == pytest.approx(built.self_check().recall)
        assert loaded.vocabulary == built.vocabulary

    def test_fingerprint_mismatch_is_refused(self, saved):
        with pytest.raises(FingerprintMismatchError, match="model-b"):
            VectorIndex.load(saved, expected_fingerprint="model-b")

    # live add / remove -----------------------------------------------------------------------
    def test_added_item_is_retrievable_at_once(self, fresh, data):
        x, _, _ = data
        rng = np.random.default_rng(7)
        new = rng.standard_normal((2, x.shape[1])).astype(np.float32)
        n0 = len(fresh)
        fresh.add(new, ["new-a", "new-b"])
        assert len(fresh) == n0 + 2 and "new-a" in fresh
        res = fresh.search(new, 1)
        assert res.ids[:, 0].tolist() == ["new-a", "new-b"]
        assert fresh.self_check().n_queries > 0

    def test_removed_item_is_not_returned(self, fresh, data):
        x, _, ids = data
        victim = 11
        assert ids[victim] in fresh.search(x[victim], 10).ids[0]
        fresh.remove([ids[victim]])
        assert ids[victim] not in fresh
        assert len(fresh) == len(ids) - 1
        assert ids[victim] not in fresh.search(x[victim], 50).ids[0]
        # the other ids still name their own vectors
        for i in (0, 12, len(ids) - 1):
            assert ids[i] in fresh.search(x[i], 10).ids[0]

    def test_remove_add_then_save_load(self, fresh, data, tmp_path):
        x, q, ids = data
        fresh.remove(ids[:20])
        fresh.add(x[:3] * 2.0 + 0.1, ["re-0", "re-1", "re-2"])
        path = fresh.save(tmp_path / "mutated")
        loaded = VectorIndex.load(path)
        assert len(loaded) == len(ids) - 20 + 3
        a, b = fresh.search(q, 10), loaded.search(q, 10)
        assert np.array_equal(a.ids, b.ids)
        assert not set(ids[:20]) & set(b.ids.ravel())
        assert loaded.self_check().recall >= self.min_recall - 0.05

    def test_unknown_id_on_remove(self, fresh):
        n0 = len(fresh)
        with pytest.raises(UnknownIdError, match="no-such-item"):
            fresh.remove(["item-0", "no-such-item"])
        assert len(fresh) == n0 and "item-0" in fresh  # nothing removed

    def test_duplicate_id_on_add(self, fresh, data):
        x, _, ids = data
        with pytest.raises(DataError, match="already in the index"):
            fresh.add(x[:1], [ids[0]])

    # bad inputs ------------------------------------------------------------------------------
    def test_wrong_dimension(self, built, data):
        _, q, _ = data
        with pytest.raises(DataError, match=f"dimension {q.shape[1] + 1}"):
            built.search(np.ones((2, q.shape[1] + 1), np.float32), 5)

    def test_nan_queries_and_vectors(self, built, fresh, data):
        _, q, _ = data
        bad = q[:3].copy()
        bad[2, 0] = np.nan
        with pytest.raises(DataError, match=r"row 2: queries contain NaN"):
            built.search(bad, 5)
        with pytest.raises(DataError, match="NaN"):
            fresh.add(bad, ["a", "b", "c"])
        assert "a" not in fresh

    @pytest.mark.parametrize("k", [0, -3, 2.5, True])
    def test_bad_k(self, built, data, k):
        _, q, _ = data
        with pytest.raises(IndexUsageError, match="k must be a positive integer"):
            built.search(q[:1], k)

    def test_exclude_masks_known_items(self, built, data):
        _, q, _ = data
        top = built.search(q[:2], 5)
        known = [[top.ids[0, 0], top.ids[0, 1]], []]
        res = built.search(q[:2], 5, exclude=known)
        assert not set(known[0]) & set(res.ids[0])
        assert res.ids[0, :3].tolist() == top.ids[0, 2:5].tolist()
        assert res.ids[1].tolist() == top.ids[1].tolist()
