"""The default optimiser: Adam for dense parameters, ``SparseAdam`` for sparse embedding tables.

An ``nn.Embedding(..., sparse=True)`` gives a sparse gradient holding only the rows a batch
touched; ``torch.optim.SparseAdam`` then updates only those rows (and their moments). Dense Adam
on the same tables updates every row after every mini-batch: on amazon-book (70k users, 25k items,
64 dimensions) that was two thirds of an MF epoch. The moments of untouched rows are not decayed
(SparseAdam's lazy semantics), the usual trade-off for embedding tables.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


def _sparse_params(model: nn.Module) -> list[nn.Parameter]:
    return [m.weight for m in model.modules() if isinstance(m, nn.Embedding) and m.sparse]


class CombinedOptimizer:
    """Several optimisers stepped together (an ``Optimizer``-like object for the training loop;
    its state dict is a plain dict of their state dicts, saved with ``torch.save``)."""

    def __init__(self, parts: dict[str, torch.optim.Optimizer]) -> None:
        self.parts = parts

    @property
    def param_groups(self) -> list[dict[str, Any]]:
        return [g for o in self.parts.values() for g in o.param_groups]

    def zero_grad(self, set_to_none: bool = True) -> None:
        for o in self.parts.values():
            o.zero_grad(set_to_none=set_to_none)

    def step(self) -> None:
        for o in self.parts.values():
            o.step()

    def state_dict(self) -> dict[str, Any]:
        return {k: o.state_dict() for k, o in self.parts.items()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for k, o in self.parts.items():
            o.load_state_dict(state[k])


def make_optimizer(model: nn.Module, lr: float, weight_decay: float = 0.0) -> Any:
    """Adam over ``model``'s parameters; its sparse embedding tables (if any, and without weight
    decay, which SparseAdam does not support) go to ``SparseAdam`` instead."""
    sparse = _sparse_params(model) if weight_decay == 0 else []
    if not sparse:
        if any(isinstance(m, nn.Embedding) and m.sparse for m in model.modules()):
            for m in model.modules():
                if isinstance(m, nn.Embedding):
                    m.sparse = False  # weight decay asked for: dense gradients
        return torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    ids = {id(p) for p in sparse}
    dense = [p for p in model.parameters() if id(p) not in ids and p.requires_grad]
    parts: dict[str, torch.optim.Optimizer] = {"sparse": torch.optim.SparseAdam(sparse, lr=lr)}
    if dense:
        parts["dense"] = torch.optim.Adam(dense, lr=lr, weight_decay=weight_decay)
    return CombinedOptimizer(parts)
