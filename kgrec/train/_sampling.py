"""Pairwise (BPR) batches with negatives that exclude each user's training positives.

PyG's LightGCN example samples negatives uniformly over all items, so a user's own positives can
be drawn as negatives; here a drawn negative is rejected and redrawn (vectorised) until none is a
positive of its user. Batches are a deterministic function of ``(seed, epoch)``, so a resumed run
sees exactly the batches the interrupted one would have.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch

from kgrec.errors import DataError


@dataclass(frozen=True)
class PairBatch:
    """A BPR batch: user, positive item, ``n_negatives`` negative items per row."""

    user: torch.Tensor
    pos: torch.Tensor
    neg: torch.Tensor  # (B,) or (B, n_negatives)

    def to(self, device: torch.device | str) -> PairBatch:
        return PairBatch(self.user.to(device), self.pos.to(device), self.neg.to(device))


class BPRSampler:
    """One pass over every training positive per epoch, shuffled, with sampled negatives."""

    def __init__(
        self,
        train: sp.csr_matrix,
        *,
        batch_size: int = 2048,
        seed: int = 0,
        n_negatives: int = 1,
        device: str = "cpu",
    ) -> None:
        m = sp.csr_matrix(train, dtype=np.float32)
        m.sum_duplicates()
        m.sort_indices()
        self.n_users, self.n_items = m.shape
        deg = np.diff(m.indptr)
        full = np.flatnonzero(deg >= self.n_items)
        if len(full):
            raise DataError(
                f"user index {int(full[0])} has every item as a positive: no negative to sample"
            )
        if m.nnz == 0:
            raise DataError("no training interaction to sample from")
        self.user = np.repeat(np.arange(self.n_users, dtype=np.int64), deg)
        self.pos = m.indices.astype(np.int64)
        self._keys = self.user * self.n_items + self.pos  # sorted: CSR rows, sorted indices
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.n_negatives = int(n_negatives)
        self.device = device

    def __len__(self) -> int:
        return -(-len(self.user) // self.batch_size)

    def is_positive(self, user: np.ndarray, item: np.ndarray) -> np.ndarray:
        """Whether ``(user, item)`` is a training positive (vectorised)."""
        keys = user * self.n_items + item
        pos = np.searchsorted(self._keys, keys)
        pos = np.minimum(pos, len(self._keys) - 1)
        return self._keys[pos] == keys

    def negatives(self, user: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One uniform negative per entry of ``user``, never one of that user's positives."""
        neg = rng.integers(0, self.n_items, size=len(user))
        bad = np.flatnonzero(self.is_positive(user, neg))
        while len(bad):
            neg[bad] = rng.integers(0, self.n_items, size=len(bad))
            bad = bad[self.is_positive(user[bad], neg[bad])]
        return neg

    def batches(self, epoch: int) -> Iterator[PairBatch]:
        rng = np.random.default_rng([self.seed, int(epoch)])
        order = rng.permutation(len(self.user))
        u_all = self.user[order]
        p_all = self.pos[order]
        if self.n_negatives == 1:
            n_all = self.negatives(u_all, rng)
        else:
            rep = np.repeat(u_all, self.n_negatives)
            n_all = self.negatives(rep, rng).reshape(-1, self.n_negatives)
        for s in range(0, len(order), self.batch_size):
            e = s + self.batch_size
            yield PairBatch(
                torch.from_numpy(u_all[s:e]),
                torch.from_numpy(p_all[s:e]),
                torch.from_numpy(np.ascontiguousarray(n_all[s:e])),
            ).to(self.device)
