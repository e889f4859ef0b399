"""Shared wiring of the embedding baselines (MF-BPR, LightGCN): BPR batches, the one training
loop, early stopping on a validation callback, final vectors as arrays, fold-in of unknown users."""

from __future__ import annotations

import logging
from typing import Any, Self

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn

from kgrec.models._base import LearnedVectorsMixin, ModelConfig, Recommender, Validator
from kgrec.train import BPRSampler, TrainingOptions, TrainResult, seed_everything, train_loop
from kgrec.train._distributed import ShardedSampler, init_from_env

log = logging.getLogger(__name__)


def bpr_loss(pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
    """``mean(-log sigmoid(pos - neg))``, computed stably as ``softplus(neg - pos)``."""
    if neg.dim() == 2:
        pos = pos.unsqueeze(1)
    return F.softplus(neg - pos).mean()


def l2_reg(*tensors: torch.Tensor) -> torch.Tensor:
    """``sum ||t||^2 / (2 * batch)`` over the given (ego) embeddings of a batch."""
    batch = tensors[0].shape[0]
    return sum(t.pow(2).sum() for t in tensors) / (2 * batch)


class EmbeddingRecommender(LearnedVectorsMixin, Recommender):
    """Base of models trained with BPR through :func:`kgrec.train.train_loop`."""

    default_options = TrainingOptions()

    def __init__(
        self,
        config: ModelConfig | None = None,
        *,
        options: TrainingOptions | None = None,
        **overrides: Any,
    ) -> None:
        super().__init__(config, **overrides)
        self.options = options or self.default_options
        self.result_: TrainResult | None = None

    def _build_module(self, train: sp.csr_matrix) -> nn.Module:  # pragma: no cover - abstract
        raise NotImplementedError

    def _final_vectors(self, module: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
        """(user vectors, item vectors) used for scoring."""
        raise NotImplementedError  # pragma: no cover

    def fit(self, train: sp.spmatrix, *, validate: Validator | None = None) -> Self:
        m = self._start_fit(train)
        opts = self.options.scaled(m.nnz)
        if opts is not self.options:
            log.info(
                "%s: %d training rows -> batch %d, lr %.3g (max %d steps per epoch)",
                self.name,
                m.nnz,
                opts.batch_size,
                opts.lr,
                opts.max_steps_per_epoch,
            )
        self.fit_options_ = opts
        seed_everything(opts.seed)
        module = self._build_module(m)
        self.module_ = module
        sampler: Any = BPRSampler(
            m,
            batch_size=opts.batch_size,
            seed=opts.seed,
            device=opts.device,
            pairs=opts.pair_sampling,
            n_negatives=opts.n_negatives,
        )
        rank, size = init_from_env(opts.device)
        if size > 1:  # data-parallel: this rank's rows of every global batch
            sampler = ShardedSampler(sampler, rank, size)

        def _validate() -> float:
            self._refresh_vectors()
            return float(validate(self))

        self.result_ = train_loop(
            module, sampler, opts, validate=_validate if validate is not None else None
        )
        self._refresh_vectors()
        log.info("%s trained: %s", self.name, self.result_.to_dict())
        return self

    def _refresh_vectors(self) -> None:
        with torch.no_grad():
            self.module_.eval()
            u, i = self._final_vectors(self.module_)
        self.user_vecs_ = u.detach().to("cpu", torch.float32).numpy()
        self.item_vecs_ = i.detach().to("cpu", torch.float32).numpy()

    def _state(self) -> dict[str, np.ndarray]:
        return {**super()._state(), "user_vecs": self.user_vecs_, "item_vecs": self.item_vecs_}

    def _extra_meta(self) -> dict[str, Any]:
        out: dict[str, Any] = {"training": self.options.to_dict()}
        used = getattr(self, "fit_options_", None)
        if used is not None and used is not self.options:
            out["training_scaled"] = used.to_dict()
        if self.result_ is not None:
            out["train_result"] = self.result_.to_dict()
        return out

    def _set_state(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        super()._set_state(arrays, meta)
        self.user_vecs_ = arrays["user_vecs"]
        self.item_vecs_ = arrays["item_vecs"]
        if "training" in meta:
            self.options = TrainingOptions.from_dict(meta["training"])
