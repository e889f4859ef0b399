"""Small numeric helpers below every package (any layer may import them): row normalisation,
the smoothed IDF weight, and scipy CSR -> torch sparse CSR.

One definition each, so that the content model, text composition and graph conversion agree to
the bit (the hybrid's cold map and cold-start baselines included).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import scipy.sparse as sp
    import torch


def normalize_rows(x: np.ndarray) -> np.ndarray:
    """``x`` with unit L2 norm along the last axis (its dtype kept); zero rows stay zero."""
    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    return np.divide(x, norm, out=np.zeros_like(x), where=norm > 0)


def smooth_idf(df: np.ndarray, n: int) -> np.ndarray:
    """Smoothed inverse document frequency ``log((1 + n) / (1 + df)) + 1`` (float32) of terms
    found in ``df`` of ``n`` documents (scikit-learn's ``smooth_idf``): never zero, never inf."""
    return (np.log((1 + n) / (1 + np.asarray(df))) + 1.0).astype(np.float32)


def csr_to_torch(m: sp.spmatrix) -> torch.Tensor:
    """A scipy sparse matrix as a torch sparse CSR tensor (float32; the data array is shared
    when it is already a float32 CSR matrix)."""
    import warnings

    import scipy.sparse as sp
    import torch

    m = sp.csr_matrix(m, dtype=np.float32)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*[Ss]parse CSR tensor support is in beta.*")
        return torch.sparse_csr_tensor(
            torch.from_numpy(m.indptr.astype(np.int64)),
            torch.from_numpy(m.indices.astype(np.int64)),
            torch.from_numpy(m.data),
            size=m.shape,
            check_invariants=False,
        )
