"""The exact-search probe behind ``VectorIndex.self_check`` and ``tune``.

At build time ``check_queries`` stored vectors are sampled as queries and their exact
top-``2 * check_k`` neighbours (scores + labels) are kept. Adds merge the new vectors' exact
scores in; removals drop the removed labels. A probe query stays exact for ``k`` while at least
``k`` of its kept neighbours are alive (or all live items are kept), so the self-check measures
recall against exact search for every index type, IVF-PQ included (whose original vectors are
gone), also after ``load``.
"""

from __future__ import annotations

import numpy as np

from kgrec.index._torch_exact import topk_inner_product


class Probe:
    """Exact top-``depth`` neighbours of sampled queries, kept current under add/remove."""

    def __init__(self, queries: np.ndarray, scores: np.ndarray, labels: np.ndarray) -> None:
        self.queries, self.scores, self.labels = queries, scores, labels

    @property
    def depth(self) -> int:
        return self.labels.shape[1]

    @classmethod
    def build(cls, x: np.ndarray, labels: np.ndarray, *, m: int, depth: int, seed: int) -> Probe:
        rng = np.random.default_rng(seed)
        rows = np.sort(rng.choice(len(x), size=min(m, len(x)), replace=False))
        probe = cls(x[rows].copy(), np.empty((len(rows), 0), np.float32), np.empty((len(rows), 0)))
        probe.labels = np.empty((len(rows), 0), np.int64)
        probe.merge(x, labels, depth=depth)
        return probe

    def merge(self, x: np.ndarray, labels: np.ndarray, *, depth: int | None = None) -> None:
        import torch

        depth = depth or self.depth
        if len(x) == 0 or len(self.queries) == 0:
            return
        s, i = topk_inner_product(torch.from_numpy(self.queries), torch.from_numpy(x), depth)
        scores = np.concatenate([self.scores, s.numpy()], axis=1)
        labs = np.concatenate([self.labels, labels[i.numpy()]], axis=1)
        order = np.argsort(-scores, axis=1, kind="stable")[:, :depth]
        self.scores = np.take_along_axis(scores, order, 1)
        self.labels = np.take_along_axis(labs, order, 1)

    def remove(self, labels: np.ndarray) -> None:
        gone = np.isin(self.labels, labels)
        if not gone.any():
            return
        scores = np.where(gone, -np.inf, self.scores).astype(np.float32)
        labs = np.where(gone, -1, self.labels)
        order = np.argsort(-scores, axis=1, kind="stable")
        self.scores = np.take_along_axis(scores, order, 1)
        self.labels = np.take_along_axis(labs, order, 1)

    def truth(self, k: int, size: int) -> tuple[np.ndarray, np.ndarray]:
        """Rows whose exact top-k is known, and that top-k (labels)."""
        valid = (self.labels >= 0).sum(axis=1)
        ok = (valid >= min(k, size)) & (valid > 0)
        return np.flatnonzero(ok), self.labels[ok, :k]


def recall_at_k(approx: np.ndarray, exact: np.ndarray) -> float:
    """Mean over rows of |approx_i ∩ exact_i| / |exact_i| (ids or labels; None/-1 ignored)."""
    hits = []
    for a, e in zip(approx, exact, strict=True):
        truth = {x for x in e.tolist() if x is not None and x != -1}
        got = {x for x in a.tolist() if x is not None and x != -1}
        hits.append(len(truth & got) / max(1, len(truth)))
    return float(np.mean(hits)) if hits else float("nan")
