"""A vector index split into shards: one :class:`VectorIndex` per shard (on its own GPU where
there are several, or held by its own process), searched shard by shard and merged into one
top-k.

The split is by rows: shard ``s`` holds a contiguous block of the vectors, and a vector added
later goes to the smallest shard. Merging keeps, per query, the ``k`` best of the shards' ``k``
best, so with exact shards the merged answer is the unsharded exact answer (ties aside). A
process that serves only some shards loads those (``ShardedIndex.load(path, shards=[1])``);
:func:`merge_results` merges answers that come from several processes.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from kgrec._atomic import atomic_dir
from kgrec.errors import DataError, UnknownIdError
from kgrec.index._checks import check_vectors, fingerprint_of, read_meta
from kgrec.index._config import IndexConfig
from kgrec.index._errors import IndexUsageError
from kgrec.index._index import VectorIndex
from kgrec.index._results import Exclude, SearchResult

log = logging.getLogger(__name__)

FORMAT = "kgrec-sharded-index"
FORMAT_VERSION = 1
#: refuse a manifest that names more shards than this (a crafted sharded.json)
MAX_SHARDS = 4096


def merge_results(results: Sequence[SearchResult], k: int) -> SearchResult:
    """The ``k`` best per query of several shards' answers to the same queries (best first;
    ``None`` / ``-inf`` where all shards together have fewer than ``k``)."""
    if not results:
        raise IndexUsageError("merge_results needs at least one SearchResult")
    n = len(results[0])
    if any(len(r) != n for r in results):
        raise IndexUsageError(
            f"shards answered different numbers of queries: {[len(r) for r in results]}"
        )
    ids = np.concatenate([r.ids for r in results], axis=1)
    scores = np.concatenate([np.asarray(r.scores, np.float32) for r in results], axis=1)
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    out_ids = np.take_along_axis(ids, order, axis=1)
    out_scores = np.take_along_axis(scores, order, axis=1)
    if out_ids.shape[1] < k:  # fewer slots than k over all shards: pad
        pad = k - out_ids.shape[1]
        out_ids = np.concatenate([out_ids, np.full((n, pad), None, dtype=object)], axis=1)
        out_scores = np.concatenate([out_scores, np.full((n, pad), -np.inf, np.float32)], axis=1)
    return SearchResult(out_ids, out_scores)


class ShardedIndex:
    """``shards`` :class:`VectorIndex` es of one id space, searched together.

    >>> idx = ShardedIndex(IndexConfig(metric="cosine"), shards=4).build(vectors, ids)
    >>> idx.search(queries, k=10).ids
    >>> idx.save("indexes/items"); ShardedIndex.load("indexes/items", shards=[0, 1])

    ``devices`` places shard ``s`` on ``devices[s % len(devices)]`` (e.g. ``["cuda:0",
    "cuda:1"]``: one shard per GPU, FAISS's IndexShards layout); by default every shard uses
    ``config.device``. Shards are searched in parallel threads (FAISS releases the GIL).
    """

    def __init__(
        self,
        config: IndexConfig | None = None,
        *,
        shards: int = 2,
        devices: Sequence[str] | None = None,
    ) -> None:
        if not 1 <= int(shards) <= MAX_SHARDS:
            raise IndexUsageError(f"shards must be 1..{MAX_SHARDS}, got {shards}")
        self.config = config or IndexConfig()
        self.n_shards = int(shards)
        self.devices = list(devices) if devices else [self.config.device]
        self.shard_ids: list[int] = list(range(self.n_shards))
        self.shards: list[VectorIndex] = []
        self.fingerprint_: str | None = None

    def _shard_config(self, s: int) -> IndexConfig:
        return self.config.replace(device=self.devices[s % len(self.devices)])

    def build(
        self,
        vectors: Any,
        ids: Sequence[Any] | None = None,
        *,
        fingerprint: str | None = None,
        node_type: str = "item",
    ) -> ShardedIndex:
        """Split ``vectors`` (n, dim) into contiguous blocks and index each; return ``self``."""
        x = check_vectors(vectors, dim=None, what="vectors", cosine=self.config.metric == "cosine")
        names = [str(i) for i in (range(len(x)) if ids is None else ids)]
        if len(names) != len(x):
            raise DataError(f"{len(names)} ids for {len(x)} vectors")
        if len(x) < self.n_shards:
            raise IndexUsageError(f"{len(x)} vectors cannot fill {self.n_shards} shards")
        self.fingerprint_ = fingerprint or fingerprint_of(x, names)
        blocks = np.array_split(np.arange(len(x)), self.n_shards)
        self.shards = []
        for s, rows in enumerate(blocks):
            shard = VectorIndex(self._shard_config(s)).build(
                x[rows],
                [names[r] for r in rows],
                fingerprint=self.fingerprint_,
                node_type=node_type,
            )
            self.shards.append(shard)
            log.info(
                "shard %d/%d: %d vectors (%s)", s + 1, self.n_shards, len(rows), shard.index_type
            )
        self.shard_ids = list(range(self.n_shards))
        return self

    def _require_built(self) -> list[VectorIndex]:
        if not self.shards:
            raise IndexUsageError("the sharded index is not built: call build() or load() first")
        return self.shards

    def search(self, queries: Any, k: int = 10, *, exclude: Exclude | None = None) -> SearchResult:
        """The ``k`` best over all held shards per query (``exclude`` as in
        :meth:`VectorIndex.search`)."""
        shards = self._require_built()
        excl = None if exclude is None else [list(e) for e in exclude]
        if len(shards) == 1:
            return shards[0].search(queries, k, exclude=excl)
        with ThreadPoolExecutor(max_workers=len(shards)) as pool:
            parts = list(pool.map(lambda sh: sh.search(queries, k, exclude=excl), shards))
        return merge_results(parts, k)

    def _owner(self, id_: str) -> int | None:
        for pos, shard in enumerate(self.shards):
            if id_ in shard:
                return pos
        return None

    def add(self, vectors: Any, ids: Sequence[Any]) -> None:
        """Add vectors to the held shard with the fewest; ids must be new to every held shard."""
        shards = self._require_built()
        names = [str(i) for i in ids]
        present = [i for i in names if self._owner(i) is not None]
        if present:
            raise DataError(f"ids already in the index: {present[:5]}")
        smallest = min(range(len(shards)), key=lambda p: len(shards[p]))
        shards[smallest].add(vectors, names)

    def remove(self, ids: Iterable[Any]) -> None:
        """Remove ids from whichever held shard has them; an unknown id raises first."""
        if isinstance(ids, str):
            raise IndexUsageError(f"remove() takes a collection of ids, not one string {ids!r}")
        self._require_built()
        wanted = list(dict.fromkeys(str(i) for i in ids))
        owners: dict[int, list[str]] = {}
        for i in wanted:
            pos = self._owner(i)
            if pos is None:
                raise UnknownIdError(self.shards[0].node_type_, i, hint="not in this index")
            owners.setdefault(pos, []).append(i)
        for pos, names in owners.items():
            self.shards[pos].remove(names)

    def __len__(self) -> int:
        return sum(len(s) for s in self.shards)

    def __contains__(self, id_: object) -> bool:
        return self._owner(str(id_)) is not None

    def sizes(self) -> dict[int, int]:
        """Vectors per held shard (shard number -> size)."""
        return {s: len(sh) for s, sh in zip(self.shard_ids, self.shards, strict=True)}

    def save(self, path: str | Path, *, overwrite: bool = False) -> Path:
        """Write every held shard to ``path/shard-NNNN`` and a ``sharded.json`` manifest,
        atomically (one directory rename). Only a fully held index can be saved."""
        shards = self._require_built()
        if len(shards) != self.n_shards:
            raise IndexUsageError(
                f"this process holds shards {self.shard_ids} of {self.n_shards}: save from the "
                "process that holds them all"
            )
        path = Path(path)
        with atomic_dir(path, overwrite=overwrite) as tmp:
            for s, shard in enumerate(shards):
                shard.save(tmp / f"shard-{s:04d}")
            manifest = {
                "format": FORMAT,
                "format_version": FORMAT_VERSION,
                "shards": self.n_shards,
                "devices": self.devices,
                "fingerprint": self.fingerprint_,
                "sizes": [len(s) for s in shards],
            }
            (tmp / "sharded.json").write_text(json.dumps(manifest, indent=2))
        return path

    @classmethod
    def load(
        cls,
        path: str | Path,
        *,
        shards: Sequence[int] | None = None,
        expected_fingerprint: str | None = None,
        devices: Sequence[str] | None = None,
    ) -> ShardedIndex:
        """Load all shards, or only ``shards`` (the ones this process serves)."""
        path = Path(path)
        mpath = path / "sharded.json"
        meta = read_meta(mpath, FORMAT, FORMAT_VERSION, what="sharded index")
        n = meta.get("shards")
        if not isinstance(n, int) or not 1 <= n <= MAX_SHARDS:
            raise DataError(f"shards must be an integer 1..{MAX_SHARDS}, got {n!r}", path=mpath)
        wanted = list(range(n)) if shards is None else [int(s) for s in shards]
        bad = [s for s in wanted if not 0 <= s < n]
        if bad or not wanted:
            raise IndexUsageError(f"shards {bad or wanted} not in 0..{n - 1} of {path}")
        self = cls(shards=n, devices=devices or meta.get("devices") or None)
        self.fingerprint_ = meta.get("fingerprint")
        self.shard_ids = wanted
        self.shards = [
            VectorIndex.load(
                path / f"shard-{s:04d}",
                expected_fingerprint=expected_fingerprint,
                device=self.devices[s % len(self.devices)],
            )
            for s in wanted
        ]
        self.config = self.shards[0].config
        return self
