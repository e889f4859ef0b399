"""EASE: an item-item linear autoencoder with a closed-form solution.

Steck, "Embarrassingly Shallow Autoencoders for Sparse Data", WWW 2019::

    P = (X^T X + lambda I)^-1,   B_ij = -P_ij / P_jj (i != j),   B_ii = 0,   score(u) = x_u B

``reg`` is ``lambda`` (RecBole's default ``reg_weight`` 250). Memory and time grow with
``n_items^2`` / ``n_items^3``: for catalogs up to a few tens of thousands of items.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import numpy as np
import scipy.sparse as sp
import torch

from kgrec.errors import DataError
from kgrec.models._base import Recommender, Validator, WeightedConfig


@dataclass(frozen=True)
class EASEConfig(WeightedConfig):
    """``reg``: L2 weight lambda; ``max_items`` guards against an accidental n^2 blow-up;
    ``weights``: ``none`` (binary), ``count`` or ``log`` (log1p) of the interaction weights."""

    reg: float = 250.0
    max_items: int = 50_000

    def validate(self) -> None:
        super().validate()
        self._require("reg", self.reg > 0, "reg must be > 0")
        self._require("max_items", self.max_items >= 1, "max_items must be >= 1")


def ease_memory_bytes(n_items: int) -> int:
    """Peak memory of :meth:`EASE.fit`: the dense float64 Gram matrix and its inverse, one
    float64 temporary of the same size and the float32 weights (``3.5 * 8 * n^2`` bytes)."""
    return int(3.5 * 8 * int(n_items) ** 2)


def available_memory_bytes() -> int | None:
    """``MemAvailable`` from ``/proc/meminfo`` (Linux), else ``None`` (no check)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


class EASE(Recommender):
    """Closed-form item-item model."""

    name = "ease"
    config_class = EASEConfig
    #: the fit is a deterministic function of (config, training matrix): one run fits it once and
    #: shares it (:class:`kgrec.train.FitCache`), e.g. with the hybrid's EASE blend
    shareable_fit = True

    def fit(self, train: sp.spmatrix, *, validate: Validator | None = None) -> Self:
        m = self._start_fit(train)
        n = m.shape[1]
        if n > self.config.max_items:
            raise DataError(
                f"EASE on {n:,} items needs a dense {n:,}x{n:,} inverse; raise max_items if "
                "you mean it"
            )
        need = ease_memory_bytes(n)
        avail = available_memory_bytes()
        if avail is not None and need > avail:
            raise DataError(
                f"EASE on {n:,} items needs about {need / 2**30:.1f} GiB (dense {n:,}x{n:,} "
                f"float64 Gram matrix, its inverse and the float32 weights) but only "
                f"{avail / 2**30:.1f} GiB of memory is available; use itemknn, or a machine "
                "with more memory"
            )
        g = torch.from_numpy((m.T @ m).toarray().astype(np.float64))
        g += self.config.reg * torch.eye(n, dtype=torch.float64)
        p = torch.linalg.inv(g)
        b = -p / torch.diagonal(p)[None, :]
        b.fill_diagonal_(0.0)
        self.b_ = b.to(torch.float32).numpy()
        return self

    @classmethod
    def from_weights(
        cls, b: np.ndarray, train: sp.csr_matrix, config: EASEConfig | None = None
    ) -> EASE:
        """An EASE with item-item weights ``b`` fitted earlier on ``train`` (a saved hybrid's
        blend): scores exactly as the fitted model did, without the inverse."""
        model = cls(config)
        model.train_ = train
        model.n_users_, model.n_items_ = train.shape
        model.b_ = np.asarray(b, np.float32)
        return model

    def _score(self, users: np.ndarray, history: sp.csr_matrix) -> torch.Tensor:
        return torch.from_numpy(np.asarray(history @ self.b_, dtype=np.float32))

    def _state(self) -> dict[str, np.ndarray]:
        return {**super()._state(), "b": self.b_}

    def _set_state(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        super()._set_state(arrays, meta)
        self.b_ = arrays["b"]
