"""Every index type passes the shared contract (kgrec.testing.IndexContract)."""

from __future__ import annotations

from kgrec.index import IndexConfig
from kgrec.testing import IndexContract


class TestExactTorch(IndexContract):
    config = IndexConfig(factory="Flat", exact_backend="torch", device="cpu")
    index_type = "exact"
    min_recall = 1.0


class TestExactHybrid(IndexContract):
    config = IndexConfig(factory="Flat", exact_backend="auto", device="cpu")
    index_type = "exact"
    min_recall = 1.0


class TestExactFaiss(IndexContract):
    config = IndexConfig(factory="Flat", exact_backend="faiss", device="cpu")
    index_type = "exact"
    min_recall = 1.0


class TestHNSW(IndexContract):
    config = IndexConfig(factory="HNSW16", ef_construction=40, device="cpu")
    index_type = "hnsw"


class TestIVFFlat(IndexContract):
    config = IndexConfig(factory="IVF,Flat", device="cpu")
    index_type = "ivf-flat"


class TestIVFPQ(IndexContract):
    # one 8-bit code per dimension (the default m for dim <= 64)
    config = IndexConfig(factory="IVF,PQ", device="cpu")
    index_type = "ivf-pq"


class TestInnerProductHNSW(IndexContract):
    config = IndexConfig(factory="HNSW16", metric="ip", ef_construction=40, device="cpu")
    index_type = "hnsw"
