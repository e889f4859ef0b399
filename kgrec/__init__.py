"""kgrec: knowledge-graph-augmented hybrid recommendation.

``import kgrec`` is cheap on purpose: it imports neither torch-geometric, transformers nor faiss.
Sub-packages (``kgrec.data``, ``kgrec.graph`` ...) are imported on first attribute access.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from kgrec.errors import DataError, FetchError, KgrecError, SpecError, UnknownIdError

__version__ = "0.1.0"

_SUBMODULES = (
    "cli",
    "data",
    "errors",
    "eval",
    "graph",
    "index",
    "models",
    "testing",
    "text",
    "train",
)

__all__ = [
    "DataError",
    "FetchError",
    "KgrecError",
    "SpecError",
    "UnknownIdError",
    "__version__",
    *_SUBMODULES,
]

if TYPE_CHECKING:  # pragma: no cover
    from kgrec import cli, data  # noqa: F401


def __getattr__(name: str) -> Any:
    """Import sub-packages lazily so that ``import kgrec`` stays light."""
    if name in _SUBMODULES:
        return importlib.import_module(f"kgrec.{name}")
    raise AttributeError(f"module 'kgrec' has no attribute {name!r}")
