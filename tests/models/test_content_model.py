"""The training-free content model on arrays (kgrec.models.ContentModel); its assembly from a
spec and its serving are tested in tests/serve/test_content.py."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from kgrec.errors import DataError
from kgrec.models import ContentConfig, ContentModel


def _inputs(n_items: int = 30, n_ent: int = 12, n_users: int = 8, seed: int = 0):
    rng = np.random.default_rng(seed)
    text = rng.standard_normal((n_items, 6)).astype(np.float32)
    bags = rng.random((n_items, n_ent)) < 0.25
    bags[np.arange(n_items), np.arange(n_items) % n_ent] = True  # every item has a link
    links = sp.csr_matrix(bags.astype(np.float32))
    ents = np.array([f"genre:g{j}" for j in range(n_ent)], object)
    hist = sp.csr_matrix((rng.random((n_users, n_items)) < 0.2).astype(np.float32))
    return text, links, ents, hist


def test_new_items_fold_in_like_known_items_and_users_are_mean_items():
    text, links, ents, hist = _inputs()
    m = ContentModel(ContentConfig(kg_dim=4)).fit(3 * text, links, ents, hist)
    v = m.item_vectors()
    assert v.shape == (30, 6 + 4) and v.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)  # both parts unit
    np.testing.assert_allclose(m.embed(text[:5], links[:5]), v[:5], atol=1e-6)  # scale-free text
    u = np.asarray(hist @ v)
    u /= np.maximum(np.linalg.norm(u, axis=1, keepdims=True), 1e-12)
    np.testing.assert_allclose(m.user_vectors(), u, atol=1e-6)
    t = m.text_vector(text[0])
    assert np.all(t[6:] == 0) and np.allclose(t[:6], v[0, :6])  # free text: the text part
    assert m.entity_col_["genre:g3"] == 3


def test_kg_weight_splits_the_cosine_and_bad_inputs_are_refused():
    text, links, ents, hist = _inputs()
    m = ContentModel(ContentConfig(kg_weight=0.0, kg_dim=4)).fit(text, links, ents, hist)
    assert np.all(m.item_vectors()[:, 6:] == 0)  # w = 0: text only
    with pytest.raises(DataError, match="disagree"):
        ContentModel().fit(text[:-1], links, ents, hist)
    with pytest.raises(DataError, match="entities"):
        ContentModel().fit(text, links, ents[:-1], hist)
