"""MF-BPR: matrix factorisation trained with Bayesian personalised ranking.

Rendle et al., "BPR: Bayesian Personalized Ranking from Implicit Feedback", UAI 2009::

    s(u, i) = p_u . q_i,   L = mean over (u, i, j) of -log sigmoid(s(u, i) - s(u, j))
            + reg * (||p_u||^2 + ||q_i||^2 + ||q_j||^2) / (2 B)

with ``j`` a uniformly drawn item that is not a training positive of ``u``. Defaults follow
RecBole's BPR (64 dimensions, Adam, learning rate 1e-3, batch 2048, xavier-normal init, no L2).
"""

from __future__ import annotations

from dataclasses import dataclass

import scipy.sparse as sp
import torch
from torch import nn

from kgrec.models._base import ModelConfig
from kgrec.models.cf._embedding import EmbeddingRecommender, bpr_loss, l2_reg
from kgrec.train import PairBatch, TrainingOptions


@dataclass(frozen=True)
class MFConfig(ModelConfig):
    """``dim``: embedding size; ``reg``: L2 weight on the batch's embeddings."""

    dim: int = 64
    reg: float = 0.0

    def validate(self) -> None:
        self._require("dim", self.dim >= 1, "dim must be >= 1")
        self._require("reg", self.reg >= 0, "reg must be >= 0")


class MFModule(nn.Module):
    """User and item embedding tables; takes index tensors, returns score tensors."""

    def __init__(self, n_users: int, n_items: int, dim: int, reg: float = 0.0) -> None:
        super().__init__()
        # sparse gradients: the optimiser updates only the rows a batch touched (SparseAdam)
        self.user = nn.Embedding(n_users, dim, sparse=True)
        self.item = nn.Embedding(n_items, dim, sparse=True)
        nn.init.xavier_normal_(self.user.weight)
        nn.init.xavier_normal_(self.item.weight)
        self.reg = reg

    def forward(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        return (self.user(users) * self.item(items)).sum(-1)

    def loss(self, batch: PairBatch) -> torch.Tensor:
        u = self.user(batch.user)
        p = self.item(batch.pos)
        n = self.item(batch.neg)
        pos = (u * p).sum(-1)
        neg = (u.unsqueeze(1) * n).sum(-1) if n.dim() == 3 else (u * n).sum(-1)
        loss = bpr_loss(pos, neg)
        if self.reg:
            loss = loss + self.reg * l2_reg(u, p, n)
        return loss


class MFBPR(EmbeddingRecommender):
    """Matrix factorisation with the BPR loss."""

    name = "mf"
    config_class = MFConfig
    #: max_steps_per_epoch: on large data (> 262k training rows) the batch grows instead of the
    #: number of steps; ml-100k-sized data keep batch 2048 and lr 1e-3. (Near-full batches,
    #: ``scaled_steps_per_epoch=3``, train faster on amazon-book but converge to a lower
    #: validation NDCG@20, 0.0795 against 0.0825: ``bench/results/scale_mf_probe.json``.)
    default_options = TrainingOptions(
        epochs=100, batch_size=2048, lr=1e-3, patience=10, max_steps_per_epoch=128
    )

    def _build_module(self, train: sp.csr_matrix) -> nn.Module:
        return MFModule(train.shape[0], train.shape[1], self.config.dim, self.config.reg)

    def _final_vectors(self, module: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
        return module.user.weight, module.item.weight
