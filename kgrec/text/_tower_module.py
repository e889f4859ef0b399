"""The trainable text tower as a network on tensors: its settings (:class:`FinetuneConfig`), its
inputs (:class:`TowerData`, computed once for a list of texts, sliced into :class:`TowerBatch`)
and the ``nn.Module`` itself (:func:`tower_module_class`), which wraps a HuggingFace BERT-style
backbone in one of three modes (:data:`FINETUNE_MODES`):

* ``top-layers``: the top ``top_layers`` transformer layers train, everything below is frozen; the
  frozen layers' outputs for a fixed set of texts are computed once (``TextTower.prepare``)
  and the training steps run only the top layers on those cached hidden states. This is what
  makes fine-tuning affordable on a CPU (1 of 6 MiniLM layers: about 1/6 of the forward cost).
* ``lora``: low-rank adapters (``peft``; rank, alpha, dropout and target modules configurable) on
  a frozen backbone; steps run the whole network on token tensors.
* ``full``: every weight trains; steps run the whole network on token tensors.

The tokenizer, the prepared inputs, persistence and the encoder of a tower are
:class:`~kgrec.text.TextTower` (:mod:`kgrec.text._finetune`).
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from kgrec.errors import KgrecError
from kgrec.text._encoder import pool

FINETUNE_MODES = ("none", "lora", "top-layers", "full")


@dataclass(frozen=True)
class FinetuneConfig:
    """How a :class:`TextTower` trains.

    ``mode``: one of :data:`FINETUNE_MODES` (``none``: no tower). ``top_layers``: layers trained
    in ``top-layers`` mode. ``lora_rank``/``lora_alpha``/``lora_dropout``/``lora_targets``: the
    LoRA adapter (``lora_targets``: names of the Linear modules that get one; BERT-style
    ``query``/``key``/``value``/``dense``). ``max_length``: tokens per text. ``lr``: learning rate
    of the tower's weights (the head above it has its own). ``epochs``: passes over the training
    items; ``batch_size``: items per step. ``mixed_precision``: the encoder's forward under bf16
    autocast on the device its weights are on (the pooled vectors stay float32).
    ``gradient_checkpointing``: each trained layer recomputes its activations in the backward pass
    (less memory, more time). Both are meant for a GPU (the hybrid trains its tower on its
    ``TrainingOptions.device``); on a CPU they only cost time.
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

    def to(self, device: Any) -> TowerBatch:
        """The batch on ``device`` (the tower's weights' device)."""
        return TowerBatch(
            mask=self.mask.to(device),
            hidden=None if self.hidden is None else self.hidden.to(device),
            input_ids=None if self.input_ids is None else self.input_ids.to(device),
        )


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


def tower_module_class() -> type:
    """The tower's ``nn.Module`` class, built on first use so that importing kgrec.text stays
    torch-free."""
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
            if config.gradient_checkpointing:
                base = backbone.get_base_model() if config.mode == "lora" else backbone
                kw = {"use_reentrant": False}  # grads reach every weight, inputs or not
                if hasattr(base, "activation_checkpointing_enable"):  # transformers >= 5.x
                    base.activation_checkpointing_enable(kw)
                else:
                    base.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kw)
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
            device = next(bert.parameters()).device
            input_ids, mask = input_ids.to(device), mask.to(device)
            with torch.no_grad():
                h = bert.embeddings(input_ids=input_ids, token_type_ids=torch.zeros_like(input_ids))
                ext = self._ext_mask(mask, h)
                for layer in bert.encoder.layer[: self.split]:
                    h = _layer_out(layer(h, attention_mask=ext))
            return h

        def forward(self, batch: TowerBatch) -> Any:
            """Pooled (and L2-normalised, as the base encoder) text vectors (b, d), on the
            device of the weights (the batch is moved there)."""
            device = next(self.backbone.parameters()).device
            batch = batch.to(device)
            with torch.autocast(
                device.type, dtype=torch.bfloat16, enabled=self.config.mixed_precision
            ):
                h = self._hidden(batch)
            return pool(h.float(), batch.mask, self.pooling, True)

        def _hidden(self, batch: TowerBatch) -> Any:
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
            return h

    return TextTowerModule


def _layer_out(out: Any) -> Any:
    return out[0] if isinstance(out, tuple) else out
