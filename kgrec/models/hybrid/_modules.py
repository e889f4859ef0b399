"""The hybrid's building blocks as plain ``nn.Module``s that take tensors.

* :class:`RelationalSideEncoder`: relation-aware aggregation of entity embeddings into item (or
  user) vectors, ``side_i = sum_r softplus(w_r) * mean_{e in N_r(i)} E_e`` (one SpMM over the
  relation-stacked, row-normalised ``(R * n, n_entities)`` CSR matrix; KGIN-style relation
  weighting of one-hop knowledge, with scalar relation weights).
* :class:`GatedFusion`: ``content = side + P text``; ``x = g * id + (1 - g) * content`` with
  ``g = sigmoid(W [id; content])``: an item with no ID vector (cold, or ID-dropped during
  training, DropoutNet-style) is represented by its content alone.
* :class:`HybridModule`: ego vectors (users, fused items) propagated LightGCN-style over the
  symmetric-normalised user-item CSR adjacency, ``E = mean_l A_hat^l E^(0)``; cosine scores; the
  losses (sampled softmax or BPR ranking, optional pointwise BCE, TransE triple loss, InfoNCE
  text/graph alignment) live in :meth:`HybridModule.loss`.

Why entities enrich ego vectors instead of being propagation nodes: on ml-100k (seed 2020) putting
the KG entities into the propagation graph (dim 64, entities shared by >= 5 items) reached
validation NDCG@20 0.238, the ego variant (dim 256) 0.250, and propagation over the small user-item
graph is cheaper per epoch (notes/hybrid-proto/results.jsonl; not a like-for-like dimension
comparison, for lack of time).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

_SOFTPLUS_ONE = 0.5413  # softplus(0.5413) ~= 1: relation weights start at 1


class _SymSpMM(torch.autograd.Function):
    """``A @ x`` for a symmetric sparse CSR ``A``: the backward is ``A @ grad`` (no transpose of
    a CSR tensor, which is slow on CPU)."""

    @staticmethod
    def forward(ctx, a, x):  # type: ignore[override]
        ctx.a = a
        return a @ x

    @staticmethod
    def backward(ctx, grad):  # type: ignore[override]
        return None, ctx.a @ grad


class _SpMMT(torch.autograd.Function):
    """``A @ x`` with the transpose ``At`` given, for the backward ``At @ grad``."""

    @staticmethod
    def forward(ctx, a, at, x):  # type: ignore[override]
        ctx.at = at
        return a @ x

    @staticmethod
    def backward(ctx, grad):  # type: ignore[override]
        return None, None, ctx.at @ grad


def sym_spmm(a: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Differentiable product of a symmetric sparse CSR matrix with a dense matrix."""
    return _SymSpMM.apply(a, x)


