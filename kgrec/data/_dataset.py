"""A dataset: interactions plus whatever side information a source has, and its summary."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from kgrec.data._tables import AttributeTable, Interactions, Links, Triples


def kgrec_home() -> Path:
    """Root of kgrec's caches: ``$KGREC_HOME`` or ``~/.cache/kgrec``."""
    return Path(os.environ.get("KGREC_HOME") or Path.home() / ".cache" / "kgrec").expanduser()


@dataclass(eq=False)
class Dataset:
    """Everything one source provides, validated. Optional parts are ``None`` when absent.

    ``tags`` holds user-item tag assignments (``user, item, tag, timestamp``) where a source has
    them; ``user_edges`` user-user links (``src, dst``). ``notes`` records every deliberate
    data-handling decision (for example rows that reference ids absent from the catalog), so that
    nothing is changed silently.
    """

    name: str
    interactions: Interactions
    items: AttributeTable | None = None
    users: AttributeTable | None = None
    kg: Triples | None = None
    links: Links | None = None
    user_edges: pd.DataFrame | None = None
    tags: pd.DataFrame | None = None
    root: Path | None = None
    notes: list[str] = field(default_factory=list)

    def item_ids(self) -> np.ndarray:
        """All items: the catalog's, then any that appear only in interactions."""
        inter = self.interactions.items
        if self.items is None:
            return inter
        cat = self.items.ids
        extra = pd.Index(inter).difference(pd.Index(cat), sort=False)
        return np.concatenate([cat, extra.to_numpy()])

    def user_ids(self) -> np.ndarray:
        inter = self.interactions.users
        if self.users is None:
            return inter
        extra = pd.Index(inter).difference(pd.Index(self.users.ids), sort=False)
        return np.concatenate([self.users.ids, extra.to_numpy()])

    def summary(self) -> DatasetSummary:
        """Counts that describe the dataset (what ``kgrec data describe`` prints)."""
        inter = self.interactions.frame
        n_users, n_items = len(self.user_ids()), len(self.item_ids())
        hist: dict[str, int] = {}
        if "rating" in inter.columns:
            vc = inter["rating"].value_counts().sort_index()
            hist = {f"{k:g}": int(v) for k, v in vc.items()}
        reviews = None
        if "review" in inter.columns:
            reviews = int((inter["review"] != "").sum())
        s = DatasetSummary(
            name=self.name,
            users=n_users,
            items=n_items,
            interactions=len(inter),
            density=len(inter) / max(1, n_users * n_items),
            users_in_interactions=int(inter["user"].nunique()),
            items_in_interactions=int(inter["item"].nunique()),
            catalog_items=None if self.items is None else len(self.items),
            rating_histogram=hist,
            interactions_with_review=reviews,
            notes=list(self.notes),
        )
        if self.kg is not None:
            s.kg_triples = len(self.kg)
            s.kg_relations = len(self.kg.relations)
            s.kg_entities = len(self.kg.entities)
        if self.links is not None:
            linked = self.links.frame["item"].isin(pd.Index(self.item_ids()))
            s.linked_items = int(linked.sum())
            s.linked_share = s.linked_items / max(1, n_items)
        if self.user_edges is not None:
            s.user_edges = len(self.user_edges)
        if self.tags is not None:
            s.tag_assignments = len(self.tags)
        if "split" in inter.columns:
            s.splits = {
                str(k): int(v) for k, v in inter["split"].value_counts().sort_index().items()
            }
        return s


@dataclass
class DatasetSummary:
    """Counts of one dataset; ``to_text()`` is the human table, ``asdict`` the JSON."""

    name: str
    users: int
    items: int
    interactions: int
    density: float
    users_in_interactions: int
    items_in_interactions: int
    catalog_items: int | None = None
    rating_histogram: dict[str, int] = field(default_factory=dict)
    interactions_with_review: int | None = None
    kg_triples: int | None = None
    kg_relations: int | None = None
    kg_entities: int | None = None
    linked_items: int | None = None
    linked_share: float | None = None
    user_edges: int | None = None
    tag_assignments: int | None = None
    splits: dict[str, int] | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)

    def to_text(self) -> str:
        rows: list[tuple[str, str]] = [
            ("users", f"{self.users:,}"),
            ("items", f"{self.items:,}"),
            ("interactions", f"{self.interactions:,}"),
            ("density", f"{self.density:.4%}"),
        ]
        if self.catalog_items is not None and self.catalog_items != self.items:
            rows.append(("items in catalog", f"{self.catalog_items:,}"))
        if self.items_in_interactions != self.items:
            rows.append(("items with an interaction", f"{self.items_in_interactions:,}"))
        if self.users_in_interactions != self.users:
            rows.append(("users with an interaction", f"{self.users_in_interactions:,}"))
        if self.splits:
            rows.append(("given splits", ", ".join(f"{k} {v:,}" for k, v in self.splits.items())))
        if self.interactions_with_review is not None:
            rows.append(
                (
                    "with review text",
                    f"{self.interactions_with_review:,} "
                    f"({self.interactions - self.interactions_with_review:,} empty)",
                )
            )
        if self.kg_triples is not None:
            rows += [
                ("KG triples", f"{self.kg_triples:,}"),
                ("KG relations", f"{self.kg_relations:,}"),
                ("KG entities", f"{self.kg_entities:,}"),
            ]
        if self.linked_items is not None:
            rows.append(("items linked to KG", f"{self.linked_items:,} ({self.linked_share:.1%})"))
        if self.user_edges is not None:
            rows.append(("user-user edges", f"{self.user_edges:,}"))
        if self.tag_assignments is not None:
            rows.append(("tag assignments", f"{self.tag_assignments:,}"))
        width = max(len(k) for k, _ in rows)
        out = [f"dataset: {self.name}"] + [f"  {k:<{width}}  {v}" for k, v in rows]
        if self.rating_histogram:
            top = max(self.rating_histogram.values())
            out.append("  rating histogram:")
            for k, v in self.rating_histogram.items():
                bar = "#" * max(1, round(30 * v / top))
                out.append(f"    {k:>5}  {v:>9,}  {bar}")
        for note in self.notes:
            out.append(f"  note: {note}")
        return "\n".join(out)
