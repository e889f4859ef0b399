"""Contract tests every recommender inherits (pytest mixin classes).

Usage in a test module::

    class TestPop(RecommenderContract):
        def make(self):
            return Popularity()

Each subclass gets the shared behaviour tests for free: fit returns self, score shape and dtype,
determinism under the seed, history-based scoring for users the model never saw, top-k without
seen items, save/load round trip without pickle, a clear error before fit, and that it learns
the planted structure better than chance.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from kgrec.errors import KgrecError
from kgrec.testing._synthetic import synthetic_matrix


class RecommenderContract:
    """Shared tests; subclasses implement :meth:`make` (a fresh, unfitted recommender)."""

    #: whether two fits with the same seed must give identical scores
    deterministic: bool = True
    #: the model must beat random ranking on the planted-cluster data by this factor
    min_lift: float = 1.3
    #: whether scores follow the user's history (False: non-personalised, e.g. popularity)
    personalised: bool = True

    def make(self):  # pragma: no cover - overridden
        raise NotImplementedError

    @pytest.fixture(scope="class")
    @classmethod
    def data(cls) -> sp.csr_matrix:
        return synthetic_matrix(60, 40, seed=3)

    @pytest.fixture(scope="class")
    @classmethod
    def fitted(cls, data):
        return cls().make().fit(data)

    def test_fit_returns_self(self, data):
        model = self.make()
        assert model.fit(data) is model

    def test_score_shape_and_dtype(self, fitted, data):
        users = np.array([0, 5, 7])
        s = fitted.score(users)
        assert isinstance(s, torch.Tensor)
        assert s.shape == (3, data.shape[1])
        assert s.dtype == torch.float32
        assert torch.isfinite(s).all()

    def test_deterministic(self, data, fitted):
        if not self.deterministic:
            pytest.skip("model declared non-deterministic")
        again = self.make().fit(data)
        users = np.arange(10)
        assert torch.allclose(fitted.score(users), again.score(users), atol=1e-6)

    def test_score_with_explicit_history(self, fitted, data):
        users = np.array([1, 2])
        default = fitted.score(users)
        explicit = fitted.score(users, data[users])
        assert torch.allclose(default, explicit)

    def test_scores_users_it_never_saw(self, data):
        """Users with no training row at all (every third user held out) are scored from the
        history they bring: finite scores of the right shape; for a personalised model the
        history changes them, and the history's held-back half ranks above chance."""
        cold = np.arange(0, data.shape[0], 3)
        keep = np.ones(data.shape[0], dtype=np.float32)
        keep[cold] = 0
        train = sp.csr_matrix(sp.diags(keep) @ data)
        train.eliminate_zeros()
        model = self.make().fit(train)
        rng = np.random.default_rng(1)
        shown, held = sp.lil_matrix(data[cold].shape, dtype=np.float32), []
        for r, u in enumerate(cold):
            items = rng.permutation(data[u].indices)
            half = max(1, len(items) // 2)
            shown[r, items[:half]] = 1
            held.append(set(items[half:].tolist()))
        shown = shown.tocsr()
        s = model.score(cold, shown)
        assert s.shape == (len(cold), data.shape[1]) and s.dtype == torch.float32
        assert torch.isfinite(s).all()
        if not self.personalised:
            return
        nothing = sp.csr_matrix(shown.shape, dtype=np.float32)
        assert not torch.allclose(s, model.score(cold, nothing)), "history is ignored"
        top, _ = model.recommend(cold, k=5, history=shown)
        hit = np.mean([len(h & set(top[r].tolist())) > 0 for r, h in enumerate(held) if h])
        n_cand = data.shape[1] - np.asarray(shown.sum(1)).ravel()
        sizes = np.array([len(h) for h in held])
        chance = float(np.mean(1 - np.prod([(1 - sizes / (n_cand - j)) for j in range(5)], 0)))
        assert hit >= self.min_lift * chance, (hit, chance)

    def test_recommend_excludes_seen(self, fitted, data):
        users = np.arange(8)
        items, scores = fitted.recommend(users, k=5)
        assert items.shape == (8, 5)
        for row, u in enumerate(users):
            seen = set(data[u].indices.tolist())
            assert not seen & set(items[row][items[row] >= 0].tolist())
            finite = scores[row][np.isfinite(scores[row])]
            assert np.all(np.diff(finite) <= 1e-6), "scores must be sorted descending"

    def test_save_load_roundtrip(self, fitted, tmp_path):
        from kgrec.models import Recommender

        path = fitted.save(tmp_path / "model")
        assert (path / "model.json").is_file() and (path / "arrays.npz").is_file()
        with np.load(path / "arrays.npz", allow_pickle=False) as z:
            assert all(z[k].dtype != object for k in z.files)
        loaded = Recommender.load(path)
        assert type(loaded) is type(fitted)
        assert loaded.config == fitted.config
        users = np.arange(12)
        assert torch.allclose(loaded.score(users), fitted.score(users), atol=1e-6)

    def test_unfitted_raises(self):
        with pytest.raises(KgrecError, match="not fitted"):
            self.make().score(np.array([0]))

    def test_vectors_consistent(self, fitted, data):
        u, i = fitted.user_vectors(), fitted.item_vectors()
        if u is None and i is None:
            return
        assert i.shape[0] == data.shape[1]
        if u is not None:
            assert u.shape[0] == data.shape[0]
            assert torch.allclose(fitted.score(np.arange(4)), u[:4] @ i.T, atol=1e-4)

    def test_learns_structure(self, data):
        """Held-out positives rank above chance: hit rate@5 beats random by ``min_lift``."""
        rng = np.random.default_rng(0)
        m = data.tolil(copy=True)
        held = []
        for u in range(data.shape[0]):
            items = data[u].indices
            if len(items) >= 4:
                j = int(rng.choice(items))
                m[u, j] = 0
                held.append((u, j))
        train = m.tocsr()
        train.eliminate_zeros()
        model = self.make().fit(train)
        users = np.array([u for u, _ in held])
        top, _ = model.recommend(users, k=5, history=train[users])
        hit = np.mean([j in top[r] for r, (_, j) in enumerate(held)])
        n_cand = data.shape[1] - np.asarray(train[users].sum(1)).ravel()
        chance = float(np.mean(5 / n_cand))
        assert hit >= self.min_lift * chance, (hit, chance)
