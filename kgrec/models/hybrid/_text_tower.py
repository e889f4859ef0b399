"""The hybrid's fine-tuned text tower: item content vectors from a trainable text encoder.

After the graph model has trained (ranking loss, item-ID dropout), a :class:`TowerHead`
``h_i = normalize(W_t t_i + W_b bag_i + b)`` over the tower's text vector ``t_i`` (a
:class:`~kgrec.text.TextTower`: top layers, LoRA or the full encoder) and the item's IDF entity
bag is trained together with the tower's weights on the warm items, so that an item scored from
its text and KG links alone lands where its interactions put it:

* ranking loss: for each training pair (u, i) of a batch of items, a softmax over the batch's
  content-only vectors ``U_u . h_j / tau`` (candidates represented the way cold items are);
* contrastive term (``text_contrast``): InfoNCE of ``h_i`` against the graph's item vectors of
  all training items (``h_i . E_j / align_tau``, target ``j = i``).

The head starts at the calibrated ridge map (so epoch 0 *is* today's cold map); 10% of the warm
items are held out and the epoch with the best held-out Recall@20 (ranking the held-out items,
content-only, for their training users) is kept, epoch 0 included, so the tower never does
worse than the ridge map on that check. The graph model is not updated by this stage (it is
trained first; joint end-to-end training through the softmax over all items costs a tower
forward over the whole catalog per step, out of reach on 2 CPU cores).

The tower is an ``nn.Module`` on tensors; its inputs (tokens, cached lower-layer outputs) are
assembled above the model (:func:`~kgrec.models.hybrid.hybrid_from_context`).
"""

from __future__ import annotations

import copy
import logging
import time
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn

from kgrec.errors import KgrecError

log = logging.getLogger(__name__)


class TowerHead(nn.Module):
    """``normalize(W_t t + W_b bag + b)``: text (and entity-bag) features to the graph space."""

    def __init__(self, text_dim: int, bag_dim: int, dim: int) -> None:
        super().__init__()
        self.text = nn.Linear(text_dim, dim)
        self.bag = nn.Linear(bag_dim, dim, bias=False) if bag_dim else None

    def init_from_ridge(self, w: np.ndarray) -> None:
        """Weights from a ridge map over ``[text, bag, 1]`` (rows) to the graph space (columns)."""
        d = self.text.in_features
        with torch.no_grad():
            self.text.weight.copy_(torch.from_numpy(np.ascontiguousarray(w[:d].T)).float())
            self.text.bias.copy_(torch.from_numpy(np.asarray(w[-1])).float())
            if self.bag is not None:
                self.bag.weight.copy_(torch.from_numpy(np.ascontiguousarray(w[d:-1].T)).float())

    def forward(self, text: torch.Tensor, bag: torch.Tensor | None = None) -> torch.Tensor:
        out = self.text(text)
        if self.bag is not None and bag is not None:
            out = out + self.bag(bag)
        return F.normalize(out, dim=1)


def _holdout_recall(
    users: torch.Tensor, vecs: torch.Tensor, cols: sp.csc_matrix, k: int = 20
) -> float:
    """Mean per-user Recall@k ranking only the given items (columns of ``cols``) by ``U . v``."""
    r = cols.tocsr()
    active = np.flatnonzero(np.diff(r.indptr) > 0)
    if len(active) == 0:
        return 0.0
    s = users[torch.from_numpy(active).to(users.device)] @ vecs.T
    top = torch.topk(s, min(k, s.shape[1]), dim=1).indices.cpu().numpy()
    rel = r[active]
    hits = np.take_along_axis(rel.toarray(), top, 1).sum(1)
    return float(np.mean(hits / np.minimum(np.diff(rel.indptr), k)))


