"""Each CF baseline passes the shared recommender contract, plus model-specific checks."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from kgrec.errors import SpecError
from kgrec.models import (
    EASE,
    MFBPR,
    EASEConfig,
    ItemKNN,
    ItemKNNConfig,
    LightGCN,
    Popularity,
)
from kgrec.models.cf import normalized_adjacency
from kgrec.testing import RecommenderContract
from kgrec.train import TrainingOptions

FAST = TrainingOptions(epochs=25, batch_size=128, lr=0.02, patience=0, seed=7)


class TestPopularity(RecommenderContract):
    min_lift = 1.0  # non-personalised: only needs to be no worse than chance here
    personalised = False

    def make(self):
        return Popularity()


class TestItemKNN(RecommenderContract):
    def make(self):
        return ItemKNN(k=10)


class TestEASE(RecommenderContract):
    def make(self):
        return EASE(reg=10.0)


class TestMF(RecommenderContract):
    def make(self):
        return MFBPR(options=FAST, dim=16)


class TestLightGCN(RecommenderContract):
    def make(self):
        return LightGCN(options=FAST, dim=16, layers=2)


def _dense_itemknn(x: np.ndarray, k: int, shrink: float) -> np.ndarray:
    """RecBole's ComputeSimilarity, written out densely: column i keeps its top-k rows."""
    x = x.astype(np.float64)
    g = x.T @ x
    norms = np.sqrt((x * x).sum(0))
    sim = g / (norms[:, None] * norms[None, :] + shrink + 1e-6)
    np.fill_diagonal(sim, 0.0)
    w = np.zeros_like(sim)
    for i in range(sim.shape[1]):
        top = np.argsort(-sim[:, i], kind="stable")[:k]
        w[top, i] = sim[top, i]
    return w


def test_itemknn_matches_dense_reference():
    rng = np.random.default_rng(1)
    x = (rng.random((30, 25)) < 0.3).astype(np.float32)
    model = ItemKNN(k=25, shrink=2.0).fit(sp.csr_matrix(x))
    ref = _dense_itemknn(x, 25, 2.0)
    np.testing.assert_allclose(model.w_.toarray(), ref, atol=1e-6)
    np.testing.assert_allclose(model.score(np.arange(30)).numpy(), x @ ref, atol=1e-4)


def test_itemknn_keeps_k_neighbours_per_item():
    rng = np.random.default_rng(2)
    x = sp.csr_matrix((rng.random((50, 30)) < 0.4).astype(np.float32))
    model = ItemKNN(k=5).fit(x)
    per_item = model.w_.getnnz(axis=0)
    assert per_item.max() <= 5
    assert model.w_.diagonal().sum() == 0


def test_ease_closed_form():
    rng = np.random.default_rng(3)
    x = (rng.random((40, 12)) < 0.3).astype(np.float64)
    lam = 5.0
    model = EASE(reg=lam).fit(sp.csr_matrix(x))
    # stationarity of the constrained least squares: (X^T X + lam I) B = I - P diag(gamma)
    b = model.b_.astype(np.float64)
    assert np.allclose(np.diag(b), 0)
    resid = (x.T @ x + lam * np.eye(12)) @ b - x.T @ x
    off = resid - np.diag(np.diag(resid))
    assert np.abs(off).max() < 1e-3


def test_pop_scores_are_training_counts():
    x = sp.csr_matrix(np.array([[1, 1, 0], [0, 1, 0], [0, 1, 1]], dtype=np.float32))
    s = Popularity().fit(x).score(np.array([0, 2]))
    assert s.tolist() == [[1.0, 3.0, 1.0], [1.0, 3.0, 1.0]]


def test_normalized_adjacency_is_symmetric_normalized():
    x = sp.csr_matrix(np.array([[1, 1, 0], [0, 1, 0]], dtype=np.float32))
    a = normalized_adjacency(x).toarray()
    assert a.shape == (5, 5)
    assert np.allclose(a, a.T)
    # user 0 (deg 2) - item 1 (deg 2): 1 / sqrt(2 * 2)
    assert a[0, 2 + 1] == pytest.approx(0.5)
    assert a[1, 2 + 1] == pytest.approx(1 / np.sqrt(1 * 2))
    assert a[0, 1] == 0  # no user-user edges


