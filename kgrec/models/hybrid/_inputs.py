"""The hybrid's side inputs, aligned to the evaluation vocabularies: item text vectors and typed
item -> entity (and user -> entity) links taken from a :class:`~kgrec.graph.KnowledgeGraph`
through the graph's side-information API (:func:`kgrec.graph.entity_links`, whose
:class:`~kgrec.graph.SideLinks` is re-exported here; ``links_from_graph`` is its old name)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

from kgrec.errors import DataError
from kgrec.graph._side import SideLinks as SideLinks
from kgrec.graph._side import align_ids, entity_links
from kgrec.graph._side import entity_links as links_from_graph  # noqa: F401 (old name)

if TYPE_CHECKING:
    from kgrec.data import Vocabulary
    from kgrec.graph import KnowledgeGraph

log = logging.getLogger(__name__)


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
            pos = align_ids(items.ids, item_text.ids)
            text = np.zeros((len(items), item_text.vectors.shape[1]), np.float32)
            text[pos >= 0] = item_text.vectors[pos[pos >= 0]]
            if (pos < 0).any():
                notes.append(f"{int((pos < 0).sum())} items without a text vector (zeros)")
    il = ul = None
    if kg is not None:
        il = entity_links(kg, "item", items, min_degree=min_degree)
        if user_links:
            ul = entity_links(kg, "user", users, min_degree=min_degree)
    return HybridInputs(len(users), len(items), text, il, ul, tuple(notes))
