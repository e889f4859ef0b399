"""Knowledge graphs from catalogs: declarative specs, the KnowledgeGraph container, converters.

``load_spec("graphs/movielens-100k.toml")`` reads a spec; ``build_graph(spec)`` builds a
:class:`KnowledgeGraph` (vocabularies per node type, typed ``(src, relation, dst)`` edges);
``KnowledgeGraph.save/load`` persist it without pickle; ``to_hetero_data``, ``to_homogeneous``
and ``to_networkx`` convert it; ``export_recbole``/``import_recbole`` round-trip RecBole atomic
files; ``entity_links`` / ``friendships`` read side information (typed entity links, the
user x user matrix) for models.

Names load lazily (PEP 562): reading a spec does not import pandas or the graph builder.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kgrec._lazy import lazy_exports

if TYPE_CHECKING:
    from kgrec.graph._build import build_graph
    from kgrec.graph._cache import cache_key, load_or_build
    from kgrec.graph._columns import bucket_labels
    from kgrec.graph._convert import HomogeneousGraph, to_hetero_data, to_homogeneous, to_networkx
    from kgrec.graph._export import export_recbole, import_recbole
    from kgrec.graph._kg import EdgeType, KnowledgeGraph
    from kgrec.graph._prune import prune
    from kgrec.graph._side import SideLinks, align_ids, entity_links, friendships
    from kgrec.graph._spec import load_spec
    from kgrec.graph._spec_types import (
        Bucket,
        FileSpec,
        GraphOptions,
        GraphSpec,
        InteractionSpec,
        KGSpec,
        PruneSpec,
        RelationSpec,
        SourceSpec,
        TagSpec,
        TextSpec,
        UserEdgeSpec,
    )
    from kgrec.graph._stats import GraphStats

_WHERE = {
    "bucket_labels": "_columns",
    "build_graph": "_build",
    "prune": "_prune",
    "SideLinks": "_side",
    "align_ids": "_side",
    "entity_links": "_side",
    "friendships": "_side",
    "cache_key": "_cache",
    "load_or_build": "_cache",
    "HomogeneousGraph": "_convert",
    "to_hetero_data": "_convert",
    "to_homogeneous": "_convert",
    "to_networkx": "_convert",
    "export_recbole": "_export",
    "import_recbole": "_export",
    "EdgeType": "_kg",
    "GraphStats": "_stats",
    "KnowledgeGraph": "_kg",
    "Bucket": "_spec_types",
    "FileSpec": "_spec_types",
    "GraphOptions": "_spec_types",
    "GraphSpec": "_spec_types",
    "InteractionSpec": "_spec_types",
    "KGSpec": "_spec_types",
    "PruneSpec": "_spec_types",
    "RelationSpec": "_spec_types",
    "SourceSpec": "_spec_types",
    "TagSpec": "_spec_types",
    "TextSpec": "_spec_types",
    "UserEdgeSpec": "_spec_types",
    "load_spec": "_spec",
}

__all__ = [
    "Bucket",
    "EdgeType",
    "FileSpec",
    "GraphOptions",
    "GraphSpec",
    "GraphStats",
    "HomogeneousGraph",
    "InteractionSpec",
    "KGSpec",
    "KnowledgeGraph",
    "PruneSpec",
    "RelationSpec",
    "SideLinks",
    "SourceSpec",
    "TagSpec",
    "TextSpec",
    "UserEdgeSpec",
    "align_ids",
    "bucket_labels",
    "build_graph",
    "cache_key",
    "entity_links",
    "export_recbole",
    "friendships",
    "import_recbole",
    "load_or_build",
    "load_spec",
    "prune",
    "to_hetero_data",
    "to_homogeneous",
    "to_networkx",
]

__getattr__, __dir__ = lazy_exports(__name__, _WHERE, globals())