def test_lightgcn_layer_matches_manual_propagation():
    """The LGConv layers on the CSR adjacency equal mean_l(A_hat^l E)."""
    d = (np.random.default_rng(4).random((8, 6)) < 0.4).astype(np.float32)
    d[0, 0] = 1
    x = sp.csr_matrix(d)
    model = LightGCN(options=FAST.replace(epochs=1), dim=4, layers=2).fit(x)
    e = model.module_.embedding.weight.detach().numpy().astype(np.float64)
    a = normalized_adjacency(x).toarray().astype(np.float64)
    ref = (e + a @ e + a @ a @ e) / 3
    np.testing.assert_allclose(model.user_vecs_, ref[:8], atol=1e-5)
    np.testing.assert_allclose(model.item_vecs_, ref[8:], atol=1e-5)


def test_lightgcn_adjacency_is_a_buffer_outside_the_state_dict():
    """The adjacency is a non-persistent buffer given at construction; ``forward`` takes
    another one in its place (an empty graph: every node keeps ``x0 / (L + 1)``)."""
    from kgrec.models._base import csr_to_torch
    from kgrec.models.cf.lightgcn import LightGCNModule

    x = sp.csr_matrix(np.eye(3, 4, dtype=np.float32))
    adj = csr_to_torch(normalized_adjacency(x))
    mod = LightGCNModule(3, 4, 5, 2, 0.0, adj=adj)
    assert [n for n, _ in mod.named_buffers()] == ["adj"]
    assert list(mod.state_dict()) == ["embedding.weight"]
    empty = csr_to_torch(sp.csr_matrix((7, 7), dtype=np.float32))
    with torch.no_grad():
        assert torch.allclose(mod(empty), mod.embedding.weight / 3)
        assert not torch.allclose(mod(), mod(empty))
    with pytest.raises(RuntimeError, match="adjacency"):
        LightGCNModule(3, 4, 5, 2, 0.0)()


def test_embedding_models_fold_in_unknown_users():
    x = sp.csr_matrix(np.array([[1, 1, 0, 0], [0, 1, 1, 0], [0, 0, 0, 0]], dtype=np.float32))
    model = MFBPR(options=FAST.replace(epochs=2), dim=4).fit(x)
    hist = sp.csr_matrix(np.array([[0, 1, 1, 0]], dtype=np.float32))
    s = model.score(np.array([2]), hist)
    expected = (model.item_vecs_[[1, 2]].mean(0)) @ model.item_vecs_.T
    np.testing.assert_allclose(s.numpy()[0], expected, atol=1e-5)


def test_mf_early_stopping_keeps_best_epoch():
    from kgrec.testing import synthetic_matrix

    x = synthetic_matrix(40, 30, seed=5)
    calls = []

    def validate(model):
        calls.append(1)
        return [0.1, 0.5, 0.2, 0.3, 0.1, 0.0][min(len(calls) - 1, 5)]

    opts = FAST.replace(epochs=20, patience=3)
    model = MFBPR(options=opts, dim=8).fit(x, validate=validate)
    assert model.result_.best_epoch == 1
    assert model.result_.epochs_run == 5  # epochs 0..4, three rounds without improvement
    assert model.result_.stopped_early


def test_config_validation_names_key():
    with pytest.raises(SpecError, match="'k'"):
        ItemKNNConfig(k=0)
    with pytest.raises(SpecError, match="reg"):
        EASEConfig(reg=-1)
    with pytest.raises(SpecError, match="unknown option"):
        ItemKNNConfig.from_dict({"k": 3, "neighbours": 2})
    assert ItemKNNConfig.from_dict(ItemKNNConfig(k=7).to_dict()) == ItemKNNConfig(k=7)


def test_score_rejects_bad_users():
    from kgrec.errors import KgrecError

    x = sp.csr_matrix(np.eye(3, dtype=np.float32))
    model = Popularity().fit(x)
    with pytest.raises(KgrecError, match="outside"):
        model.score(np.array([3]))
    assert torch.isfinite(model.score(np.array([0, 1, 2]))).all()


def test_mf_checkpoint_and_resume(tmp_path):
    from kgrec.testing import synthetic_matrix
    from kgrec.train import CHECKPOINT_NAME

    x = synthetic_matrix(40, 30, seed=6)
    ck = str(tmp_path / "ck")
    full = MFBPR(options=FAST.replace(epochs=6), dim=8).fit(x)
    MFBPR(options=FAST.replace(epochs=3, checkpoint_dir=ck), dim=8).fit(x)
    assert (tmp_path / "ck" / CHECKPOINT_NAME).is_file()
    resumed = MFBPR(options=FAST.replace(epochs=6, checkpoint_dir=ck, resume=True), dim=8).fit(x)
    assert resumed.result_.resumed_from == 3
    np.testing.assert_allclose(resumed.item_vecs_, full.item_vecs_, atol=1e-5)
