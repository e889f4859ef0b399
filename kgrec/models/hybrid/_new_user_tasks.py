"""The new-user path's validation: users treated as new (:class:`ValidTask`: the ``k`` items
they show, the items to rank), carved from the training users (:func:`carve_validation`) or
given, and the metric the path's choices are made on (:func:`ndcg20`). Used by the new-user
model (:mod:`kgrec.models.hybrid._new_user_model`) and the user encoder trained for it
(:mod:`kgrec.models.hybrid._user_encoder`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp
import torch

from kgrec.errors import KgrecError

if TYPE_CHECKING:
    from kgrec.models.hybrid._new_user_model import NewUserConfig


def dense(m: sp.spmatrix) -> torch.Tensor:
    """A sparse matrix as a dense float32 tensor."""
    return torch.from_numpy(np.asarray(m.toarray(), dtype=np.float32))


@dataclass(frozen=True)
class ValidTask:
    """Validation users treated as new: ``users`` (rows of the user-side matrices), the ``k``
    items they show (``shown``, CSR rows over the items) and the items to rank (``targets``)."""

    k: int
    users: np.ndarray
    shown: sp.csr_matrix
    targets: sp.csr_matrix


def ndcg20(scores: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """NDCG@20 per row (``mask``: items excluded from ranking; ideal DCG of min(|rel|, 20))."""
    s = scores.masked_fill(mask, -torch.inf)
    k = min(20, s.shape[1])
    top = s.topk(k, dim=1).indices
    disc = 1.0 / torch.log2(torch.arange(2, k + 2, dtype=torch.float32))
    dcg = (targets.gather(1, top) * disc).sum(1)
    n = targets.sum(1).clamp(max=k).long()
    idcg = torch.cumsum(disc, 0)[(n - 1).clamp(min=0)]
    return torch.where(n > 0, dcg / idcg, torch.zeros_like(dcg))


def carve_validation(
    train: sp.csr_matrix, config: NewUserConfig, seed: int
) -> tuple[sp.csr_matrix, list[ValidTask]]:
    """Validation users carved from the training users (seeded ``valid_share`` of those with
    ``min_items``+ items; items in a seeded order, the first ``k`` shown): the training
    matrix without their rows, and their tasks for every ``k`` in ``valid_ks``."""
    c = config
    rng = np.random.default_rng(seed)
    n_users = train.shape[0]
    deg = train.getnnz(axis=1)
    cand = np.flatnonzero(deg >= c.min_items)
    if len(cand) < 10:  # small data: every user with 2+ items (tasks need k < |items|)
        cand = np.flatnonzero(deg >= 2)
    if len(cand) < 10:
        raise KgrecError("the new-user path needs >= 10 training users with 2+ items")
    val = np.sort(rng.permutation(cand)[: max(5, round(c.valid_share * len(cand)))])
    keep = np.ones(n_users, np.float32)
    keep[val] = 0.0
    rest = sp.csr_matrix(sp.diags(keep) @ train)
    rest.eliminate_zeros()
    rows = dense(train[val])
    noise = torch.from_numpy(rng.random(rows.shape).astype(np.float32))
    rank = torch.where(rows > 0, noise, torch.full_like(noise, 2.0)).argsort(1).argsort(1)
    tasks = []
    for k in sorted(set(c.valid_ks)):
        shown = (rank < k).float() * rows
        ok = (rows.sum(1) > k).numpy()
        tasks.append(
            ValidTask(
                k,
                val[ok],
                sp.csr_matrix(shown[ok].numpy()),
                sp.csr_matrix((rows - shown)[ok].numpy()),
            )
        )
    return rest, tasks
