"""The one training loop: zero_grad -> forward/loss -> backward -> step, for every model.

A model plugs in by being an ``nn.Module`` with ``loss(batch) -> scalar tensor``; data come from a
:class:`BatchSampler` whose ``batches(epoch)`` is a deterministic function of the epoch (so a
resumed run sees the same batches); quality comes from a ``validate()`` callback returning the
validation metric (higher is better). The loop keeps the best weights (restored at the end), stops
early after ``patience`` validation rounds without improvement, writes an atomic checkpoint after
every epoch and can resume from it after an interruption.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import torch
from torch import nn

from kgrec._atomic import atomic_path
from kgrec.errors import DataError, KgrecError
from kgrec.train._distributed import sync_gradients, world
from kgrec.train._optim import make_optimizer
from kgrec.train._options import TrainingOptions
from kgrec.train._progress import report_epoch

log = logging.getLogger(__name__)

CHECKPOINT_NAME = "checkpoint.pt"


@runtime_checkable
class BatchSampler(Protocol):
    """Yields the training batches of one epoch, deterministically from ``epoch``."""

    def batches(self, epoch: int) -> Iterable[Any]: ...

    def __len__(self) -> int: ...


@dataclass
class TrainResult:
    """What the loop did: epochs run, best validation value and epoch, the per-epoch history."""

    epochs_run: int
    best_epoch: int
    best_metric: float
    stopped_early: bool
    resumed_from: int | None
    wall_s: float
    history: list[dict[str, float]] = field(default_factory=list)
    #: why training ended: ``"patience"`` (early stopping), ``"epoch_cap"`` (all epochs run) or
    #: ``"time_budget"`` (``max_seconds`` or the caller's ``time_left`` ran out)
    stop_reason: str = "epoch_cap"

    def to_dict(self) -> dict[str, Any]:
        return {
            "epochs_run": self.epochs_run,
            "best_epoch": self.best_epoch,
            "best_metric": self.best_metric,
            "stopped_early": self.stopped_early,
            "stop_reason": self.stop_reason,
            "resumed_from": self.resumed_from,
            "wall_s": self.wall_s,
        }

    def still_improving(self, window: int = 3, min_delta: float = 0.0) -> bool:
        """Whether the validation metric set a new best (by more than ``min_delta``) within the
        last ``window`` validation rounds: a run that a cap stopped in that state had not
        converged. ``False`` without validation values."""
        values = [float(r["valid"]) for r in self.history if "valid" in r]
        if not values:
            return False
        if len(values) <= window:
            return len(values) > 1 and max(values[1:]) > values[0] + min_delta
        return max(values[-window:]) > max(values[:-window]) + min_delta


def seed_everything(seed: int) -> None:
    """Seed torch's global generator (numpy generators in kgrec are always local and seeded)."""
    torch.manual_seed(int(seed))


def _save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    with atomic_path(path, suffix=".pt") as tmp:
        torch.save(state, tmp)


_RESUME_HINT = "delete it, or run without resuming (kgrec train --no-resume)"


def _load_checkpoint(
    ckpt: Path, model: nn.Module, opt: torch.optim.Optimizer, device: torch.device
) -> dict[str, Any]:
    """The state in ``ckpt``, loaded into ``model`` and ``opt``; a truncated or damaged file,
    or one written for another model or other settings, is one :class:`DataError` naming it."""
    try:
        state = torch.load(ckpt, map_location=device, weights_only=True)
    except Exception as exc:  # torch raises RuntimeError/EOFError/UnpicklingError variously
        raise DataError(
            f"the training checkpoint is truncated or damaged ({type(exc).__name__}); "
            + _RESUME_HINT,
            path=ckpt,
        ) from None
    keys = ("model", "optimizer", "epoch", "best", "best_epoch", "bad", "rng")
    if not isinstance(state, dict) or any(k not in state for k in keys):
        raise DataError(
            f"not a kgrec training checkpoint (it needs the keys {', '.join(keys)}); "
            + _RESUME_HINT,
            path=ckpt,
        )
    try:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
    except (RuntimeError, ValueError, KeyError) as exc:
        first = str(exc).strip().splitlines()
        detail = " ".join(x.strip() for x in first[1:3]) if len(first) > 1 else first[0]
        raise DataError(
            f"the training checkpoint was written for another model or other settings than "
            f"this {type(model).__name__} ({detail[:300]}); use another --out, or " + _RESUME_HINT,
            path=ckpt,
        ) from None
    return state