def train_text_tower(
    tower: Any,
    data: Any,
    head: TowerHead,
    *,
    bags: torch.Tensor | None,
    user_vecs: np.ndarray,
    item_vecs: np.ndarray,
    train: sp.csr_matrix,
    epochs: int,
    lr: float,
    head_lr: float,
    batch_size: int,
    tau: float,
    align_tau: float,
    contrast: float,
    seed: int,
    holdout: float = 0.1,
    progress: bool | None = None,
    check_fn: Any = None,
    device: str = "cpu",
) -> dict[str, Any]:
    """Train ``tower`` (a :class:`~kgrec.text.TextTower`) and ``head`` on the warm items of
    ``train``, on ``device``; restores the best epoch (on ``check_fn()`` when given, e.g.
    Recall@20 of cold validation items, else on the held-out warm items) and leaves both on the
    CPU; returns the history."""
    from tqdm import tqdm

    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    warm = np.flatnonzero(np.diff(train.tocsc().indptr) > 0)
    perm = rng.permutation(warm)
    n_hold = max(1, round(holdout * len(perm))) if len(perm) >= 20 else 0
    hold, fit_items = np.sort(perm[:n_hold]), np.sort(perm[n_hold:])
    if len(fit_items) < 2:
        raise KgrecError("the text tower needs at least 2 warm items to train on")
    csc = sp.csc_matrix(train, dtype=np.float32)
    dev = torch.device(device)
    users = torch.from_numpy(np.asarray(user_vecs, np.float32)).to(dev)
    graph = torch.from_numpy(np.asarray(item_vecs, np.float32)[fit_items]).to(dev)
    pos_in_fit = np.full(train.shape[1], -1, np.int64)
    pos_in_fit[fit_items] = np.arange(len(fit_items))
    bags = None if bags is None else bags.to(dev)
    module = tower.module
    module.to(dev)
    head.to(dev)
    params = [{"params": tower.parameters(), "lr": lr}]
    if head_lr > 0:
        params.append({"params": list(head.parameters()), "lr": head_lr})
    else:  # the head stays at the ridge map: only the text encoder adapts
        head.requires_grad_(False)
    opt = torch.optim.AdamW(params, weight_decay=0.0)

    def vectors(items: np.ndarray) -> torch.Tensor:
        out = []
        with torch.no_grad():
            module.eval()
            head.eval()
            for s in range(0, len(items), 256):
                b = items[s : s + 256]
                t = module(data.batch(b))
                out.append(head(t, None if bags is None else bags[torch.from_numpy(b).to(dev)]))
        return torch.cat(out) if out else torch.zeros(0, head.text.out_features, device=dev)

    def check() -> float:
        if check_fn is not None:
            module.eval()
            head.eval()
            return float(check_fn())
        if not n_hold:
            return 0.0
        return _holdout_recall(users, vectors(hold), csc[:, hold])

    best = check()
    history: list[dict[str, Any]] = [{"epoch": 0, "check": best}]
    best_state = (copy.deepcopy(tower.trainable_state()), copy.deepcopy(head.state_dict()))
    best_epoch = 0
    log.info("text tower epoch 0 (ridge init): check %.4f", best)
    for epoch in range(1, epochs + 1):
        t0 = time.perf_counter()
        order = rng.permutation(fit_items)
        module.train()
        head.train()
        total, n_steps = 0.0, 0
        with tqdm(
            total=len(order),
            unit="item",
            desc=f"text tower epoch {epoch}/{epochs}",
            disable=None if progress is None else not progress,
        ) as bar:
            for s in range(0, len(order), batch_size):
                b = order[s : s + batch_size]
                bt = torch.from_numpy(b).to(dev)
                t = module(data.batch(b))
                h = head(t, None if bags is None else bags[bt])
                sub = csc[:, b]
                pu = torch.from_numpy(sub.indices.astype(np.int64)).to(dev)
                pk = torch.from_numpy(np.repeat(np.arange(len(b)), np.diff(sub.indptr))).to(dev)
                loss = torch.zeros((), device=dev)
                if len(pu):
                    logits = users.index_select(0, pu) @ h.T / tau
                    loss = loss + F.cross_entropy(logits, pk)
                if contrast > 0:
                    lg = h @ graph.T / align_tau
                    target = torch.from_numpy(pos_in_fit[b]).to(dev)
                    loss = loss + contrast * F.cross_entropy(lg, target)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total += float(loss.detach())
                n_steps += 1
                bar.update(len(b))
                el = time.perf_counter() - t0
                bar.set_postfix(items_s=f"{(s + len(b)) / max(el, 1e-9):.0f}")
        dt = time.perf_counter() - t0
        score = check()
        history.append(
            {
                "epoch": epoch,
                "loss": total / max(n_steps, 1),
                "check": score,
                "epoch_s": dt,
                "items_per_s": len(order) / max(dt, 1e-9),
            }
        )
        log.info(
            "text tower epoch %d: loss %.4f, check %.4f, %.1fs (%.0f items/s)",
            epoch,
            history[-1]["loss"],
            score,
            dt,
            len(order) / max(dt, 1e-9),
        )
        if score > best:
            best, best_epoch = score, epoch
            best_state = (copy.deepcopy(tower.trainable_state()), copy.deepcopy(head.state_dict()))
    module.to("cpu")
    head.to("cpu")
    tower.load_weights(best_state[0])
    head.load_state_dict(best_state[1])
    head.eval()
    module.eval()
    return {
        "best_epoch": best_epoch,
        "best_check": best,
        "check": "cold validation (check_fn)"
        if check_fn is not None
        else "held-out warm items Recall@20",
        "holdout_items": int(n_hold),
        "history": history,
    }


