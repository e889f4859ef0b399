"""Checks at the index's edges: vectors, ids and k from callers, the device asked for, and the
bounds of a saved ``meta.json``; each failure is a :class:`DataError` or
:class:`IndexUsageError` that names the bad row, id or key. Also the content fingerprint.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from kgrec.data import Vocabulary
from kgrec.errors import DataError
from kgrec.index._errors import IndexUsageError
from kgrec.index._faiss import faiss_gpu_count, gpu_ordinal


def fingerprint_of(vectors: np.ndarray, ids: Sequence[str]) -> str:
    """A content fingerprint (``sha256:`` + 16 hex) of vectors and ids, for indexes built from
    bare vectors; a model should pass its own fingerprint instead."""
    h = hashlib.sha256()
    h.update(str(vectors.shape).encode())
    h.update(np.ascontiguousarray(vectors, dtype=np.float32).tobytes())
    h.update("\n".join(ids).encode())
    return "sha256:" + h.hexdigest()[:16]


def check_vectors(
    data: Any, *, dim: int | None, what: str, cosine: bool, allow_1d: bool = False
) -> np.ndarray:
    """A C-contiguous float32 ``(n, dim)`` copy-if-needed of ``data``, L2-normalised when
    ``cosine``; raise :class:`DataError` naming the first bad row."""
    try:
        x = np.asarray(data, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{what} are not a numeric matrix: {exc}") from None
    if x.ndim == 1 and allow_1d:
        x = x[None, :]
    if x.ndim != 2:
        raise DataError(f"{what} must be a 2-D array (n, dim), got shape {x.shape}")
    if dim is not None and x.shape[1] != dim:
        raise DataError(f"{what} have dimension {x.shape[1]}, the index has dimension {dim}")
    if x.shape[1] == 0:
        raise DataError(f"{what} have dimension 0")
    finite = np.isfinite(x).all(axis=1)
    if not finite.all():
        row = int(np.flatnonzero(~finite)[0])
        raise DataError(
            f"{what} contain NaN or infinite values ({int((~finite).sum())} rows)",
            line=row,
            unit="row",
        )
    if cosine:
        norms = np.linalg.norm(x, axis=1, keepdims=True)
        zero = norms[:, 0] == 0
        if zero.any():
            row = int(np.flatnonzero(zero)[0])
            raise DataError(
                f"{what} contain zero vectors, which have no cosine similarity "
                f"({int(zero.sum())} rows)",
                line=row,
                unit="row",
            )
        x = x / norms
    return np.ascontiguousarray(x, dtype=np.float32)


def _check_ids(ids: Any, n: int, *, node_type: str) -> list[str]:
    if isinstance(ids, Vocabulary):
        out = [str(i) for i in ids.ids]
    elif isinstance(ids, str):
        raise DataError(f"{node_type} ids must be a sequence of ids, not one string {ids!r}")
    else:
        out = [str(i) for i in ids]
    if len(out) != n:
        raise DataError(f"got {len(out)} {node_type} ids for {n} vectors")
    if len(set(out)) != len(out):
        seen: set[str] = set()
        dup = [i for i in out if i in seen or seen.add(i)][:5]
        raise DataError(f"duplicate {node_type} ids: {dup}")
    return out


def _check_k(k: Any) -> int:
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise IndexUsageError(f"k must be a positive integer, got {k!r}")
    return int(k)


def _gpu_nodes() -> bool:
    """Whether the OS shows a GPU device node (NVIDIA or ROCm) that CUDA torch could use."""
    import os

    return any(os.path.exists(p) for p in ("/dev/nvidiactl", "/proc/driver/nvidia", "/dev/kfd"))


def resolve_device(device: str, *, backend: str) -> str:
    """``"cpu"`` or ``"cuda:N"`` for a requested device; raise when ``cuda`` is unavailable.

    ``auto`` takes the GPU when the backend can use one: the faiss GPU build seeing a GPU
    (``faiss.get_num_gpus() > 0`` with ``StandardGpuResources``) for faiss, CUDA torch for torch.
    """
    if device == "cpu":
        return "cpu"
    if device == "auto" and backend == "torch" and "torch" not in sys.modules and not _gpu_nodes():
        return "cpu"  # no GPU device node: no CUDA, and no torch import just to learn that
    if backend == "torch":
        import torch

        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        why = "torch sees no CUDA device"
    else:
        count = faiss_gpu_count()
        why = "the installed faiss has no GPU support or sees no GPU (pip install 'kgrec[gpu]')"
    if device == "auto":
        return "cuda:0" if count > 0 else "cpu"
    ordinal = gpu_ordinal(device)
    if ordinal >= count:
        raise IndexUsageError(
            f"device={device!r} requested but {why}: {count} GPU(s) usable; "
            "use device='auto' or 'cpu'"
        )
    return f"cuda:{ordinal}"


def read_meta(meta_path: Path, fmt: str, version: int, *, what: str) -> dict[str, Any]:
    """The JSON object in ``meta_path`` (an index directory's metadata), of format ``fmt`` and
    ``version``; a missing, invalid or foreign file is a :class:`DataError` naming it."""
    if not meta_path.is_file():
        raise DataError(
            f"not a kgrec {what} directory (no {meta_path.name})", path=meta_path.parent
        )
    try:
        meta = json.loads(meta_path.read_text())
    except json.JSONDecodeError as exc:
        raise DataError(f"invalid JSON: {exc.msg}", path=meta_path, line=exc.lineno) from None
    got = meta if isinstance(meta, dict) else {}
    if got.get("format") != fmt or got.get("format_version") != version:
        raise DataError(
            f"unsupported {what} format {got.get('format')!r} version "
            f"{got.get('format_version')!r} (expected {fmt!r} {version})",
            path=meta_path,
        )
    return got


#: largest sizes a saved index may claim (checked before anything is allocated)
MAX_INDEX_SIZE = 1 << 31
MAX_INDEX_DIM = 1 << 16


def _check_meta_bounds(meta: dict, meta_path: Path) -> None:
    """``size``, ``dim`` and ``next_label`` of a ``meta.json`` as sane integers, so that a
    damaged or crafted file is an error naming it, never a multi-terabyte allocation."""
    for key, lo, hi in (
        ("size", 0, MAX_INDEX_SIZE),
        ("dim", 1, MAX_INDEX_DIM),
        ("next_label", 0, MAX_INDEX_SIZE),
    ):
        v = meta.get(key)
        if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
            raise DataError(
                f"{key} must be an integer in {lo}..{hi}, got {v!r} (damaged or crafted file)",
                path=meta_path,
            )
    for key in ("fingerprint", "factory", "backend"):
        if not isinstance(meta.get(key), str):
            raise DataError(f"{key} must be a string, got {meta.get(key)!r}", path=meta_path)
    if not isinstance(meta.get("config"), dict):
        raise DataError("config must be an object", path=meta_path)
