"""What a comparison or a training run does: the protocol, models, seeds, cutoffs, overrides."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from kgrec.errors import SpecError
from kgrec.eval import Metric, default_metrics, parse_metric

#: CLI protocol name -> split protocol
PROTOCOL_SPLITS = {
    "warm": "random",
    "random": "random",
    "temporal": "temporal",
    "cold-item": "cold-item",
    "cold-user": "cold-user",
    "given": "given",
}


@dataclass(frozen=True)
class CompareOptions:
    """What to compare and how. ``epochs``/``max_seconds`` override the trained models' defaults
    (``None`` keeps each model's own); ``seeds`` are the split and training seeds."""

    models: tuple[str, ...] = ("pop", "itemknn", "ease", "mf", "lightgcn")
    protocol: str = "warm"
    seeds: tuple[int, ...] = (2020,)
    ks: tuple[int, ...] = (10, 20)
    primary: str = "NDCG@20"
    epochs: int | None = None
    max_seconds: float | None = None
    device: str = "cpu"
    n_boot: int = 1000
    eval_batch_size: int | None = None
    #: given protocol without a validation part: share of train carved out for validation
    valid_share: float = 0.0
    #: validate trained models on this many sampled validation users (None: all of them)
    valid_users: int | None = None
    #: progress bar on stderr while evaluating
    eval_progress: bool = False
    #: the hybrid's fine-tuned text tower (``none``, ``top-layers``, ``lora``, ``full``) and a
    #: saved tower to start it from (``--init-text-from``)
    text_finetune: str = "none"
    init_text_from: str | None = None

    def __post_init__(self) -> None:
        from kgrec.models import MODELS

        unknown = [m for m in self.models if m not in MODELS]
        if unknown or not self.models:
            raise SpecError(
                f"unknown model(s) {unknown}; choose from {sorted(MODELS)}", key="models"
            )
        if self.protocol not in PROTOCOL_SPLITS:
            raise SpecError(
                f"unknown protocol {self.protocol!r}; choose from {sorted(PROTOCOL_SPLITS)}",
                key="protocol",
            )
        if not self.seeds:
            raise SpecError("at least one seed is needed", key="seeds")
        if not self.ks or min(self.ks) < 1:
            raise SpecError(f"cutoffs must be >= 1, got {list(self.ks)}", key="ks")
        parse_metric(self.primary)
        if not 0.0 <= self.valid_share < 1.0:
            raise SpecError(
                f"valid_share must be in [0, 1), got {self.valid_share}", key="valid_share"
            )
        if self.valid_users is not None and self.valid_users < 1:
            raise SpecError(f"valid_users must be >= 1, got {self.valid_users}", key="valid_users")
        if self.max_seconds is not None and not (
            math.isfinite(self.max_seconds) and self.max_seconds > 0
        ):
            raise SpecError(
                f"max_seconds must be a positive number of seconds, got {self.max_seconds}",
                key="max_seconds",
            )
        if self.epochs is not None and self.epochs < 1:
            raise SpecError(f"epochs must be >= 1, got {self.epochs}", key="epochs")
        if self.text_finetune not in ("none", "lora", "top-layers", "full"):
            raise SpecError(
                f"unknown text-finetune mode {self.text_finetune!r}; use none, lora, top-layers "
                "or full",
                key="text_finetune",
            )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def metrics(self) -> list[Metric]:
        return default_metrics(tuple(self.ks))


def seeds_from(n: int, *, base: int = 2020) -> tuple[int, ...]:
    """``n`` seeds: ``base, base + 1, ...`` (2020 first, RecBole's default seed)."""
    if n < 1:
        raise SpecError(f"--seeds must be >= 1, got {n}", key="seeds")
    return tuple(base + i for i in range(n))