def _rows(data: Any, rows: np.ndarray) -> Any:
    """``data`` (a :class:`~kgrec.text.TowerData`) restricted to ``rows``."""
    import dataclasses

    idx = torch.from_numpy(np.asarray(rows, np.int64))
    return dataclasses.replace(
        data,
        input_ids=data.input_ids.index_select(0, idx),
        mask=data.mask.index_select(0, idx),
        hidden=None if data.hidden is None else data.hidden.index_select(0, idx),
        lengths=data.lengths[rows],
    )


class TextTowerMixin:
    """The hybrid's side of the text tower (``text_finetune`` != ``none``): training after the
    graph model, the cold-item vectors, :meth:`embed_items` from fine-tuned text vectors, and
    persistence (trained tensors in the model's arrays, ``text_tower/tower.safetensors`` beside
    the model for :class:`~kgrec.text.FinetunedEncoder`)."""

    text_tower_: Any = None
    tower_data_: Any = None
    tower_head_: TowerHead | None = None
    tower_result_: dict[str, Any] | None = None
    tower_text_: np.ndarray | None = None

    def _init_tower(self, tower: Any, data: Any) -> None:
        """The hybrid's constructor arguments ``text_tower`` (a :class:`~kgrec.text.TextTower`)
        and ``tower_data``, its inputs for the catalog's items, row-aligned with the training
        matrix's items (built by the assembly above the model); both or neither."""
        if (tower is None) != (data is None):
            raise KgrecError("text_tower and tower_data go together: give both or neither")
        if data is not None and self.inputs is not None and len(data) != self.inputs.n_items:
            raise KgrecError(f"tower inputs have {len(data)} rows for {self.inputs.n_items} items")
        self.text_tower_, self.tower_data_ = tower, data

    def uses_tower(self) -> bool:
        return self.tower_head_ is not None and self.text_tower_ is not None

    def _bag_tensor(self) -> torch.Tensor | None:
        from kgrec.models.hybrid._coldstart import link_features

        if self.idf_ is None or self.inputs is None or self.inputs.item_links is None:
            return None
        return torch.from_numpy(link_features(self.inputs))

    def _fit_text_tower(self, train: sp.csr_matrix, cold_validate: Any = None) -> None:
        """Train the tower and its head (see the module docstring); items without training
        interactions get the head's vectors at the validated cold scale. ``cold_validate``
        (a validator of the model on cold validation items) chooses the epoch when given."""
        c = self.config
        if self.text_tower_ is None or self.tower_data_ is None:
            raise KgrecError(
                f"text_finetune={c.text_finetune!r} needs a text tower: build the hybrid with "
                "hybrid_from_context (or pass text_tower= and tower_data=)"
            )
        if self.cold_w_ is None:
            raise KgrecError("the text tower starts from the ridge cold map: cold_map='ridge'")
        if self.text_tower_.dim != self.inputs.item_text.shape[1]:
            raise KgrecError("the tower's text dim differs from the item text vectors'")
        bags = self._bag_tensor()
        head = TowerHead(self.text_tower_.dim, 0 if bags is None else bags.shape[1], c.dim)
        head.init_from_ridge(self.cold_w_.astype(np.float64))
        cold = np.flatnonzero(np.diff(train.tocsc().indptr) == 0)
        base_vecs = self.item_vecs_.copy()
        check_fn = None
        if cold_validate is not None and len(cold):

            def check_fn() -> float:
                t = self.text_tower_.encode_data(_rows(self.tower_data_, cold))
                self.item_vecs_ = base_vecs.copy()
                self.item_vecs_[cold] = getattr(self, "cold_scale_", 1.0) * self._head_of(
                    head, t, None if bags is None else bags[cold]
                )
                return float(cold_validate(self))

        t0 = time.perf_counter()
        try:
            result = train_text_tower(
                self.text_tower_,
                self.tower_data_,
                head,
                bags=bags,
                user_vecs=self.user_vecs_,
                item_vecs=self.item_vecs_,
                train=train,
                epochs=c.text_finetune_epochs,
                lr=c.text_finetune_lr,
                head_lr=c.text_head_lr,
                batch_size=128,
                tau=c.tau,
                align_tau=c.align_tau,
                contrast=c.text_contrast,
                seed=self.options.seed,
                progress=getattr(self.options, "progress", None),
                check_fn=check_fn,
                device=self.options.device,
            )
        finally:  # also on failure: nothing left on a GPU, the graph's item vectors restored
            self.text_tower_.module.to("cpu")
            head.to("cpu")
            self.item_vecs_ = base_vecs
        self.tower_result_ = result
        self.tower_result_["fit_s"] = time.perf_counter() - t0
        self.tower_head_ = head
        self.tower_text_ = self.text_tower_.encode_data(self.tower_data_)
        if len(cold):
            v = self._head_vectors(self.tower_text_[cold], None if bags is None else bags[cold])
            self.item_vecs_ = self.item_vecs_.copy()
            self.item_vecs_[cold] = getattr(self, "cold_scale_", 1.0) * v
        log.info("text tower: %s", {k: v for k, v in self.tower_result_.items() if k != "history"})

    def _embed_tower(self, text: np.ndarray | None, links: Any) -> np.ndarray:
        """New items' vectors from the tower's text vectors (:meth:`text_encoder`) and their
        links, at the cold scale (the hybrid's :meth:`embed_items` with a tower)."""
        from kgrec.models.hybrid._cold_items import new_item_count

        n = new_item_count(text, links)
        if text is None:
            text = np.zeros((n, self.text_tower_.dim), np.float32)
        bags = self._new_bags(n, links) if self.tower_head_.bag is not None else None
        v = self._head_vectors(np.asarray(text, np.float32), bags)
        return (getattr(self, "cold_scale_", 1.0) * v).astype(np.float32)

    def _head_vectors(self, text: np.ndarray, bags: Any) -> np.ndarray:
        assert self.tower_head_ is not None
        return self._head_of(self.tower_head_, text, bags)

    @staticmethod
    def _head_of(head: TowerHead, text: np.ndarray, bags: Any) -> np.ndarray:
        dev = next(head.parameters()).device  # the training device while the tower trains
        with torch.no_grad():
            t = torch.as_tensor(np.asarray(text, np.float32)).to(dev)
            b = None if bags is None else torch.as_tensor(np.asarray(bags, np.float32)).to(dev)
            return head(t, b).cpu().numpy()

    def text_encoder(self) -> Any | None:
        """The encoder whose vectors :meth:`embed_items` expects: a
        :class:`~kgrec.text.FinetunedEncoder` when the tower embeds new items, else ``None``
        (the base encoder)."""
        if not self.uses_tower():
            return None
        return self.text_tower_.encoder()

    def _tower_state(self) -> dict[str, np.ndarray]:
        if not self.uses_tower():
            return {}
        out = {f"tower.{k}": v.numpy() for k, v in self.text_tower_.trainable_state().items()}
        out.update(
            {
                f"tower_head.{k}": v.detach().numpy()
                for k, v in self.tower_head_.state_dict().items()
            }
        )
        return out

    def _tower_meta(self) -> dict[str, Any]:
        if not self.uses_tower():
            return {}
        t = self.text_tower_
        return {
            "text_tower": {
                "config": t.config.to_dict(),
                "model_path": str(t.model_path),
                "model_id": t.model_id,
                "base_hash": t.base_hash,
                "weights_hash": t.weights_hash(),
                "bag_dim": 0 if self.tower_head_.bag is None else self.tower_head_.bag.in_features,
                "result": self.tower_result_,
            }
        }

    def _set_tower_state(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        tm = meta.get("text_tower")
        if not tm:
            return
        from kgrec.models.hybrid._context import load_text_tower

        tower = load_text_tower(tm)
        tower.load_weights(
            {
                k[len("tower.") :]: torch.from_numpy(np.array(v))
                for k, v in arrays.items()
                if k.startswith("tower.")
            }
        )
        if tower.weights_hash() != tm["weights_hash"]:
            raise KgrecError("the saved text tower's weights do not match their recorded hash")
        head = TowerHead(tower.dim, int(tm["bag_dim"]), self.config.dim)
        head.load_state_dict(
            {
                k[len("tower_head.") :]: torch.from_numpy(np.array(v))
                for k, v in arrays.items()
                if k.startswith("tower_head.")
            }
        )
        head.eval()
        self.text_tower_, self.tower_head_, self.tower_result_ = tower, head, tm.get("result")

    def save(self, path: Any, *, overwrite: bool = True) -> Any:
        """The model (arrays + json, trained tower tensors included) and, with a tower, its
        standalone copy in ``path/text_tower/`` (safetensors; ``--init-text-from``, serving)."""
        out = super().save(path, overwrite=overwrite)  # type: ignore[misc]
        self.save_text_tower(out)
        return out

    def save_text_tower(self, path: Any) -> None:
        """``path/text_tower/`` (safetensors + json) when the model has a tower."""
        from pathlib import Path

        if self.uses_tower():
            self.text_tower_.save(Path(path) / "text_tower")
