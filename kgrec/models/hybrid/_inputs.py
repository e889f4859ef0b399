"""The hybrid's side inputs, aligned to the evaluation vocabularies: item text vectors and typed
item -> entity (and user -> entity) links taken from a :class:`~kgrec.graph.KnowledgeGraph`."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from kgrec.errors import DataError

if TYPE_CHECKING:
    from kgrec.data import Vocabulary
    from kgrec.graph import KnowledgeGraph

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SideLinks:
    """Typed links of ``n`` targets to one shared entity space: ``matrices[r]`` is the binary
    ``(n, len(entities))`` CSR of relation ``relations[r]``; ``entities`` holds ``"type:id"``
    keys."""

    relations: tuple[str, ...]
    entities: np.ndarray
    matrices: tuple[sp.csr_matrix, ...]

    def __post_init__(self) -> None:
        if len(self.relations) != len(self.matrices):
            raise DataError(f"{len(self.relations)} relations, {len(self.matrices)} matrices")
        for r, m in zip(self.relations, self.matrices, strict=True):
            if m.shape[1] != len(self.entities):
                raise DataError(
                    f"relation {r!r}: {m.shape[1]} entity columns, {len(self.entities)} entities"
                )

    @property
    def n_targets(self) -> int:
        return self.matrices[0].shape[0] if self.matrices else 0

    def stacked(self) -> sp.csr_matrix:
        """Row-normalised ``(R * n, n_entities)`` stack (each target's mean per relation)."""
        mats = []
        for m in self.matrices:
            deg = np.asarray(m.sum(1)).ravel()
            inv = np.where(deg > 0, 1.0 / np.maximum(deg, 1.0), 0.0).astype(np.float32)
            mats.append(sp.diags(inv) @ m)
        out = sp.vstack(mats).tocsr().astype(np.float32)
        out.sort_indices()
        return out

    def triples(self) -> np.ndarray:
        """``(3, T)`` int64 (target, relation, entity) of every link, for the TransE loss."""
        parts = []
        for r, m in enumerate(self.matrices):
            c = m.tocoo()
            parts.append(np.stack([c.row, np.full(c.nnz, r), c.col]).astype(np.int64))
        return np.concatenate(parts, 1) if parts else np.zeros((3, 0), np.int64)

    def links_for(self, rows: Sequence[Sequence[tuple[str, str]]]) -> sp.csr_matrix:
        """Stacked, row-normalised links of NEW targets from ``(relation, "type:id")`` pairs;
        unknown relations or entities are ignored (logged)."""
        rel = {r: k for k, r in enumerate(self.relations)}
        ent = {str(e): k for k, e in enumerate(self.entities)}
        mats = [sp.lil_matrix((len(rows), len(self.entities)), dtype=np.float32) for _ in rel]
        skipped = 0
        for i, pairs in enumerate(rows):
            for r, e in pairs:
                if r in rel and str(e) in ent:
                    mats[rel[r]][i, ent[str(e)]] = 1.0
                else:
                    skipped += 1
        if skipped:
            log.info("ignored %d links to relations/entities the model does not know", skipped)
        return SideLinks(self.relations, self.entities, tuple(m.tocsr() for m in mats)).stacked()


@dataclass(frozen=True)
class HybridInputs:
    """What the hybrid knows beyond interactions, row-aligned to the evaluation item (user)
    vocabulary: ``item_text`` ``(n_items, d)`` (zero rows: no text), ``item_links`` and
    ``user_links`` (:class:`SideLinks`, or ``None``)."""

    n_users: int
    n_items: int
    item_text: np.ndarray | None = None
    item_links: SideLinks | None = None
    user_links: SideLinks | None = None
    notes: tuple[str, ...] = field(default=())
    #: new-user path: user -> profile attribute links (min degree 1) and user x user friendships
    user_profile: SideLinks | None = None
    user_social: sp.csr_matrix | None = None

    def __post_init__(self) -> None:
        if self.item_text is not None and self.item_text.shape[0] != self.n_items:
            raise DataError(
                f"item_text has {self.item_text.shape[0]} rows for {self.n_items} items"
            )
        if self.item_links is not None and self.item_links.n_targets != self.n_items:
            raise DataError(f"item links cover {self.item_links.n_targets} of {self.n_items} items")
        if self.user_links is not None and self.user_links.n_targets != self.n_users:
            raise DataError(f"user links cover {self.user_links.n_targets} of {self.n_users} users")

    def describe(self) -> dict[str, Any]:
        def links(s: SideLinks | None) -> dict[str, Any] | None:
            if s is None:
                return None
            return {
                "relations": len(s.relations),
                "entities": len(s.entities),
                "links": int(sum(m.nnz for m in s.matrices)),
            }

        return {
            "text_dim": None if self.item_text is None else int(self.item_text.shape[1]),
            "items_with_text": None
            if self.item_text is None
            else int((np.abs(self.item_text).sum(1) > 0).sum()),
            "item_links": links(self.item_links),
            "user_links": links(self.user_links),
            "user_profile": links(self.user_profile),
            "user_social_links": None if self.user_social is None else int(self.user_social.nnz),
        }


def _align(vocab_ids: np.ndarray, target: Vocabulary) -> np.ndarray:
    """For each id of ``vocab_ids``: its index in ``target`` or -1."""
    idx = pd.Index(np.asarray(target.ids, dtype=object))
    return idx.get_indexer(pd.Index(np.asarray(vocab_ids, dtype=object)))


def links_from_graph(
    kg: KnowledgeGraph,
    node_type: str,
    vocab: Vocabulary,
    *,
    min_degree: int = 2,
    exclude_types: Sequence[str] = ("user", "item"),
) -> SideLinks | None:
    """Typed links of ``node_type`` nodes (aligned to ``vocab``) to entities of other types.

    Every forward edge type between ``node_type`` and a type not in ``exclude_types`` is one
    relation (either direction). Entities linked to fewer than ``min_degree`` targets are dropped:
    a leaf shared by no other target carries no signal between them.
    """
    rows_of = _align(kg.vocab(node_type).ids, vocab)
    rels: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
    for et in kg.forward_edge_types():
        src, rel, dst = et
        if src == node_type and dst not in exclude_types:
            e = kg.edge_index(et)
            t, other, ot = e[0], e[1], dst
        elif dst == node_type and src not in exclude_types:
            e = kg.edge_index(et)
            t, other, ot = e[1], e[0], src
        else:
            continue
        rows = rows_of[t]
        keep = rows >= 0
        keys = np.char.add(f"{ot}:", np.asarray(kg.vocab(ot).ids, dtype=str)[other[keep]])
        rels.setdefault(rel, []).append((rows[keep], keys))
    if not rels:
        return None
    all_rows = np.concatenate([r for parts in rels.values() for r, _ in parts])
    all_keys = np.concatenate([k for parts in rels.values() for _, k in parts])
    pairs = pd.DataFrame({"row": all_rows, "key": all_keys}).drop_duplicates()
    deg = pairs.groupby("key")["row"].nunique()
    kept = np.sort(deg.index[deg >= min_degree].to_numpy(dtype=str))
    if not len(kept):
        return None
    col = pd.Index(kept)
    names, mats = [], []
    for rel, parts in sorted(rels.items()):
        r = np.concatenate([p[0] for p in parts])
        c = col.get_indexer(np.concatenate([p[1] for p in parts]))
        ok = c >= 0
        if not ok.any():
            continue
        m = sp.csr_matrix(
            (np.ones(int(ok.sum()), np.float32), (r[ok], c[ok])), shape=(len(vocab), len(kept))
        )
        m.sum_duplicates()
        m.data[:] = 1.0
        names.append(rel)
        mats.append(m)
    if not mats:
        return None
    return SideLinks(tuple(names), kept.astype(object), tuple(mats))


def inputs_from_graph(
    kg: KnowledgeGraph | None,
    users: Vocabulary,
    items: Vocabulary,
    *,
    item_text: Any | None = None,
    min_degree: int = 2,
    user_links: bool = False,
) -> HybridInputs:
    """:class:`HybridInputs` for the evaluation vocabularies ``users``/``items`` from a graph
    and item text vectors (:class:`kgrec.text.EntityEmbeddings`, or an array row-aligned to
    ``items``)."""
    text = None
    notes = []
    if item_text is not None:
        if isinstance(item_text, np.ndarray):
            text = np.asarray(item_text, np.float32)
        else:
            pos = _align(items.ids, _IdsVocab(item_text.ids))
            text = np.zeros((len(items), item_text.vectors.shape[1]), np.float32)
            text[pos >= 0] = item_text.vectors[pos[pos >= 0]]
            if (pos < 0).any():
                notes.append(f"{int((pos < 0).sum())} items without a text vector (zeros)")
    il = ul = None
    if kg is not None:
        il = links_from_graph(kg, "item", items, min_degree=min_degree)
        if user_links:
            ul = links_from_graph(kg, "user", users, min_degree=min_degree)
    return HybridInputs(len(users), len(items), text, il, ul, tuple(notes))


class _IdsVocab:
    def __init__(self, ids: np.ndarray) -> None:
        self.ids = ids
