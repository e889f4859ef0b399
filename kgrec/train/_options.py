"""Typed, frozen training options shared by every trainable model."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from kgrec.errors import SpecError


@dataclass(frozen=True)
class TrainingOptions:
    """How to train: budget, optimiser, early stopping, checkpoints, seed and device.

    ``patience`` counts validation rounds without improvement of the validation metric
    (``NDCG@20`` by default) by more than ``min_delta``; 0 disables early stopping. No early stop
    happens before ``min_epochs`` epochs (LightGCN's validation NDCG first dips below its epoch-0
    popularity-like level before it rises; RecBole's default LightGCN stops in that dip).
    ``max_seconds`` caps training wall time (checked after each epoch). ``checkpoint_dir``: where
    the loop writes its atomic checkpoint after every epoch; with ``resume`` an existing one is
    continued from.
    """

    epochs: int = 100
    batch_size: int = 2048
    lr: float = 1e-3
    weight_decay: float = 0.0
    patience: int = 10
    min_epochs: int = 0
    min_delta: float = 0.0
    eval_every: int = 1
    valid_metric: str = "NDCG@20"
    seed: int = 2020
    device: str = "cpu"
    max_seconds: float | None = None
    checkpoint_dir: str | None = None
    resume: bool = False
    progress: bool = False
    #: large data: at most this many mini-batches per epoch (None: no cap). The batch grows to
    #: ``ceil(n_interactions / max_steps_per_epoch)`` and the learning rate with the square root
    #: of the batch ratio (the usual rule for Adam); small data keep ``batch_size`` and ``lr``.
    max_steps_per_epoch: int | None = None
    #: once ``max_steps_per_epoch`` is exceeded, the number of steps the batch is sized for
    #: (None: ``max_steps_per_epoch`` itself); e.g. 3 for near-full batches
    scaled_steps_per_epoch: int | None = None
    #: how BPR pairs are drawn (:class:`kgrec.train.BPRSampler`): ``"interaction"``, every
    #: training positive once per epoch; ``"user"``, as many pairs of a uniform user and one of
    #: its positives (KGAT's sampler)
    pair_sampling: str = "interaction"
    #: BPR negatives drawn per (user, positive) pair, each excluding the user's positives; the
    #: loss averages ``-log sigmoid(s(u, i) - s(u, j))`` over them. Used by the BPR baselines
    #: (MF-BPR, LightGCN); the hybrid's own sampler draws one negative and ignores it
    n_negatives: int = 1

    def __post_init__(self) -> None:
        checks = [
            ("epochs", self.epochs >= 1, "must be >= 1"),
            ("batch_size", self.batch_size >= 1, "must be >= 1"),
            ("lr", self.lr > 0, "must be > 0"),
            ("weight_decay", self.weight_decay >= 0, "must be >= 0"),
            ("patience", self.patience >= 0, "must be >= 0 (0 disables early stopping)"),
            ("min_epochs", self.min_epochs >= 0, "must be >= 0"),
            ("min_delta", self.min_delta >= 0, "must be >= 0"),
            ("eval_every", self.eval_every >= 1, "must be >= 1"),
            ("valid_metric", "@" in self.valid_metric, "must look like NAME@K, e.g. NDCG@20"),
            ("device", self.device.split(":")[0] in ("cpu", "cuda", "mps"), "cpu, cuda[:n] or mps"),
            ("max_seconds", self.max_seconds is None or self.max_seconds > 0, "must be > 0"),
            (
                "max_steps_per_epoch",
                self.max_steps_per_epoch is None or self.max_steps_per_epoch >= 1,
                "must be >= 1",
            ),
            (
                "pair_sampling",
                self.pair_sampling in ("interaction", "user"),
                "must be 'interaction' or 'user'",
            ),
            ("n_negatives", self.n_negatives >= 1, "must be >= 1"),
            (
                "scaled_steps_per_epoch",
                self.scaled_steps_per_epoch is None or self.scaled_steps_per_epoch >= 1,
                "must be >= 1",
            ),
        ]
        for key, ok, msg in checks:
            if not ok:
                raise SpecError(f"{msg}, got {getattr(self, key)!r}", key=f"training.{key}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, obj: dict[str, Any]) -> TrainingOptions:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(obj) - known)
        if unknown:
            raise SpecError(
                f"unknown training option(s) {unknown}; known: {sorted(known)}", key="training"
            )
        return cls(**obj)

    def replace(self, **changes: Any) -> TrainingOptions:
        return replace(self, **changes)

    def scaled(self, n_interactions: int) -> TrainingOptions:
        """These options with batch size and learning rate scaled to ``n_interactions`` training
        rows (see ``max_steps_per_epoch`` and ``scaled_steps_per_epoch``); unchanged when the
        cap is not reached."""
        cap = self.max_steps_per_epoch
        if cap is None or -(-int(n_interactions) // self.batch_size) <= cap:
            return self
        steps = self.scaled_steps_per_epoch or cap
        batch = -(-int(n_interactions) // steps)
        return replace(self, batch_size=batch, lr=self.lr * (batch / self.batch_size) ** 0.5)
