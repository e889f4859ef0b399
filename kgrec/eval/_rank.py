"""Full-ranking evaluation: batched top-k in torch with explicit masking.

A :class:`RankingTask` says exactly what is evaluated: which users, which items are their targets,
which items are masked for each user before top-k (training items; at test time validation items
too), which items are candidates at all (e.g. only cold items), and which history the model sees.
:func:`evaluate` scores users in batches, sets masked and non-candidate items to ``-inf``, takes
the top ``K`` and computes every metric per user. Every user of the task gets a row: a user the
model cannot score (all ``-inf``/NaN) scores 0.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from kgrec.eval._metrics import Coverage, Metric, RankedBatch

#: scores(users, history_rows) -> (B, n_items) tensor; history_rows is a CSR slice
ScoreFn = Callable[[np.ndarray, sp.csr_matrix], torch.Tensor]


@dataclass(frozen=True, eq=False)
class RankingTask:
    """One full-ranking evaluation.

    ``targets``/``mask``/``history``: ``n_users x n_items`` CSR. ``candidates``: boolean per item
    (``None`` = every item). ``cold``: boolean per item, for the cold-share metric.
    """

    name: str
    users: np.ndarray
    targets: sp.csr_matrix
    mask: sp.csr_matrix
    history: sp.csr_matrix
    candidates: np.ndarray | None = None
    cold: np.ndarray | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def n_items(self) -> int:
        return self.targets.shape[1]

    @property
    def n_candidates(self) -> int:
        return self.n_items if self.candidates is None else int(self.candidates.sum())

    def describe(self) -> dict:
        """What is ranked, masked and counted (goes into reports)."""
        t = self.targets[self.users]
        return {
            "task": self.name,
            "users": len(self.users),
            "targets": int(t.nnz),
            "candidates": self.n_candidates,
            "masked_per_user_mean": float(self.mask[self.users].getnnz(axis=1).mean())
            if len(self.users)
            else 0.0,
            "notes": list(self.notes),
        }


def _rows_dense(m: sp.csr_matrix, rows: np.ndarray) -> torch.Tensor:
    sub = m[rows]
    out = torch.zeros(sub.shape, dtype=torch.bool)
    r = np.repeat(np.arange(sub.shape[0]), np.diff(sub.indptr))
    out[torch.from_numpy(r), torch.from_numpy(sub.indices.astype(np.int64))] = True
    return out


def break_ties(scores: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """``scores`` (float32) as float64 plus a random jitter below half a float32 ulp.

    Distinct float32 scores keep their order (their gap is at least one ulp of the lower one)
    while equal scores are put in a random order, independently per user and item. Breaking
    ties by item index instead is not neutral: index order follows the source file, which in
    ml-100k puts popular items first, so a model that scores many items equally (all zeros for
    cold items) would look as good as popularity. Infinite scores stay as they are.
    """
    s32 = scores.to(torch.float32)
    ulp = (torch.nextafter(s32, torch.full_like(s32, torch.inf)) - s32).to(torch.float64)
    jitter = torch.rand(s32.shape, generator=generator).to(torch.float64) * 0.49 * ulp
    out = s32.to(torch.float64)
    finite = torch.isfinite(out)
    return torch.where(finite, out + torch.nan_to_num(jitter, nan=0.0, posinf=0.0), out)


def topk_masked(
    scores: torch.Tensor,
    k: int,
    *,
    mask: torch.Tensor | None = None,
    candidates: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-``k`` item indices of ``scores`` (B, n) after setting masked / non-candidate items and
    NaNs to ``-inf``. Returns ``(items, valid)`` where ``valid`` marks slots with a finite score.
    With a ``generator``, tied scores are ordered at random (:func:`break_ties`); without, ties
    are left to ``torch.topk``."""
    s = scores.detach().to(torch.float32).clone()
    s[torch.isnan(s)] = -torch.inf
    if mask is not None:
        s.masked_fill_(mask, -torch.inf)
    if candidates is not None:
        s.masked_fill_(~candidates.unsqueeze(0), -torch.inf)
    k = min(k, s.shape[1])
    if generator is not None:
        s = break_ties(s, generator)
    vals, idx = torch.topk(s, k, dim=1, sorted=True)
    return idx, torch.isfinite(vals)


@dataclass
class EvalResult:
    """Per-user metric values of one task (``per_user``: one row per user, one column per metric)
    plus catalog-level values and the top-k lists."""

    task: str
    per_user: pd.DataFrame
    catalog: dict[str, float]
    topk: np.ndarray

    def mean(self) -> dict[str, float]:
        cols = [c for c in self.per_user.columns if c != "user"]
        out = {c: float(self.per_user[c].mean()) for c in cols}
        out.update(self.catalog)
        return out


def evaluate(
    score: ScoreFn,
    task: RankingTask,
    metrics: Sequence[Metric],
    *,
    catalog: Sequence[Coverage] = (),
    batch_size: int = 1024,
    tie_seed: int | None = 0,
) -> EvalResult:
    """Evaluate ``score`` on ``task``: one row per task user, never dropping any.

    Score ties are broken at random from ``tie_seed`` (for tied scores the result can depend on
    ``batch_size``); ``None`` leaves ties to ``torch.topk`` (in practice: by item index)."""
    if not metrics:
        raise ValueError("evaluate needs at least one metric")
    kmax = max([m.k for m in metrics] + [c.k for c in catalog])
    cand = None if task.candidates is None else torch.from_numpy(task.candidates.astype(bool))
    cold = None if task.cold is None else torch.from_numpy(task.cold.astype(bool))
    gen = None if tie_seed is None else torch.Generator().manual_seed(int(tie_seed))
    values: dict[str, list[torch.Tensor]] = {m.label: [] for m in metrics}
    tops: list[torch.Tensor] = []
    valids: list[torch.Tensor] = []
    users = np.asarray(task.users, dtype=np.int64)
    for start in range(0, len(users), batch_size):
        ub = users[start : start + batch_size]
        with torch.no_grad():
            s = score(ub, task.history[ub])
        if s.shape != (len(ub), task.n_items):
            raise ValueError(
                f"model returned scores of shape {tuple(s.shape)}, expected {(len(ub), task.n_items)}"
            )
        items, valid = topk_masked(
            s,
            kmax,
            mask=_rows_dense(task.mask, ub),
            candidates=cand,
            generator=gen,
        )
        rel = _rows_dense(task.targets, ub)
        hits = rel.gather(1, items) & valid
        batch = RankedBatch(
            items=items,
            valid=valid,
            hits=hits,
            n_relevant=rel.sum(1),
            cold=None if cold is None else cold[items],
        )
        for m in metrics:
            values[m.label].append(m.compute(batch))
        tops.append(items)
        valids.append(valid)
    frame = pd.DataFrame({"user": users})
    for label, parts in values.items():
        frame[label] = torch.cat(parts).numpy() if parts else np.zeros(0)
    top = torch.cat(tops) if tops else torch.zeros((0, kmax), dtype=torch.long)
    val = torch.cat(valids) if valids else torch.zeros((0, kmax), dtype=torch.bool)
    cat = {c.label: c.compute(top, val, task.n_candidates) for c in catalog}
    top_np = np.where(val.numpy(), top.numpy(), -1)
    return EvalResult(task=task.name, per_user=frame, catalog=cat, topk=top_np)
