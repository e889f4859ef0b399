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

from kgrec._topk import topk_masked
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


def _rows_coo(m: sp.csr_matrix, rows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """(local row, column) index tensors of the stored entries of ``m[rows]``."""
    sub = m[rows]
    r = np.repeat(np.arange(sub.shape[0], dtype=np.int64), np.diff(sub.indptr))
    return torch.from_numpy(r), torch.from_numpy(sub.indices.astype(np.int64))


def _hits_sparse(targets: sp.csr_matrix, rows: np.ndarray, items: torch.Tensor) -> torch.Tensor:
    """``items`` (B, K) in ``targets[rows]``? By a sorted-key lookup: no dense (B, n) matrix."""
    sub = targets[rows]
    sub.sort_indices()
    n = sub.shape[1]
    r = np.repeat(np.arange(sub.shape[0], dtype=np.int64), np.diff(sub.indptr))
    keys = r * n + sub.indices.astype(np.int64)  # sorted: rows, then sorted indices
    if keys.size == 0:
        return torch.zeros(items.shape, dtype=torch.bool)
    q = (np.arange(items.shape[0], dtype=np.int64)[:, None] * n + items.numpy()).ravel()
    pos = np.minimum(np.searchsorted(keys, q), keys.size - 1)
    return torch.from_numpy((keys[pos] == q).reshape(items.shape))


def auto_batch_size(n_items: int, *, budget_bytes: int = 256 * 2**20) -> int:
    """Users per evaluation batch so that one ``(B, n_items)`` float32 score block (plus the
    model's own temporaries, counted as 3 more) stays within ``budget_bytes``; 64..8192."""
    per_user = max(1, int(n_items)) * 4 * 4
    return int(min(8192, max(64, budget_bytes // per_user)))


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
    batch_size: int | None = None,
    tie_seed: int | None = 0,
    progress: bool = False,
) -> EvalResult:
    """Evaluate ``score`` on ``task``: one row per task user, never dropping any.

    Score ties are broken at random from ``tie_seed`` (for tied scores the result can depend on
    ``batch_size``); ``None`` leaves ties to ``torch.topk`` (in practice: by item index).
    ``batch_size=None`` picks it from the catalog size (:func:`auto_batch_size`); ``progress``
    shows a progress bar on stderr when there is more than one batch."""
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
    n_rel = task.targets[users].getnnz(axis=1).astype(np.int64)
    if batch_size is None:
        batch_size = auto_batch_size(task.n_items)
    bar = None
    if progress and len(users) > batch_size:
        from tqdm import tqdm

        bar = tqdm(
            total=len(users), desc=f"eval {task.name}", unit="user", leave=False, mininterval=2.0
        )
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
            mask=_rows_coo(task.mask, ub),
            candidates=cand,
            generator=gen,
        )
        hits = _hits_sparse(task.targets, ub, items) & valid
        batch = RankedBatch(
            items=items,
            valid=valid,
            hits=hits,
            n_relevant=torch.from_numpy(n_rel[start : start + batch_size]),
            cold=None if cold is None else cold[items],
        )
        for m in metrics:
            values[m.label].append(m.compute(batch))
        tops.append(items)
        valids.append(valid)
        if bar is not None:
            bar.update(len(ub))
    if bar is not None:
        bar.close()
    frame = pd.DataFrame({"user": users})
    for label, parts in values.items():
        frame[label] = torch.cat(parts).numpy() if parts else np.zeros(0)
    top = torch.cat(tops) if tops else torch.zeros((0, kmax), dtype=torch.long)
    val = torch.cat(valids) if valids else torch.zeros((0, kmax), dtype=torch.bool)
    cat = {c.label: c.compute(top, val, task.n_candidates) for c in catalog}
    top_np = np.where(val.numpy(), top.numpy(), -1)
    return EvalResult(task=task.name, per_user=frame, catalog=cat, topk=top_np)
