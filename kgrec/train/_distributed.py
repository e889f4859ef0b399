"""Data-parallel training on ``torch.distributed`` (``gloo`` on CPU, ``nccl`` on GPU).

Started by ``torchrun --nproc-per-node N`` (or ``kgrec train --nproc N``, which runs torchrun),
every process builds the same model from the same seed and draws the same seeded epoch order and
negatives; :class:`ShardedSampler` gives rank ``r`` the rows ``r, r + N, ...`` of every global
batch. After each backward pass :func:`sync_gradients` sums the gradients of all ranks, each
weighted by its share of the batch's rows, so every rank takes exactly the step one process
would take on the whole batch (up to floating-point summation order): the replicas stay
identical, and so do validation and early stopping, without broadcasting weights. Sparse
embedding gradients are reduced densely and re-sparsified on the touched rows.

Validation is computed on every rank (identical weights give identical values); only rank 0
writes checkpoints and outputs (:func:`is_main`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

log = logging.getLogger(__name__)


def world() -> tuple[int, int]:
    """(rank, world size) of the running process group, (0, 1) without one."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def is_main() -> bool:
    """Rank 0 (or no process group): the process that writes files."""
    return world()[0] == 0


def set_rank_env(rank: int, size: int, port: int, host: str = "127.0.0.1") -> None:
    """The environment torchrun gives rank ``rank`` of ``size`` processes on one host, for
    processes started without it (``torch.multiprocessing.spawn``); :func:`init_from_env`
    then joins the group."""
    os.environ.update(
        MASTER_ADDR=host,
        MASTER_PORT=str(port),
        RANK=str(rank),
        WORLD_SIZE=str(size),
        LOCAL_RANK=str(rank),
    )


def init_from_env(device: str = "cpu") -> tuple[int, int]:
    """Join the process group torchrun describes (``WORLD_SIZE`` > 1 in the environment);
    ``gloo`` on CPU, ``nccl`` on CUDA. A no-op without torchrun or when already joined."""
    import torch.distributed as dist

    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size > 1 and dist.is_available() and not dist.is_initialized():
        backend = "nccl" if device.startswith("cuda") else "gloo"
        dist.init_process_group(backend=backend)
        if device.startswith("cuda"):
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        log.info("joined %s process group: rank %d of %d", backend, *world())
    return world()


class ShardedSampler:
    """Rank ``rank``'s rows of each global batch of ``sampler`` (``batches(epoch)`` of
    :class:`~kgrec.train.PairBatch`); ``weight`` is this rank's share of the current batch."""

    def __init__(self, sampler: Any, rank: int, size: int) -> None:
        self.sampler, self.rank, self.size = sampler, int(rank), int(size)
        self.weight = 1.0

    def __len__(self) -> int:
        return len(self.sampler)

    def batches(self, epoch: int) -> Iterator[Any]:
        from kgrec.train._sampling import PairBatch

        for b in self.sampler.batches(epoch):
            n = b.user.shape[0]
            sl = slice(self.rank, None, self.size)
            self.weight = len(range(n)[sl]) / n
            yield PairBatch(b.user[sl], b.pos[sl], b.neg[sl])


def sync_gradients(model: nn.Module, weight: float) -> None:
    """Sum over ranks of ``weight * grad`` into every parameter's gradient (see the module
    docstring). Every rank must call it after every backward pass."""
    import torch.distributed as dist

    for p in model.parameters():
        if not p.requires_grad:
            continue
        if p.grad is None:
            g = torch.zeros_like(p)
            sparse = False
        else:
            sparse = p.grad.is_sparse
            g = p.grad.coalesce().to_dense() if sparse else p.grad
        g = g * weight
        dist.all_reduce(g, op=dist.ReduceOp.SUM)
        if sparse:
            rows = torch.nonzero(g.abs().sum(dim=tuple(range(1, g.dim()))) > 0).flatten()
            p.grad = torch.sparse_coo_tensor(rows.unsqueeze(0), g[rows], g.shape).coalesce()
        else:
            p.grad = g
