"""The hybrid's building blocks as plain ``nn.Module``s that take tensors.

* :class:`RelationalSideEncoder`: relation-aware aggregation of entity embeddings into item (or
  user) vectors, ``side_i = sum_r softplus(w_r) * mean_{e in N_r(i)} E_e`` (one SpMM over the
  relation-stacked, row-normalised ``(R * n, n_entities)`` CSR matrix; KGIN-style relation
  weighting of one-hop knowledge, with scalar relation weights).
* :class:`GatedFusion`: ``content = side + P text``; ``x = g * id + (1 - g) * content`` with
  ``g = sigmoid(W [id; content])``: an item with no ID vector (cold, or ID-dropped during
  training, DropoutNet-style) is represented by its content alone.
* :class:`HybridModule`: ego vectors (users, fused items) propagated LightGCN-style over the
  symmetric-normalised user-item CSR adjacency, ``E = mean_l A_hat^l E^(0)``; cosine scores; its
  loss (sampled softmax or BPR ranking, optional pointwise BCE, TransE triple loss, InfoNCE
  text/graph alignment) is :func:`kgrec.models.hybrid._losses.hybrid_loss`.

Their inputs (the adjacency, the warm-item mask, the item text, the link matrices) are given at
construction and held as non-persistent buffers: they move with the module (``.to(device)``) and
stay out of its ``state_dict``, so a saved network holds its learned weights only; a network
rebuilt from a save without them can still embed new items from the tensors passed in.

Why entities enrich ego vectors instead of being propagation nodes: on ml-100k (seed 2020) putting
the KG entities into the propagation graph (dim 64, entities shared by >= 5 items) reached
validation NDCG@20 0.238, the ego variant (dim 256) 0.250, and propagation over the small user-item
graph is cheaper per epoch (the prototype of ``bench/research/hybrid_ml100k/proto.py``; not a
like-for-like dimension comparison, for lack of time).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from kgrec.models.hybrid._losses import LossWeights, UserBatch, hybrid_loss

__all__ = [
    "GatedFusion",
    "HybridModule",
    "LossWeights",
    "RelationalSideEncoder",
    "UserBatch",
    "spmm",
    "sym_spmm",
]

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
    stacked as one ``(R * n_targets, n_entities)`` CSR. ``links``: that matrix and its CSR
    transpose (torch sparse CSR; non-persistent buffers ``stack``/``stack_t``), or ``None`` for
    a network that only embeds the links it is given (a loaded model)."""

    def __init__(
        self,
        n_entities: int,
        n_relations: int,
        dim: int,
        *,
        init_std: float,
        links: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> None:
        super().__init__()
        self.n_entities, self.n_relations = n_entities, n_relations
        self.entity = nn.Embedding(n_entities, dim)
        nn.init.normal_(self.entity.weight, std=init_std)
        self.rel_weight = nn.Parameter(torch.zeros(n_relations))
        self.rel_vec = nn.Parameter(torch.zeros(n_relations, dim))  # TransE relation vectors
        stack, stack_t = links if links is not None else (None, None)
        if stack is not None and stack.shape[1] != n_entities:
            raise ValueError(f"links over {stack.shape[1]} entities for {n_entities}")
        self.register_buffer("stack", stack, persistent=False)
        self.register_buffer("stack_t", stack_t, persistent=False)

    def weights(self) -> torch.Tensor:
        return F.softplus(self.rel_weight + _SOFTPLUS_ONE)

    def forward(self, stack: torch.Tensor | None = None) -> torch.Tensor:
        """Side vectors of the linked targets (``stack`` overrides the stored links: inference on
        new items, no gradient)."""
        e = self.entity.weight
        if stack is None:
            if self.stack is None:
                raise RuntimeError("this RelationalSideEncoder was built without its links")
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


class HybridModule(nn.Module):
    """Users, items (ID + text + relational side information, gated) and LightGCN propagation.

    Inputs, held as non-persistent buffers (outside the state dict): ``adj`` the normalised
    ``(U + I, U + I)`` adjacency (sparse CSR), ``warm`` the warm-item bool mask (items without
    training interactions never use their ID vector), ``text`` the item text ``(I, d_text)``
    (``text_dim`` is taken from it when not given), and ``item_links``/``user_links`` each side
    encoder's stacked link matrix with its transpose. A network built without them (a loaded
    model) has its weights only: it embeds new items from the text and links passed to
    :meth:`embed_new_items`.
    """

    def __init__(
        self,
        n_users: int,
        n_items: int,
        dim: int,
        layers: int,
        *,
        adj: torch.Tensor | None = None,
        warm: torch.Tensor | None = None,
        text: torch.Tensor | None = None,
        item_links: tuple[torch.Tensor, torch.Tensor] | None = None,
        user_links: tuple[torch.Tensor, torch.Tensor] | None = None,
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
        if text is not None:
            if text_dim is not None and text_dim != text.shape[1]:
                raise ValueError(f"text vectors of dim {text.shape[1]}, text_dim {text_dim}")
            text_dim = int(text.shape[1])
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
            RelationalSideEncoder(
                item_entities, item_relations, dim, init_std=init_std, links=item_links
            )
            if item_entities and item_relations
            else None
        )
        self.user_side = (
            RelationalSideEncoder(
                user_entities, user_relations, dim, init_std=init_std, links=user_links
            )
            if user_entities and user_relations
            else None
        )
        has_content = bool(text_dim) or self.item_side is not None
        self.fusion = GatedFusion(text_dim, dim, gate=gate) if has_content else None
        self.register_buffer("adj", adj, persistent=False)
        self.register_buffer("warm", warm, persistent=False)
        self.register_buffer("text", text, persistent=False)

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
            raise RuntimeError("this HybridModule was built without its adjacency (adj)")
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

    # ------------------------------------------------------------------ loss
    def loss(self, batch: UserBatch) -> torch.Tensor:
        """The training loss on ``batch`` (:func:`kgrec.models.hybrid._losses.hybrid_loss`)."""
        return hybrid_loss(self, batch)
