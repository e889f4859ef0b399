"""Pairwise (BPR) batches with negatives that exclude each user's training positives.

PyG's LightGCN example samples negatives uniformly over all items, so a user's own positives can
be drawn as negatives; here a drawn negative is rejected and redrawn (vectorised) until none is a
positive of its user. Batches are a deterministic function of ``(seed, epoch)``, so a resumed run
sees exactly the batches the interrupted one would have.

Two ways to draw the (user, positive) pairs of an epoch: ``"interaction"`` (the default) passes
over every training positive once, so active users weigh in proportion to their history;
``"user"`` draws as many pairs, each a uniformly drawn user (among users with a positive) with one
of that user's positives drawn uniformly, as KGAT's and NGCF's reference samplers do
(``_generate_train_cf_batch``; they draw a batch's users without replacement, here with it), so
every user weighs the same, as in a user-averaged metric.
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


#: the ways :class:`BPRSampler` draws an epoch's (user, positive) pairs (see the module docstring)
PAIR_SAMPLING = ("interaction", "user")


class BPRSampler:
    """One pass over every training positive per epoch, shuffled, with sampled negatives; with
    ``pairs="user"`` as many pairs of a uniform user and one of its positives."""

    def __init__(
        self,
        train: sp.csr_matrix,
        *,
        batch_size: int = 2048,
        seed: int = 0,
        n_negatives: int = 1,
        device: str = "cpu",
        pairs: str = "interaction",
    ) -> None:
        if pairs not in PAIR_SAMPLING:
            raise ValueError(f"pairs must be one of {PAIR_SAMPLING}, got {pairs!r}")
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
        self.pairs = pairs
        self._indptr = m.indptr.astype(np.int64)
        self._deg = deg.astype(np.int64)
        self._active = np.flatnonzero(deg > 0).astype(np.int64)
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
        n = len(self.user)
        if self.pairs == "user":
            u_all = self._active[rng.integers(0, len(self._active), size=n)]
            offset = (rng.random(n) * self._deg[u_all]).astype(np.int64)
            p_all = self.pos[self._indptr[u_all] + offset]
        else:
            order = rng.permutation(n)
            u_all = self.user[order]
            p_all = self.pos[order]
        if self.n_negatives == 1:
            n_all = self.negatives(u_all, rng)
        else:
            rep = np.repeat(u_all, self.n_negatives)
            n_all = self.negatives(rep, rng).reshape(-1, self.n_negatives)
        for s in range(0, n, self.batch_size):
            e = s + self.batch_size
            yield PairBatch(
                torch.from_numpy(u_all[s:e]),
                torch.from_numpy(p_all[s:e]),
                torch.from_numpy(np.ascontiguousarray(n_all[s:e])),
            ).to(self.device)