def spmm(a: torch.Tensor, at: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Differentiable ``a @ x`` (``at``: the CSR transpose of ``a``, used in the backward)."""
    return _SpMMT.apply(a, at, x)


class RelationalSideEncoder(nn.Module):
    """``side = sum_r softplus(w_r) * M_r @ E`` over ``n_relations`` row-normalised link matrices
    stacked as one ``(R * n_targets, n_entities)`` CSR (``stack``/``stack_t`` set by
    :meth:`set_links`)."""

    def __init__(self, n_entities: int, n_relations: int, dim: int, *, init_std: float) -> None:
        super().__init__()
        self.n_entities, self.n_relations = n_entities, n_relations
        self.entity = nn.Embedding(n_entities, dim)
        nn.init.normal_(self.entity.weight, std=init_std)
        self.rel_weight = nn.Parameter(torch.zeros(n_relations))
        self.rel_vec = nn.Parameter(torch.zeros(n_relations, dim))  # TransE relation vectors
        self.stack: torch.Tensor | None = None
        self.stack_t: torch.Tensor | None = None

    def set_links(self, stack: torch.Tensor, stack_t: torch.Tensor) -> None:
        """The stacked link matrix and its transpose (torch sparse CSR), kept out of state_dict."""
        self.stack, self.stack_t = stack, stack_t

    def weights(self) -> torch.Tensor:
        return F.softplus(self.rel_weight + _SOFTPLUS_ONE)

    def forward(self, stack: torch.Tensor | None = None) -> torch.Tensor:
        """Side vectors of the linked targets (``stack`` overrides the stored links: inference on
        new items, no gradient)."""
        e = self.entity.weight
        if stack is None:
            if self.stack is None:
                raise RuntimeError("RelationalSideEncoder.set_links(...) must be called first")
            h = spmm(self.stack, self.stack_t, e)
        else:
            h = stack @ e
        h = h.view(self.n_relations, -1, e.shape[1])
        return (h * self.weights().view(-1, 1, 1)).sum(0)


class GatedFusion(nn.Module):
    """Projection of text vectors and a sigmoid gate between ID and content vectors."""

    def __init__(self, text_dim: int | None, dim: int, *, gate: bool = True) -> None:
        super().__init__()
        self.proj = nn.Linear(text_dim, dim) if text_dim else None
        self.gate = nn.Linear(2 * dim, dim) if gate else None

    def content(self, text: torch.Tensor | None, side: torch.Tensor | None) -> torch.Tensor | None:
        """``side + P text`` (either may be absent; ``None`` when both are)."""
        out = side
        if text is not None and self.proj is not None:
            t = self.proj(text)
            out = t if out is None else out + t
        return out

    def forward(self, ids: torch.Tensor, content: torch.Tensor | None) -> torch.Tensor:
        if content is None:
            return ids
        if self.gate is None:
            return ids + content
        g = torch.sigmoid(self.gate(torch.cat([ids, content], 1)))
        return g * ids + (1 - g) * content


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


class HybridModule(nn.Module):
    """Users, items (ID + text + relational side information, gated) and LightGCN propagation.

    Tensors set outside the state dict: the normalised ``(U + I, U + I)`` adjacency
    (:meth:`set_graph`), item text ``(I, d_text)``, the warm-item mask (items without training
    interactions never use their ID vector), and the side encoders' link matrices.
    """

    def __init__(
        self,
        n_users: int,
        n_items: int,
        dim: int,
        layers: int,
        *,
        text_dim: int | None = None,
        item_entities: int = 0,
        item_relations: int = 0,
        user_entities: int = 0,
        user_relations: int = 0,
        gate: bool = True,
        id_dropout: float = 0.0,
        user_dropout: float = 0.0,
        user_dropout_max_k: int = 20,
        init_std: float = 0.1,
        losses: LossWeights | None = None,
    ) -> None:
        super().__init__()
        self.n_users, self.n_items, self.layers = n_users, n_items, layers
        self.id_dropout = id_dropout
        #: user-ID dropout (:mod:`kgrec.models.hybrid._user_dropout`) in the ranking loss
        self.user_dropout, self.user_dropout_max_k = user_dropout, user_dropout_max_k
        self.losses = losses or LossWeights()
        self.user = nn.Embedding(n_users, dim)
        self.item = nn.Embedding(n_items, dim)
        nn.init.normal_(self.user.weight, std=init_std)
        nn.init.normal_(self.item.weight, std=init_std)
        self.item_side = (
            RelationalSideEncoder(item_entities, item_relations, dim, init_std=init_std)
            if item_entities and item_relations
            else None
        )
        self.user_side = (
            RelationalSideEncoder(user_entities, user_relations, dim, init_std=init_std)
            if user_entities and user_relations
            else None
        )
        has_content = bool(text_dim) or self.item_side is not None
        self.fusion = GatedFusion(text_dim, dim, gate=gate) if has_content else None
        self.adj: torch.Tensor | None = None
        self.text: torch.Tensor | None = None
        self.warm: torch.Tensor | None = None
        self.triples: torch.Tensor | None = None

    # ------------------------------------------------------------------ inputs
    def set_graph(self, adj: torch.Tensor, warm: torch.Tensor) -> None:
        """Normalised symmetric user-item adjacency (sparse CSR) and the warm-item bool mask."""
        self.adj, self.warm = adj, warm

    def set_text(self, text: torch.Tensor | None) -> None:
        self.text = text

    # ------------------------------------------------------------------ forward
    def item_content(
        self, text: torch.Tensor | None = None, links: torch.Tensor | None = None
    ) -> torch.Tensor | None:
        """Content vectors (text + side); ``text``/``links`` given: for new items."""
        if self.fusion is None:
            return None
        new = text is not None or links is not None
        side = None
        if self.item_side is not None and (links is not None or not new):
            side = self.item_side(links)
        txt = text if new else self.text
        return self.fusion.content(txt, side)

    def ego(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """(user ego, item ego, item content) before propagation."""
        ids = self.item.weight
        if self.warm is not None:
            ids = ids * self.warm.unsqueeze(1).to(ids.dtype)
        if self.training and self.id_dropout > 0:
            keep = torch.rand(self.n_items, 1, device=ids.device) >= self.id_dropout
            ids = ids * keep.to(ids.dtype)
        content = self.item_content()
        items = ids if self.fusion is None else self.fusion(ids, content)
        users = self.user.weight
        if self.user_side is not None:
            users = users + self.user_side()
        return users, items, content

    def propagate(self, x: torch.Tensor) -> torch.Tensor:
        if self.layers == 0:
            return x
        if self.adj is None:
            raise RuntimeError("HybridModule.set_graph(adj, warm) must be called first")
        out, h = x, x
        for _ in range(self.layers):
            h = sym_spmm(self.adj, h)
            out = out + h
        return out / (self.layers + 1)

    def forward(self) -> tuple[torch.Tensor, torch.Tensor]:
        """L2-normalised final (user, item) vectors: scores are cosines."""
        u, i, _ = self.ego()
        z = self.propagate(torch.cat([u, i], 0))
        z = F.normalize(z, dim=1)
        return z[: self.n_users], z[self.n_users :]

    def embed_new_items(
        self, text: torch.Tensor | None, links: torch.Tensor | None
    ) -> torch.Tensor:
        """Inductive item vectors from content alone (no ID, no interactions): the vector a cold
        item gets inside the graph, since an isolated node keeps ``x0 / (L + 1)`` and scores are
        cosines. ``links``: the stacked ``(R * n, n_entities)`` row-normalised link matrix."""
        if text is None and links is None:
            raise ValueError("embed_new_items needs text or links")
        if links is not None and self.item_side is None:
            links = None
        content = self.item_content(text, links)
        if content is None:
            raise RuntimeError("this model has neither text nor KG inputs: no inductive vectors")
        ids = torch.zeros_like(content)
        return F.normalize(self.fusion(ids, content), dim=1)

    # ------------------------------------------------------------------ losses
    def loss(self, batch: UserBatch) -> torch.Tensor:
        w = self.losses
        u_ego, i_ego, content = self.ego()
        z = F.normalize(self.propagate(torch.cat([u_ego, i_ego], 0)), dim=1)
        users, items = z[: self.n_users], z[self.n_users :]
        ub = users.index_select(0, batch.users)
        total = torch.zeros((), device=z.device)
        keep, shown = None, None
        if self.training and self.user_dropout > 0:
            from kgrec.models.hybrid._user_dropout import drop_user_ids

            d = drop_user_ids(
                ub,
                items,
                batch.rows,
                batch.pos,
                rate=self.user_dropout,
                max_k=self.user_dropout_max_k,
            )
            ub, keep, shown = d.users, d.keep, d.shown
        u_pair = ub.index_select(0, batch.rows)
        pos_s = (u_pair * items.index_select(0, batch.pos)).sum(1) / w.tau
        neg_s = (u_pair * items.index_select(0, batch.neg)).sum(1) / w.tau
        if keep is not None:
            pos_s, neg_s = pos_s[keep], neg_s[keep]
        rows = batch.rows if keep is None else batch.rows[keep]
        if w.beta > 0:
            if w.ranking == "softmax":
                logits = ub @ items.T / w.tau
                if shown is not None:  # a dropped user's shown items are input, not candidates
                    logits = logits.masked_fill(shown, -torch.inf)
                lse = torch.logsumexp(logits, dim=1)
                rank = (lse.index_select(0, rows) - pos_s).mean()
            else:
                rank = F.softplus(neg_s - pos_s).mean()
            total = total + w.beta * rank
        if w.alpha > 0:
            point = F.binary_cross_entropy_with_logits(
                torch.cat([pos_s, neg_s]),
                torch.cat([torch.ones_like(pos_s), torch.zeros_like(neg_s)]),
            )
            total = total + w.alpha * point
        if w.reg > 0:
            bi = torch.unique(torch.cat([batch.pos, batch.neg]))
            reg = (
                self.user.weight.index_select(0, batch.users).pow(2).sum()
                + self.item.weight.index_select(0, bi).pow(2).sum()
            )
            total = total + w.reg * reg / len(batch.users)
        if w.kg > 0 and self.item_side is not None and batch.triples is not None:
            h, r, t, tn = batch.triples
            ent = self.item_side.entity.weight
            rel = self.item_side.rel_vec
            head = F.normalize(i_ego.index_select(0, h), dim=1)
            tail = F.normalize(ent.index_select(0, t), dim=1)
            tneg = F.normalize(ent.index_select(0, tn), dim=1)
            rv = rel.index_select(0, r)
            d_pos = (head + rv - tail).pow(2).sum(1)
            d_neg = (head + rv - tneg).pow(2).sum(1)
            total = total + w.kg * F.softplus(d_pos - d_neg + w.kg_margin).mean()
        if w.align > 0 and content is not None:
            ib = torch.unique(batch.pos)
            cv = F.normalize(content.index_select(0, ib), dim=1)
            gv = items.index_select(0, ib)
            lg = cv @ gv.T / w.align_tau
            lab = torch.arange(len(ib), device=lg.device)
            total = total + w.align * 0.5 * (F.cross_entropy(lg, lab) + F.cross_entropy(lg.T, lab))
        return total


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
