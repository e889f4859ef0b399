"""Ranking metrics as labelled objects (``NDCG(20).label == "NDCG@20"``).

Every per-user metric reads one :class:`RankedBatch`: the top-``K`` item indices of a batch of
users (after masking), whether each slot holds a real recommendation, whether it is relevant, and
each user's number of relevant items. Definitions (``hits_i`` = relevant item at rank ``i``):

* ``Recall@K = sum(hits) / |relevant|`` (RecBole's definition; not capped at ``K``)
* ``Precision@K = sum(hits) / K``
* ``Hit@K = 1 if any hit``
* ``MRR@K = 1 / rank of the first hit`` (0 without a hit in the top ``K``)
* ``NDCG@K = DCG / IDCG`` with ``DCG = sum hits_i / log2(i + 1)`` (ranks from 1) and the ideal DCG
  from ``min(|relevant|, K)`` ones: the standard definition, not KGAT's inflated one that builds
  the ideal DCG from the hits inside the top ``K``.
* ``ColdShare@K``: share of a user's ``K`` recommendations that are cold items.
* ``Coverage@K`` (catalog level): share of the candidate items recommended to at least one user.

A slot without a real recommendation (score ``-inf`` or NaN: masked, or the model has nothing)
never counts as a hit, so a user without predictions scores 0 rather than being dropped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch


@dataclass(frozen=True)
class RankedBatch:
    """Top-``K`` lists of a batch of users, the inputs of every per-user metric.

    ``items`` (B, K) long, ``valid`` (B, K) bool (a real recommendation in that slot), ``hits``
    (B, K) bool (relevant and valid), ``n_relevant`` (B,) long, ``cold`` (B, K) bool or ``None``.
    """

    items: torch.Tensor
    valid: torch.Tensor
    hits: torch.Tensor
    n_relevant: torch.Tensor
    cold: torch.Tensor | None = None


@dataclass(frozen=True)
class Metric:
    """A per-user ranking metric at cutoff ``k``."""

    k: int
    name: ClassVar[str] = "metric"

    def __post_init__(self) -> None:
        if int(self.k) < 1:
            raise ValueError(f"{self.name}@k needs k >= 1, got {self.k}")

    @property
    def label(self) -> str:
        return f"{self.name}@{self.k}"

    def __str__(self) -> str:
        return self.label

    def compute(self, batch: RankedBatch) -> torch.Tensor:  # pragma: no cover - abstract
        """Per-user values, shape (B,), float64."""
        raise NotImplementedError


def _hits(batch: RankedBatch, k: int) -> torch.Tensor:
    return batch.hits[:, :k].to(torch.float64)


class Recall(Metric):
    name: ClassVar[str] = "Recall"

    def compute(self, batch: RankedBatch) -> torch.Tensor:
        n = batch.n_relevant.to(torch.float64)
        out = _hits(batch, self.k).sum(1) / n.clamp(min=1)
        return torch.where(n > 0, out, torch.zeros_like(out))


class Precision(Metric):
    name: ClassVar[str] = "Precision"

    def compute(self, batch: RankedBatch) -> torch.Tensor:
        return _hits(batch, self.k).sum(1) / self.k


class Hit(Metric):
    name: ClassVar[str] = "Hit"

    def compute(self, batch: RankedBatch) -> torch.Tensor:
        return (_hits(batch, self.k).sum(1) > 0).to(torch.float64)


class MRR(Metric):
    name: ClassVar[str] = "MRR"

    def compute(self, batch: RankedBatch) -> torch.Tensor:
        h = _hits(batch, self.k)
        ranks = torch.arange(1, h.shape[1] + 1, dtype=torch.float64)
        first = torch.where(h > 0, ranks, torch.full_like(h, math.inf)).min(1).values
        return torch.where(torch.isfinite(first), 1.0 / first, torch.zeros_like(first))


class NDCG(Metric):
    name: ClassVar[str] = "NDCG"

    def compute(self, batch: RankedBatch) -> torch.Tensor:
        h = _hits(batch, self.k)
        disc = 1.0 / torch.log2(torch.arange(2, h.shape[1] + 2, dtype=torch.float64))
        dcg = (h * disc).sum(1)
        ideal_n = batch.n_relevant.clamp(max=h.shape[1])
        cum = torch.cat([torch.zeros(1, dtype=torch.float64), disc.cumsum(0)])
        idcg = cum[ideal_n]
        return torch.where(idcg > 0, dcg / idcg.clamp(min=1e-300), torch.zeros_like(dcg))


class ColdShare(Metric):
    """Share of the ``k`` recommended items that are cold (0 when the protocol has none)."""

    name: ClassVar[str] = "ColdShare"

    def compute(self, batch: RankedBatch) -> torch.Tensor:
        if batch.cold is None:
            return torch.zeros(batch.items.shape[0], dtype=torch.float64)
        valid = batch.valid[:, : self.k]
        cold = (batch.cold[:, : self.k] & valid).to(torch.float64).sum(1)
        n = valid.to(torch.float64).sum(1)
        return torch.where(n > 0, cold / n.clamp(min=1), torch.zeros_like(n))


@dataclass(frozen=True)
class Coverage:
    """Catalog coverage at ``k``: distinct recommended items / number of candidate items."""

    k: int
    name: ClassVar[str] = "Coverage"

    @property
    def label(self) -> str:
        return f"{self.name}@{self.k}"

    def __str__(self) -> str:
        return self.label

    def compute(self, items: torch.Tensor, valid: torch.Tensor, n_candidates: int) -> float:
        """``items``/``valid``: (U, >=k) top lists of all evaluated users."""
        chosen = items[:, : self.k][valid[:, : self.k]]
        return float(torch.unique(chosen).numel()) / max(1, n_candidates)


METRIC_CLASSES: dict[str, type[Metric]] = {
    "recall": Recall,
    "precision": Precision,
    "hit": Hit,
    "mrr": MRR,
    "ndcg": NDCG,
    "coldshare": ColdShare,
}


def default_metrics(ks: tuple[int, ...] = (10, 20)) -> list[Metric]:
    """Recall, NDCG, Hit, MRR, Precision and ColdShare at each ``k`` (RecBole's set plus cold)."""
    out: list[Metric] = []
    for k in ks:
        out += [Recall(k), NDCG(k), Hit(k), MRR(k), Precision(k), ColdShare(k)]
    return out


def parse_metric(label: str) -> Metric:
    """``"NDCG@20"`` -> ``NDCG(20)`` (case-insensitive name)."""
    try:
        name, k = label.split("@")
        return METRIC_CLASSES[name.strip().lower()](int(k))
    except (ValueError, KeyError):
        raise ValueError(
            f"bad metric {label!r}: use NAME@K with NAME in {sorted(METRIC_CLASSES)}"
        ) from None
