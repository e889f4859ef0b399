"""Trainable text encoders: a :class:`TextTower` over a local HuggingFace encoder, fine-tuned in one
of three modes, and :class:`FinetunedEncoder`, the :class:`~kgrec.text.TextEncoder` of a tower.

Modes (:data:`FINETUNE_MODES`):

* ``top-layers``: the top ``top_layers`` transformer layers train, everything below is frozen; the
  frozen layers' outputs for a fixed set of texts are computed once (:meth:`TextTower.prepare`)
  and the training steps run only the top layers on those cached hidden states. This is what
  makes fine-tuning affordable on a CPU (1 of 6 MiniLM layers: about 1/6 of the forward cost).
* ``lora``: low-rank adapters (``peft``; rank, alpha, dropout and target modules configurable) on
  a frozen backbone; steps run the whole network on token tensors.
* ``full``: every weight trains; steps run the whole network on token tensors.

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
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from kgrec._atomic import atomic_write_bytes
from kgrec.errors import DataError, KgrecError
from kgrec.text._encoder import EncoderKey, check_texts, pool, token_ids
from kgrec.text._model_dir import DEFAULT_MODEL_ID, model_fingerprint, resolve_model_path

log = logging.getLogger(__name__)

FINETUNE_MODES = ("none", "lora", "top-layers", "full")
TOWER_WEIGHTS = "tower.safetensors"
TOWER_META = "tower.json"


@dataclass(frozen=True)
class FinetuneConfig:
    """How a :class:`TextTower` trains.

    ``mode``: one of :data:`FINETUNE_MODES` (``none``: no tower). ``top_layers``: layers trained
    in ``top-layers`` mode. ``lora_rank``/``lora_alpha``/``lora_dropout``/``lora_targets``: the
    LoRA adapter (``lora_targets``: names of the Linear modules that get one; BERT-style
    ``query``/``key``/``value``/``dense``). ``max_length``: tokens per text. ``lr``: learning rate
    of the tower's weights (the head above it has its own). ``epochs``: passes over the training
    items; ``batch_size``: items per step. ``mixed_precision`` / ``gradient_checkpointing``: GPU
    options (bf16 autocast; recompute activations), ignored on CPU.
    """

    mode: str = "top-layers"
    top_layers: int = 1
    lora_rank: int = 8
    lora_alpha: float = 16.0
    lora_dropout: float = 0.1
    lora_targets: tuple[str, ...] = ("query", "value")
    max_length: int = 64
    lr: float = 5e-5
    epochs: int = 8
    batch_size: int = 128
    mixed_precision: bool = False
    gradient_checkpointing: bool = False

    def __post_init__(self) -> None:
        if self.mode not in FINETUNE_MODES:
            raise ValueError(
                f"unknown text-finetune mode {self.mode!r}; use one of {FINETUNE_MODES}"
            )
        for name, ok in (
            ("top_layers", self.top_layers >= 1),
            ("lora_rank", self.lora_rank >= 1),
            ("lora_alpha", self.lora_alpha > 0),
            ("lora_dropout", 0 <= self.lora_dropout < 1),
            ("max_length", self.max_length >= 2),
            ("lr", self.lr > 0),
            ("epochs", self.epochs >= 0),
            ("batch_size", self.batch_size >= 1),
        ):
            if not ok:
                raise ValueError(f"text-finetune setting {name}={getattr(self, name)!r} is invalid")
        object.__setattr__(self, "lora_targets", tuple(self.lora_targets))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["lora_targets"] = list(self.lora_targets)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FinetuneConfig:
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown text-finetune setting(s) {unknown}; known: {sorted(known)}")
        d = dict(d)
        if "lora_targets" in d:
            d["lora_targets"] = tuple(d["lora_targets"])
        return cls(**d)


@dataclass
class TowerBatch:
    """Tensors for one :meth:`TextTower.forward`: ``hidden`` (b, t, d) cached lower-layer outputs
    (``top-layers``) or ``input_ids`` (b, t) (``lora``/``full``), and the attention ``mask``."""

    mask: Any
    hidden: Any = None
    input_ids: Any = None


@dataclass
class TowerData:
    """A tower's inputs for a fixed list of texts, computed once: token ids and mask (n, t), and in
    ``top-layers`` mode the frozen layers' outputs (n, t, d). :meth:`batch` slices rows and trims
    the padding to the longest text in the batch (attention masks padding, so trimming does not
    change the vectors)."""

    input_ids: Any
    mask: Any
    hidden: Any = None
    lengths: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    def __len__(self) -> int:
        return int(self.mask.shape[0])

    def batch(self, idx: Any) -> TowerBatch:
        import torch

        idx = torch.as_tensor(idx, dtype=torch.long)
        width = int(max(1, self.lengths[idx.numpy()].max())) if len(idx) else 1
        mask = self.mask.index_select(0, idx)[:, :width]
        if self.hidden is not None:
            return TowerBatch(mask=mask, hidden=self.hidden.index_select(0, idx)[:, :width])
        return TowerBatch(mask=mask, input_ids=self.input_ids.index_select(0, idx)[:, :width])


def _require_peft() -> Any:
    try:
        import peft
    except ImportError as exc:  # pragma: no cover - peft is a dependency
        raise KgrecError(
            "text-finetune mode 'lora' needs the peft package (pip install peft==0.21.2)"
        ) from exc
    return peft


class _TowerModule:
    """Lazy base: the real class is built on first use so importing kgrec.text stays torch-free."""


def _tower_class() -> type:
    import torch
    from torch import nn

    class TextTowerModule(nn.Module):
        def __init__(self, backbone: Any, config: FinetuneConfig, pooling: str) -> None:
            super().__init__()
            self.config, self.pooling = config, pooling
            n_layers = len(backbone.encoder.layer)
            for p in backbone.parameters():
                p.requires_grad_(False)
            if config.mode == "top-layers":
                if config.top_layers > n_layers:
                    raise KgrecError(
                        f"top_layers={config.top_layers} but the model has {n_layers} layers"
                    )
                self.split = n_layers - config.top_layers
                for layer in backbone.encoder.layer[self.split :]:
                    for p in layer.parameters():
                        p.requires_grad_(True)
            elif config.mode == "lora":
                peft = _require_peft()
                lcfg = peft.LoraConfig(
                    r=config.lora_rank,
                    lora_alpha=config.lora_alpha,
                    lora_dropout=config.lora_dropout,
                    target_modules=list(config.lora_targets),
                    bias="none",
                )
                with warnings.catch_warnings():  # peft probes a deprecated transformers API
                    warnings.simplefilter("ignore", FutureWarning)
                    backbone = peft.get_peft_model(backbone, lcfg)
                self.split = 0
            elif config.mode == "full":
                for p in backbone.parameters():
                    p.requires_grad_(True)
                self.split = 0
            else:
                raise KgrecError("text-finetune mode 'none' has no tower")
            if config.gradient_checkpointing and torch.cuda.is_available():
                base = backbone.get_base_model() if config.mode == "lora" else backbone
                base.gradient_checkpointing_enable()
            self.backbone = backbone

        # -------------------------------------------------------------- pieces
        def _bert(self) -> Any:
            b = self.backbone
            return b.get_base_model() if self.config.mode == "lora" else b

        def _ext_mask(self, mask: Any, hidden: Any) -> Any:
            bert = self._bert()
            ext, _ = bert._create_attention_masks(
                attention_mask=mask,
                encoder_attention_mask=None,
                embedding_output=hidden,
                encoder_hidden_states=None,
                cache=None,
            )
            return ext

        def lower(self, input_ids: Any, mask: Any) -> Any:
            """Frozen layers' output (``top-layers`` mode): the hidden state below the trained
            layers, without gradient."""
            bert = self._bert()
            with torch.no_grad():
                h = bert.embeddings(input_ids=input_ids, token_type_ids=torch.zeros_like(input_ids))
                ext = self._ext_mask(mask, h)
                for layer in bert.encoder.layer[: self.split]:
                    h = _layer_out(layer(h, attention_mask=ext))
            return h

        def forward(self, batch: TowerBatch) -> Any:
            """Pooled (and L2-normalised, as the base encoder) text vectors (b, d)."""
            mask = batch.mask
            if self.config.mode == "top-layers":
                h = batch.hidden
                if h is None:
                    h = self.lower(batch.input_ids, mask)
                ext = self._ext_mask(mask, h)
                for layer in self._bert().encoder.layer[self.split :]:
                    h = _layer_out(layer(h, attention_mask=ext))
            else:
                ids = batch.input_ids
                h = self.backbone(
                    input_ids=ids, attention_mask=mask, token_type_ids=torch.zeros_like(ids)
                ).last_hidden_state
            return pool(h.float(), mask, self.pooling, True)

    return TextTowerModule


def _layer_out(out: Any) -> Any:
    return out[0] if isinstance(out, tuple) else out


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
        self.module = _tower_class()(backbone, config, pooling)
        self.module.eval()
        self.dim = int(backbone.config.hidden_size)

    # ------------------------------------------------------------------ inputs
    def tokenize(self, texts: Sequence[str]) -> tuple[Any, Any, np.ndarray]:
        """(input_ids, mask, lengths): right-padded int64 tensors of ``texts``."""
        import torch

        texts = check_texts(texts)
        enc = token_ids(self.tokenizer, texts, self.config.max_length)
        lengths = np.fromiter((len(x) for x in enc), np.int64, count=len(enc))
        width = int(lengths.max()) if len(enc) else 1
        pad = self.tokenizer.pad_token_id or 0
        ids = np.full((len(enc), width), pad, np.int64)
        mask = np.zeros((len(enc), width), np.int64)
        for r, row in enumerate(enc):
            ids[r, : len(row)] = row
            mask[r, : len(row)] = 1
        return torch.from_numpy(ids), torch.from_numpy(mask), lengths

    def prepare(self, texts: Sequence[str], *, batch_size: int = 64) -> TowerData:
        """Token tensors of ``texts`` and, in ``top-layers`` mode, the frozen layers' outputs,
        computed once (length-sorted batches) for the whole run."""
        import torch

        ids, mask, lengths = self.tokenize(texts)
        data = TowerData(input_ids=ids, mask=mask, lengths=lengths)
        if self.config.mode == "top-layers" and self.module.split > 0:
            hidden = torch.zeros(ids.shape[0], ids.shape[1], self.dim)
            order = np.argsort(-lengths, kind="stable")
            self.module.eval()
            for s in range(0, len(order), batch_size):
                idx = torch.from_numpy(order[s : s + batch_size])
                w = int(max(1, lengths[idx.numpy()].max()))
                hidden[idx, :w] = self.module.lower(ids[idx, :w], mask[idx, :w])
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
                out[idx] = self.module(data.batch(idx)).numpy()
        self.module.train(was)
        return out

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Vectors of new texts through the whole (fine-tuned) network."""
        texts = check_texts(texts)
        if not texts:
            return np.empty((0, self.dim), np.float32)
        data = self.prepare(texts)
        return self.encode_data(data)

    # ------------------------------------------------------------------ weights
    def encoder(self) -> FinetunedEncoder:
        """This tower as a :class:`~kgrec.text.TextEncoder` (cacheable by its weights hash)."""
        return FinetunedEncoder(self)

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
    texts, with an :class:`EncoderKey` whose ``model_hash`` covers the base model's files and the
    tower's trained tensors."""

    def __init__(self, tower: TextTower) -> None:
        self.tower = tower
        self._key: EncoderKey | None = None

    @classmethod
    def load(cls, path: str | Path) -> FinetunedEncoder:
        return cls(TextTower.load(path))

    @property
    def model_id(self) -> str:
        return f"{self.tower.model_id}+{self.tower.config.mode}"

    @property
    def dim(self) -> int:
        return self.tower.dim

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        return self.tower.encode(texts)

    def cache_key(self) -> EncoderKey:
        if self._key is None:
            self._key = EncoderKey(
                model_id=self.model_id,
                model_hash=hashlib.sha256(
                    (self.tower.base_hash + self.tower.weights_hash()).encode()
                ).hexdigest(),
                max_length=self.tower.config.max_length,
                pooling=self.tower.module.pooling,
                normalize=True,
                precision="fp32",
                dim=self.dim,
            )
        return self._key
