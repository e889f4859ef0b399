"""A persistent embedding cache: only texts never seen by the same encoder are encoded.

Layout under ``$KGREC_HOME/embeddings/`` (one directory per :class:`EncoderKey`)::

    <model-name>-<key digest>/
        key.json                  the full EncoderKey (model id, model files' sha256, max_length,
                                  pooling, normalisation, precision, dim)
        shard-<time>-<pid>-<rand>.npz
                                  hashes (n, 32) uint8: sha256 of each text (UTF-8)
                                  vectors (n, dim) float32
                                  checksum (32,) uint8: sha256 of hashes and vectors' bytes
                                  key: the key digest

Every write is a new shard, written atomically (temp file then rename) under a unique name, so
concurrent writers never clobber each other and no index file can go stale. Each shard is
verified when read (loads without pickle, shapes, dtype, key, checksum, finite values); a shard
that fails is reported, deleted and its texts are simply encoded again: a corrupted cache is
rebuilt, never trusted. Many small shards are merged into one (``compact_after``).
A text's vector depends on nothing but the text and the key, so the key plus the text's sha256
identifies it exactly.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import secrets
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from kgrec._atomic import atomic_path, atomic_write_text
from kgrec.text._encoder import EncoderKey, TextEncoder, check_texts

log = logging.getLogger(__name__)

HASH_BYTES = 32
SHARD_GLOB = "shard-*.npz"


def text_hashes(texts: Sequence[str]) -> np.ndarray:
    """sha256 of each text's UTF-8 bytes, as an (n, 32) uint8 array."""
    buf = b"".join(hashlib.sha256(t.encode("utf-8", "surrogatepass")).digest() for t in texts)
    return np.frombuffer(buf, dtype=np.uint8).reshape(len(texts), HASH_BYTES).copy()


def _checksum(hashes: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(hashes).tobytes())
    h.update(np.ascontiguousarray(vectors).tobytes())
    return np.frombuffer(h.digest(), dtype=np.uint8).copy()


class CorruptShardError(Exception):
    """A shard that failed verification (internal: the cache logs it and rebuilds)."""


def read_shard(path: Path, key: EncoderKey) -> tuple[np.ndarray, np.ndarray]:
    """Load and verify one shard; raise :class:`CorruptShardError` saying what is wrong."""
    try:
        with np.load(path, allow_pickle=False) as z:
            names = set(z.files)
            need = {"hashes", "vectors", "checksum", "key"}
            if names != need:
                raise CorruptShardError(f"arrays {sorted(names)}, expected {sorted(need)}")
            hashes, vectors, checksum, kd = z["hashes"], z["vectors"], z["checksum"], z["key"]
    except CorruptShardError:
        raise
    except Exception as exc:  # zip/npy damage of any kind
        raise CorruptShardError(f"unreadable ({type(exc).__name__}: {exc})") from None
    if str(kd) != key.digest():
        raise CorruptShardError(f"written for key {kd!s}, not {key.digest()}")
    if hashes.dtype != np.uint8 or hashes.ndim != 2 or hashes.shape[1] != HASH_BYTES:
        raise CorruptShardError(f"hashes have dtype {hashes.dtype} shape {hashes.shape}")
    if vectors.dtype != np.float32 or vectors.shape != (len(hashes), key.dim):
        raise CorruptShardError(
            f"vectors have dtype {vectors.dtype} shape {vectors.shape}, "
            f"expected float32 ({len(hashes)}, {key.dim})"
        )
    if checksum.dtype != np.uint8 or not np.array_equal(checksum, _checksum(hashes, vectors)):
        raise CorruptShardError("checksum mismatch (the file was changed or damaged)")
    if not np.isfinite(vectors).all():
        raise CorruptShardError("non-finite values in vectors")
    return hashes, vectors


def write_shard(path: Path, key: EncoderKey, hashes: np.ndarray, vectors: np.ndarray) -> None:
    """Write one shard atomically (no pickle)."""
    hashes = np.ascontiguousarray(hashes, dtype=np.uint8)
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    with atomic_path(path) as tmp, tmp.open("wb") as f:
        np.savez(
            f,
            hashes=hashes,
            vectors=vectors,
            checksum=_checksum(hashes, vectors),
            key=np.array(key.digest()),
        )


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text.split("/")[-1])[:48] or "model"


