"""Errors of the retrieval-index layer (all :class:`~kgrec.errors.KgrecError`)."""

from __future__ import annotations

from kgrec.errors import KgrecError


class IndexUsageError(KgrecError, ValueError):
    """A call the index cannot honour (bad k, unavailable device, missing faiss ...)."""


class FingerprintMismatchError(KgrecError, ValueError):
    """A saved index was built for another model than the one asking for it."""
