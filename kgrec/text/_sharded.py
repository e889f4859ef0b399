"""Text encoding split across processes (``kgrec text encode --nproc N`` / torchrun).

Every rank derives the same list of distinct texts from the same data, encodes its share
(``texts[rank::world]``) into the shared :class:`~kgrec.text.EmbeddingCache` (each rank writes
its own shard files; readers pick up other processes' shards), and after a barrier rank 0 reads
them all back as cache hits. Encoding is per text and deterministic, so the vectors equal a
one-process run's.
"""

from __future__ import annotations

from collections.abc import Sequence

from kgrec.text._cache import CachedEncoder, EncodeStats


def shard_texts(texts: Sequence[str], rank: int, world: int) -> list[str]:
    """Rank ``rank``'s share of the distinct ``texts`` (first-occurrence order, every
    ``world``-th from ``rank``)."""
    if not 0 <= rank < world:
        raise ValueError(f"rank {rank} outside 0..{world - 1}")
    return list(dict.fromkeys(texts))[rank::world]


def encode_shard(
    encoder: CachedEncoder, texts: Sequence[str], *, rank: int, world: int
) -> EncodeStats:
    """Encode (or find cached) this rank's share of ``texts`` into the encoder's cache; the
    stats of that call (nothing is returned: the vectors live in the cache)."""
    mine = shard_texts(texts, rank, world)
    if mine:
        encoder.encode(mine)
        return encoder.last_stats
    return EncodeStats()
