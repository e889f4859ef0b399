"""The shared encoder contract, applied to the real transformer encoder and to the test fake."""

import pytest

from kgrec.testing import TextEncoderContract
from tests.text.conftest import FakeEncoder


class TestTransformerEncoderContract(TextEncoderContract):
    @pytest.fixture(autouse=True)
    def _encoder(self, encoder):
        self._enc = encoder

    def make(self):
        return self._enc


class TestFakeEncoderContract(TextEncoderContract):
    def make(self):
        return FakeEncoder()