def train_loop(
    model: nn.Module,
    sampler: BatchSampler,
    options: TrainingOptions,
    *,
    validate: Callable[[], float] | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    time_left: Callable[[], float] | None = None,
    local: bool = False,
) -> TrainResult:
    """Train ``model`` (an ``nn.Module`` with ``loss(batch)``) on ``sampler``'s batches.

    Without ``validate`` the loop runs all epochs and keeps the last weights. ``time_left``
    (seconds of a caller's budget that training may still use, checked after each epoch like
    ``max_seconds``) lets a model stop training early enough to leave time for what follows it.
    ``local``: this process trains ``model`` alone even inside a ``torch.distributed`` group (no
    gradient all-reduce), e.g. a small model that every rank fits the same way from the same seed.
    """
    if not callable(getattr(model, "loss", None)):
        raise KgrecError(f"{type(model).__name__} has no loss(batch) method to train")
    device = torch.device(options.device)
    model.to(device)
    opt = optimizer or make_optimizer(model, options.lr, options.weight_decay)
    rank, n_procs = world()  # data-parallel under torchrun: see kgrec.train._distributed
    sync = n_procs > 1 and not local
    start_epoch, best, best_epoch, bad = 0, -math.inf, -1, 0
    best_state: dict[str, torch.Tensor] | None = None
    history: list[dict[str, float]] = []
    resumed_from = None
    ckpt = Path(options.checkpoint_dir) / CHECKPOINT_NAME if options.checkpoint_dir else None
    if ckpt is not None and options.resume and ckpt.is_file():
        state = _load_checkpoint(ckpt, model, opt, device)
        start_epoch, best, best_epoch, bad = (
            int(state["epoch"]),
            float(state["best"]),
            int(state["best_epoch"]),
            int(state["bad"]),
        )
        best_state = state.get("best_state")
        history = list(state.get("history", []))
        torch.set_rng_state(state["rng"])
        resumed_from = start_epoch
        log.info("resumed from %s at epoch %d (best %.4f)", ckpt, start_epoch, best)
    t0 = time.perf_counter()
    stopped = False
    reason = "epoch_cap"
    epoch = start_epoch
    bar = None
    if options.progress:
        from tqdm import tqdm

        bar = tqdm(total=options.epochs, initial=start_epoch, desc="train", unit="epoch")
    for epoch in range(start_epoch, options.epochs):
        t_epoch = time.perf_counter()
        model.train()
        total, n = 0.0, 0
        for batch in sampler.batches(epoch):
            opt.zero_grad(set_to_none=True)
            loss = model.loss(batch)
            if not torch.isfinite(loss):
                raise KgrecError(f"training loss became {loss.item()} at epoch {epoch}")
            loss.backward()
            if sync:
                sync_gradients(model, getattr(sampler, "weight", 1.0 / n_procs))
            opt.step()
            total += float(loss.detach())
            n += 1
        row = {"epoch": epoch, "loss": total / max(1, n)}
        if validate is not None and (epoch + 1) % options.eval_every == 0:
            model.eval()
            with torch.no_grad():
                value = float(validate())
            row["valid"] = value
            if value > best + options.min_delta:
                best, best_epoch, bad = value, epoch, 0
                best_state = copy.deepcopy({k: v.detach() for k, v in model.state_dict().items()})
            else:
                bad += 1
            if options.patience and bad >= options.patience and epoch + 1 >= options.min_epochs:
                stopped, reason = True, "patience"
        row["epoch_s"] = time.perf_counter() - t_epoch
        history.append(row)
        report_epoch(
            epoch=epoch,
            start_epoch=start_epoch,
            row=row,
            best=best,
            best_epoch=best_epoch,
            bad=bad,
            elapsed_s=time.perf_counter() - t0,
            options=options,
            validating=validate is not None,
        )
        if bar is not None:
            bar.update(1)
            bar.set_postfix(
                {k: f"{v:.4f}" for k, v in row.items() if k not in ("epoch", "epoch_s")}
            )
        log.debug("epoch %d %s", epoch, row)
        over_budget = (
            options.max_seconds is not None and time.perf_counter() - t0 > options.max_seconds
        ) or (time_left is not None and time_left() <= 0)
        if ckpt is not None and rank == 0:
            _save_checkpoint(
                ckpt,
                {
                    "model": model.state_dict(),
                    "optimizer": opt.state_dict(),
                    "epoch": epoch + 1,
                    "best": best,
                    "best_epoch": best_epoch,
                    "bad": bad,
                    "best_state": best_state,
                    "history": history,
                    "rng": torch.get_rng_state(),
                    "options": options.to_dict(),
                },
            )
        if stopped or over_budget:
            if over_budget and not stopped:
                log.info("training stopped at its time budget after epoch %d", epoch)
                reason = "time_budget"
            stopped = True
            break
    if bar is not None:
        bar.close()
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    epochs_run = (epoch + 1) if options.epochs > start_epoch else start_epoch
    return TrainResult(
        epochs_run=epochs_run,
        best_epoch=best_epoch,
        best_metric=best,
        stopped_early=stopped,
        resumed_from=resumed_from,
        wall_s=time.perf_counter() - t0,
        history=history,
        stop_reason=reason,
    )
