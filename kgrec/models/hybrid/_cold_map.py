"""The ridge cold map: content features -> an embedding model's trained item vectors.

Any model with learned item vectors (rows of ``y`` for its warm items) can give items without
interactions a vector from their content (Heater / DropoutNet-style "content -> CF" mapping):

* :func:`content_features`: per item ``[L2-normalised text vector, IDF entity bag, 1]``;
* :class:`RidgeColdMap`: ridge regression of the warm items' vectors on those features, with an
  out-of-fold calibration (:func:`calibration`: ridge predictions of unseen items shrink toward
  their mean; ``alpha`` restores their spread, ``offset`` their mean) and unit-length output;
* :func:`knn_vectors` / :func:`blend_unit`: a kNN regression (softmax-weighted mean of the
  vectors of the most similar warm items) blended into the ridge output (``cold_knn``: chosen on
  ml-100k's cold validation items, ``bench/research/text_finetune/cold_map_variants.json``);
* :func:`choose_scale`: the length of the mapped vectors against learned (unit) ones, chosen on a
  validation callback (dot-product scores make it a prior of content-only items).

The hybrid (:class:`~kgrec.models.hybrid.HybridRecommender`) uses it for ``cold_map="ridge"``;
the functions take arrays only (no model, no graph), so other embedding models can too.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Self

import numpy as np
import scipy.sparse as sp

from kgrec._numeric import normalize_rows, smooth_idf
from kgrec.errors import KgrecError

log = logging.getLogger(__name__)

#: the lengths :func:`choose_scale` tries (never 0: a new item needs a direction)
SCALE_GRID: tuple[float, ...] = (0.25, 0.5, 0.75, 1.0)


def ridge(x: np.ndarray, y: np.ndarray, lam: float) -> np.ndarray:
    """``argmin_w |x w - y|^2 + lam |w|^2``, in primal or dual form, whichever is smaller."""
    if x.shape[1] <= len(x):  # primal: (d x d) system
        return np.linalg.solve(x.T @ x + lam * np.eye(x.shape[1]), x.T @ y)
    return x.T @ np.linalg.solve(x @ x.T + lam * np.eye(len(x)), y)  # dual: (n x n)


def content_features(text: np.ndarray | None, bags: np.ndarray | None) -> np.ndarray:
    """``[normalised text, bags, 1]`` per row (either part may be ``None``, not both)."""
    parts = []
    if text is not None:
        parts.append(normalize_rows(np.asarray(text, np.float64)))
    if bags is not None:
        parts.append(np.asarray(bags, np.float64))
    if not parts:
        raise KgrecError("cold_map='ridge' needs text or KG inputs")
    return np.concatenate([*parts, np.ones((parts[0].shape[0], 1))], 1)


def link_idf(matrices: Sequence[sp.spmatrix]) -> np.ndarray:
    """IDF of each entity over items (binary links of all relations together)."""
    m = sp.csr_matrix(sum(matrices), dtype=np.float32)
    m.data[:] = 1.0
    return smooth_idf(np.asarray(m.sum(0)).ravel(), m.shape[0])


def entity_bags(
    idf: np.ndarray, entities: Sequence[Any], links: Sequence[Sequence[tuple[str, str]]]
) -> np.ndarray:
    """IDF-weighted, L2-normalised entity bags of new items from their ``(relation, entity)``
    pairs (entities unknown to ``entities`` are ignored)."""
    ent = {str(e): k for k, e in enumerate(entities)}
    bags = np.zeros((len(links), len(ent)), np.float64)
    for i, pairs in enumerate(links):
        for _, e in pairs:
            if str(e) in ent:
                bags[i, ent[str(e)]] = 1.0
    bags *= idf
    return normalize_rows(bags)


def calibration(
    xw: np.ndarray, y: np.ndarray, lam: float, *, seed: int, folds: int = 5
) -> tuple[float, np.ndarray]:
    """``(alpha, offset)`` with ``mapped = alpha * ridge + offset``: ridge predictions of unseen
    items shrink toward their mean, where the learned vectors of rare items also sit, so a mapped
    item's nearest known items are rare ones. Out-of-fold predictions on the warm items measure
    the shrinkage: ``alpha`` restores their spread to that of the learned vectors, ``offset``
    moves their mean onto the learned mean. ``(1, 0)`` with fewer than ``2 * folds`` items."""
    n = len(xw)
    if n < 2 * folds:
        return 1.0, np.zeros(y.shape[1])
    oof = out_of_fold(xw, y, lam, seed=seed, folds=folds)
    mu_y, mu_p = y.mean(0), oof.mean(0)
    spread_p = float(((oof - mu_p) ** 2).sum(1).mean())
    if spread_p <= 0:
        return 1.0, np.zeros(y.shape[1])
    alpha = float(np.sqrt(((y - mu_y) ** 2).sum(1).mean() / spread_p))
    log.info("cold map calibration: alpha %.3f (%d folds)", alpha, folds)
    return alpha, mu_y - alpha * mu_p


def out_of_fold(
    xw: np.ndarray, y: np.ndarray, lam: float, *, seed: int, folds: int = 5
) -> np.ndarray:
    """Ridge predictions of each row from a fit on the other folds (rows split at random)."""
    n = len(xw)
    order = np.random.default_rng(seed).permutation(n)
    oof = np.empty((n, y.shape[1]), np.float64)
    for part in np.array_split(order, folds):
        rest = np.setdiff1d(order, part)
        oof[part] = xw[part] @ ridge(xw[rest], y[rest], lam)
    return oof


def unit_rows(v: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay near zero)."""
    return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)


