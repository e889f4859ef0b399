"""The hybrid's training objective: its weights (:class:`LossWeights`), its batch
(:class:`UserBatch`) and the loss terms on tensors, put together by :func:`hybrid_loss`
(:meth:`~kgrec.models.hybrid.HybridModule.loss`)::

    loss = beta * ranking + alpha * pointwise + reg * L2 + kg * TransE + align * InfoNCE

* ranking: the full softmax over all items at temperature ``tau`` (sampled-softmax family), or
  BPR against the sampled negative;
* pointwise: BCE of the positive and the negative pair's scores;
* L2 on the batch's ego ID vectors (users, positive and negative items), per batch user;
* TransE: ``softplus(d(h + r, t) - d(h + r, t') + margin)`` on normalised item ego vectors and
  entity vectors, ``t'`` a corrupted tail;
* InfoNCE alignment of the batch's items' content vectors with their graph vectors.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

if TYPE_CHECKING:
    from kgrec.models.hybrid._modules import HybridModule


@dataclass(frozen=True)
class LossWeights:
    """Weights of the loss terms: ``alpha * pointwise + beta * ranking + kg * TransE +
    align * InfoNCE + reg * L2(batch ego vectors)``."""

    ranking: str = "softmax"
    alpha: float = 0.0
    beta: float = 1.0
    kg: float = 0.0
    kg_margin: float = 1.0
    align: float = 0.0
    align_tau: float = 0.2
    tau: float = 0.15
    reg: float = 0.0


@dataclass(frozen=True)
class UserBatch:
    """A batch of users with their training positives as pairs: ``rows`` index ``users``;
    ``neg`` one sampled non-positive per pair; ``triples`` (item, relation, entity, corrupted
    entity) for the KG loss, or ``None``."""

    users: torch.Tensor
    rows: torch.Tensor
    pos: torch.Tensor
    neg: torch.Tensor
    triples: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor] | None = None


def ranking_loss(
    ub: torch.Tensor,
    items: torch.Tensor,
    rows: torch.Tensor,
    pos_s: torch.Tensor,
    neg_s: torch.Tensor,
    w: LossWeights,
    shown: torch.Tensor | None = None,
) -> torch.Tensor:
    """Full softmax (``-log softmax(ub @ items.T / tau)`` at each pair's positive; ``shown``
    items are masked out of a row's candidates) or BPR on the pair scores ``pos_s``/``neg_s``
    (already divided by ``tau``)."""
    if w.ranking == "softmax":
        logits = ub @ items.T / w.tau
        if shown is not None:  # a dropped user's shown items are input, not candidates
            logits = logits.masked_fill(shown, -torch.inf)
        lse = torch.logsumexp(logits, dim=1)
        return (lse.index_select(0, rows) - pos_s).mean()
    return F.softplus(neg_s - pos_s).mean()


def pointwise_loss(pos_s: torch.Tensor, neg_s: torch.Tensor) -> torch.Tensor:
    """BCE: positives labelled 1, negatives 0."""
    return F.binary_cross_entropy_with_logits(
        torch.cat([pos_s, neg_s]),
        torch.cat([torch.ones_like(pos_s), torch.zeros_like(neg_s)]),
    )


def l2_loss(user_w: torch.Tensor, item_w: torch.Tensor, batch: UserBatch) -> torch.Tensor:
    """Sum of the squared norms of the batch's user and (unique positive and negative) item ego
    vectors (:func:`hybrid_loss` divides it by the batch's user count)."""
    bi = torch.unique(torch.cat([batch.pos, batch.neg]))
    return (
        user_w.index_select(0, batch.users).pow(2).sum() + item_w.index_select(0, bi).pow(2).sum()
    )


def transe_loss(
    item_ego: torch.Tensor,
    entity: torch.Tensor,
    rel_vec: torch.Tensor,
    triples: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor],
    margin: float,
) -> torch.Tensor:
    """Margin loss of TransE distances, true tail against a corrupted one."""
    h, r, t, tn = triples
    head = F.normalize(item_ego.index_select(0, h), dim=1)
    tail = F.normalize(entity.index_select(0, t), dim=1)
    tneg = F.normalize(entity.index_select(0, tn), dim=1)
    rv = rel_vec.index_select(0, r)
    d_pos = (head + rv - tail).pow(2).sum(1)
    d_neg = (head + rv - tneg).pow(2).sum(1)
    return F.softplus(d_pos - d_neg + margin).mean()


def align_loss(
    content: torch.Tensor, items: torch.Tensor, pos: torch.Tensor, tau: float
) -> torch.Tensor:
    """Symmetric InfoNCE between the content and graph vectors of the batch's positive items
    (the sum of both directions: :func:`hybrid_loss` halves it)."""
    ib = torch.unique(pos)
    cv = F.normalize(content.index_select(0, ib), dim=1)
    gv = items.index_select(0, ib)
    lg = cv @ gv.T / tau
    lab = torch.arange(len(ib), device=lg.device)
    return F.cross_entropy(lg, lab) + F.cross_entropy(lg.T, lab)


def hybrid_loss(module: HybridModule, batch: UserBatch) -> torch.Tensor:
    """The weighted sum of the terms (see the module docstring) on one batch; in training with
    ``module.user_dropout`` > 0, a share of the batch's users is represented by a fold-in of
    some of their items (:mod:`kgrec.models.hybrid._user_dropout`)."""
    w = module.losses
    u_ego, i_ego, content = module.ego()
    z = F.normalize(module.propagate(torch.cat([u_ego, i_ego], 0)), dim=1)
    users, items = z[: module.n_users], z[module.n_users :]
    ub = users.index_select(0, batch.users)
    total = torch.zeros((), device=z.device)
    keep, shown = None, None
    if module.training and module.user_dropout > 0:
        from kgrec.models.hybrid._user_dropout import drop_user_ids

        d = drop_user_ids(
            ub,
            items,
            batch.rows,
            batch.pos,
            rate=module.user_dropout,
            max_k=module.user_dropout_max_k,
        )
        ub, keep, shown = d.users, d.keep, d.shown
    u_pair = ub.index_select(0, batch.rows)
    pos_s = (u_pair * items.index_select(0, batch.pos)).sum(1) / w.tau
    neg_s = (u_pair * items.index_select(0, batch.neg)).sum(1) / w.tau
    if keep is not None:
        pos_s, neg_s = pos_s[keep], neg_s[keep]
    rows = batch.rows if keep is None else batch.rows[keep]
    if w.beta > 0:
        total = total + w.beta * ranking_loss(ub, items, rows, pos_s, neg_s, w, shown)
    if w.alpha > 0:
        total = total + w.alpha * pointwise_loss(pos_s, neg_s)
    if w.reg > 0:
        reg = l2_loss(module.user.weight, module.item.weight, batch)
        total = total + w.reg * reg / len(batch.users)
    side = module.item_side
    if w.kg > 0 and side is not None and batch.triples is not None:
        kg = transe_loss(i_ego, side.entity.weight, side.rel_vec, batch.triples, w.kg_margin)
        total = total + w.kg * kg
    if w.align > 0 and content is not None:
        total = total + w.align * 0.5 * align_loss(content, items, batch.pos, w.align_tau)
    return total
