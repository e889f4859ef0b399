"""Trainable text encoders: a :class:`TextTower` over a local HuggingFace encoder, fine-tuned in one
of three modes (:data:`~kgrec.text.FINETUNE_MODES`; the network, its settings and its tensor
inputs are in :mod:`kgrec.text._tower_module`), and :class:`FinetunedEncoder`, the
:class:`~kgrec.text.TextEncoder` of a tower.

The tower is a plain ``nn.Module`` that takes tensors (:class:`TowerBatch`); tokenizing and the
cached lower layers live in :meth:`TextTower.prepare` / :class:`TowerData`, so a model that trains
a tower never runs a tokenizer or an encoder pipeline itself. Weights: :meth:`TextTower.save`
writes ``tower.safetensors`` (only the trained tensors: top layers, LoRA factors, or all) and
``tower.json`` (mode, settings, the base model's path and file hash); :meth:`TextTower.load`
reads them back without pickle. :meth:`TextTower.weights_hash` goes into the
:class:`~kgrec.text.EncoderKey` of a :class:`FinetunedEncoder`, so fine-tuned vectors never mix
with the base model's in the embedding cache.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from kgrec._atomic import atomic_write_bytes
from kgrec.errors import DataError, KgrecError
from kgrec.text._encoder import EncoderKey, check_texts, token_ids
from kgrec.text._model_dir import DEFAULT_MODEL_ID, model_fingerprint, resolve_model_path
from kgrec.text._tower_module import FinetuneConfig, TowerData, tower_module_class

log = logging.getLogger(__name__)

TOWER_WEIGHTS = "tower.safetensors"
TOWER_META = "tower.json"

#: tokens per NEW text a :class:`FinetunedEncoder` embeds (a new item's or user's words): the
#: frozen :class:`~kgrec.text.TransformerEncoder`'s default, the length the ridge map that starts
#: the hybrid's tower head was fitted at. The tower itself trains on the catalog's texts at
#: ``FinetuneConfig.max_length`` (64: the CPU cost bound). Encoding new users' reviews at 64
#: tokens instead cost 0.003-0.005 validation NDCG@20 on amazon-instruments
#: (``bench/research/user_text/tower_vs_frozen.json``)
ENCODE_MAX_LENGTH = 256


class TextTower:
    """A fine-tunable text encoder: ``module`` (an ``nn.Module`` mapping a :class:`TowerBatch` to
    pooled vectors) plus the tokenizer and settings around it."""

    def __init__(
        self,
        config: FinetuneConfig,
        model_path: str | Path | None = None,
        *,
        pooling: str = "mean",
        model_id: str | None = None,
    ) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        import torch
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        if config.mode == "none":
            raise KgrecError("text-finetune mode 'none' has no tower")
        self.config = config
        self.model_path = resolve_model_path(model_path)
        self.model_id = model_id or (
            DEFAULT_MODEL_ID if model_path is None else self.model_path.name
        )
        self.base_hash = model_fingerprint(self.model_path)
        hf_logging.disable_progress_bar()
        self.tokenizer = AutoTokenizer.from_pretrained(str(self.model_path), local_files_only=True)
        backbone = AutoModel.from_pretrained(
            str(self.model_path), local_files_only=True, dtype=torch.float32
        )
        if not hasattr(backbone, "encoder") or not hasattr(backbone.encoder, "layer"):
            raise KgrecError(
                f"{self.model_path}: text fine-tuning supports BERT-style encoders "
                "(model.encoder.layer); this model has another layout"
            )
        self.module = tower_module_class()(backbone, config, pooling)
        self.module.eval()
        self.dim = int(backbone.config.hidden_size)

    # ------------------------------------------------------------------ inputs
    def tokenize(
        self, texts: Sequence[str], max_length: int | None = None
    ) -> tuple[Any, Any, np.ndarray]:
        """(input_ids, mask, lengths): right-padded int64 tensors of ``texts``, truncated to
        ``max_length`` tokens (default: ``config.max_length``)."""
        import torch

        texts = check_texts(texts)
        enc = token_ids(self.tokenizer, texts, max_length or self.config.max_length)
        lengths = np.fromiter((len(x) for x in enc), np.int64, count=len(enc))
        width = int(lengths.max()) if len(enc) else 1
        pad = self.tokenizer.pad_token_id or 0
        ids = np.full((len(enc), width), pad, np.int64)
        mask = np.zeros((len(enc), width), np.int64)
        for r, row in enumerate(enc):
            ids[r, : len(row)] = row
            mask[r, : len(row)] = 1
        return torch.from_numpy(ids), torch.from_numpy(mask), lengths

    def prepare(
        self, texts: Sequence[str], *, batch_size: int = 64, max_length: int | None = None
    ) -> TowerData:
        """Token tensors of ``texts`` and, in ``top-layers`` mode, the frozen layers' outputs,
        computed once (length-sorted batches) for the whole run."""
        import torch

        ids, mask, lengths = self.tokenize(texts, max_length)
        data = TowerData(input_ids=ids, mask=mask, lengths=lengths)
        if self.config.mode == "top-layers" and self.module.split > 0:
            hidden = torch.zeros(ids.shape[0], ids.shape[1], self.dim)
            order = np.argsort(-lengths, kind="stable")
            self.module.eval()
            for s in range(0, len(order), batch_size):
                idx = torch.from_numpy(order[s : s + batch_size])
                w = int(max(1, lengths[idx.numpy()].max()))
                hidden[idx, :w] = self.module.lower(ids[idx, :w], mask[idx, :w]).cpu()
            data.hidden = hidden
            log.info(
                "text tower: cached the %d frozen layers' outputs of %d texts (%.0f MB)",
                self.module.split,
                len(order),
                hidden.numel() * 4 / 2**20,
            )
        return data

    def encode_data(self, data: TowerData, *, batch_size: int = 128) -> np.ndarray:
        """Vectors of every row of ``data`` (eval mode, no gradient), float32 (n, d)."""
        import torch

        out = np.empty((len(data), self.dim), np.float32)
        was = self.module.training
        self.module.eval()
        order = np.argsort(-data.lengths, kind="stable")
        with torch.no_grad():
            for s in range(0, len(order), batch_size):
                idx = order[s : s + batch_size]
                out[idx] = self.module(data.batch(idx)).cpu().numpy()
        self.module.train(was)
        return out

    def encode(self, texts: Sequence[str], *, max_length: int | None = None) -> np.ndarray:
        """Vectors of new texts through the whole (fine-tuned) network, truncated to
        ``max_length`` tokens (default: ``config.max_length``, the training length)."""
        texts = check_texts(texts)
        if not texts:
            return np.empty((0, self.dim), np.float32)
        data = self.prepare(texts, max_length=max_length)
        return self.encode_data(data)

    # ------------------------------------------------------------------ weights
    def encoder(self, max_length: int = ENCODE_MAX_LENGTH) -> FinetunedEncoder:
        """This tower as a :class:`~kgrec.text.TextEncoder` of new texts at up to
        ``max_length`` tokens (cacheable by its weights hash)."""
        return FinetunedEncoder(self, max_length=max_length)

    def trainable_state(self) -> dict[str, Any]:
        """The tensors that fine-tuning changes (names as in ``module.state_dict()``)."""
        names = {n for n, p in self.module.named_parameters() if p.requires_grad}
        return {
            k: v.detach().cpu().contiguous()
            for k, v in self.module.state_dict().items()
            if k in names
        }

    def parameters(self) -> list[Any]:
        return [p for p in self.module.parameters() if p.requires_grad]

    def weights_hash(self) -> str:
        """sha256 of the trained tensors (names, shapes and bytes) and the settings."""
        h = hashlib.sha256(json.dumps(self.config.to_dict(), sort_keys=True).encode())
        h.update(self.base_hash.encode())
        for k, v in sorted(self.trainable_state().items()):
            h.update(k.encode() + b"\0" + str(tuple(v.shape)).encode())
            h.update(v.numpy().tobytes())
        return h.hexdigest()

    def save(self, path: str | Path) -> Path:
        """Write ``path/tower.safetensors`` (trained tensors) and ``path/tower.json``."""
        from safetensors.torch import save

        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path / TOWER_WEIGHTS, save(self.trainable_state()))
        meta = {
            "config": self.config.to_dict(),
            "model_path": str(self.model_path),
            "model_id": self.model_id,
            "base_hash": self.base_hash,
            "pooling": self.module.pooling,
            "weights_hash": self.weights_hash(),
        }
        atomic_write_bytes(path / TOWER_META, json.dumps(meta, indent=1).encode())
        return path

    @classmethod
    def load(cls, path: str | Path, *, model_path: str | Path | None = None) -> TextTower:
        """A tower saved by :meth:`save` (safetensors, no pickle); the base model must be the
        same files (checked by hash)."""
        from safetensors.torch import load

        path = Path(path)
        try:
            meta = json.loads((path / TOWER_META).read_text(encoding="utf-8"))
            blob = (path / TOWER_WEIGHTS).read_bytes()
        except FileNotFoundError as exc:
            raise KgrecError(f"no saved text tower in {str(path)!r}: {exc}") from exc
        except (ValueError, UnicodeDecodeError) as exc:
            raise DataError(
                f"{TOWER_META} is damaged ({type(exc).__name__})", path=path / TOWER_META
            ) from None
        try:  # before the base model is built: a damaged file costs nothing to report
            weights = load(blob)
        except Exception as exc:  # safetensors raises its own SafetensorError
            raise DataError(
                f"the text tower's weights are truncated or damaged ({type(exc).__name__}: "
                f"{str(exc)[:200]})",
                path=path / TOWER_WEIGHTS,
            ) from None
        if not isinstance(meta, dict) or not {"config", "base_hash"} <= set(meta):
            raise DataError(f"not a kgrec text tower ({TOWER_META} lacks config/base_hash)",
                            path=path / TOWER_META)  # fmt: skip
        base = model_path if model_path is not None else meta["model_path"]
        tower = cls(
            FinetuneConfig.from_dict(meta["config"]),
            base,
            pooling=meta.get("pooling", "mean"),
            model_id=meta.get("model_id"),
        )
        if tower.base_hash != meta["base_hash"]:
            raise KgrecError(
                f"{path}: the tower was fine-tuned from a model with files sha256 "
                f"{meta['base_hash'][:12]}, {tower.model_path} has {tower.base_hash[:12]}"
            )
        tower.load_weights(weights)
        return tower

    def load_weights(self, state: dict[str, Any]) -> None:
        """Copy trained tensors (as from :meth:`trainable_state`) into the module."""
        own = self.module.state_dict()
        missing = sorted(set(self.trainable_state()) - set(state))
        unknown = sorted(set(state) - set(own))
        if unknown:
            raise KgrecError(f"text tower weights name unknown tensors: {unknown[:5]}")
        if missing:
            raise KgrecError(f"text tower weights lack tensors: {missing[:5]}")
        self.module.load_state_dict(state, strict=False)
        self.module.eval()

    def init_from(self, path: str | Path) -> None:
        """Initialise the trained tensors from another tower (``--init-text-from``): same base
        model and mode required."""
        other = TextTower.load(path, model_path=self.model_path)
        if other.config.mode != self.config.mode:
            raise KgrecError(
                f"--init-text-from {path}: that tower is {other.config.mode!r}, "
                f"this one {self.config.mode!r}"
            )
        self.load_weights(other.trainable_state())


class FinetunedEncoder:
    """:class:`~kgrec.text.TextEncoder` over a :class:`TextTower`: the fine-tuned vectors of new
    texts (truncated to ``max_length`` tokens, :data:`ENCODE_MAX_LENGTH` by default), with an
    :class:`EncoderKey` whose ``model_hash`` covers the base model's files and the tower's trained
    tensors."""

    def __init__(self, tower: TextTower, *, max_length: int = ENCODE_MAX_LENGTH) -> None:
        if max_length < 2:
            raise ValueError(f"max_length must be >= 2 (got {max_length})")
        self.tower = tower
        self.max_length = int(max_length)
        self._key: EncoderKey | None = None

    @classmethod
    def load(cls, path: str | Path, *, max_length: int = ENCODE_MAX_LENGTH) -> FinetunedEncoder:
        return cls(TextTower.load(path), max_length=max_length)

    @property
    def model_id(self) -> str:
        return f"{self.tower.model_id}+{self.tower.config.mode}"

    @property
    def dim(self) -> int:
        return self.tower.dim

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        return self.tower.encode(texts, max_length=self.max_length)

    def cache_key(self) -> EncoderKey:
        if self._key is None:
            self._key = EncoderKey(
                model_id=self.model_id,
                model_hash=hashlib.sha256(
                    (self.tower.base_hash + self.tower.weights_hash()).encode()
                ).hexdigest(),
                max_length=self.max_length,
                pooling=self.tower.module.pooling,
                normalize=True,
                precision="bf16-autocast" if self.tower.config.mixed_precision else "fp32",
                dim=self.dim,
            )
        return self._key
