"""Sharded encoding: ranks split the distinct texts, write them to one cache, and rank 0 then
reads every vector back without encoding (the multi-process CLI run is a slow test in
tests/cli/test_text_cli.py)."""

from __future__ import annotations

import numpy as np
import pytest

from kgrec.text import CachedEncoder, EmbeddingCache, encode_shard, shard_texts
from tests.text.conftest import FakeEncoder


def test_shards_partition_the_distinct_texts() -> None:
    texts = ["a", "b", "a", "c", "d", "e", "b", "f", "g"]
    shares = [shard_texts(texts, r, 3) for r in range(3)]
    flat = [t for s in shares for t in s]
    assert sorted(flat) == sorted(set(texts)) and len(flat) == len(set(texts))
    assert max(map(len, shares)) - min(map(len, shares)) <= 1
    with pytest.raises(ValueError, match="rank 3"):
        shard_texts(texts, 3, 3)


def test_ranks_fill_one_cache_and_rank0_only_reads(tmp_path) -> None:
    texts = [f"text {i}" for i in range(23)] + ["text 0", "text 5"]
    want = FakeEncoder().encode(texts)
    encoders = [CachedEncoder(FakeEncoder(), EmbeddingCache(tmp_path)) for _ in range(2)]
    stats = [encode_shard(e, texts, rank=r, world=2) for r, e in enumerate(encoders)]
    assert [s.encoded for s in stats] == [12, 11]
    got = encoders[0].encode(texts)  # rank 0 after the barrier: the other rank's shards too
    assert encoders[0].last_stats.encoded == 0 and encoders[0].last_stats.hits == 23
    np.testing.assert_allclose(got, want, atol=1e-6)
