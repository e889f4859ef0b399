"""LightGCN: linear propagation of user/item embeddings over the normalised interaction graph.

He et al., "LightGCN: Simplifying and Powering Graph Convolution Network for Recommendation",
SIGIR 2020::

    A = [[0, R], [R^T, 0]],   A_hat = D^-1/2 A D^-1/2,   E^(l+1) = A_hat E^(l)
    E = sum_{l=0..L} E^(l) / (L + 1),   s(u, i) = e_u . e_i

trained with BPR plus ``reg * (||e_u^(0)||^2 + ||e_i^(0)||^2 + ||e_j^(0)||^2) / (2 B)`` on the
batch's ego (layer-0) embeddings, negatives excluding each user's positives. Each layer is
torch-geometric's ``LGConv(normalize=False)`` fed the pre-normalised adjacency as a torch sparse CSR
tensor (normalised once, not on every call; much faster per epoch on CPU than an ``edge_index``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from kgrec.models._base import ModelConfig, csr_to_torch
from kgrec.models.cf._embedding import EmbeddingRecommender, bpr_loss, l2_reg
from kgrec.train import PairBatch, TrainingOptions


@dataclass(frozen=True)
class LightGCNConfig(ModelConfig):
    """``dim``: embedding size; ``layers``: propagation steps; ``reg``: L2 on ego embeddings."""

    dim: int = 64
    layers: int = 2
    reg: float = 1e-4

    def validate(self) -> None:
        self._require("dim", self.dim >= 1, "dim must be >= 1")
        self._require("layers", self.layers >= 0, "layers must be >= 0")
        self._require("reg", self.reg >= 0, "reg must be >= 0")


def normalized_adjacency(train: sp.csr_matrix) -> sp.csr_matrix:
    """``D^-1/2 [[0, R], [R^T, 0]] D^-1/2`` as CSR (users first, then items; isolated nodes 0)."""
    r = sp.csr_matrix(train, dtype=np.float32)
    a = sp.bmat([[None, r], [r.T, None]], format="csr", dtype=np.float32)
    deg = np.asarray(a.sum(axis=1)).ravel()
    inv = np.zeros_like(deg)
    inv[deg > 0] = deg[deg > 0] ** -0.5
    d = sp.diags(inv.astype(np.float32))
    out = (d @ a @ d).tocsr()
    out.sort_indices()
    return out


class LightGCNModule(nn.Module):
    """Embeddings of ``n_users + n_items`` nodes and ``layers`` LGConv propagations over ``adj``,
    the pre-normalised ``(N, N)`` adjacency (torch sparse CSR), held as a non-persistent buffer
    (it moves with the module and stays out of its ``state_dict``); :meth:`forward` takes another
    adjacency in its place."""

    def __init__(
        self,
        n_users: int,
        n_items: int,
        dim: int,
        layers: int,
        reg: float,
        *,
        adj: torch.Tensor | None = None,
    ) -> None:
        super().__init__()
        from torch_geometric.nn import LGConv

        self.n_users, self.n_items = n_users, n_items
        self.embedding = nn.Embedding(n_users + n_items, dim)
        nn.init.xavier_uniform_(self.embedding.weight)
        self.convs = nn.ModuleList([LGConv(normalize=False) for _ in range(layers)])
        self.reg = reg
        self.register_buffer("adj", adj, persistent=False)

    def forward(self, adj: torch.Tensor | None = None) -> torch.Tensor:
        """Final node embeddings: the mean of the layer outputs (over ``adj``, default the
        adjacency given at construction)."""
        adj = self.adj if adj is None else adj
        if adj is None:
            raise RuntimeError("LightGCNModule needs an adjacency: LightGCNModule(..., adj=)")
        x = self.embedding.weight
        out = x
        for conv in self.convs:
            x = conv(x, adj)
            out = out + x
        return out / (len(self.convs) + 1)

    def loss(self, batch: PairBatch) -> torch.Tensor:
        z = self.forward()
        off = self.n_users
        # index_select: its backward (index_add) is much faster on CPU than z[idx]'s index_put
        # several negatives per row (n_negatives > 1): a (B, K) index, gathered flat
        idx = (batch.user, off + batch.pos, off + batch.neg.reshape(-1))
        u, p, n = (z.index_select(0, i) for i in idx)
        if batch.neg.dim() == 2:
            neg = (u.unsqueeze(1) * n.view(*batch.neg.shape, -1)).sum(-1)
        else:
            neg = (u * n).sum(-1)
        loss = bpr_loss((u * p).sum(-1), neg)
        if self.reg:
            w = self.embedding.weight
            loss = loss + self.reg * l2_reg(*(w.index_select(0, i) for i in idx))
        return loss


class LightGCN(EmbeddingRecommender):
    """LightGCN trained with BPR; scoring uses the propagated (final) embeddings."""

    name = "lightgcn"
    config_class = LightGCNConfig
    #: larger batches and learning rate than RecBole's (2048, 1e-3): converges in ~100 epochs
    #: instead of > 300; min_epochs keeps early stopping out of the initial dip. Every step
    #: propagates the whole graph, so on large data (> 262k training rows) the batch grows
    #: instead of the number of steps (max_steps_per_epoch)
    default_options = TrainingOptions(
        epochs=300, batch_size=8192, lr=1e-2, patience=10, min_epochs=30, max_steps_per_epoch=32
    )

    def _build_module(self, train: sp.csr_matrix) -> nn.Module:
        c = self.config
        adj = csr_to_torch(normalized_adjacency(train)).to(self.options.device)
        return LightGCNModule(train.shape[0], train.shape[1], c.dim, c.layers, c.reg, adj=adj)

    def _final_vectors(self, module: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
        z = module()
        return z[: module.n_users], z[module.n_users :]
