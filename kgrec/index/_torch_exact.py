"""Exact inner-product search by torch matmul + topk, behind the same backend API as FAISS.

Measured on this project's 2-core CPU (bench/results/retrieval.json) it beats faiss-cpu
``IndexFlatIP`` on query batches (faiss's BLAS path scans its blocked heap slowly), and it needs
no faiss at all. Vectors live in one growable float32 tensor (CPU or CUDA); queries are
processed in chunks so the score matrix never exceeds ``SCORE_BUDGET`` floats.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from kgrec.index._errors import IndexUsageError

#: most score-matrix elements materialised at once (64 MiB of float32)
SCORE_BUDGET = 1 << 24
#: batches up to this size go to faiss.knn in the hybrid CPU backend: its per-query scan beat
#: torch mv + topk for 1-2 queries here (interleaved timings in bench/results), torch's GEMM
#: won from 4 queries on
FAISS_MAX_BATCH = 2


def topk_inner_product(q: Any, x: Any, k: int) -> tuple[Any, Any]:
    """Exact top-``k`` (scores, row indices) of ``q @ x.T`` for torch tensors, best first.

    Queries are taken in chunks and, for large ``x``, rows of ``x`` in blocks whose running
    top-k lists are merged, so at most ``SCORE_BUDGET`` scores exist at once.
    """
    import torch

    nq, n = q.shape[0], x.shape[0]
    k = min(k, n)
    rows = max(1, min(nq, 1024, SCORE_BUDGET // max(n, 1)))
    block = max(k, SCORE_BUDGET // rows)
    out_s, out_i = [], []
    with torch.inference_mode():
        for i in range(0, nq, rows):
            qc = q[i : i + rows]
            if n <= block:
                s = torch.mv(x, qc[0])[None] if len(qc) == 1 else qc @ x.T
                top_s, top_i = torch.topk(s, k, dim=1)
            else:  # scan x in blocks, merging the running top-k lists
                top_s = top_i = None
                for j in range(0, n, block):
                    s = qc @ x[j : j + block].T
                    bs, bi = torch.topk(s, min(k, s.shape[1]), dim=1)
                    bi = bi + j
                    if top_s is not None:
                        bs, pos = torch.topk(torch.cat([top_s, bs], 1), k, dim=1)
                        bi = torch.gather(torch.cat([top_i, bi], 1), 1, pos)
                    top_s, top_i = bs, bi
            out_s.append(top_s)
            out_i.append(top_i)
    return torch.cat(out_s), torch.cat(out_i)


class TorchExactBackend:
    """Brute-force inner product over all stored vectors, keyed by int64 labels.

    With ``small_batch_faiss`` (the ``exact_backend="auto"`` choice on the CPU when faiss is
    installed) batches of at most ``FAISS_MAX_BATCH`` queries are answered by ``faiss.knn`` over
    the same memory, larger ones by torch: each takes the path measured faster here.
    """

    def __init__(
        self,
        dim: int,
        device: str,
        *,
        small_batch_faiss: bool = False,
        vectors: np.ndarray | None = None,
        labels: np.ndarray | None = None,
    ) -> None:
        self.dim = dim
        self.device = device
        self.small_batch_faiss = small_batch_faiss and device == "cpu"
        self._np: np.ndarray | None = None
        if vectors is not None and self.small_batch_faiss:
            # CPU + faiss: keep the loaded array; torch is imported (and the tensor made, sharing
            # this memory) only for a large query batch or a change (a saved index loads fast)
            self._x: Any = None
            self._np = np.ascontiguousarray(vectors, dtype=np.float32)
            self._labels = np.asarray(labels, dtype=np.int64).copy()
            self._n = len(self._np)
            return
        import torch

        self._x = torch.empty((0, dim), dtype=torch.float32, device=device)
        self._labels = np.empty(0, dtype=np.int64)
        self._n = 0
        if vectors is not None:
            self.add(vectors, labels if labels is not None else np.arange(len(vectors)))

    def _tensor(self) -> Any:
        """The vectors as a torch tensor (made from the loaded array on first need)."""
        if self._x is None:
            import torch

            self._x = torch.from_numpy(self._np)
            self._np = None
        return self._x

    @property
    def kind(self) -> str:
        return "torch+faiss" if self.small_batch_faiss else "torch"

    @property
    def ntotal(self) -> int:
        return self._n

    @property
    def needs_training(self) -> bool:
        return False

    def train(self, x: np.ndarray) -> None:
        """Nothing to train."""

    def attach_device(self) -> None:
        """Vectors already live on ``device``."""

    def add(self, x: np.ndarray, labels: np.ndarray) -> None:
        import torch

        self._tensor()
        m = len(x)
        need = self._n + m
        if need > self._x.shape[0]:  # grow geometrically: runtime adds stay amortised O(1)
            cap = max(need, int(self._x.shape[0] * 1.5), 1024)
            grown = torch.empty((cap, self.dim), dtype=torch.float32, device=self.device)
            grown[: self._n] = self._x[: self._n]
            self._x = grown
            lab = np.empty(cap, dtype=np.int64)
            lab[: self._n] = self._labels[: self._n]
            self._labels = lab
        self._x[self._n : need] = torch.from_numpy(np.ascontiguousarray(x)).to(self.device)
        self._labels[self._n : need] = labels
        self._n = need

    def remove(self, labels: np.ndarray) -> None:
        import torch

        self._tensor()
        keep = ~np.isin(self._labels[: self._n], labels)
        m = int(keep.sum())
        idx = torch.from_numpy(np.flatnonzero(keep)).to(self.device)
        self._x[:m] = self._x[: self._n].index_select(0, idx)
        self._labels[:m] = self._labels[: self._n][keep]
        self._n = m

    def set_search_params(self, **_: Any) -> None:
        """Exact search has no parameters."""

    def search(self, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Scores and labels (``-1`` where fewer than ``k`` exist), best first."""
        nq, n = len(q), self._n
        scores = np.full((nq, k), -np.inf, dtype=np.float32)
        labels = np.full((nq, k), -1, dtype=np.int64)
        kk = min(k, n)
        if kk == 0 or nq == 0:
            return scores, labels
        if self.small_batch_faiss and nq <= FAISS_MAX_BATCH:
            import faiss

            xs = self._np[:n] if self._x is None else self._x[:n].numpy()
            d, i = faiss.knn(np.ascontiguousarray(q), xs, kk, metric=faiss.METRIC_INNER_PRODUCT)
            scores[:, :kk] = d
            labels[:, :kk] = self._labels[i]
            return scores, labels
        import torch

        qt = torch.from_numpy(np.ascontiguousarray(q)).to(self.device)
        top_s, top_i = topk_inner_product(qt, self._tensor()[:n], kk)
        scores[:, :kk] = top_s.cpu().numpy()
        labels[:, :kk] = self._labels[top_i.cpu().numpy()]
        return scores, labels

    def state(self) -> dict[str, Any]:
        return {}

    def save(self, directory: Path) -> list[str]:
        x = self._np[: self._n] if self._x is None else self._x[: self._n].cpu().numpy()
        np.save(directory / "vectors.npy", x, allow_pickle=False)
        np.save(directory / "vector_labels.npy", self._labels[: self._n], allow_pickle=False)
        return ["vectors.npy", "vector_labels.npy"]

    @classmethod
    def load(
        cls, directory: Path, dim: int, device: str, *, small_batch_faiss: bool = False
    ) -> TorchExactBackend:
        x = np.load(directory / "vectors.npy", allow_pickle=False)
        labels = np.load(directory / "vector_labels.npy", allow_pickle=False)
        if x.ndim != 2 or x.shape[1] != dim or len(labels) != len(x):
            raise IndexUsageError(
                f"{directory}: vectors.npy has shape {x.shape} and {len(labels)} labels, "
                f"expected (n, {dim}) with n labels"
            )
        return cls(
            dim,
            device,
            small_batch_faiss=small_batch_faiss,
            vectors=x.astype(np.float32, copy=False),
            labels=labels.astype(np.int64, copy=False),
        )

    def labels(self) -> np.ndarray:
        return self._labels[: self._n].copy()

    def quantizer(self) -> None:
        return None
