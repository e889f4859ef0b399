"""Data-parallel training (torch.distributed, gloo, 2 CPU processes) matches one process.

Tolerance: both runs take the same optimiser steps on the same global batches, so they differ
only by floating-point summation order: embeddings within 1e-4 (absolute) and test NDCG@20 /
Recall@20 within 0.005 (absolute; a near-tie may flip a rank). The two processes meet through a
file store in the test's temporary directory, not a TCP port: a port picked free and released
before the workers bind it can be taken in between (seen once as a flaky failure).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kgrec.data import make_split
from kgrec.eval import NDCG, Recall, build_protocol, evaluate, positives
from kgrec.testing import kgat_like_lists

VEC_ATOL = 1e-4
METRIC_ATOL = 0.005


def _data():
    import pandas as pd

    from kgrec.data import Dataset, Interactions

    train, test = kgat_like_lists(n_users=240, n_items=90, seed=4)
    rows = [(f"u{u}", f"i{i}", "train") for u, its in enumerate(train) for i in its]
    rows += [(f"u{u}", f"i{i}", "test") for u, its in enumerate(test) for i in its]
    frame = pd.DataFrame(rows, columns=["user", "item", "split"])
    ds = Dataset(name="gen", interactions=Interactions(frame, source="generated"))
    return build_protocol(make_split(positives(ds), "given"))


def _fit(name: str):
    from kgrec.models import MODELS
    from kgrec.train import TrainingOptions

    proto = _data()
    batch = 64 if name == "hybrid" else 256  # the hybrid's batches count users
    opts = TrainingOptions(epochs=4, batch_size=batch, lr=5e-3, patience=0, seed=7)
    model = MODELS[name](options=opts)
    model.fit(proto.split.train_matrix())
    return model, proto


def _worker(rank: int, size: int, store: str, name: str, out: str) -> None:
    import torch
    import torch.distributed as dist

    from kgrec.train._distributed import set_rank_env

    set_rank_env(rank, size, port=0)  # RANK / WORLD_SIZE as torchrun sets them
    # Joined here, so the library's init_from_env finds the group and does not rendezvous again.
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=size)

    torch.set_num_threads(1)
    model, _ = _fit(name)
    if rank == 0:
        np.savez(out, user=model.user_vecs_, item=model.item_vecs_)
    # Tear down together: a rank that destroyed its group while the other was still writing
    # aborted once in gloo's teardown ("terminate called without an active exception").
    dist.barrier()
    dist.destroy_process_group()


@pytest.mark.parametrize("name", ["mf", "hybrid", pytest.param("lightgcn", marks=pytest.mark.slow)])
def test_two_gloo_processes_match_one(tmp_path: Path, name: str) -> None:
    import torch
    import torch.multiprocessing as mp

    if not torch.distributed.is_available():
        pytest.skip("torch.distributed is not available in this torch build")
    out, store = str(tmp_path / "ddp.npz"), str(tmp_path / "rendezvous")
    mp.start_processes(
        _worker, args=(2, store, name, out), nprocs=2, join=True, start_method="spawn"
    )
    torch.set_num_threads(1)
    single, proto = _fit(name)
    ddp = np.load(out)
    np.testing.assert_allclose(ddp["user"], single.user_vecs_, atol=VEC_ATOL)
    np.testing.assert_allclose(ddp["item"], single.item_vecs_, atol=VEC_ATOL)
    metrics = [NDCG(20), Recall(20)]
    a = evaluate(single.score, proto.tests[0], metrics).mean()
    single.user_vecs_, single.item_vecs_ = ddp["user"], ddp["item"]
    b = evaluate(single.score, proto.tests[0], metrics).mean()
    for m in ("NDCG@20", "Recall@20"):
        assert abs(a[m] - b[m]) <= METRIC_ATOL, (m, a[m], b[m])
    assert a["NDCG@20"] > 0.05  # trained to something, not a trivial agreement