class _Store:
    """The in-memory view of one key's directory: text hash -> row of ``vectors``."""

    def __init__(self, directory: Path, key: EncoderKey) -> None:
        self.directory = directory
        self.key = key
        self.rows: dict[bytes, int] = {}
        self.vectors = np.empty((0, key.dim), np.float32)
        self.loaded: set[str] = set()
        self.rejected: list[tuple[str, str]] = []

    def refresh(self) -> None:
        """Read shards written since the last call (by this or another process)."""
        if not self.directory.is_dir():
            return
        key_file = self.directory / "key.json"
        if key_file.exists():
            try:
                stored = EncoderKey.from_dict(json.loads(key_file.read_text(encoding="utf-8")))
                ok = stored == self.key
            except (ValueError, KeyError, TypeError):
                ok = False
            if not ok:
                log.warning("embedding cache %s: key.json does not match; rewriting it", key_file)
                self._write_key()
        new = sorted(p for p in self.directory.glob(SHARD_GLOB) if p.name not in self.loaded)
        parts = []
        for p in new:
            try:
                hashes, vectors = read_shard(p, self.key)
            except FileNotFoundError:  # merged away by another process meanwhile
                continue
            except CorruptShardError as exc:
                self.rejected.append((str(p), str(exc)))
                log.warning(
                    "embedding cache shard %s is corrupted (%s): deleted, its texts will be "
                    "encoded again",
                    p,
                    exc,
                )
                p.unlink(missing_ok=True)
                continue
            self.loaded.add(p.name)
            parts.append((hashes, vectors))
        if parts:
            self._add(parts)

    def _add(self, parts: list[tuple[np.ndarray, np.ndarray]]) -> None:
        base = len(self.vectors)
        keep_vecs = [self.vectors]
        for hashes, vectors in parts:
            keep = []
            for i, h in enumerate(map(bytes, hashes)):
                if h not in self.rows:
                    self.rows[h] = base
                    base += 1
                    keep.append(i)
            if keep:
                keep_vecs.append(vectors[keep] if len(keep) < len(vectors) else vectors)
        if len(keep_vecs) > 1:
            self.vectors = np.concatenate(keep_vecs)

    def _write_key(self) -> None:
        atomic_write_text(
            self.directory / "key.json", json.dumps(self.key.to_dict(), indent=2) + "\n"
        )

    def write(self, hashes: np.ndarray, vectors: np.ndarray) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        if not (self.directory / "key.json").exists():
            self._write_key()
        name = f"shard-{time.time_ns():020d}-{os.getpid()}-{secrets.token_hex(4)}.npz"
        path = self.directory / name
        write_shard(path, self.key, hashes, vectors)
        self.loaded.add(name)
        self._add([(hashes, vectors)])
        return path

    def compact(self) -> None:
        """Merge every loaded shard into one (written first, then the old ones are removed)."""
        old = sorted(self.loaded)
        if len(old) < 2:
            return
        hashes = np.empty((len(self.rows), HASH_BYTES), np.uint8)
        for h, r in self.rows.items():
            hashes[r] = np.frombuffer(h, np.uint8)
        name = f"shard-{time.time_ns():020d}-{os.getpid()}-{secrets.token_hex(4)}.npz"
        write_shard(self.directory / name, self.key, hashes, self.vectors)
        for n in old:
            (self.directory / n).unlink(missing_ok=True)
        self.loaded = {name}
        log.info("embedding cache %s: merged %d shards", self.directory, len(old))


