"""The embedding cache: only unseen texts are encoded; corrupted shards are rebuilt, not trusted."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from kgrec.text import CachedEncoder, EmbeddingCache, text_hashes

from .conftest import FakeEncoder


def _shards(cache, key):
    return sorted(cache.directory(key).glob("shard-*.npz"))


def test_only_unseen_distinct_texts_are_encoded(tmp_path, fake):
    enc = CachedEncoder(fake, EmbeddingCache(tmp_path))
    a = enc.encode(["alpha", "beta"])
    assert sorted(fake.seen) == ["alpha", "beta"]
    b = enc.encode(["beta", "gamma", "gamma", "alpha"])
    assert sorted(fake.calls[-1]) == ["gamma"]  # duplicates and known texts not re-encoded
    st = enc.last_stats
    assert (st.texts, st.unique, st.hits, st.encoded) == (4, 3, 2, 1)
    np.testing.assert_array_equal(b[0], a[1])
    np.testing.assert_array_equal(b[1], b[2])
    np.testing.assert_array_equal(b, FakeEncoder().encode(["beta", "gamma", "gamma", "alpha"]))
    assert enc.stats.encoded == 3 and enc.stats.texts == 6


def test_cache_persists_across_processes(tmp_path, fake):
    CachedEncoder(fake, EmbeddingCache(tmp_path)).encode(["one", "two", "three"])
    again = FakeEncoder()
    enc = CachedEncoder(again, EmbeddingCache(tmp_path))  # a fresh object reads the shards
    out = enc.encode(["three", "one"])
    assert again.calls == []
    assert enc.last_stats.hits == 2
    np.testing.assert_array_equal(out, FakeEncoder().encode(["three", "one"]))


def test_key_separates_models_and_settings(tmp_path):
    cache = EmbeddingCache(tmp_path)
    CachedEncoder(FakeEncoder(max_length=16), cache).encode(["x"])
    other = FakeEncoder(max_length=32)
    CachedEncoder(other, cache).encode(["x"])
    assert other.seen == ["x"]  # another max_length: another key, no hit
    k1, k2 = FakeEncoder(max_length=16).cache_key(), other.cache_key()
    assert cache.directory(k1) != cache.directory(k2)
    assert {k.max_length for k in cache.stored_keys()} == {16, 32}
    stored = json.loads((cache.directory(k1) / "key.json").read_text())
    assert stored["max_length"] == 16 and stored["model_hash"] == "0" * 64


@pytest.mark.parametrize("damage", ["flip", "truncate", "garbage", "retyped", "bad_checksum"])
def test_corrupted_shard_is_detected_and_rebuilt(tmp_path, damage):
    texts = [f"text number {i}" for i in range(20)]
    cache = EmbeddingCache(tmp_path)
    key = FakeEncoder().cache_key()
    CachedEncoder(FakeEncoder(), cache).encode(texts)
    (shard,) = _shards(cache, key)
    data = bytearray(shard.read_bytes())
    if damage == "flip":
        data[len(data) // 2] ^= 0xFF
        shard.write_bytes(bytes(data))
    elif damage == "truncate":
        shard.write_bytes(bytes(data[: len(data) // 3]))
    elif damage == "garbage":
        shard.write_bytes(b"not a zip file at all")
    else:  # a well-formed file whose contents do not match its checksum / types
        with np.load(shard) as z:
            arrays = {k: z[k] for k in z.files}
        if damage == "retyped":
            arrays["vectors"] = arrays["vectors"].astype(np.float64)
        else:
            arrays["vectors"] = arrays["vectors"] + 0.5
        with shard.open("wb") as f:
            np.savez(f, **arrays)
    fresh = FakeEncoder()
    enc = CachedEncoder(fresh, EmbeddingCache(tmp_path))
    out = enc.encode(texts)
    np.testing.assert_array_equal(out, FakeEncoder().encode(texts))  # never the damaged values
    assert sorted(fresh.seen) == sorted(texts)  # all re-encoded
    assert len(enc.last_stats.rejected_shards) == 1
    assert enc.last_stats.rejected_shards[0][0] == str(shard)
    assert not shard.exists()  # the damaged file is gone, a valid one replaces it
    third = FakeEncoder()
    CachedEncoder(third, EmbeddingCache(tmp_path)).encode(texts)
    assert third.calls == []


def test_shard_from_another_key_is_rejected(tmp_path):
    cache = EmbeddingCache(tmp_path)
    a, b = FakeEncoder(max_length=16), FakeEncoder(max_length=32)
    CachedEncoder(a, cache).encode(["same text"])
    CachedEncoder(b, cache).encode(["other"])
    # move a shard of key a into key b's directory: verification must refuse it
    (src,) = _shards(cache, a.cache_key())
    dst = cache.directory(b.cache_key()) / src.name
    src.rename(dst)
    c = FakeEncoder(max_length=32)
    enc = CachedEncoder(c, EmbeddingCache(tmp_path))
    enc.encode(["same text"])
    assert c.seen == ["same text"]
    assert "written for key" in enc.last_stats.rejected_shards[0][1]


def test_writes_are_atomic_and_leave_no_temp_files(tmp_path, fake):
    cache = EmbeddingCache(tmp_path)
    enc = CachedEncoder(fake, cache)
    for i in range(3):
        enc.encode([f"t{i}"])
    d = cache.directory(fake.cache_key())
    names = sorted(p.name for p in d.iterdir())
    assert all(n.startswith("shard-") or n == "key.json" for n in names), names
    assert not [p for p in d.iterdir() if p.name.endswith(".tmp")]


def test_failed_write_leaves_cache_intact(tmp_path, fake, monkeypatch):
    cache = EmbeddingCache(tmp_path)
    enc = CachedEncoder(fake, cache)
    enc.encode(["kept"])
    import kgrec.text._cache as mod

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(mod.np, "savez", boom)
    with pytest.raises(OSError, match="disk full"):
        enc.encode(["new"])
    monkeypatch.undo()
    d = cache.directory(fake.cache_key())
    assert len(list(d.glob("shard-*.npz"))) == 1
    assert not [p for p in d.iterdir() if p.name.endswith(".tmp")]
    again = FakeEncoder()
    CachedEncoder(again, EmbeddingCache(tmp_path)).encode(["kept", "new"])
    assert again.seen == ["new"]


def test_compaction_merges_shards_and_keeps_every_vector(tmp_path, fake):
    cache = EmbeddingCache(tmp_path, compact_after=3)
    enc = CachedEncoder(fake, cache)
    texts = [f"text {i}" for i in range(10)]
    for t in texts:
        enc.encode([t])
    assert len(_shards(cache, fake.cache_key())) <= 3
    again = FakeEncoder()
    out = CachedEncoder(again, EmbeddingCache(tmp_path)).encode(texts)
    assert again.calls == []
    np.testing.assert_array_equal(out, FakeEncoder().encode(texts))


def test_stale_key_json_is_rewritten(tmp_path, fake):
    cache = EmbeddingCache(tmp_path)
    CachedEncoder(fake, cache).encode(["a"])
    kf = cache.directory(fake.cache_key()) / "key.json"
    kf.write_text("{broken")
    CachedEncoder(FakeEncoder(), EmbeddingCache(tmp_path)).encode(["a"])
    assert json.loads(kf.read_text())["model_id"] == "fake"


def test_empty_input_and_type_errors(tmp_path, fake):
    enc = CachedEncoder(fake, EmbeddingCache(tmp_path))
    out = enc.encode([])
    assert out.shape == (0, fake.dim) and out.dtype == np.float32
    with pytest.raises(TypeError, match="text 1 is int"):
        enc.encode(["a", 3])
    with pytest.raises(TypeError, match="not one str"):
        enc.encode("a string")


def test_text_hashes_are_sha256_of_utf8():
    import hashlib

    h = text_hashes(["é", ""])
    assert h.shape == (2, 32) and h.dtype == np.uint8
    assert bytes(h[0]) == hashlib.sha256("é".encode()).digest()
    assert bytes(h[1]) == hashlib.sha256(b"").digest()


def test_refuses_non_finite_vectors(tmp_path):
    cache = EmbeddingCache(tmp_path)
    key = FakeEncoder().cache_key()
    with pytest.raises(ValueError, match="non-finite"):
        cache.add(key, text_hashes(["a"]), np.full((1, key.dim), np.nan, np.float32))
    with pytest.raises(ValueError, match="shape"):
        cache.add(key, text_hashes(["a"]), np.zeros((1, key.dim + 1), np.float32))


def test_default_root_is_under_kgrec_home(tmp_path, monkeypatch):
    monkeypatch.setenv("KGREC_HOME", str(tmp_path))
    assert EmbeddingCache().root == tmp_path / "embeddings"


def test_key_roundtrip_and_digest():
    key = FakeEncoder().cache_key()
    assert type(key).from_dict(key.to_dict()) == key
    assert dataclasses.replace(key, precision="int8").digest() != key.digest()
