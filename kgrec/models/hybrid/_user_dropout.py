"""User-ID dropout for the hybrid's training (DropoutNet on the user side): in each batch a
share ``rate`` of the users (those with 2+ training items) lose their own vector and are
represented, as a new user would be, by the fold-in of ``k`` of their training items (``k``
log-uniform in ``1..max_k``, at most their item count - 1); the loss ranks their other items.
The item vectors are thereby trained so that a few known items make a good user vector, which
is what the new-user path scores users without a training row with.

Plain tensor code called from :meth:`kgrec.models.hybrid.HybridModule.loss`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class DroppedUsers:
    """The batch's user vectors with the dropped users' replaced (``users``), which (user, item)
    pairs are still targets (``keep``: the shown items of a dropped user are its input, not a
    target), and the shown items per batch row (``shown``, bool ``(B, n_items)``)."""

    users: torch.Tensor
    keep: torch.Tensor
    shown: torch.Tensor


def drop_user_ids(
    user_vecs: torch.Tensor,
    item_vecs: torch.Tensor,
    rows: torch.Tensor,
    pos: torch.Tensor,
    *,
    rate: float,
    max_k: int,
) -> DroppedUsers:
    """``user_vecs`` ``(B, d)`` of a batch whose positives are the pairs ``(rows, pos)``;
    ``item_vecs`` ``(n_items, d)`` the (normalised, propagated) item vectors."""
    b, dev = user_vecs.shape[0], user_vecs.device
    n_items = item_vecs.shape[0]
    deg = torch.bincount(rows, minlength=b)
    drop = (torch.rand(b, device=dev) < rate) & (deg >= 2)
    k = (torch.rand(b, device=dev) * math.log(max_k + 1)).exp().floor()
    k = torch.minimum(k.clamp(min=1), (deg - 1).clamp(min=1).to(k.dtype)).long()
    # rank of each pair among its user's pairs, in a random order
    order = torch.argsort(rows.to(torch.float64) * 2 + torch.rand(len(rows), device=dev))
    start = torch.cumsum(deg, 0) - deg
    rank = torch.empty_like(rows)
    rank[order] = torch.arange(len(rows), device=dev) - start[rows[order]]
    shown_pair = drop[rows] & (rank < k[rows])
    shown = torch.zeros(b, n_items, dtype=torch.bool, device=dev)
    shown[rows[shown_pair], pos[shown_pair]] = True
    fold = shown.to(item_vecs.dtype) @ item_vecs
    users = torch.where(drop.unsqueeze(1), F.normalize(fold, dim=1), user_vecs)
    return DroppedUsers(users=users, keep=~shown_pair, shown=shown)
