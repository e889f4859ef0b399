"""The trained user side of the new-user path: an encoder that scores a user from their profile
attributes and ``k`` known items alone (no user ID), trained DropoutNet-style on the training
users with their ID dropped: every training user is shown to it as a new user (profile + a
random ``k`` of their items, ``k`` log-uniform in ``0..max_k``) and it learns to rank the rest.

Model (the item vectors ``V`` are the host model's trained ones, frozen: warm users and items
keep exactly the scores they had)::

    u(a, h) = normalise( A (a - mean a) + c + softplus(g) * sum_{i in h} (V_i + D_i) / sqrt(k) )
    s(u, j) = exp(t) * <u, V_j> + b_j

``A`` (profile -> vector), ``c``, ``g``, the per-item input residuals ``D`` (zero at the start:
the encoder starts as the fold-in), the item biases ``b`` and the temperature ``t`` are learned
with a full softmax over the items not shown. Items added after training (no row in ``D``/``b``)
enter with ``D = 0``, ``b = 0``. Early stopping on validation users' mean NDCG@20 over their
tasks (held-out users, or users carved from training; never test users). Training runs in the
shared loop (:func:`kgrec.train.train_loop`, like every other model: progress reports,
checkpoints, resume); :class:`DroppedIdSampler` makes its batches.

Everything here is handed matrices and vectors; no file, graph or encoder is touched.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn

from kgrec.errors import KgrecError
from kgrec.models._base import ModelConfig
from kgrec.models.hybrid._new_user_tasks import dense
from kgrec.train import TrainingOptions, TrainResult, train_loop

if TYPE_CHECKING:
    from kgrec.models.hybrid._new_user_tasks import ValidTask

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class UserEncoderConfig(ModelConfig):
    """Training settings of the user encoder (see the module docstring)."""

    epochs: int = 40
    batch_size: int = 64
    lr: float = 5e-3
    weight_decay: float = 0.0
    patience: int = 3
    max_k: int = 20
    tau: float = 0.1
    #: per-item input residuals ``D`` (else the known items enter with their vectors as is)
    residuals: bool = True
    #: a learned ``dim x dim`` map ``M`` (identity at the start) on the history term
    transform: bool = False
    #: at most this many batches per epoch, each epoch a fresh seeded sample of the training
    #: users (0: every user every epoch). Catalogs with fewer than ``max_steps_per_epoch *
    #: batch_size`` users (ml-100k, lastfm-hetrec) are untouched; on amazon-book's 70k users an
    #: uncapped epoch is 1,100 steps, and this stage ran ~1,860 s after training
    max_steps_per_epoch: int = 128

    def validate(self) -> None:
        self._require("epochs", self.epochs >= 1, "epochs must be >= 1")
        self._require("batch_size", self.batch_size >= 1, "batch_size must be >= 1")
        self._require("lr", self.lr > 0, "lr must be > 0")
        self._require("weight_decay", self.weight_decay >= 0, "weight_decay must be >= 0")
        self._require("patience", self.patience >= 1, "patience must be >= 1")
        self._require("max_k", self.max_k >= 1, "max_k must be >= 1")
        self._require("tau", self.tau > 0, "tau must be > 0")
        self._require(
            "max_steps_per_epoch", self.max_steps_per_epoch >= 0, "max_steps_per_epoch must be >= 0"
        )


class UserEncoderModule(nn.Module):
    """``(history rows, profile rows, item vectors) -> scores`` (see the module docstring)."""

    def __init__(
        self,
        n_items: int,
        n_features: int,
        dim: int,
        *,
        tau: float,
        residuals: bool = True,
        transform: bool = False,
    ) -> None:
        super().__init__()
        self.n_items, self.n_features, self.dim = n_items, n_features, dim
        self.attr = nn.Linear(n_features, dim, bias=False) if n_features else None
        if self.attr is not None:
            nn.init.zeros_(self.attr.weight)
        self.const = nn.Parameter(torch.zeros(dim))
        self.gain = nn.Parameter(torch.tensor(math.log(math.e - 1.0)))  # softplus = 1
        self.delta = nn.Parameter(torch.zeros(n_items, dim)) if residuals else None
        self.map = nn.Linear(dim, dim, bias=False) if transform else None
        if self.map is not None:
            nn.init.eye_(self.map.weight)
        self.bias = nn.Parameter(torch.zeros(n_items))
        self.log_scale = nn.Parameter(torch.tensor(math.log(1.0 / tau)))
        self.register_buffer("mean_f", torch.zeros(n_features))

    def _pad(self, x: torch.Tensor, n: int) -> torch.Tensor:
        if n <= x.shape[0]:
            return x[:n]
        return torch.cat([x, x.new_zeros((n - x.shape[0], *x.shape[1:]))], 0)

    def user_vectors(
        self, history: torch.Tensor, features: torch.Tensor | None, items: torch.Tensor
    ) -> torch.Tensor:
        n = items.shape[0]
        k = history.sum(1, keepdim=True)
        v_in = items if self.delta is None else items + self._pad(self.delta, n)
        h = history @ v_in / k.clamp(min=1.0).sqrt()
        if self.map is not None:
            h = self.map(h)
        u = h * F.softplus(self.gain)
        u = u + self.const
        if self.attr is not None and features is not None:
            u = u + self.attr(features - self.mean_f)
        return F.normalize(u, dim=1)

    def forward(
        self, history: torch.Tensor, features: torch.Tensor | None, items: torch.Tensor
    ) -> torch.Tensor:
        u = self.user_vectors(history, features, items)
        return self.log_scale.exp() * (u @ items.T) + self._pad(self.bias, items.shape[0])


class _DroppedIdTraining(nn.Module):
    """The encoder as the shared loop trains it: ``loss(batch)`` is the full softmax over the
    items not shown, averaged over each user's targets, against the frozen item vectors."""

    def __init__(self, encoder: UserEncoderModule, items: torch.Tensor) -> None:
        super().__init__()
        self.encoder = encoder
        self.register_buffer("items", items, persistent=False)

    def loss(self, batch: tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]) -> torch.Tensor:
        shown, target, features = batch
        logits = self.encoder(shown, features, self.items)
        logits = logits.masked_fill(shown > 0, -torch.inf)
        logp = torch.log_softmax(logits, 1).masked_fill(target == 0, 0.0)
        return -((logp * target).sum(1) / target.sum(1).clamp(min=1.0)).mean()


