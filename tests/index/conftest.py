"""Shared fixtures of the index tests: thread limits (the clustered sets come from kgrec.testing)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    """One faiss/torch thread: OpenMP k-means thrashes on a loaded 2-core machine."""
    faiss = pytest.importorskip("faiss", reason="kgrec.index tests need faiss (kgrec[cpu])")
    import torch

    old_f, old_t = faiss.omp_get_max_threads(), torch.get_num_threads()
    faiss.omp_set_num_threads(1)
    torch.set_num_threads(1)
    yield
    faiss.omp_set_num_threads(old_f)
    torch.set_num_threads(old_t)
