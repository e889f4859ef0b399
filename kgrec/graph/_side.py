"""The graph -> side-information API: typed entity links of users or items, for every model
that reads content from a :class:`~kgrec.graph.KnowledgeGraph` (the hybrid's inputs, the
cold-start baselines, the serving content model) and for the user profile / friendships.

* :func:`entity_links`: per relation, the binary ``targets x entities`` matrix of the links of
  one node type (aligned to a vocabulary or id list) to entities of other types, entities linked
  to fewer than ``min_degree`` targets dropped (a :class:`SideLinks`; ``union()`` is the bag);
* :func:`friendships`: the symmetric user x user matrix of the user -> user edges;
* :func:`align_ids`: each id's row in a target vocabulary (or -1).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from kgrec.errors import DataError

if TYPE_CHECKING:
    from kgrec.graph._kg import KnowledgeGraph

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

    def union(self) -> sp.csr_matrix:
        """The binary ``(n, n_entities)`` bag: a link in any relation is a 1."""
        if not self.matrices:
            return sp.csr_matrix((0, len(self.entities)), dtype=np.float32)
        m = sp.csr_matrix(sum(self.matrices), dtype=np.float32)
        m.data[:] = 1.0
        return m


def align_ids(ids: Any, target: Any) -> np.ndarray:
    """For each id of ``ids``: its index in ``target`` (a vocabulary or an id array) or -1."""
    idx = pd.Index(np.asarray(getattr(target, "ids", target), dtype=object))
    return idx.get_indexer(pd.Index(np.asarray(ids, dtype=object)))


def entity_links(
    kg: KnowledgeGraph,
    node_type: str,
    targets: Any,
    *,
    min_degree: int = 2,
    exclude_types: Sequence[str] = ("user", "item"),
) -> SideLinks | None:
    """Typed links of ``node_type`` nodes (rows aligned to ``targets``: a vocabulary or an id
    array) to entities of other types; ``None`` where there are none.

    Every forward edge type between ``node_type`` and a type not in ``exclude_types`` is one
    relation (either direction). Entities linked to fewer than ``min_degree`` targets are dropped:
    a leaf shared by no other target carries no signal between them.
    """
    n = len(getattr(targets, "ids", targets))
    rows_of = align_ids(kg.vocab(node_type).ids, targets)
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
            (np.ones(int(ok.sum()), np.float32), (r[ok], c[ok])), shape=(n, len(kept))
        )
        m.sum_duplicates()
        m.data[:] = 1.0
        names.append(rel)
        mats.append(m)
    if not mats:
        return None
    return SideLinks(tuple(names), kept.astype(object), tuple(mats))


def friendships(kg: KnowledgeGraph, users: Any) -> sp.csr_matrix | None:
    """The symmetric binary user x user matrix (rows aligned to ``users``) of every user -> user
    edge type of ``kg``; ``None`` without such edges. Self-links are dropped."""
    if "user" not in kg.node_types:
        return None
    n = len(getattr(users, "ids", users))
    rows_of = align_ids(kg.vocab("user").ids, users)
    social = None
    for et in kg.forward_edge_types():
        src, _, dst = et
        if src == "user" and dst == "user":
            e = kg.edge_index(et)
            a, b = rows_of[e[0]], rows_of[e[1]]
            ok = (a >= 0) & (b >= 0) & (a != b)
            m = sp.csr_matrix((np.ones(int(ok.sum()), np.float32), (a[ok], b[ok])), shape=(n, n))
            social = m if social is None else social + m
    if social is not None:
        social = sp.csr_matrix(social + social.T)
        social.data[:] = 1.0
    return social