class DroppedIdSampler:
    """The encoder's training batches: training users shown as new users, ``(shown, target,
    profile rows)`` with ``k`` of a user's items shown (``k`` log-uniform in ``0..max_k``, at
    most all but one) and the rest as targets.

    Each epoch is a seeded permutation of ``users`` (the first ``max_steps_per_epoch *
    batch_size`` of it when capped). The draws of all epochs come from one numpy and one torch
    generator seeded once, in order; ``batches(epoch)`` asked for another epoch than the next one
    (a resumed fit) reseeds them and replays the earlier epochs' draws, so it is a deterministic
    function of ``epoch`` as the training loop needs."""

    def __init__(
        self,
        train: sp.csr_matrix,
        users: np.ndarray,
        features: Callable[[np.ndarray], torch.Tensor | None],
        *,
        batch_size: int,
        max_steps_per_epoch: int,
        max_k: int,
        seed: int,
    ) -> None:
        self.train, self.users, self.features = train, np.asarray(users), features
        self.batch_size, self.max_steps = int(batch_size), int(max_steps_per_epoch)
        self.log_max = math.log(int(max_k) + 1)
        self.seed = int(seed)
        self._next = -1  # the epoch the generators stand at (-1: not seeded yet)

    def _epoch_size(self) -> int:
        n = len(self.users)
        return min(n, self.max_steps * self.batch_size) if self.max_steps else n

    def __len__(self) -> int:
        return -(-self._epoch_size() // self.batch_size)

    def _seek(self, epoch: int) -> None:
        if epoch == self._next:
            return
        self._rng = np.random.default_rng(self.seed)
        self._gen = torch.Generator().manual_seed(self.seed)
        n_items, n = self.train.shape[1], self._epoch_size()
        for _ in range(epoch):  # the same draws as those epochs' batches, in the same order
            self._rng.permutation(len(self.users))
            for start in range(0, n, self.batch_size):
                m = min(self.batch_size, n - start)
                torch.rand(m, generator=self._gen)
                torch.rand((m, n_items), generator=self._gen)
        self._next = epoch

    def batches(self, epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor, Any]]:
        self._seek(epoch)
        self._next = -1  # until this epoch's draws are all made
        order = self.users[self._rng.permutation(len(self.users))][: self._epoch_size()]
        for start in range(0, len(order), self.batch_size):
            b = order[start : start + self.batch_size]
            rows = dense(self.train[b])
            deg = rows.sum(1)
            # k log-uniform in 0..max_k, at most |items| - 1 (one target left)
            k = (torch.rand(len(b), generator=self._gen) * self.log_max).exp().floor() - 1
            k = torch.minimum(k.clamp(min=0), deg - 1)
            noise = torch.rand(rows.shape, generator=self._gen)
            rank = torch.where(rows > 0, noise, torch.full_like(noise, 2.0))
            rank = rank.argsort(1).argsort(1)
            shown = (rank < k[:, None]).float() * rows
            yield shown, rows - shown, self.features(b)
        self._next = epoch + 1


