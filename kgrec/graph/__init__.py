"""Knowledge graphs from catalogs: declarative specs, the KnowledgeGraph container, converters.

``load_spec("graphs/movielens-100k.toml")`` reads a spec; ``build_graph(spec)`` builds a
:class:`KnowledgeGraph` (vocabularies per node type, typed ``(src, relation, dst)`` edges);
``KnowledgeGraph.save/load`` persist it without pickle; ``to_hetero_data``, ``to_homogeneous``
and ``to_networkx`` convert it; ``export_recbole``/``import_recbole`` round-trip RecBole atomic
files.

Names load lazily (PEP 562): reading a spec does not import pandas or the graph builder.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kgrec._lazy import lazy_exports

if TYPE_CHECKING:
    from kgrec.graph._build import bucket_labels, build_graph, prune
    from kgrec.graph._cache import cache_key, load_or_build
    from kgrec.graph._convert import HomogeneousGraph, to_hetero_data, to_homogeneous, to_networkx
    from kgrec.graph._export import export_recbole, import_recbole
    from kgrec.graph._kg import EdgeType, GraphStats, KnowledgeGraph
    from kgrec.graph._spec import (
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
        load_spec,
    )

_WHERE = {
    "bucket_labels": "_build",
    "build_graph": "_build",
    "prune": "_build",
    "cache_key": "_cache",
    "load_or_build": "_cache",
    "HomogeneousGraph": "_convert",
    "to_hetero_data": "_convert",
    "to_homogeneous": "_convert",
    "to_networkx": "_convert",
    "export_recbole": "_export",
    "import_recbole": "_export",
    "EdgeType": "_kg",
    "GraphStats": "_kg",
    "KnowledgeGraph": "_kg",
    "Bucket": "_spec",
    "FileSpec": "_spec",
    "GraphOptions": "_spec",
    "GraphSpec": "_spec",
    "InteractionSpec": "_spec",
    "KGSpec": "_spec",
    "PruneSpec": "_spec",
    "RelationSpec": "_spec",
    "SourceSpec": "_spec",
    "TagSpec": "_spec",
    "TextSpec": "_spec",
    "UserEdgeSpec": "_spec",
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
    "SourceSpec",
    "TagSpec",
    "TextSpec",
    "UserEdgeSpec",
    "bucket_labels",
    "build_graph",
    "cache_key",
    "export_recbole",
    "import_recbole",
    "load_or_build",
    "load_spec",
    "prune",
    "to_hetero_data",
    "to_homogeneous",
    "to_networkx",
]

__getattr__, __dir__ = lazy_exports(__name__, _WHERE, globals())
