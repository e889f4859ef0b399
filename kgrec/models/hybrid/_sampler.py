"""The hybrid's training batches: :class:`UserBatchSampler` (users with all their positives,
sampled negatives and KG triples, deterministic per epoch) and, under ``torchrun``, this rank's
share of each batch (:func:`shard_for_ranks`)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp
import torch

from kgrec.models.hybrid._losses import UserBatch
from kgrec.train import BPRSampler

if TYPE_CHECKING:
    from kgrec.models.hybrid._config import HybridConfig

log = logging.getLogger(__name__)


class UserBatchSampler:
    """Users in shuffled batches of ``batch_size`` with all their training positives as pairs,
    one sampled non-positive per pair, and (optionally) sampled KG triples with a corrupted
    tail. Deterministic in ``(seed, epoch)`` so a resumed run sees the same batches."""

    def __init__(
        self,
        train: sp.csr_matrix,
        *,
        batch_size: int,
        seed: int,
        triples: np.ndarray | None = None,
        n_entities: int = 0,
        triples_per_batch: int = 2048,
        device: str = "cpu",
    ) -> None:
        self.train = sp.csr_matrix(train, dtype=np.float32)
        self.train.sort_indices()
        self.pairs = BPRSampler(self.train, batch_size=batch_size, seed=seed)
        self.active = np.flatnonzero(np.diff(self.train.indptr) > 0)
        self.batch_size, self.seed, self.device = int(batch_size), int(seed), device
        self.triples = triples if triples is not None and triples.shape[1] else None
        self.n_entities, self.triples_per_batch = n_entities, triples_per_batch

    def __len__(self) -> int:
        return -(-len(self.active) // self.batch_size)

    def batches(self, epoch: int) -> Iterator[UserBatch]:
        rng = np.random.default_rng([self.seed, epoch])
        users = self.active[rng.permutation(len(self.active))]
        indptr, indices = self.train.indptr, self.train.indices
        for s in range(0, len(users), self.batch_size):
            ub = users[s : s + self.batch_size]
            deg = indptr[ub + 1] - indptr[ub]
            rows = np.repeat(np.arange(len(ub)), deg)
            pos = np.concatenate([indices[indptr[u] : indptr[u + 1]] for u in ub])
            neg = self.pairs.negatives(ub[rows], rng)
            trip = None
            if self.triples is not None:
                k = rng.integers(0, self.triples.shape[1], self.triples_per_batch)
                h, r, t = self.triples[:, k]
                tn = rng.integers(0, self.n_entities, len(k))
                trip = tuple(torch.from_numpy(np.ascontiguousarray(a)) for a in (h, r, t, tn))
            yield UserBatch(
                users=torch.from_numpy(ub.astype(np.int64)),
                rows=torch.from_numpy(rows.astype(np.int64)),
                pos=torch.from_numpy(pos.astype(np.int64)),
                neg=torch.from_numpy(neg.astype(np.int64)),
                triples=trip,
            )


def shard_for_ranks(sampler: UserBatchSampler, config: HybridConfig, device: str) -> Any:
    """Under torchrun (``WORLD_SIZE`` > 1): this rank's users of every batch
    (:mod:`kgrec.models.hybrid._sharding`); the sampler itself in one process."""
    from kgrec.train._distributed import init_from_env

    rank, size = init_from_env(device)
    if size == 1:
        return sampler
    from kgrec.models.hybrid._sharding import ShardedUserSampler, shardable

    if not shardable(config):
        log.info("hybrid loss has non-pair terms: every rank trains on the whole batch")
        return sampler
    return ShardedUserSampler(sampler, rank, size)
