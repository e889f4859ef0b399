"""kgrec.index specifics: config, factory rule, devices, quantizers, HNSW tombstones, files."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from kgrec.errors import DataError, SpecError
from kgrec.index import (
    FactorySpec,
    IndexConfig,
    IndexUsageError,
    VectorIndex,
    auto_factory,
    faiss_gpu_available,
    parse_factory,
    recall_at_k,
)
from kgrec.testing import clustered_vectors as clustered

needs_gpu = pytest.mark.skipif(
    not faiss_gpu_available(),
    reason="needs the faiss GPU build and a visible GPU (faiss.get_num_gpus() == 0 here)",
)


def test_import_kgrec_index_does_not_import_faiss_or_torch():
    code = "import sys, kgrec, kgrec.index; print('faiss' in sys.modules, 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


# config -------------------------------------------------------------------------------------
def test_config_round_trip_and_validation():
    cfg = IndexConfig(metric="ip", factory="IVF64,PQ8x8", device="cuda:1", nprobe=4, seed=3)
    assert IndexConfig.from_dict(cfg.to_dict()) == cfg
    assert json.loads(json.dumps(cfg.to_dict())) == cfg.to_dict()
    with pytest.raises(SpecError, match="metric must be one of"):
        IndexConfig(metric="l2")
    with pytest.raises(SpecError, match=r"accepted forms: auto, Flat, HNSW"):
        IndexConfig(factory="LSH128")
    with pytest.raises(SpecError, match="device must be"):
        IndexConfig(device="gpu")
    with pytest.raises(SpecError, match="nprobe must be a positive integer"):
        IndexConfig(nprobe=0)
    with pytest.raises(SpecError, match=r"unknown index config keys \['nlist'\]"):
        IndexConfig.from_dict({"nlist": 3})


@pytest.mark.parametrize(
    ("text", "spec"),
    [
        ("Flat", FactorySpec("exact")),
        ("HNSW", FactorySpec("hnsw")),
        ("HNSW32,Flat", FactorySpec("hnsw", hnsw_m=32)),
        ("IVF,Flat", FactorySpec("ivf-flat")),
        ("IVF256,Flat", FactorySpec("ivf-flat", nlist=256)),
        ("IVF256,PQ16", FactorySpec("ivf-pq", nlist=256, pq_m=16)),
        ("IVF256,PQ16x4", FactorySpec("ivf-pq", nlist=256, pq_m=16, pq_nbits=4)),
    ],
)
def test_parse_factory(text, spec):
    assert parse_factory(text) == spec


def test_auto_factory_rule():
    kw = {"exact_max": 20_000, "hnsw_max": 5_000_000}
    assert auto_factory(5_000, 64, gpu=False, **kw).type == "exact"
    assert auto_factory(100_000, 64, gpu=False, **kw) == FactorySpec("hnsw", hnsw_m=32)
    big = auto_factory(10_000_000, 64, gpu=False, **kw)
    assert (big.type, big.pq_m, big.pq_nbits) == ("ivf-pq", 64, 8)
    assert big.nlist == int(4 * 10_000_000**0.5)
    assert auto_factory(1_000_000, 64, gpu=True, **kw).type == "exact"


def test_auto_builds_exact_below_threshold_and_hnsw_above():
    x, _ = clustered(600, 8)
    small = VectorIndex(IndexConfig(device="cpu")).build(x)
    assert small.info().type == "exact" and small.info().backend == "torch+faiss"
    mid = VectorIndex(IndexConfig(device="cpu", exact_max=500, ef_construction=20)).build(x)
    assert mid.info().factory == "HNSW32,Flat"


def test_bad_factory_for_data():
    x, _ = clustered(100, 8)
    with pytest.raises(SpecError, match="needs at least nlist=512 training vectors"):
        VectorIndex(IndexConfig(factory="IVF512,Flat")).build(x)
    with pytest.raises(SpecError, match=r"PQ m=3 must divide the dimension 8"):
        VectorIndex(IndexConfig(factory="IVF2,PQ3")).build(x)


# inputs -------------------------------------------------------------------------------------
def test_build_input_errors():
    x, _ = clustered(50, 4)
    with pytest.raises(DataError, match="got 3 item ids for 50 vectors"):
        VectorIndex().build(x, ["a", "b", "c"])
    with pytest.raises(DataError, match=r"duplicate item ids: \['a'\]"):
        VectorIndex().build(x[:3], ["a", "b", "a"])
    with pytest.raises(DataError, match="2-D array"):
        VectorIndex().build(np.zeros(4, np.float32))
    zero = x.copy()
    zero[7] = 0
    with pytest.raises(DataError, match="row 7: vectors contain zero vectors"):
        VectorIndex().build(zero)
    VectorIndex(IndexConfig(metric="ip")).build(zero)  # fine for inner product
    with pytest.raises(IndexUsageError, match="call build"):
        VectorIndex().search(x[:1], 3)


def test_cosine_normalises_and_ip_does_not():
    x, q = clustered(300, 8)
    scale = np.linspace(0.5, 5, len(x), dtype=np.float32)[:, None]
    cos = VectorIndex(IndexConfig(metric="cosine")).build(x * scale)
    ref = VectorIndex(IndexConfig(metric="cosine")).build(x)
    assert np.array_equal(cos.search(q, 5).ids, ref.search(q, 5).ids)
    np.testing.assert_allclose(cos.search(q, 1).scores.max(), 1.0, atol=0.2)
    ip = VectorIndex(IndexConfig(metric="ip")).build(x * scale)
    assert not np.array_equal(ip.search(q, 5).ids, ref.search(q, 5).ids)


def test_k_above_size_pads_with_none():
    x, q = clustered(4, 4)
    res = VectorIndex().build(x, ["a", "b", "c", "d"]).search(q[:2], 6)
    assert res.ids.shape == (2, 6)
    assert (res.ids[:, 4:] == None).all()  # noqa: E711 - object array comparison
    assert np.isneginf(res.scores[:, 4:]).all()
    assert len(res.row(0)) == 4


def test_torch_and_faiss_exact_agree():
    x, q = clustered(2000, 16)
    t = VectorIndex(IndexConfig(factory="Flat", exact_backend="torch")).build(x)
    f = VectorIndex(IndexConfig(factory="Flat", exact_backend="faiss")).build(x)
    a, b = t.search(q, 10), f.search(q, 10)
    assert recall_at_k(a.ids, b.ids) > 0.999
    np.testing.assert_allclose(a.scores, b.scores, atol=1e-5)


def test_hybrid_exact_answers_small_batches_by_faiss_and_large_by_torch(monkeypatch):
    from kgrec.index import _torch_exact

    x, q = clustered(2000, 16)
    pure = VectorIndex(IndexConfig(factory="Flat", exact_backend="torch")).build(x)
    hybrid = VectorIndex(IndexConfig(factory="Flat", exact_backend="auto")).build(x)
    assert (pure.info().backend, hybrid.info().backend) == ("torch", "torch+faiss")
    calls = []
    real = _torch_exact.topk_inner_product
    monkeypatch.setattr(_torch_exact, "topk_inner_product", lambda *a: calls.append(1) or real(*a))
    for batch in (q[:1], q[:2], q[:3], q):
        a, b = pure.search(batch, 10), hybrid.search(batch, 10)
        assert recall_at_k(a.ids, b.ids) > 0.999
        np.testing.assert_allclose(a.scores, b.scores, atol=1e-5)
    # pure torch: 4 calls; hybrid: only the batches of 3 and 200 queries
    assert len(calls) == 4 + 2


def test_torch_exact_blocked_scan_matches_one_block(monkeypatch):
    from kgrec.index import _torch_exact

    x, q = clustered(3000, 8)
    whole = VectorIndex(IndexConfig(factory="Flat")).build(x).search(q, 10)
    monkeypatch.setattr(_torch_exact, "SCORE_BUDGET", 4096)  # forces chunks and blocks
    blocked = VectorIndex(IndexConfig(factory="Flat")).build(x).search(q, 10)
    assert np.array_equal(whole.ids, blocked.ids)


# IVF quantizers -----------------------------------------------------------------------------
def test_each_ivf_index_trains_its_own_quantizer():
    import faiss

    xa, _ = clustered(2000, 8, seed=1)
    xb, _ = clustered(2000, 8, seed=2)
    a = VectorIndex(IndexConfig(factory="IVF16,Flat")).build(xa)
    before = faiss.vector_to_array(faiss.downcast_index(a.quantizer()).codes).copy()
    b = VectorIndex(IndexConfig(factory="IVF16,Flat")).build(xb)
    after = faiss.vector_to_array(faiss.downcast_index(a.quantizer()).codes)
    other = faiss.vector_to_array(faiss.downcast_index(b.quantizer()).codes)
    assert a.quantizer() is not b.quantizer()
    assert np.array_equal(before, after)  # building b left a's centroids alone
    assert not np.array_equal(before, other)


# HNSW tombstones ----------------------------------------------------------------------------
def test_hnsw_removals_compact_and_keep_ids_consistent(tmp_path):
    x, q = clustered(1000, 8)
    ids = [f"i{i}" for i in range(len(x))]
    idx = VectorIndex(IndexConfig(factory="HNSW16", ef_construction=40)).build(x, ids)
    idx.remove(ids[:100])  # 10%: tombstones
    assert idx._backend._tombstones
    assert not set(ids[:100]) & set(idx.search(q, 20).ids.ravel())
    idx.remove(ids[100:300])  # 30% in all: the graph is rebuilt without them
    assert not idx._backend._tombstones
    assert len(idx) == 700 and idx._backend.ntotal == 700
    got = idx.search(x[300:310], 1).ids[:, 0].tolist()
    assert got == ids[300:310]
    idx.remove(ids[310:320])
    loaded = VectorIndex.load(idx.save(tmp_path / "h"))
    assert np.array_equal(loaded.search(q, 10).ids, idx.search(q, 10).ids)
    assert loaded.self_check().recall >= 0.95


def test_tune_raises_search_effort_to_target():
    x, _ = clustered(3000, 16)
    idx = VectorIndex(IndexConfig(factory="IVF64,Flat", nprobe=1)).build(x)
    report = idx.tune(0.99)
    assert report.recall >= 0.99
    assert idx.info().nprobe > 1


@pytest.mark.parametrize("target", [0.0, 1.5, -0.2, float("nan")])
def test_tune_refuses_a_target_that_is_not_a_recall(target):
    x, _ = clustered(300, 8)
    idx = VectorIndex(IndexConfig(factory="IVF8,Flat", nprobe=1)).build(x)
    with pytest.raises(ValueError, match=r"target recall must be in \(0, 1\]"):
        idx.tune(target)


# files --------------------------------------------------------------------------------------
def test_saved_layout_and_overwrite(tmp_path):
    x, _ = clustered(200, 8)
    idx = VectorIndex(IndexConfig(factory="HNSW8", ef_construction=16)).build(x, fingerprint="fp")
    path = idx.save(tmp_path / "idx")
    meta = json.loads((path / "meta.json").read_text())
    assert meta["fingerprint"] == "fp" and meta["metric"] == "cosine" and meta["dim"] == 8
    assert meta["factory"] == "HNSW8,Flat" and meta["type"] == "hnsw"
    assert json.loads((path / "ids.json").read_text())["ids"][:2] == ["0", "1"]
    with pytest.raises(FileExistsError):
        idx.save(path)
    idx.save(path, overwrite=True)
    assert not list(tmp_path.glob(".idx.*"))  # no temporary left behind


def test_load_errors(tmp_path):
    with pytest.raises(DataError, match=r"no meta\.json"):
        VectorIndex.load(tmp_path)
    x, _ = clustered(50, 4)
    path = VectorIndex().build(x).save(tmp_path / "i")
    (path / "vectors.npy").unlink()
    with pytest.raises(DataError, match=r"index files missing: \['vectors.npy'\]"):
        VectorIndex.load(path)
    (path / "meta.json").write_text("{not json")
    with pytest.raises(DataError, match="invalid JSON"):
        VectorIndex.load(path)


# devices ------------------------------------------------------------------------------------
@pytest.mark.skipif(faiss_gpu_available(), reason="checks the no-GPU error")
def test_cuda_without_gpu_is_a_clear_error():
    x, _ = clustered(100, 8)
    with pytest.raises(IndexUsageError, match="device='cuda' requested but"):
        VectorIndex(IndexConfig(factory="IVF2,Flat", device="cuda")).build(x)
    with pytest.raises(IndexUsageError, match="no faiss GPU implementation"):
        VectorIndex(IndexConfig(factory="HNSW8", device="cuda")).build(x)
    assert VectorIndex(IndexConfig(device="auto")).build(x).info().device == "cpu"


@needs_gpu
@pytest.mark.parametrize("factory", ["Flat", "IVF32,Flat", "IVF32,PQ16"])
def test_gpu_matches_cpu_and_saves_a_cpu_copy(factory, tmp_path):
    x, q = clustered(3000, 16)
    ids = [f"i{i}" for i in range(len(x))]
    cfg = IndexConfig(factory=factory, exact_backend="faiss")
    gpu = VectorIndex(cfg.replace(device="cuda")).build(x, ids)
    cpu = VectorIndex(cfg.replace(device="cpu")).build(x, ids)
    assert gpu.info().device == "cuda:0"
    assert recall_at_k(gpu.search(q, 10).ids, cpu.search(q, 10).ids) >= 0.95
    gpu.add(x[:1] * 0.5 + 0.1, ["new"])
    assert gpu.search(x[:1] * 0.5 + 0.1, 1).ids[0, 0] == "new"
    gpu.remove(["i5"])
    assert "i5" not in gpu.search(x[5], 20).ids[0]
    loaded = VectorIndex.load(gpu.save(tmp_path / "g"), device="cpu")
    assert loaded.info().device == "cpu" and len(loaded) == len(gpu)
    assert recall_at_k(loaded.search(q, 10).ids, gpu.search(q, 10).ids) >= 0.95


@needs_gpu
def test_auto_device_uses_the_gpu():
    x, _ = clustered(500, 8)
    assert VectorIndex(IndexConfig(factory="Flat")).build(x).info().device == "cuda:0"
