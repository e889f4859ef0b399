"""Shared behaviour tests for text encoders (subclass and implement ``make``)."""

from __future__ import annotations

import numpy as np


class TextEncoderContract:
    """Every :class:`kgrec.text.TextEncoder` passes these; a subclass only provides ``make()``."""

    texts = ("a short text", "", "another, somewhat longer text about guitars and amplifiers")

    def make(self):  # pragma: no cover - overridden
        raise NotImplementedError

    def test_protocol(self):
        from kgrec.text import TextEncoder

        enc = self.make()
        assert isinstance(enc, TextEncoder)
        assert enc.dim > 0 and enc.model_id

    def test_shape_dtype_and_order(self):
        enc = self.make()
        out = enc.encode(list(self.texts))
        assert out.shape == (len(self.texts), enc.dim) and out.dtype == np.float32
        assert np.isfinite(out).all()
        # the order of the input is the order of the output, whatever batching does inside
        np.testing.assert_allclose(enc.encode(list(self.texts[::-1]))[::-1], out, atol=1e-5)

    def test_deterministic_and_distinct(self):
        enc = self.make()
        a, b = enc.encode(list(self.texts)), enc.encode(list(self.texts))
        np.testing.assert_allclose(a, b, atol=1e-6)
        assert not np.allclose(a[0], a[2])

    def test_empty_input(self):
        enc = self.make()
        assert enc.encode([]).shape == (0, enc.dim)

    def test_cache_key_is_stable(self):
        assert self.make().cache_key() == self.make().cache_key()