class EmbeddingCache:
    """Vectors by (encoder key, sha256 of the text), persisted under ``root``.

    ``root`` defaults to ``$KGREC_HOME/embeddings``. ``compact_after``: merge a key's shards into
    one once there are more than this many.
    """

    def __init__(self, root: str | Path | None = None, *, compact_after: int = 32) -> None:
        if root is None:
            from kgrec.data import kgrec_home

            root = kgrec_home() / "embeddings"
        self.root = Path(root)
        self.compact_after = compact_after
        self._stores: dict[str, _Store] = {}

    def __repr__(self) -> str:
        return f"EmbeddingCache({str(self.root)!r})"

    def directory(self, key: EncoderKey) -> Path:
        return self.root / f"{_slug(key.model_id)}-{key.digest()}"

    def _store(self, key: EncoderKey) -> _Store:
        d = key.digest()
        if d not in self._stores:
            self._stores[d] = _Store(self.directory(key), key)
        store = self._stores[d]
        store.refresh()
        return store

    def lookup(self, key: EncoderKey, hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(found, vectors)`` for text hashes (n, 32): rows of absent texts are zeros."""
        store = self._store(key)
        rows = np.fromiter(
            (store.rows.get(bytes(h), -1) for h in hashes), dtype=np.int64, count=len(hashes)
        )
        found = rows >= 0
        out = np.zeros((len(hashes), key.dim), np.float32)
        out[found] = store.vectors[rows[found]]
        return found, out

    def add(self, key: EncoderKey, hashes: np.ndarray, vectors: np.ndarray) -> None:
        """Persist vectors of texts (by hash); texts already cached are skipped."""
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.shape != (len(hashes), key.dim):
            raise ValueError(f"vectors of shape {vectors.shape} for {len(hashes)} hashes")
        if not np.isfinite(vectors).all():
            raise ValueError("refusing to cache non-finite vectors")
        store = self._store(key)
        new = np.array([bytes(h) not in store.rows for h in hashes], dtype=bool)
        if not new.any():
            return
        store.write(hashes[new], vectors[new])
        if len(store.loaded) > self.compact_after:
            store.compact()

    def count(self, key: EncoderKey) -> int:
        """Number of texts cached for ``key``."""
        return len(self._store(key).rows)

    def pop_rejected(self, key: EncoderKey) -> list[tuple[str, str]]:
        """Shards of ``key`` found corrupted (path, reason) and deleted since the last call."""
        store = self._store(key)
        out, store.rejected = store.rejected, []
        return out

    def stored_keys(self) -> list[EncoderKey]:
        """Keys with a directory under ``root``."""
        out = []
        for f in sorted(self.root.glob("*/key.json")):
            try:
                out.append(EncoderKey.from_dict(json.loads(f.read_text(encoding="utf-8"))))
            except (ValueError, KeyError, TypeError):
                log.warning("ignoring unreadable %s", f)
        return out


@dataclass
class EncodeStats:
    """What one (or several, summed) cached encode call(s) did.

    ``texts``: texts asked for; ``unique``: distinct texts among them; ``hits``: distinct texts
    served from the cache; ``encoded``: distinct texts run through the model; ``seconds``: wall
    time of the call(s); ``encode_seconds``: the part spent in the model.
    """

    texts: int = 0
    unique: int = 0
    hits: int = 0
    encoded: int = 0
    seconds: float = 0.0
    encode_seconds: float = 0.0
    rejected_shards: list[tuple[str, str]] = field(default_factory=list)

    @property
    def throughput(self) -> float:
        """Texts delivered per second, cache hits included."""
        return self.texts / self.seconds if self.seconds > 0 else float("inf")

    @property
    def encode_throughput(self) -> float:
        """Texts encoded per second of model time."""
        return self.encoded / self.encode_seconds if self.encode_seconds > 0 else float("nan")

    def __iadd__(self, other: EncodeStats) -> EncodeStats:
        self.texts += other.texts
        self.unique += other.unique
        self.hits += other.hits
        self.encoded += other.encoded
        self.seconds += other.seconds
        self.encode_seconds += other.encode_seconds
        self.rejected_shards += other.rejected_shards
        return self

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["throughput"] = self.throughput
        d["encode_throughput"] = self.encode_throughput
        return d


class CachedEncoder:
    """A :class:`TextEncoder` that serves known texts from an :class:`EmbeddingCache` and encodes
    only unseen, distinct ones with the wrapped encoder (whose model then need not even load).

    ``last_stats`` describes the latest :meth:`encode` call, ``stats`` all of them.
    """

    def __init__(self, encoder: TextEncoder, cache: EmbeddingCache | None = None) -> None:
        if not hasattr(encoder, "cache_key"):
            raise TypeError(f"{type(encoder).__name__} has no cache_key(): it cannot be cached")
        self.encoder = encoder
        self.cache = cache if cache is not None else EmbeddingCache()
        self.last_stats = EncodeStats()
        self.stats = EncodeStats()

    @property
    def model_id(self) -> str:
        return self.encoder.model_id

    @property
    def dim(self) -> int:
        return self.encoder.dim

    def cache_key(self) -> EncoderKey:
        return self.encoder.cache_key()

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Vectors of ``texts`` (float32, input order), from the cache where possible."""
        t0 = time.perf_counter()
        texts = check_texts(texts)
        key = self.cache_key()
        hashes = text_hashes(texts)
        # distinct texts, first occurrence order
        _, first, inverse = np.unique(
            hashes.view(np.dtype((np.void, HASH_BYTES))).ravel(),
            return_index=True,
            return_inverse=True,
        )
        uhashes = hashes[first]
        found, vectors = self.cache.lookup(key, uhashes)
        missing = np.flatnonzero(~found)
        enc_seconds = 0.0
        if len(missing):
            t1 = time.perf_counter()
            new = self.encoder.encode([texts[first[i]] for i in missing])
            enc_seconds = time.perf_counter() - t1
            new = np.asarray(new, dtype=np.float32)
            vectors[missing] = new
            self.cache.add(key, uhashes[missing], new)
        out = vectors[inverse.ravel()] if len(texts) else vectors[:0]
        self.last_stats = EncodeStats(
            texts=len(texts),
            unique=len(first),
            hits=int(found.sum()),
            encoded=len(missing),
            seconds=time.perf_counter() - t0,
            encode_seconds=enc_seconds,
            rejected_shards=self.cache.pop_rejected(key),
        )
        self.stats += self.last_stats
        return out
