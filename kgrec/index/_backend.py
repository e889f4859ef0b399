"""The contract every index backend implements (torch-exact and each FAISS family).

`VectorIndex` owns ids, validation, normalisation, persistence and the self-check; a backend only
stores float32 vectors under int64 labels and searches them. A new index type is a new class
that satisfies this protocol (see ARCHITECTURE.md), checked by ``kgrec.testing``'s index contract.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class IndexBackend(Protocol):
    """Vectors under int64 labels; labels are assigned by the facade and never reused."""

    @property
    def kind(self) -> str:
        """Backend name written to ``meta.json`` (``torch``, ``torch+faiss``, ``faiss``)."""
        ...

    @property
    def ntotal(self) -> int:
        """Stored vectors, removed ones excluded."""
        ...

    @property
    def needs_training(self) -> bool:
        """True for IVF families before their quantizer is trained."""
        ...

    def train(self, x: np.ndarray) -> None: ...

    def attach_device(self) -> None:
        """Move the trained index to its device (a no-op on CPU)."""
        ...

    def add(self, x: np.ndarray, labels: np.ndarray) -> None: ...

    def remove(self, labels: np.ndarray) -> None: ...

    def set_search_params(
        self, *, nprobe: int | None = None, ef_search: int | None = None
    ) -> None: ...

    def search(self, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores, labels), each ``(len(q), k)``; missing neighbours have label -1."""
        ...

    def state(self) -> dict[str, Any]:
        """Small JSON-able settings that ``load`` needs back (search params, tombstones)."""
        ...

    def save(self, directory: Path) -> list[str]:
        """Write the backend's files into ``directory``; return their names."""
        ...

    def labels(self) -> np.ndarray:
        """All live labels (for consistency checks after load)."""
        ...

    def quantizer(self) -> Any:
        """The coarse quantizer of an IVF index, else None."""
        ...
