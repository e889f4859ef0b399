"""Data-parallel batches for the hybrid: rank ``r`` of ``N`` takes the users ``r, r + N, ...`` of
every global :class:`~kgrec.models.hybrid._losses.UserBatch` with their pairs.

The hybrid's ranking loss (full softmax or BPR) and its optional pointwise BCE are means over the
batch's pairs, so a rank's loss weighted by its share of the pairs (``weight``, read by the
training loop's :func:`~kgrec.train._distributed.sync_gradients`) sums over ranks to the loss
of the whole batch: every rank takes the one-process step and the replicas stay identical. The
full-graph propagation is still computed on every rank (it is needed whole); what is split is
the per-user part, the softmax over the catalog that dominates a step on large catalogs.

The other loss terms (L2 over the batch's users, the KG triple loss, text/graph alignment,
user-ID dropout) are not means over pairs; with any of them on, every rank trains on the whole
batch (``weight`` 1 / N): still exactly the one-process step, without the speed-up.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch

from kgrec.models.hybrid._losses import UserBatch


def shardable(config: Any) -> bool:
    """Whether ``config``'s loss is a mean over pairs only (see the module docstring)."""
    return not (
        config.reg > 0 or config.kg_loss > 0 or config.align > 0 or config.user_id_dropout > 0
    )


def shard_batch(batch: UserBatch, rank: int, size: int) -> tuple[UserBatch, float]:
    """Rank ``rank``'s users of ``batch`` (every ``size``-th) with their pairs, and its share of
    the batch's pairs."""
    n_users = batch.users.shape[0]
    if n_users < size:  # a short last batch: every rank takes it whole
        return batch, 1.0 / size
    mine = torch.arange(rank, n_users, size)
    keep = (batch.rows % size) == rank
    # new row index of a kept pair: its user's position among this rank's users
    rows = torch.div(batch.rows[keep], size, rounding_mode="floor")
    total = int(batch.rows.shape[0])
    part = UserBatch(
        users=batch.users[mine],
        rows=rows,
        pos=batch.pos[keep],
        neg=batch.neg[keep],
        triples=batch.triples,
    )
    return part, (int(keep.sum()) / total if total else 1.0 / size)


class ShardedUserSampler:
    """Rank ``rank``'s part of every batch of a user-batch sampler; ``weight`` is its share of
    the current batch's pairs."""

    def __init__(self, sampler: Any, rank: int, size: int) -> None:
        self.sampler, self.rank, self.size = sampler, int(rank), int(size)
        self.weight = 1.0 / self.size

    def __len__(self) -> int:
        return len(self.sampler)

    def batches(self, epoch: int) -> Iterator[UserBatch]:
        for b in self.sampler.batches(epoch):
            part, self.weight = shard_batch(b, self.rank, self.size)
            yield part
