"""ShardedIndex: shards searched together answer like one exact index; add/remove route to the
right shard; a process can load only its shards and merge_results joins their answers."""

from __future__ import annotations

import json

import numpy as np
import pytest

from kgrec.errors import DataError, UnknownIdError
from kgrec.index import IndexConfig, ShardedIndex, VectorIndex, merge_results


def _data(n: int = 300, dim: int = 16, seed: int = 0) -> tuple[np.ndarray, list[str]]:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, dim)).astype(np.float32), [f"i{j}" for j in range(n)]


CFG = IndexConfig(metric="cosine", factory="Flat", device="cpu")


@pytest.mark.parametrize("shards", [1, 2, 3, 7])
def test_sharded_exact_search_equals_one_index(shards: int) -> None:
    x, ids = _data()
    q = np.random.default_rng(1).normal(size=(25, x.shape[1])).astype(np.float32)
    one = VectorIndex(CFG).build(x, ids).search(q, 10)
    sharded = ShardedIndex(CFG, shards=shards).build(x, ids)
    assert len(sharded) == len(x) and sum(sharded.sizes().values()) == len(x)
    got = sharded.search(q, 10)
    assert (got.ids == one.ids).all()
    np.testing.assert_allclose(got.scores, one.scores, atol=1e-5)


def test_exclude_add_remove_route_to_shards() -> None:
    x, ids = _data(120)
    idx = ShardedIndex(CFG, shards=3).build(x, ids)
    top = idx.search(x[5], 3).ids[0].tolist()
    assert top[0] == "i5"
    assert "i5" not in idx.search(x[5], 3, exclude=[["i5"]]).ids[0].tolist()
    sizes = idx.sizes()
    idx.add(x[5] + 1e-3, ["twin"])
    assert set(idx.search(x[5], 2).ids[0].tolist()) == {"i5", "twin"}
    assert sum(idx.sizes().values()) == sum(sizes.values()) + 1
    with pytest.raises(DataError, match="already in the index"):
        idx.add(x[0], ["i0"])
    with pytest.raises(UnknownIdError):
        idx.remove(["i1", "nope"])
    assert "i1" in idx  # nothing removed before the error
    idx.remove(["i5", "twin"])
    assert "i5" not in idx and "twin" not in idx
    assert "i5" not in idx.search(x[5], 5).ids[0].tolist()


def test_save_load_some_shards_and_merge(tmp_path) -> None:
    x, ids = _data(200)
    q = np.random.default_rng(2).normal(size=(10, x.shape[1])).astype(np.float32)
    full = ShardedIndex(CFG, shards=4).build(x, ids, fingerprint="model:abc")
    want = full.search(q, 8)
    full.save(tmp_path / "idx")
    again = ShardedIndex.load(tmp_path / "idx", expected_fingerprint="model:abc")
    assert (again.search(q, 8).ids == want.ids).all()
    # two "processes", each holding two shards; their answers merged give the full answer
    a = ShardedIndex.load(tmp_path / "idx", shards=[0, 2])
    b = ShardedIndex.load(tmp_path / "idx", shards=[1, 3])
    assert len(a) + len(b) == len(x)
    merged = merge_results([a.search(q, 8), b.search(q, 8)], 8)
    assert (merged.ids == want.ids).all()
    with pytest.raises(Exception, match="holds shards"):
        a.save(tmp_path / "partial")


def test_merge_pads_when_shards_hold_fewer_than_k() -> None:
    x, ids = _data(6, dim=4)
    idx = ShardedIndex(CFG, shards=2).build(x, ids)
    res = idx.search(x[0], 10)
    assert res.ids.shape == (1, 10)
    assert sum(i is not None for i in res.ids[0]) == 6
    assert np.isneginf(res.scores[0, 6:]).all()


def test_crafted_manifest_is_refused(tmp_path) -> None:
    x, ids = _data(40)
    ShardedIndex(CFG, shards=2).build(x, ids).save(tmp_path / "idx")
    m = tmp_path / "idx" / "sharded.json"
    meta = json.loads(m.read_text())
    meta["shards"] = 10**9
    m.write_text(json.dumps(meta))
    with pytest.raises(DataError, match="shards must be an integer"):
        ShardedIndex.load(tmp_path / "idx")
    with pytest.raises(DataError, match=r"no sharded\.json"):
        ShardedIndex.load(tmp_path)


def test_one_shard_per_gpu() -> None:
    from kgrec.index import faiss_gpu_count

    if faiss_gpu_count() < 1:
        pytest.skip(
            "no GPU visible to faiss: the one-shard-per-GPU layout runs only on a GPU machine"
        )
    x, ids = _data(500, dim=32)
    devices = [f"cuda:{g}" for g in range(faiss_gpu_count())]
    cfg = IndexConfig(metric="cosine", factory="Flat", device="cuda")
    idx = ShardedIndex(cfg, shards=max(2, len(devices)), devices=devices).build(x, ids)
    assert {s.info().device for s in idx.shards} <= set(devices)
    one = VectorIndex(CFG).build(x, ids).search(x[:20], 10)
    assert (idx.search(x[:20], 10).ids == one.ids).all()
