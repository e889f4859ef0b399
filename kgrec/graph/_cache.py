"""Built graphs on disk as caches keyed by everything that shaped them."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

from kgrec.graph._kg import FORMAT_VERSION, GRAPH_JSON, KnowledgeGraph
from kgrec.graph._spec_types import GraphSpec

log = logging.getLogger(__name__)

#: bump when the builder's output for the same spec and data changes
BUILDER_VERSION = 1


def _files(spec: GraphSpec) -> list[Path]:
    src = spec.source
    if src.files:
        return [f.file for f in src.files.values()]
    if src.path is not None and src.path.is_dir():
        return sorted(p for p in src.path.rglob("*") if p.is_file())
    return []  # a fetched, checksum-verified dataset (ml-100k): the name identifies it


def cache_key(spec: GraphSpec) -> str:
    """sha256 over the canonical spec, the source files' names, sizes and mtimes, and the
    builder and format versions."""
    h = hashlib.sha256()
    h.update(json.dumps(spec.to_dict(), sort_keys=True).encode())
    h.update(f"builder={BUILDER_VERSION} format={FORMAT_VERSION}".encode())
    for f in _files(spec):
        try:
            st = f.stat()
            h.update(f"{f}|{st.st_size}|{st.st_mtime_ns}".encode())
        except OSError:
            h.update(f"{f}|absent".encode())
    return h.hexdigest()


def load_or_build(
    spec: GraphSpec, *, out: str | Path | None = None, rebuild: bool = False
) -> KnowledgeGraph:
    """The graph of ``spec``: loaded from ``out`` (default ``$KGREC_HOME/graphs/<name>``) when
    it was built from the same spec and source files, else built and saved there atomically."""
    from kgrec._atomic import under_root
    from kgrec.data import kgrec_home
    from kgrec.graph._build import build_graph

    out = Path(out) if out is not None else under_root(kgrec_home() / "graphs", spec.name)
    key = cache_key(spec)
    if not rebuild and (out / GRAPH_JSON).is_file():
        try:
            meta = json.loads((out / GRAPH_JSON).read_text(encoding="utf-8")).get("meta", {})
        except (OSError, json.JSONDecodeError):
            meta = {}
        if meta.get("cache_key") == key:
            log.info("loading cached graph %s", out)
            return KnowledgeGraph.load(out)
        log.info("cached graph %s was built from other inputs; rebuilding", out)
    g = build_graph(spec)
    g.meta["cache_key"] = key
    g.save(out, overwrite=True)
    return g
