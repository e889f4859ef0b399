"""A score blend of two recommenders: ``(1 - w) z(first) + w z(second)`` with per-user z-scores
(so that two models' scores of different scales can be mixed) and ``w`` chosen on validation.

:class:`ScoreMix` is the part itself (the weight, its choice on a validation callback, the mix
of two score tensors); :class:`ScoreBlend` is a :class:`~kgrec.models.Recommender` made of any
two recommenders and a :class:`ScoreMix`. The hybrid's EASE blend is a :class:`ScoreMix` of its
own scores and a :class:`~kgrec.models.EASE`'s (``cf_blend``); a bench builds "hybrid + EASE"
from a hybrid without its blend as ``ScoreBlend(hybrid, EASE())``, which scores the same.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import numpy as np
import scipy.sparse as sp
import torch

from kgrec.errors import KgrecError
from kgrec.models._base import ModelConfig, Recommender, Validator

log = logging.getLogger(__name__)


def zscore(s: torch.Tensor) -> torch.Tensor:
    """Per-row standardised scores (so two models' scores can be mixed)."""
    return (s - s.mean(1, keepdim=True)) / (s.std(1, keepdim=True) + 1e-9)


def blend_weights(steps: int = 10) -> tuple[float, ...]:
    """The weights a blend tries: ``0, 1/steps, .., 1``."""
    return tuple(i / steps for i in range(steps + 1))


class ScoreMix:
    """The weight ``w`` of ``(1 - w) z(a) + w z(b)``; ``w = 0`` leaves ``a`` as it is."""

    def __init__(self, weight: float = 0.0) -> None:
        self.weight = float(weight)
        #: validation value per weight tried by :meth:`choose` (``None`` before)
        self.curve: dict[float, float] | None = None

    def __call__(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        w = self.weight
        if w <= 0:
            return a
        return (1 - w) * zscore(a) + w * zscore(b)

    def choose(self, validate: Callable[[], float], weights: tuple[float, ...]) -> float:
        """The weight with the best ``validate()`` (called with each weight set; ties: the
        smaller weight); sets :attr:`weight` and :attr:`curve`."""
        curve = {}
        for w in weights:
            self.weight = w
            curve[w] = float(validate())
        self.weight = max(curve, key=lambda w: (curve[w], -w))
        self.curve = curve
        return self.weight


@dataclass(frozen=True)
class ScoreBlendConfig(ModelConfig):
    """``steps``: the weights tried on validation are ``0, 1/steps, .., 1``; without a
    validation callback the weight is ``default_weight``."""

    steps: int = 10
    default_weight: float = 0.5

    def validate(self) -> None:
        self._require("steps", self.steps >= 1, "steps must be >= 1")
        self._require("default_weight", 0 <= self.default_weight <= 1, "must be in [0, 1]")


class ScoreBlend(Recommender):
    """``(1 - w) z(first) + w z(second)`` per user (:class:`ScoreMix`), ``w`` chosen on the
    validation callback of :meth:`fit`. ``fit`` fits both parts first (each with the same
    callback: early stopping for a trained part); ``fit_parts=False`` keeps already fitted
    parts and only chooses the weight. Users without history get what the parts give them."""

    name = "blend"
    config_class = ScoreBlendConfig

    def __init__(
        self,
        first: Recommender,
        second: Recommender,
        config: ScoreBlendConfig | None = None,
        *,
        fit_parts: bool = True,
        **overrides: Any,
    ) -> None:
        super().__init__(config, **overrides)
        self.first, self.second, self.fit_parts = first, second, fit_parts
        #: the weight of ``second`` (``mix_.weight``) and its validation curve (``mix_.curve``)
        self.mix_ = ScoreMix()
        #: the runner's per-run cache of shared fits, handed on to the parts (EASE fits once)
        self.shared_fits: Any = None
        # the parts answer users without history (a new-user path or their popularity)
        self.new_user_path = True

    def __repr__(self) -> str:
        return f"ScoreBlend({self.first!r}, {self.second!r})"

    def fit(self, train: sp.spmatrix, *, validate: Validator | None = None) -> Self:
        m = self._start_fit(train)
        if self.fit_parts:
            self.first = self._fit_part(self.first, train, validate)
            self.second = self._fit_part(self.second, train, validate)
        for part in (self.first, self.second):
            if part.n_items_ != m.shape[1]:
                raise KgrecError(f"{part.name} was fitted on another catalog than the blend's")
        self.mix_.weight = 0.0
        if validate is None:
            self.mix_.weight = self.config.default_weight
            return self
        w = self.mix_.choose(lambda: validate(self), blend_weights(self.config.steps))
        log.info("blend of %s and %s: weight %.2f (%s)", self.first.name, self.second.name, w,
                 self.mix_.curve)  # fmt: skip
        return self

    def _fit_part(self, part: Recommender, train: sp.spmatrix, validate: Validator | None) -> Any:
        cache = self.shared_fits
        if cache is not None and hasattr(part, "shared_fits"):
            part.shared_fits = cache
        if cache is not None and getattr(type(part), "shareable_fit", False):
            return cache.fitted(part, train, by="blend")[0]
        return part.fit(train, validate=validate)

    def _score(self, users: np.ndarray, history: sp.csr_matrix) -> torch.Tensor:
        return self.mix_(self.first.score(users, history), self.second.score(users, history))

    def save(self, path: str | Path, *, overwrite: bool = True) -> Path:
        """Not saved as one model: save its parts (a blend is rebuilt from them and its
        weight, ``ScoreBlend(first, second, fit_parts=False)``)."""
        raise KgrecError("a ScoreBlend is not saved as one model: save its two parts")
