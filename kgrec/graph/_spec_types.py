"""The graph spec's types: frozen dataclasses, one per table of ``graphs/<name>.toml``, each
with ``to_dict`` (plain TOML-able data). :class:`GraphSpec` is the whole spec. They are built
and validated only by the parser in :mod:`kgrec.graph._spec` (``load_spec``,
``GraphSpec.from_dict``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

RESERVED_TYPES = ("user", "item")
ON_CHOICES = ("item", "user")
ABSENT_CHOICES = ("error", "add", "drop")
DUPLICATE_CHOICES = ("error", "first", "last", "count")  # kgrec.data._tables has the same


@dataclass(frozen=True)
class FileSpec:
    """A table read from a file, with the names of the columns that matter."""

    file: Path
    columns: dict[str, str] = field(default_factory=dict)
    text: tuple[str, ...] = ()
    delimiter: str | None = None
    duplicates: str = "error"  # interactions only: error | first | last | count
    rating_range: tuple[float, float] | None = None  # interactions only: [low, high] inclusive

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"file": str(self.file), **self.columns}
        if self.text:
            d["text"] = list(self.text)
        if self.delimiter is not None:
            d["delimiter"] = self.delimiter
        if self.duplicates != "error":
            d["duplicates"] = self.duplicates
        if self.rating_range is not None:
            d["rating_range"] = list(self.rating_range)
        return d


@dataclass(frozen=True)
class SourceSpec:
    """Where the data is: a registered ``dataset`` (with an optional local ``path``) or files."""

    dataset: str | None = None
    path: Path | None = None
    files: dict[str, FileSpec] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {}
        if self.dataset is not None:
            d["dataset"] = self.dataset
        if self.path is not None:
            d["path"] = str(self.path)
        for k, f in self.files.items():
            d[k] = f.to_dict()
        return d


@dataclass(frozen=True)
class InteractionSpec:
    """Which interactions are positive user-item edges: ``rating >= min_rating`` (all if None)."""

    min_rating: float | None = None
    relation: str = "interacts"
    attributes: tuple[str, ...] | None = None  # edge attributes kept; None = those present

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"relation": self.relation}
        if self.min_rating is not None:
            d["min_rating"] = self.min_rating
        if self.attributes is not None:
            d["attributes"] = list(self.attributes)
        return d


@dataclass(frozen=True)
class Bucket:
    """Numeric bucketing: fixed ``width`` from ``origin``, or sorted bin ``edges``.

    ``label`` formats a bucket ``[lo, hi)`` from the fields ``{lo}``, ``{hi}`` and ``{last}``
    (``hi - 1``, the last integer inside); with ``edges`` the buckets below the first and above
    the last edge use ``below`` and ``above``.
    """

    width: float | None = None
    origin: float = 0.0
    edges: tuple[float, ...] | None = None
    label: str = "{lo}-{hi}"
    below: str = "<{hi}"
    above: str = "{lo}+"

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"label": self.label}
        if self.width is not None:
            d.update(width=self.width, origin=self.origin)
        if self.edges is not None:
            d.update(edges=list(self.edges), below=self.below, above=self.above)
        return d


@dataclass(frozen=True)
class RelationSpec:
    """A catalog (``on = "item"``) or user-table (``on = "user"``) column -> relation edges."""

    column: str
    relation: str
    node_type: str
    on: str = "item"
    delimiter: str | None = None
    bucket: Bucket | None = None
    missing: tuple[str, ...] = ()  # values that mean "unknown": no edge (counted in the notes)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "column": self.column,
            "relation": self.relation,
            "node_type": self.node_type,
            "on": self.on,
        }
        if self.delimiter is not None:
            d["delimiter"] = self.delimiter
        if self.bucket is not None:
            d["bucket"] = self.bucket.to_dict()
        if self.missing:
            d["missing"] = list(self.missing)
        return d


@dataclass(frozen=True)
class KGSpec:
    """External triples: entities linked to items (the link file) become those item nodes."""

    node_type: str = "entity"
    relations: tuple[str, ...] | None = None  # subset of KG relations; None = all

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"node_type": self.node_type}
        if self.relations is not None:
            d["relations"] = list(self.relations)
        return d


@dataclass(frozen=True)
class TagSpec:
    """User tags of items as entities: ``item -relation-> tag`` (one edge per distinct pair,
    with the number of assignments as edge attribute ``count``).

    ``absent_items``: what to do with tag assignments naming items absent from the catalog and
    the interactions: ``error``, ``add`` (as item nodes) or ``drop`` (recorded in the notes).
    """

    relation: str = "tagged"
    node_type: str = "tag"
    absent_items: str = "error"
    min_count: int = 1

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class UserEdgeSpec:
    """User-user edges (e.g. friends) as ``user -relation-> user``."""

    relation: str = "friend_of"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class GraphOptions:
    """Reverse relations: for each edge type ``(s, r, d)`` also ``(d, prefix + r, s)``."""

    reverse_relations: bool = True
    reverse_prefix: str = "rev_"
    reverse_exclude: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["reverse_exclude"] = list(self.reverse_exclude)
        return d


@dataclass(frozen=True)
class PruneSpec:
    """Pruning of entity nodes (never users or items).

    ``min_entity_degree``: entities with fewer edges are removed (one pass).
    ``max_hops``: entities farther than this from every item (walking entity/item edges, not
    users) are removed; entity types attached only to users are exempt. 0 = no limit.
    """

    min_entity_degree: int = 0
    max_hops: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def active(self) -> bool:
        return self.min_entity_degree > 1 or self.max_hops > 0


@dataclass(frozen=True)
class TextSpec:
    """The text of items and users (rendered by the text stage).

    ``item_fields``: catalog columns rendered into item text; ``item_tags``: append the item's
    user tags; ``item_reviews``/``user_reviews``: append TRAINING-split review text only.
    """

    item_fields: list[str] = field(default_factory=list)
    item_tags: bool = False
    item_reviews: bool = False
    user_reviews: bool = False
    max_review_chars: int = 2000

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["item_fields"] = list(self.item_fields)
        return d


@dataclass(frozen=True, eq=False)
class GraphSpec:
    """A parsed, validated graph spec. ``load_dataset()`` loads its source."""

    name: str
    source: SourceSpec
    interactions: InteractionSpec = field(default_factory=InteractionSpec)
    relations: tuple[RelationSpec, ...] = ()
    kg: KGSpec | None = None
    tags: TagSpec | None = None
    user_edges: UserEdgeSpec | None = None
    graph: GraphOptions = field(default_factory=GraphOptions)
    prune: PruneSpec = field(default_factory=PruneSpec)
    text: TextSpec = field(default_factory=TextSpec)
    description: str = ""
    path: Path | None = None

    def to_dict(self) -> dict[str, Any]:
        """The spec as plain TOML-able data (``from_dict`` reads it back)."""
        d: dict[str, Any] = {"name": self.name}
        if self.description:
            d["description"] = self.description
        d["source"] = self.source.to_dict()
        d["interactions"] = self.interactions.to_dict()
        if self.relations:
            d["relations"] = [r.to_dict() for r in self.relations]
        if self.kg is not None:
            d["kg"] = self.kg.to_dict()
        if self.tags is not None:
            d["tags"] = self.tags.to_dict()
        if self.user_edges is not None:
            d["user_edges"] = self.user_edges.to_dict()
        d["graph"] = self.graph.to_dict()
        d["prune"] = self.prune.to_dict()
        d["text"] = self.text.to_dict()
        return d

    @classmethod
    def from_dict(
        cls, obj: Mapping[str, Any], *, base: Path | None = None, spec: Any = None
    ) -> GraphSpec:
        """Parse and validate spec data; relative paths resolve against ``base``."""
        from kgrec.graph._spec import _parse

        return _parse(obj, base=base or Path.cwd(), spec=spec)

    def digest(self) -> str:
        """sha256 of the canonical spec (a cache key part)."""
        import json

        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()

    def with_data_path(self, path: str | Path) -> GraphSpec:
        """A copy reading its data from ``path`` (a user's own copy of the dataset)."""
        from dataclasses import replace

        root = Path(path).expanduser().resolve()
        if self.source.dataset is not None:
            return replace(self, source=replace(self.source, path=root))
        files = {k: replace(f, file=root / f.file.name) for k, f in self.source.files.items()}
        return replace(self, source=replace(self.source, path=root, files=files))

    def load_dataset(self):
        """Load the source as a :class:`kgrec.data.Dataset`."""
        from kgrec.graph._source import load_source

        return load_source(self)