@dataclass
class RidgeColdMap:
    """Ridge map ``features -> item vector`` fitted on warm items (see the module docstring).

    ``lam``: L2 of the ridge; ``calibrate``: the out-of-fold rescaling; ``seed``: its fold split.
    After :meth:`fit`, ``w`` is the ``(n_features, dim)`` map (calibration folded in) and
    ``alpha`` the calibration factor (``None`` without calibration)."""

    lam: float = 10.0
    calibrate: bool = True
    seed: int = 0
    w: np.ndarray | None = None
    alpha: float | None = None

    def fit(self, xw: np.ndarray, y: np.ndarray) -> Self:
        """Fit on warm items' features ``xw`` (last column the constant 1) and vectors ``y``."""
        y = np.asarray(y, np.float64)
        w = ridge(xw, y, self.lam)
        self.alpha = None
        if self.calibrate:
            alpha, offset = calibration(xw, y, self.lam, seed=self.seed)
            w *= alpha
            w[-1] += offset  # the last feature is the constant 1
            self.alpha = alpha
        self.w = w.astype(np.float32)
        return self

    def map(self, x: np.ndarray) -> np.ndarray:
        """Unit-length mapped vectors of items with features ``x``."""
        if self.w is None:
            raise KgrecError("the cold map is not fitted")
        return unit_rows(np.asarray(x @ self.w, np.float64)).astype(np.float32)


def choose_scale(
    evaluate: Callable[[float], float], grid: Sequence[float] = SCALE_GRID
) -> tuple[float, dict[float, float]]:
    """The length with the highest ``evaluate(length)`` (a validation value with the mapped
    vectors at that length; ties: the larger) and the whole curve."""
    curve = {float(g): float(evaluate(float(g))) for g in grid}
    return max(curve, key=lambda g: (curve[g], g)), curve


def knn_vectors(
    query: np.ndarray,
    known: sp.csr_matrix,
    known_vecs: np.ndarray,
    *,
    k: int = 50,
    temperature: float = 0.05,
    chunk: int = 1024,
) -> np.ndarray:
    """Unit-length softmax-weighted means of the vectors of each query's ``k`` most similar known
    items (cosine of the unit-row features ``query`` and ``known``; weights
    ``softmax(cos / temperature)``): a kNN regression onto the learned space, less shrunk toward
    the mean than the ridge map."""
    q = unit_rows(np.asarray(query, np.float64)).astype(np.float32)
    kk = int(min(k, known.shape[0]))
    out = np.empty((len(q), known_vecs.shape[1]), np.float64)
    known = sp.csr_matrix(known, dtype=np.float32)
    for s in range(0, len(q), chunk):
        sim = np.asarray((known @ q[s : s + chunk].T).T)
        top = np.argpartition(-sim, kk - 1, axis=1)[:, :kk]
        z = np.take_along_axis(sim, top, 1).astype(np.float64) / temperature
        w = np.exp(z - z.max(1, keepdims=True))
        w /= w.sum(1, keepdims=True)
        out[s : s + chunk] = np.einsum("ck,ckd->cd", w, known_vecs[top].astype(np.float64))
    return unit_rows(out).astype(np.float32)


def blend_unit(a: np.ndarray, b: np.ndarray, weight: float) -> np.ndarray:
    """``unit((1 - weight) a + weight b)`` row by row."""
    return unit_rows((1.0 - weight) * np.asarray(a, np.float64) + weight * b).astype(np.float32)
