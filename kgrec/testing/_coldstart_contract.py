"""Contract tests for cold-start models (pytest mixin): a model that embeds NEW items from their
content (text, attributes) and NEW users from item ids and/or free text into the space of its
known items, as serving's ``ColdStartModel`` protocol asks.

Usage in a test module::

    class TestContentColdStart(ColdStartContract):
        @pytest.fixture
        def model(self, content_model):
            return content_model

        def new_items(self):
            return [NewItem(title="Galaxy Raiders", attributes={"class": ["Sci-Fi"]}), ...]

The mixin imports nothing from ``kgrec.serve`` (the rows come from the subclass): it checks
shapes, finiteness, determinism, that a batch embeds each row as it would alone, that different
content gives different vectors, and that a new user needs some history or text.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

from kgrec.errors import KgrecError


class ColdStartContract:
    """Shared tests; subclasses give a ``model`` fixture and :meth:`new_items`."""

    #: free text a new user may bring
    user_text: str = "space adventure with robots"
    #: how close a row embedded in a batch must be to the same row embedded alone
    batch_atol: float = 1e-5

    @pytest.fixture
    def model(self) -> Any:  # pragma: no cover - overridden
        raise NotImplementedError

    def new_items(self) -> Sequence[Any]:  # pragma: no cover - overridden
        """Two or more new-item rows with different content."""
        raise NotImplementedError

    def test_new_items_shape_and_finite(self, model):
        rows = list(self.new_items())
        assert len(rows) >= 2, "new_items() must give at least two rows"
        out = model.embed_items(rows)
        dim = model.item_vectors().shape[1]
        assert out.vectors.shape == (len(rows), dim)
        assert out.vectors.dtype == np.float32
        assert np.isfinite(out.vectors).all()
        assert (np.linalg.norm(out.vectors, axis=1) > 0).all()
        assert len(out.matched) == len(out.unmatched) == len(rows)

    def test_new_items_deterministic_and_batch_independent(self, model):
        rows = list(self.new_items())
        a = model.embed_items(rows).vectors
        np.testing.assert_array_equal(a, model.embed_items(rows).vectors)
        alone = np.stack([model.embed_items([r]).vectors[0] for r in rows])
        np.testing.assert_allclose(alone, a, atol=self.batch_atol)

    def test_different_content_different_vectors(self, model):
        v = model.embed_items(list(self.new_items())).vectors
        assert not np.allclose(v[0], v[1])

    def test_new_user_from_history_text_or_both(self, model):
        dim = model.item_vectors().shape[1]
        history = list(model.item_ids[:3])
        for kw in ({"history": history}, {"text": self.user_text}):
            v = model.embed_user(**kw)
            assert v.shape == (dim,) and np.isfinite(v).all() and np.linalg.norm(v) > 0
            np.testing.assert_array_equal(v, model.embed_user(**kw))
        both = model.embed_user(history, self.user_text)
        assert both.shape == (dim,) and np.isfinite(both).all()

    def test_new_user_needs_history_or_text(self, model):
        with pytest.raises(KgrecError):
            model.embed_user()
