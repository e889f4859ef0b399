"""ItemKNN: item-item cosine similarity with shrinkage, top-``k`` neighbours per item.

Sarwar et al., "Item-based collaborative filtering recommendation algorithms", WWW 2001; the
normalisation follows RecBole 1.2.1's ``ComputeSimilarity`` so that numbers are comparable::

    sim(j, i) = (x_j . x_i) / (||x_j|| ||x_i|| + shrink + 1e-6),   sim(i, i) = 0

where ``x_i`` is item ``i``'s column of the binary training matrix. For every target item ``i``
only its ``k`` most similar items ``j`` are kept (``W[j, i]``), and
``score(u, i) = sum_j history[u, j] W[j, i]``. Computed block-wise in torch (dense blocks of
``block_size`` target items), so memory stays ``O(n_items * block_size)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Self

import numpy as np
import scipy.sparse as sp
import torch

from kgrec.models._base import Recommender, Validator, WeightedConfig


@dataclass(frozen=True)
class ItemKNNConfig(WeightedConfig):
    """``k`` neighbours per item (RecBole default 100), ``shrink`` (default 0.0); ``weights``:
    ``none`` (binary), ``count`` or ``log`` (log1p) of the interaction weights."""

    k: int = 100
    shrink: float = 0.0
    block_size: int = 1024

    def validate(self) -> None:
        super().validate()
        self._require("k", self.k >= 1, "k must be >= 1")
        self._require("shrink", self.shrink >= 0, "shrink must be >= 0")
        self._require("block_size", self.block_size >= 1, "block_size must be >= 1")


class ItemKNN(Recommender):
    """Item-based k-nearest-neighbour recommender (cosine with shrinkage)."""

    name = "itemknn"
    config_class = ItemKNNConfig

    def fit(self, train: sp.spmatrix, *, validate: Validator | None = None) -> Self:
        m = self._start_fit(train)
        n = m.shape[1]
        k = min(self.config.k, n)
        xt = m.T.tocsr()
        norms = np.sqrt(np.asarray(m.multiply(m).sum(axis=0)).ravel()).astype(np.float64)
        norms_t = torch.from_numpy(norms)
        rows, cols, vals = [], [], []
        for s in range(0, n, self.config.block_size):
            e = min(n, s + self.config.block_size)
            block = torch.from_numpy((xt @ m[:, s:e]).toarray().astype(np.float64))  # (n, B)
            denom = norms_t[:, None] * norms_t[None, s:e] + self.config.shrink + 1e-6
            sim = block / denom
            sim[torch.arange(s, e), torch.arange(e - s)] = 0.0
            top_v, top_i = torch.topk(sim, k, dim=0)  # (k, B)
            keep = top_v != 0
            cols.append(torch.arange(s, e).expand(k, -1)[keep].numpy())
            rows.append(top_i[keep].numpy())
            vals.append(top_v[keep].numpy().astype(np.float32))
        self.w_ = sp.csr_matrix(
            (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n)
        )
        return self

    def _score(self, users: np.ndarray, history: sp.csr_matrix) -> torch.Tensor:
        return torch.from_numpy(np.asarray((history @ self.w_).toarray(), dtype=np.float32))

    def _state(self) -> dict[str, np.ndarray]:
        return {
            **super()._state(),
            "w_data": self.w_.data,
            "w_indices": self.w_.indices.astype(np.int64),
            "w_indptr": self.w_.indptr.astype(np.int64),
        }

    def _set_state(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        super()._set_state(arrays, meta)
        n = self.n_items_
        self.w_ = sp.csr_matrix(
            (arrays["w_data"], arrays["w_indices"], arrays["w_indptr"]), shape=(n, n)
        )
