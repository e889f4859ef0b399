"""``HybridRecommender``: the KG + text hybrid behind the :class:`~kgrec.models.Recommender`
contract, trained with the shared loop (:func:`kgrec.train.train_loop`).

Model (see :mod:`kgrec.models.hybrid._modules`)::

    side_i  = sum_r softplus(w_r) * mean_{e in N_r(i)} E_e            (typed KG / attribute links)
    c_i     = side_i + P t_i                                           (t_i: text embedding)
    x_i     = g_i * m_i * id_i + (1 - g_i) * c_i,  g_i = sigmoid(W [m_i id_i; c_i])
              (m_i = 0 for items without training interactions, and at random with probability
              ``id_dropout`` during training: DropoutNet)
    E       = mean_{l=0..L} A_hat^l [users; x]                         (LightGCN propagation)
    s(u, i) = cos(E_u, E_i)

Loss: ``beta * ranking + alpha * pointwise + kg_loss * TransE + align * InfoNCE(c, E_item)``;
ranking is the full softmax over all items at temperature ``tau`` (sampled-softmax family; much
stronger than BPR on ml-100k: validation NDCG@20 0.25 vs 0.22) or BPR.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Self

import numpy as np
import scipy.sparse as sp
import torch

from kgrec.errors import DataError, KgrecError
from kgrec.models._base import Validator, csr_to_torch
from kgrec.models._blend import ScoreMix
from kgrec.models.cf._embedding import EmbeddingRecommender
from kgrec.models.cf.ease import EASE
from kgrec.models.cf.lightgcn import normalized_adjacency
from kgrec.models.hybrid._cold_items import ColdItemsMixin, new_item_count, record_choice
from kgrec.models.hybrid._config import HybridConfig
from kgrec.models.hybrid._inputs import HybridInputs, SideLinks
from kgrec.models.hybrid._modules import HybridModule
from kgrec.models.hybrid._sampler import UserBatchSampler, shard_for_ranks
from kgrec.models.hybrid._text_tower import TextTowerMixin
from kgrec.models.hybrid._users import NewUserConfig, NewUserMixin
from kgrec.train import FitBudget, FitCache, FitLog, TrainingOptions, seed_everything, train_loop

__all__ = ["HybridConfig", "HybridRecommender", "UserBatchSampler"]

log = logging.getLogger(__name__)


class HybridRecommender(TextTowerMixin, NewUserMixin, ColdItemsMixin, EmbeddingRecommender):
    """KG + text hybrid (see the module docstring). ``inputs``: side information aligned to the
    training matrix's users/items (:func:`~kgrec.models.hybrid.inputs_from_graph`); without it
    the model is a pure ID model trained the same way (and cannot embed new items).
    ``text_tower``/``tower_data``: a trainable :class:`~kgrec.text.TextTower` and its prepared
    inputs for the items (``text_finetune`` != ``none``; :func:`hybrid_from_context` builds them).

    Made of parts: the network and its training (here; vectors, options and their persistence
    shared with the other embedding models through :class:`EmbeddingRecommender`), the ridge
    cold map (:class:`~kgrec.models.hybrid._cold_items.ColdItemsMixin`), the EASE score blend
    (a :class:`~kgrec.models._blend.ScoreMix` with an :class:`~kgrec.models.EASE`), the text
    tower and the new-user path (their mixins)."""

    name = "hybrid"
    config_class = HybridConfig
    #: user batches of 128 with a full softmax over items; lr 5e-3 converges in ~10-30 epochs.
    #: Early stopping after 3 validation rounds without a gain of more than 0.0005 NDCG@20
    #: (chosen on ml-100k validation curves: with the patience of 10 it replaces, 34-53% of the
    #: epochs of a fit came after the best one; the new rule gives up at most 0.0015 validation
    #: NDCG@20 there; ``bench/early_stopping.py``, ``bench/results/early_stopping.json``)
    default_options = TrainingOptions(
        epochs=100, batch_size=128, lr=5e-3, patience=3, min_delta=5e-4
    )

    def __init__(
        self,
        config: HybridConfig | None = None,
        *,
        options: TrainingOptions | None = None,
        inputs: HybridInputs | None = None,
        text_tower: Any = None,
        tower_data: Any = None,
        **overrides: Any,
    ) -> None:
        super().__init__(config, options=options, **overrides)
        self.inputs = inputs
        self._init_tower(text_tower, tower_data)
        self.module_: HybridModule | None = None
        self.item_links_: SideLinks | None = None
        #: the EASE blend: the EASE model and the weight of its scores (0: no blend)
        self.ease_model_: EASE | None = None
        self.blend_ = ScoreMix()
        self.cold_w_: np.ndarray | None = None
        self.idf_: np.ndarray | None = None
        #: fitted models shared within a run (the runner sets it; EASE for the blend)
        self.shared_fits: FitCache | None = None
        self.fit_log_: FitLog | None = None

    @classmethod
    def from_context(
        cls,
        context: Any | None,
        *,
        options: TrainingOptions | None = None,
        config: HybridConfig | None = None,
    ) -> HybridRecommender:
        """Build with inputs from a :class:`~kgrec.models.hybrid.ModelContext` (runner / CLI)."""
        from kgrec.models.hybrid._context import hybrid_from_context

        return hybrid_from_context(context, config=config, options=options)

    def _new_module(
        self, n_users: int, n_items: int, net: dict[str, Any], **inputs: Any
    ) -> HybridModule:
        """The network of this config with the input sizes ``net`` (the ``network`` entry of a
        saved model's ``model.json``) and its input tensors ``inputs`` (``adj``, ``warm``,
        ``text``, ``item_links``, ``user_links``: see :class:`HybridModule`; none when loading)."""
        c = self.config
        return HybridModule(
            n_users, n_items, c.dim, c.layers, **inputs, **net, **c.network_options()
        )

    # ------------------------------------------------------------------ fit
    def _build_module(self, train: sp.csr_matrix) -> HybridModule:
        c = self.config
        inp = self.inputs
        n_users, n_items = train.shape
        if inp is not None and (inp.n_users, inp.n_items) != (n_users, n_items):
            raise DataError(
                f"hybrid inputs are for {inp.n_users} users x {inp.n_items} items, the training "
                f"matrix is {n_users} x {n_items}"
            )
        text = inp.item_text if (inp is not None and c.text) else None
        il = inp.item_links if (inp is not None and c.kg) else None
        ul = inp.user_links if (inp is not None and c.kg and c.user_links) else None
        net = {
            "text_dim": None if text is None else int(text.shape[1]),
            "item_entities": 0 if il is None else len(il.entities),
            "item_relations": 0 if il is None else len(il.relations),
            "user_entities": 0 if ul is None else len(ul.entities),
            "user_relations": 0 if ul is None else len(ul.relations),
        }
        dev = self.options.device

        def stacked(links: SideLinks | None) -> tuple[torch.Tensor, torch.Tensor] | None:
            if links is None or not len(links.entities) or not len(links.relations):
                return None  # no side encoder for these links (see HybridModule)
            st = links.stacked()
            return csr_to_torch(st).to(dev), csr_to_torch(st.T.tocsr()).to(dev)

        module = self._new_module(
            n_users,
            n_items,
            net,
            adj=csr_to_torch(normalized_adjacency(train)).to(dev),
            warm=torch.from_numpy(np.diff(train.tocsc().indptr) > 0).to(dev),
            text=None if text is None else torch.from_numpy(np.asarray(text, np.float32)).to(dev),
            item_links=stacked(il),
            user_links=stacked(ul),
        )
        self.item_links_ = il
        return module

    def fit(self, train: sp.spmatrix, *, validate: Validator | None = None) -> Self:
        """Train, then fit the cold map and the EASE blend, all inside ``options.max_seconds``
        (a whole-fit budget: training stops early enough to leave the measured time of the
        later parts); what was chosen on validation and timed goes to :attr:`fit_log_`."""
        from kgrec.models.hybrid import _fitting as fitting

        m = self._start_fit(train)
        opts, c = self.options, self.config
        budget = FitBudget(opts.max_seconds)
        flog = self.fit_log_ = FitLog(budget_s=opts.max_seconds)
        seed_everything(opts.seed)
        module = self._build_module(m)
        self.module_ = module
        il = self.item_links_
        use_triples = c.kg_loss > 0 and il is not None
        sampler = UserBatchSampler(
            m,
            batch_size=opts.batch_size,
            seed=opts.seed,
            triples=il.triples() if use_triples else None,
            n_entities=len(il.entities) if il is not None else 0,
            triples_per_batch=c.triples_per_batch,
        )
        sampler = shard_for_ranks(sampler, c, opts.device)

        def _validate() -> float:
            self._refresh_vectors()
            return float(validate(self))

        self.blend_ = ScoreMix()
        self.ease_model_ = None
        self.cold_w_ = None
        blend = self._blend_mode(m, validate)
        inp = self.inputs
        has_content = inp is not None and (
            (c.text and inp.item_text is not None) or (c.kg and inp.item_links is not None)
        )
        ridge = c.cold_map == "ridge" and has_content  # ID-only: nothing to map from
        flog.settings.update(
            cf_blend=c.cf_blend if c.cf_blend == blend else f"{c.cf_blend} -> {blend}",
            cold_map=c.cold_map if ridge else f"{c.cold_map} -> none (no content inputs)",
            cold_calibrate=c.cold_calibrate,
        )
        if blend == "ease":  # before training: its time is then known to the budget
            with flog.part("ease", budget) as part:
                self.ease_model_, part.shared = fitting.ease_for_blend(
                    m, c.ease_lambda, self.shared_fits
                )
                if part.shared:
                    part.note = "reused the EASE fitted earlier in this run"
        n_cold = int((np.diff(m.tocsc().indptr) == 0).sum())
        post_calls, post_fixed = 0, 0.0
        if validate is not None:
            post_calls = fitting.COLD_SCALE_CALLS * (ridge and n_cold > 0)
            post_calls += fitting.BLEND_CALLS * (blend == "ease")
        if ridge and budget.max_seconds is not None:
            warm = np.diff(m.tocsc().indptr) > 0
            solves = 1 + (5 if c.cold_calibrate else 0)
            post_fixed = fitting.ridge_probe_s(self._cold_features()[warm], c.cold_ridge, solves)
        timer = fitting.TimedValidator(_validate)
        loop_opts = opts.replace(max_seconds=None) if opts.max_seconds is not None else opts
        with flog.part("training", budget):
            self.result_ = train_loop(
                module,
                sampler,
                loop_opts,
                validate=timer if validate is not None else None,
                time_left=fitting.training_time_left(budget, timer, post_calls, post_fixed),
            )
        self._refresh_vectors()
        log.info("hybrid trained: %s", self.result_.to_dict())
        if budget.max_seconds is not None:
            est = fitting.RESERVE_MARGIN * (post_calls * timer.mean_s + post_fixed)
            flog.notes.append(f"training left {est:.1f} s (estimated) for the parts after it")
        if ridge:
            with flog.part("cold_map", budget):
                self.fit_cold_map(m, validate)
            if c.text_finetune != "none":
                with flog.part("text_tower", budget):
                    self._fit_text_tower(m)
        if blend == "ease":
            with flog.part("blend", budget):
                self._fit_blend(m, validate)
        self.new_users_, self.nu_item_vecs_ = None, None
        if c.new_users and c.new_user_dropout > 0:
            with flog.part("new_user_network", budget):
                self._fit_new_user_network(m, validate)
        if c.new_users:
            cfg = NewUserConfig(
                attributes=c.new_user_attributes,
                weighting=c.new_user_weighting,
                encoder=c.new_user_encoder,
            )
            self._fit_new_users(m, cfg, opts.seed)
        note = fitting.budget_note(budget, flog.parts)
        if note:
            flog.notes.append(note)
            log.info("hybrid fit: %s", note)
        return self

    def _blend_mode(self, m: sp.csr_matrix, validate: Validator | None) -> str:
        """``cf_blend`` resolved: ``auto`` blends where the weight can be validated and EASE is
        cheap (at most ``ease_max_items`` items)."""
        blend = self.config.cf_blend
        if blend == "auto":
            ok = validate is not None and m.shape[1] <= self.config.ease_max_items
            blend = "ease" if ok else "none"
            if validate is not None and blend == "none":
                log.info("no EASE blend: %d items > ease_max_items", m.shape[1])
        return blend

    def _fit_blend(self, train: sp.csr_matrix, validate: Validator | None) -> None:
        """The blend weight with the best validation value (0.5 without a validation callback);
        the EASE model ``ease_model_`` comes from :meth:`fit` (fitted once per run and shared)."""
        from kgrec.models._blend import blend_weights

        if self.ease_model_ is None:
            from kgrec.models.hybrid._fitting import ease_for_blend

            self.ease_model_, _ = ease_for_blend(train, self.config.ease_lambda, self.shared_fits)
        if validate is None:
            self.blend_.weight = 0.5
            return
        w = self.blend_.choose(lambda: float(validate(self)), blend_weights(10))
        record_choice(self, "blend_weight", self.blend_.curve, w, "highest; ties: the smaller")
        log.info("EASE blend: weight %.1f (validation %s)", w, self.blend_.curve)

    @property
    def ease_(self) -> np.ndarray | None:
        """The blend's EASE item-item weights (``None`` without a blend)."""
        return None if self.ease_model_ is None else self.ease_model_.b_

    @property
    def blend_w_(self) -> float:
        """The weight of EASE's z-scored scores in the blend (0: the network's scores alone)."""
        return self.blend_.weight

    @property
    def blend_curve_(self) -> dict[float, float] | None:
        """Validation value per blend weight tried."""
        return self.blend_.curve

    def _final_vectors(self, module: HybridModule) -> tuple[torch.Tensor, torch.Tensor]:
        return module()

    # ------------------------------------------------------------------ scoring
    def _score(self, users: np.ndarray, history: sp.csr_matrix) -> torch.Tensor:
        out = super()._score(users, history)
        if self.ease_model_ is not None:
            out = self.blend_(out, self.ease_model_.score(users, history))
        return self._score_new_users(users, history, out)

    def embed_items(
        self,
        text: np.ndarray | None = None,
        links: Sequence[Sequence[tuple[str, str]]] | None = None,
    ) -> np.ndarray:
        """Vectors of NEW items from their text embeddings ``(n, d_text)`` and/or their KG links
        (per item a list of ``(relation, "entity_type:entity_id")``): no ID, no interaction.

        Comparable with :meth:`item_vectors` / :meth:`user_vectors` (cosine space): this is
        exactly the vector an item without training interactions gets inside the model."""
        self._check_fitted()
        if self.uses_tower():  # text: the tower's vectors (self.text_encoder())
            return self._embed_tower(text, links)
        if self.cold_w_ is not None:
            return self._embed_ridge(text, links)
        if self.module_ is None:
            raise KgrecError("this hybrid was loaded without its network; cannot embed new items")
        mod = self.module_
        n = new_item_count(text, links)
        t = None
        if text is not None and mod.fusion is not None and mod.fusion.proj is not None:
            t = torch.as_tensor(np.asarray(text, np.float32))
            if t.shape[1] != mod.fusion.proj.in_features:
                raise DataError(
                    f"text vectors have dim {t.shape[1]}, the model was trained on "
                    f"{mod.fusion.proj.in_features}"
                )
        elif text is not None:
            log.info("model trained without text: text vectors ignored")
        lk = None
        if links is not None and self.item_links_ is not None and mod.item_side is not None:
            if len(links) != n:
                raise DataError(f"{len(links)} link lists for {n} items")
            lk = csr_to_torch(self.item_links_.links_for(links))
        if t is None and lk is None:
            raise KgrecError("nothing usable to embed from: the model has no text or KG inputs")
        with torch.no_grad():
            mod.eval()
            return mod.embed_new_items(t, lk).numpy()

    # ------------------------------------------------------------------ persistence
    def _state(self) -> dict[str, np.ndarray]:
        out = super()._state()  # training matrix, user and item vectors
        if self.module_ is not None:
            for k, v in self.module_.state_dict().items():
                out["module." + k] = v.detach().cpu().numpy()
        if self.item_links_ is not None:
            out["links.entities"] = np.asarray(self.item_links_.entities, dtype=str)
        out.update(self.cold_map_state())
        if self.ease_model_ is not None:
            out["ease"] = self.ease_model_.b_
            out["blend_w"] = np.array(self.blend_.weight, np.float64)
        out.update(self.new_user_state())
        return {**out, **self._tower_state()}

    def _extra_meta(self) -> dict[str, Any]:
        out = super()._extra_meta()  # training options and result
        if self.module_ is not None:
            mod = self.module_
            out["network"] = {
                "text_dim": None
                if mod.fusion is None or mod.fusion.proj is None
                else mod.fusion.proj.in_features,
                "item_entities": 0 if mod.item_side is None else mod.item_side.n_entities,
                "item_relations": 0 if mod.item_side is None else mod.item_side.n_relations,
                "user_entities": 0 if mod.user_side is None else mod.user_side.n_entities,
                "user_relations": 0 if mod.user_side is None else mod.user_side.n_relations,
            }
        if self.item_links_ is not None:
            out["item_relations"] = list(self.item_links_.relations)
        if self.inputs is not None:
            out["inputs"] = self.inputs.describe()
        if self.new_users_ is not None:
            out["new_users"] = self.new_users_.meta()
        return {**out, **self._tower_meta()}

    def _set_state(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        super()._set_state(arrays, meta)  # training matrix, vectors, options
        self.set_cold_map_state(arrays)
        self.ease_model_, self.blend_ = None, ScoreMix()
        if "ease" in arrays:
            self.ease_model_ = EASE.from_weights(arrays["ease"], self.train_)
            self.blend_.weight = float(arrays["blend_w"])
        self._set_tower_state(arrays, meta)
        self.new_users_ = None
        if "new_users" in meta:
            self.set_new_user_state(arrays, meta["new_users"])
        net = meta.get("network")
        if net is None:
            return
        mod = self._new_module(self.n_users_, self.n_items_, net)
        state = {
            k[len("module.") :]: torch.from_numpy(np.array(v))
            for k, v in arrays.items()
            if k.startswith("module.")
        }
        mod.load_state_dict(state)
        mod.eval()
        self.module_ = mod
        if "links.entities" in arrays and meta.get("item_relations"):
            rels = tuple(meta["item_relations"])
            ents = arrays["links.entities"].astype(object)
            empty = sp.csr_matrix((0, len(ents)), dtype=np.float32)
            self.item_links_ = SideLinks(rels, ents, tuple(empty for _ in rels))
