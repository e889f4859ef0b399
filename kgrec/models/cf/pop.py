"""Popularity: every user gets the items with the most training interactions.

``score(u, i) = |{v : (v, i) in train}|`` (RecBole's ``Pop`` divides by the maximum, which does not
change the ranking).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Self

import numpy as np
import scipy.sparse as sp
import torch

from kgrec.models._base import Recommender, Validator, WeightedConfig


@dataclass(frozen=True)
class PopConfig(WeightedConfig):
    """``weights``: ``none`` (count users), ``count`` or ``log`` (sum the interaction weights,
    or their log1p)."""


class Popularity(Recommender):
    """Most-popular-items baseline (non-personalised)."""

    name = "pop"
    config_class = PopConfig

    def fit(self, train: sp.spmatrix, *, validate: Validator | None = None) -> Self:
        m = self._start_fit(train)
        self.counts_ = np.asarray(m.sum(axis=0)).ravel().astype(np.float32)
        return self

    def _score(self, users: np.ndarray, history: sp.csr_matrix) -> torch.Tensor:
        return torch.from_numpy(self.counts_).unsqueeze(0).expand(len(users), -1).clone()

    def _state(self) -> dict[str, np.ndarray]:
        return {**super()._state(), "counts": self.counts_}

    def _set_state(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        super()._set_state(arrays, meta)
        self.counts_ = arrays["counts"]