class UserEncoder:
    """Fit and apply :class:`UserEncoderModule` against fixed item vectors."""

    def __init__(self, config: UserEncoderConfig | None = None, *, seed: int = 0) -> None:
        self.config = config or UserEncoderConfig()
        self.seed = int(seed)
        self.module_: UserEncoderModule | None = None
        self.curve_: list[float] = []
        self.best_epoch_ = -1
        #: what the training loop did (epochs run, stop reason, history); None until fitted
        self.result_: TrainResult | None = None

    def _features(self, features: sp.csr_matrix | None, rows: np.ndarray) -> torch.Tensor | None:
        if features is None or self.module_ is None or self.module_.attr is None:
            return None
        return dense(features[rows])

    def fit(
        self,
        train: sp.csr_matrix,
        features: sp.csr_matrix | None,
        items: np.ndarray,
        valid: Sequence[ValidTask],
        *,
        checkpoint_dir: str | None = None,
        resume: bool = False,
    ) -> UserEncoder:
        """Train on the users of ``train`` with 2+ items (their ID dropped), early-stopped on
        the mean NDCG@20 of the ``valid`` tasks (users not in ``train``).

        Training runs in the shared loop (:func:`kgrec.train.train_loop`): its per-epoch
        progress reports (:func:`kgrec.train.epoch_reporter`), and with ``checkpoint_dir`` a
        checkpoint after every epoch that ``resume`` continues from (same batches, same result
        as an uninterrupted fit)."""
        from kgrec.models.hybrid._new_user_tasks import ndcg20

        c = self.config
        train = sp.csr_matrix(train, dtype=np.float32)
        train.data[:] = 1.0
        n_items = train.shape[1]
        if items.shape[0] != n_items:
            raise KgrecError(f"{items.shape[0]} item vectors for {n_items} items")
        users = np.flatnonzero(train.getnnz(axis=1) >= 2)
        if len(users) < 2 or not valid or not any(len(t.users) for t in valid):
            raise KgrecError("the user encoder needs 2+ training users with 2+ items and tasks")
        n_f = 0 if features is None else int(features.shape[1])
        torch.manual_seed(self.seed)
        mod = UserEncoderModule(
            n_items,
            n_f,
            int(items.shape[1]),
            tau=c.tau,
            residuals=c.residuals,
            transform=c.transform,
        )
        if features is not None and n_f:
            mod.mean_f.copy_(torch.from_numpy(np.asarray(features[users].mean(0)).ravel()))
        self.module_ = mod
        v = torch.from_numpy(np.asarray(items, np.float32))
        net = _DroppedIdTraining(mod, v)
        sampler = DroppedIdSampler(
            train,
            users,
            lambda b: self._features(features, b),
            batch_size=c.batch_size,
            max_steps_per_epoch=c.max_steps_per_epoch,
            max_k=c.max_k,
            seed=self.seed,
        )

        def validate() -> float:
            vals = []
            for t in valid:
                if not len(t.users):
                    continue
                shown = dense(t.shown)
                s = mod(shown, self._features(features, t.users), v)
                vals.append(float(ndcg20(s, dense(t.targets), shown > 0).mean()))
            return float(np.mean(vals))

        options = TrainingOptions(
            epochs=c.epochs,
            batch_size=c.batch_size,
            lr=c.lr,
            weight_decay=c.weight_decay,
            patience=c.patience,
            min_delta=1e-5,  # a new best must beat the last one by more than this
            seed=self.seed,
            checkpoint_dir=checkpoint_dir,
            resume=resume,
        )
        # every rank of a torch.distributed group fits the same encoder from the same seed: no
        # gradient all-reduce
        result = train_loop(net, sampler, options, validate=validate, local=True)
        self.result_ = result
        self.curve_ = [round(float(r["valid"]), 5) for r in result.history if "valid" in r]
        self.best_epoch_ = int(result.best_epoch)
        log.info(
            "user encoder: best epoch %d of %d, validation NDCG@20 %s",
            self.best_epoch_ + 1,
            len(self.curve_),
            self.curve_,
        )
        return self

    def score(
        self, history: sp.csr_matrix, features: sp.csr_matrix | None, items: np.ndarray
    ) -> torch.Tensor:
        """Scores ``(n, n_items)`` of users from their known items and profile rows."""
        if self.module_ is None:
            raise KgrecError("the user encoder is not fitted")
        f = None
        if features is not None and self.module_.attr is not None:
            f = dense(features)
        with torch.no_grad():
            return self.module_(dense(history), f, torch.from_numpy(np.asarray(items, np.float32)))

    # ------------------------------------------------------------------ persistence
    def state(self, prefix: str) -> dict[str, np.ndarray]:
        assert self.module_ is not None
        return {prefix + k: t.detach().cpu().numpy() for k, t in self.module_.state_dict().items()}

    def meta(self) -> dict[str, Any]:
        assert self.module_ is not None
        m = self.module_
        return {
            "config": self.config.to_dict(),
            "seed": self.seed,
            "n_items": m.n_items,
            "n_features": m.n_features,
            "dim": m.dim,
            "best_epoch": self.best_epoch_,
            "curve": self.curve_,
        }

    @classmethod
    def from_state(
        cls, arrays: dict[str, np.ndarray], meta: dict[str, Any], prefix: str
    ) -> UserEncoder:
        enc = cls(UserEncoderConfig.from_dict(meta["config"]), seed=int(meta.get("seed", 0)))
        c = enc.config
        mod = UserEncoderModule(
            int(meta["n_items"]),
            int(meta["n_features"]),
            int(meta["dim"]),
            tau=c.tau,
            residuals=c.residuals,
            transform=c.transform,
        )
        state = {
            k[len(prefix) :]: torch.from_numpy(np.asarray(v))
            for k, v in arrays.items()
            if k.startswith(prefix)
        }
        mod.load_state_dict(state)
        mod.eval()
        enc.module_ = mod
        enc.best_epoch_ = int(meta.get("best_epoch", -1))
        enc.curve_ = list(meta.get("curve", []))
        return enc
