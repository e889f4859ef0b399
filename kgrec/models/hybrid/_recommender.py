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
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Self

import numpy as np
import scipy.sparse as sp
import torch

from kgrec.errors import DataError, KgrecError
from kgrec.models._base import (
    LearnedVectorsMixin,
    ModelConfig,
    Recommender,
    Validator,
    csr_to_torch,
)
from kgrec.models.hybrid import _cold_map as cold_map
from kgrec.models.hybrid._cold_map import ridge as _ridge  # noqa: F401  (kgrec.models.hybrid._fitting)
from kgrec.models.hybrid._inputs import HybridInputs, SideLinks
from kgrec.models.hybrid._modules import HybridModule, LossWeights, UserBatch
from kgrec.models.hybrid._text_tower import TextTowerMixin
from kgrec.models.hybrid._users import NewUserConfig, NewUserMixin
from kgrec.train import (
    BPRSampler,
    Choice,
    FitBudget,
    FitCache,
    FitLog,
    TrainingOptions,
    TrainResult,
    seed_everything,
    train_loop,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HybridConfig(ModelConfig):
    """Hybrid settings. Ablations: ``kg=False`` (no KG/attribute links), ``text=False`` (no text),
    ``align=0`` (no text/graph alignment). ``alpha``/``beta``: pointwise BCE / ranking weights
    (the multi-task option); ``ranking``: ``softmax`` (full softmax over items) or ``bpr``;
    ``kg_loss``: TransE triple-loss weight; ``id_dropout``: DropoutNet rate on item IDs.
    ``cf_blend="ease"``: final score ``(1 - w) z(hybrid) + w z(EASE)`` (per-user z-scores; EASE
    item-item weights with L2 ``ease_lambda``), ``w`` in 0, 0.1, .., 1 chosen on the validation
    callback after training (score-level fusion with a closed-form CF model, 0.5 without a
    callback); ``"auto"`` (default): the blend when a validation callback is given and the
    catalog has at most ``ease_max_items`` items (EASE inverts an items x items matrix), none
    otherwise. On ml-100k the blend is what makes the hybrid significantly better than EASE alone
    (NDCG@20 0.2710 against 0.2636, p = 6e-6; without it 0.2646, p = 0.67).
    ``cold_map="ridge"`` (default): items without training interactions (and
    :meth:`embed_items`) get their vector from a ridge map ``[text, IDF entity bag] -> trained
    item vector`` fitted on the warm items after training (Heater-style); ``"content"``: the
    network's own content path (fusion of text and KG without the ID). Ridge is the default
    because it ranks held-out cold items far better on ml-100k's cold validation items
    (``bench/hybrid_ml100k.py``, cold-valid Recall@20 about 0.5 against 0.16).
    ``cold_calibrate``: rescale the ridge map so that mapped vectors have the spread and mean of
    the learned ones (measured out of fold on warm items); without it a new item's nearest known
    items are rare ones ("Contact" -> "Kicked in the Head"), with it related ones ("Monty Python
    and the Holy Grail" -> "Young Frankenstein"); content-only items stay each other's nearest
    neighbours either way (99.8% / 95.8% of the 10 nearest,
    ``bench/research/hybrid_ml100k/cold_map_calibration.json``). ``cold_knn``: the share of a
    kNN regression (softmax-weighted mean of the learned vectors of the ``cold_knn_k`` warm items
    with the most similar features) blended into the ridge output; 0.25 with k = 50 had the best
    mean cold-valid Recall@20 of the variants tried on ml-100k (3 seeds, 0.5265 against 0.5201
    for the ridge map alone; ``bench/research/text_finetune/cold_map_variants.json``). The mapped vectors' length
    (``cold_scale_``, 0.25 to 1) is chosen on the validation callback: dot-product scores make it
    a prior of content-only items against learned ones (see :meth:`_choose_cold_scale`).
    ``text_finetune`` (``none`` by default: on ml-100k no mode beats the ridge map on cold test
    over 3 seeds, ``bench/results/text_finetune.json``; on lastfm-hetrec top-layers does, +0.0146
    Recall@20 on 1 seed, ``bench/results/text_finetune_lastfm-hetrec.json``; the epoch is chosen
    on cold validation items, which a warm fit does not have): after the graph model, a fine-tuned
    text tower (``top-layers``: the top ``text_finetune_layers`` MiniLM layers on cached lower-layer
    outputs; ``lora``; ``full``) and a head started at the ridge map train on the warm items for
    ``text_finetune_epochs`` (ranking + ``text_contrast`` * InfoNCE against the graph's item
    vectors; tower lr ``text_finetune_lr``, head lr ``text_head_lr``, 0 freezes the head) and embed
    the cold items (:mod:`kgrec.models.hybrid._text_tower`); ``text_init_from``: a saved tower
    directory to start from."""

    dim: int = 256
    layers: int = 2
    tau: float = 0.15
    ranking: str = "softmax"
    alpha: float = 0.0
    beta: float = 1.0
    kg: bool = True
    text: bool = True
    user_links: bool = False
    kg_min_degree: int = 2
    kg_loss: float = 0.0
    kg_margin: float = 1.0
    triples_per_batch: int = 2048
    align: float = 0.0
    align_tau: float = 0.2
    id_dropout: float = 0.1
    #: user-ID dropout (DropoutNet on users, :mod:`kgrec.models.hybrid._user_dropout`): the
    #: share of batch users trained from the fold-in of 1..user_dropout_max_k of their items
    user_id_dropout: float = 0.0
    user_dropout_max_k: int = 20
    gate: bool = True
    reg: float = 0.0
    init_std: float = 0.1
    cf_blend: str = "auto"
    ease_lambda: float = 250.0
    ease_max_items: int = 20_000
    cold_map: str = "ridge"
    cold_ridge: float = 10.0
    cold_calibrate: bool = True
    #: weight of the kNN regression blended into the ridge map's cold vectors (0: ridge only),
    #: and its neighbours (see kgrec.models.hybrid._cold_map.knn_vectors)
    cold_knn: float = 0.25
    cold_knn_k: int = 50
    #: fine-tuned text tower for cold items (kgrec.models.hybrid._text_tower): none, top-layers,
    #: lora or full; the settings of the tower's training stage follow
    text_finetune: str = "none"
    text_finetune_layers: int = 1
    text_finetune_epochs: int = 8
    text_finetune_lr: float = 5e-5
    text_head_lr: float = 1e-3
    text_contrast: float = 1.0
    text_lora_rank: int = 8
    text_init_from: str = ""
    #: new-user path (:mod:`kgrec.models.hybrid._users`): users without a training row are
    #: scored from profile attributes / friends and their known items; the two ablations
    new_users: bool = True
    new_user_attributes: bool = True
    new_user_weighting: bool = True
    #: the trained user encoder of the new-user path (:mod:`kgrec.models.hybrid._user_encoder`):
    #: auto (used where validation users say so), on, off
    new_user_encoder: str = "auto"

    def validate(self) -> None:
        self._require("dim", self.dim >= 1, "dim must be >= 1")
        self._require("layers", self.layers >= 0, "layers must be >= 0")
        self._require("tau", self.tau > 0, "tau must be > 0")
        self._require("ranking", self.ranking in ("softmax", "bpr"), "ranking: softmax or bpr")
        self._require("alpha", self.alpha >= 0, "alpha must be >= 0")
        self._require("beta", self.beta >= 0, "beta must be >= 0")
        self._require("beta", self.alpha + self.beta > 0, "alpha + beta must be > 0")
        self._require("kg_min_degree", self.kg_min_degree >= 1, "kg_min_degree must be >= 1")
        self._require("kg_loss", self.kg_loss >= 0, "kg_loss must be >= 0")
        self._require("kg_margin", self.kg_margin >= 0, "kg_margin must be >= 0")
        self._require("triples_per_batch", self.triples_per_batch >= 1, "must be >= 1")
        self._require("align", self.align >= 0, "align must be >= 0")
        self._require("align_tau", self.align_tau > 0, "align_tau must be > 0")
        self._require("id_dropout", 0 <= self.id_dropout < 1, "id_dropout must be in [0, 1)")
        self._require(
            "user_id_dropout", 0 <= self.user_id_dropout < 1, "user_id_dropout must be in [0, 1)"
        )
        self._require("user_dropout_max_k", self.user_dropout_max_k >= 1, "must be >= 1")
        self._require("reg", self.reg >= 0, "reg must be >= 0")
        self._require("init_std", self.init_std > 0, "init_std must be > 0")
        self._require(
            "cf_blend", self.cf_blend in ("none", "ease", "auto"), "cf_blend: none, ease or auto"
        )
        self._require("ease_max_items", self.ease_max_items >= 1, "ease_max_items must be >= 1")
        self._require("ease_lambda", self.ease_lambda > 0, "ease_lambda must be > 0")
        self._require("cold_map", self.cold_map in ("content", "ridge"), "content or ridge")
        self._require(
            "new_user_encoder",
            self.new_user_encoder in ("auto", "on", "off"),
            "new_user_encoder: auto, on or off",
        )
        self._require("cold_ridge", self.cold_ridge > 0, "cold_ridge must be > 0")
        self._require("cold_knn", 0 <= self.cold_knn <= 1, "cold_knn must be in [0, 1]")
        self._require("cold_knn_k", self.cold_knn_k >= 1, "cold_knn_k must be >= 1")
        self._require(
            "text_finetune",
            self.text_finetune in ("none", "lora", "top-layers", "full"),
            "text_finetune: none, lora, top-layers or full",
        )
        self._require("text_finetune_epochs", self.text_finetune_epochs >= 0, "must be >= 0")
        self._require("text_finetune_layers", self.text_finetune_layers >= 1, "must be >= 1")
        self._require("text_contrast", self.text_contrast >= 0, "must be >= 0")

    def loss_weights(self) -> LossWeights:
        return LossWeights(
            ranking=self.ranking,
            alpha=self.alpha,
            beta=self.beta,
            kg=self.kg_loss,
            kg_margin=self.kg_margin,
            align=self.align,
            align_tau=self.align_tau,
            tau=self.tau,
            reg=self.reg,
        )


def _zscore(s: torch.Tensor) -> torch.Tensor:
    """Per-row standardised scores (so two models' scores can be mixed)."""
    return (s - s.mean(1, keepdim=True)) / (s.std(1, keepdim=True) + 1e-9)


class UserBatchSampler:
    """Users in shuffled batches of ``batch_size`` with all their training positives as pairs,
    one sampled non-positive per pair, and (optionally) sampled KG triples with a corrupted
    tail. Deterministic in ``(seed, epoch)`` so a resumed run sees the same batches."""

    def __init__(
        self,
        train: sp.csr_matrix,
        *,
        batch_size: int,
        seed: int,
        triples: np.ndarray | None = None,
        n_entities: int = 0,
        triples_per_batch: int = 2048,
        device: str = "cpu",
    ) -> None:
        self.train = sp.csr_matrix(train, dtype=np.float32)
        self.train.sort_indices()
        self.pairs = BPRSampler(self.train, batch_size=batch_size, seed=seed)
        self.active = np.flatnonzero(np.diff(self.train.indptr) > 0)
        self.batch_size, self.seed, self.device = int(batch_size), int(seed), device
        self.triples = triples if triples is not None and triples.shape[1] else None
        self.n_entities, self.triples_per_batch = n_entities, triples_per_batch

    def __len__(self) -> int:
        return -(-len(self.active) // self.batch_size)

    def batches(self, epoch: int) -> Iterator[UserBatch]:
        rng = np.random.default_rng([self.seed, epoch])
        users = self.active[rng.permutation(len(self.active))]
        indptr, indices = self.train.indptr, self.train.indices
        for s in range(0, len(users), self.batch_size):
            ub = users[s : s + self.batch_size]
            deg = indptr[ub + 1] - indptr[ub]
            rows = np.repeat(np.arange(len(ub)), deg)
            pos = np.concatenate([indices[indptr[u] : indptr[u + 1]] for u in ub])
            neg = self.pairs.negatives(ub[rows], rng)
            trip = None
            if self.triples is not None:
                k = rng.integers(0, self.triples.shape[1], self.triples_per_batch)
                h, r, t = self.triples[:, k]
                tn = rng.integers(0, self.n_entities, len(k))
                trip = tuple(torch.from_numpy(np.ascontiguousarray(a)) for a in (h, r, t, tn))
            yield UserBatch(
                users=torch.from_numpy(ub.astype(np.int64)),
                rows=torch.from_numpy(rows.astype(np.int64)),
                pos=torch.from_numpy(pos.astype(np.int64)),
                neg=torch.from_numpy(neg.astype(np.int64)),
                triples=trip,
            )


def _shard_for_ranks(sampler: UserBatchSampler, config: HybridConfig, device: str) -> Any:
    """Under torchrun (``WORLD_SIZE`` > 1): this rank's users of every batch
    (:mod:`kgrec.models.hybrid._sharding`); the sampler itself in one process."""
    from kgrec.train._distributed import init_from_env

    rank, size = init_from_env(device)
    if size == 1:
        return sampler
    from kgrec.models.hybrid._sharding import ShardedUserSampler, shardable

    if not shardable(config):
        log.info("hybrid loss has non-pair terms: every rank trains on the whole batch")
        return sampler
    return ShardedUserSampler(sampler, rank, size)


def normalized_ui_adjacency(train: sp.csr_matrix) -> sp.csr_matrix:
    """``D^-1/2 [[0, R], [R^T, 0]] D^-1/2`` (users first, then items)."""
    from kgrec.models.cf.lightgcn import normalized_adjacency

    return normalized_adjacency(train)


class HybridRecommender(TextTowerMixin, NewUserMixin, LearnedVectorsMixin, Recommender):
    """KG + text hybrid (see the module docstring). ``inputs``: side information aligned to the
    training matrix's users/items (:func:`~kgrec.models.hybrid.inputs_from_graph`); without it
    the model is a pure ID model trained the same way (and cannot embed new items)."""

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
        **overrides: Any,
    ) -> None:
        super().__init__(config, **overrides)
        self.options = options or self.default_options
        self.inputs = inputs
        self.result_: TrainResult | None = None
        self.module_: HybridModule | None = None
        self.item_links_: SideLinks | None = None
        self.ease_: np.ndarray | None = None
        self.blend_w_ = 0.0
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
        module = HybridModule(
            n_users,
            n_items,
            c.dim,
            c.layers,
            text_dim=None if text is None else int(text.shape[1]),
            item_entities=0 if il is None else len(il.entities),
            item_relations=0 if il is None else len(il.relations),
            user_entities=0 if ul is None else len(ul.entities),
            user_relations=0 if ul is None else len(ul.relations),
            gate=c.gate,
            id_dropout=c.id_dropout,
            user_dropout=c.user_id_dropout,
            user_dropout_max_k=c.user_dropout_max_k,
            init_std=c.init_std,
            losses=c.loss_weights(),
        )
        dev = self.options.device
        warm = torch.from_numpy(np.diff(train.tocsc().indptr) > 0).to(dev)
        module.set_graph(csr_to_torch(normalized_ui_adjacency(train)).to(dev), warm)
        if text is not None:
            module.set_text(torch.from_numpy(np.asarray(text, np.float32)).to(dev))
        for enc, links in ((module.item_side, il), (module.user_side, ul)):
            if enc is not None and links is not None:
                st = links.stacked()
                enc.set_links(csr_to_torch(st).to(dev), csr_to_torch(st.T.tocsr()).to(dev))
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
        sampler = _shard_for_ranks(sampler, c, opts.device)

        def _validate() -> float:
            self._refresh_vectors()
            return float(validate(self))

        self.blend_w_ = 0.0
        self.ease_ = None
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
                self.ease_, part.shared = fitting.ease_for_blend(m, c.ease_lambda, self.shared_fits)
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
                self._fit_cold_map(m, validate)
            if c.text_finetune != "none":
                with flog.part("text_tower", budget):
                    self._fit_text_tower(m)
        if blend == "ease":
            with flog.part("blend", budget):
                self._fit_blend(m, validate)
        self.new_users_ = None
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

    def _content_features(self, text: np.ndarray | None, bags: np.ndarray | None) -> np.ndarray:
        return cold_map.content_features(
            text if self.config.text else None, bags if self.config.kg else None
        )

    def _cold_features(self) -> np.ndarray:
        """The cold map's input per item: normalised text and the IDF entity bag (sets ``idf_``)."""
        from kgrec.models.hybrid._coldstart import link_features

        inp = self.inputs
        bags = None
        self.idf_ = None
        if inp.item_links is not None and self.config.kg:
            self.idf_ = cold_map.link_idf(inp.item_links.matrices)
            bags = link_features(inp)
        return self._content_features(inp.item_text, bags)

    def _fit_cold_map(self, train: sp.csr_matrix, validate: Validator | None = None) -> None:
        """Ridge from content features to the trained vectors of warm items
        (:class:`~kgrec.models.hybrid._cold_map.RidgeColdMap`); items without training
        interactions get the mapped vector, scaled by :attr:`cold_scale_` (chosen on
        ``validate`` when given, see :meth:`_choose_cold_scale`)."""
        x = self._cold_features()
        warm = np.asarray(train.sum(0)).ravel() > 0
        c = self.config
        cmap = cold_map.RidgeColdMap(c.cold_ridge, c.cold_calibrate, self.options.seed)
        cmap.fit(x[warm], self.item_vecs_[warm])
        if cmap.alpha is not None and getattr(self, "fit_log_", None) is not None:
            self.fit_log_.settings["cold_calibration_alpha"] = round(cmap.alpha, 4)
        self.cold_w_ = cmap.w
        cold = np.flatnonzero(~warm)
        self.cold_scale_ = 1.0
        self.cold_knn_x_ = self.cold_knn_items_ = None
        if c.cold_knn > 0:  # warm items' features and ids, for new items too
            self.cold_knn_items_ = np.flatnonzero(warm)
            self.cold_knn_x_ = sp.csr_matrix(cold_map.unit_rows(x[warm, :-1]), dtype=np.float32)
        if len(cold):
            v = self._knn_blend(x[cold], cmap.map(x[cold]))
            self.item_vecs_ = self.item_vecs_.copy()
            self.item_vecs_[cold] = v
            if validate is not None:
                self._choose_cold_scale(cold, v, validate)
        log.info("cold map fitted on %d warm items; %d items mapped", int(warm.sum()), len(cold))

    def _choose_cold_scale(self, cold: np.ndarray, v: np.ndarray, validate: Validator) -> None:
        """The length of content-only item vectors against learned ones, chosen on validation
        from 0.25, 0.5, 0.75, 1 (ties: the larger; never 0, which would leave a new item without
        a direction to retrieve by). Scores are dot products, so the length is a prior:
        in a warm split the items without a training interaction are the rarest ones and rarely
        relevant (a short vector keeps them out of top lists), while a new item of average appeal
        should compete at full length. Directions, hence cosine neighbours and the ranking among
        content-only items, do not change."""

        def at(g: float) -> float:
            self.item_vecs_[cold] = g * v
            return float(validate(self))

        self.cold_scale_, curve = cold_map.choose_scale(at)
        self.item_vecs_[cold] = self.cold_scale_ * v
        self.cold_scale_curve_ = curve
        self._log_choice("cold_scale", curve, self.cold_scale_, "highest; ties: the larger")
        log.info("cold scale %.2f (validation %s)", self.cold_scale_, curve)

    def _fit_blend(self, train: sp.csr_matrix, validate: Validator | None) -> None:
        """The blend weight with the best validation value (0.5 without a validation callback);
        the EASE weights ``ease_`` come from :meth:`fit` (fitted once per run and shared)."""
        if self.ease_ is None:
            from kgrec.models.hybrid._fitting import ease_for_blend

            self.ease_, _ = ease_for_blend(train, self.config.ease_lambda, self.shared_fits)
        if validate is None:
            self.blend_w_ = 0.5
            return
        curve = {}
        for w in [i / 10 for i in range(11)]:
            self.blend_w_ = w
            curve[w] = float(validate(self))
        self.blend_w_ = max(curve, key=lambda w: (curve[w], -w))
        self.blend_curve_ = curve
        self._log_choice("blend_weight", curve, self.blend_w_, "highest; ties: the smaller")
        log.info("EASE blend: weight %.1f (validation %s)", self.blend_w_, curve)

    def _log_choice(self, name: str, curve: dict[float, float], chosen: float, rule: str) -> None:
        if getattr(self, "fit_log_", None) is not None:
            self.fit_log_.choices.append(Choice.from_curve(name, curve, chosen, rule))

    def _refresh_vectors(self) -> None:
        assert self.module_ is not None
        with torch.no_grad():
            self.module_.eval()
            u, i = self.module_()
        self.user_vecs_ = u.detach().to("cpu", torch.float32).numpy()
        self.item_vecs_ = i.detach().to("cpu", torch.float32).numpy()

    # ------------------------------------------------------------------ scoring
    def _score(self, users: np.ndarray, history: sp.csr_matrix) -> torch.Tensor:
        out = super()._score(users, history)
        w = getattr(self, "blend_w_", 0.0)
        if self.ease_ is not None and w > 0:
            cf = torch.from_numpy(history.toarray().astype(np.float32)) @ torch.from_numpy(
                self.ease_
            )
            out = (1 - w) * _zscore(out) + w * _zscore(cf)
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
        if getattr(self, "cold_w_", None) is not None:
            return self._embed_ridge(text, links)
        if self.module_ is None:
            raise KgrecError("this hybrid was loaded without its network; cannot embed new items")
        mod = self.module_
        n = len(text) if text is not None else (len(links) if links is not None else 0)
        if n == 0:
            raise KgrecError("embed_items needs text vectors or KG links for at least one item")
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

    def _embed_tower(
        self, text: np.ndarray | None, links: Sequence[Sequence[tuple[str, str]]] | None
    ) -> np.ndarray:
        n = len(text) if text is not None else (len(links) if links is not None else 0)
        if n == 0:
            raise KgrecError("embed_items needs text vectors or KG links for at least one item")
        if text is None:
            text = np.zeros((n, self.text_tower_.dim), np.float32)
        bags = self._new_bags(n, links) if self.tower_head_.bag is not None else None
        v = self._head_vectors(np.asarray(text, np.float32), bags)
        return (getattr(self, "cold_scale_", 1.0) * v).astype(np.float32)

    def _embed_ridge(
        self, text: np.ndarray | None, links: Sequence[Sequence[tuple[str, str]]] | None
    ) -> np.ndarray:
        n = len(text) if text is not None else (len(links) if links is not None else 0)
        if n == 0:
            raise KgrecError("embed_items needs text vectors or KG links for at least one item")
        bags = self._new_bags(n, links)
        if text is None and self.config.text and self.module_ is not None:
            d = self.module_.fusion.proj.in_features if self.module_.fusion.proj else 0
            text = np.zeros((n, d)) if d else None
        x = self._content_features(text, bags)
        v = self._knn_blend(x, cold_map.unit_rows(x @ self.cold_w_))
        return (v * getattr(self, "cold_scale_", 1.0)).astype(np.float32)

    def _knn_blend(self, x: np.ndarray, v: np.ndarray) -> np.ndarray:
        """``v`` (unit ridge vectors of items with features ``x``) blended with the kNN
        regression over the warm items (``cold_knn`` of it; ``v`` itself when off)."""
        known = getattr(self, "cold_knn_x_", None)
        if known is None or self.config.cold_knn <= 0:
            return np.asarray(v, np.float32)
        knn = cold_map.knn_vectors(
            x[:, :-1], known, self.item_vecs_[self.cold_knn_items_], k=self.config.cold_knn_k
        )
        return cold_map.blend_unit(v, knn, self.config.cold_knn)

    def _new_bags(
        self, n: int, links: Sequence[Sequence[tuple[str, str]]] | None
    ) -> np.ndarray | None:
        """IDF-weighted, L2-normalised entity bags of new items (as the cold map's features)."""
        if self.idf_ is None or self.item_links_ is None:
            return None
        return cold_map.entity_bags(self.idf_, self.item_links_.entities, links or [()] * n)

    # ------------------------------------------------------------------ persistence
    def _state(self) -> dict[str, np.ndarray]:
        out = {**super()._state(), "user_vecs": self.user_vecs_, "item_vecs": self.item_vecs_}
        if self.module_ is not None:
            for k, v in self.module_.state_dict().items():
                out["module." + k] = v.detach().cpu().numpy()
        if self.item_links_ is not None:
            out["links.entities"] = np.asarray(self.item_links_.entities, dtype=str)
        if getattr(self, "cold_w_", None) is not None:
            out["cold_w"] = self.cold_w_
            out["cold_scale"] = np.array(getattr(self, "cold_scale_", 1.0), np.float64)
            if self.idf_ is not None:
                out["idf"] = self.idf_
            if getattr(self, "cold_knn_x_", None) is not None:
                kx = self.cold_knn_x_
                out["cold_knn.data"], out["cold_knn.indices"] = kx.data, kx.indices
                out["cold_knn.indptr"] = kx.indptr
                out["cold_knn.shape"] = np.asarray(kx.shape, np.int64)
                out["cold_knn.items"] = self.cold_knn_items_
        if self.ease_ is not None:
            out["ease"] = self.ease_
            out["blend_w"] = np.array(self.blend_w_, np.float64)
        out.update(self.new_user_state())
        return {**out, **self._tower_state()}

    def _extra_meta(self) -> dict[str, Any]:
        out: dict[str, Any] = {"training": self.options.to_dict()}
        if self.result_ is not None:
            out["train_result"] = self.result_.to_dict()
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
        super()._set_state(arrays, meta)
        self.user_vecs_ = arrays["user_vecs"]
        self.item_vecs_ = arrays["item_vecs"]
        self.cold_w_ = arrays.get("cold_w")
        self.cold_scale_ = float(arrays["cold_scale"]) if "cold_scale" in arrays else 1.0
        self.idf_ = arrays.get("idf")
        self.cold_knn_x_ = self.cold_knn_items_ = None
        if "cold_knn.items" in arrays:
            self.cold_knn_x_ = sp.csr_matrix(
                (arrays["cold_knn.data"], arrays["cold_knn.indices"], arrays["cold_knn.indptr"]),
                shape=tuple(int(n) for n in arrays["cold_knn.shape"]),
            )
            self.cold_knn_items_ = np.asarray(arrays["cold_knn.items"], np.int64)
        if "ease" in arrays:
            self.ease_ = arrays["ease"]
            self.blend_w_ = float(arrays["blend_w"])
        if "training" in meta:
            self.options = TrainingOptions.from_dict(meta["training"])
        self._set_tower_state(arrays, meta)
        self.new_users_ = None
        if "new_users" in meta:
            self.set_new_user_state(arrays, meta["new_users"])
        net = meta.get("network")
        if net is None:
            return
        c = self.config
        mod = HybridModule(
            self.n_users_,
            self.n_items_,
            c.dim,
            c.layers,
            text_dim=net["text_dim"],
            item_entities=net["item_entities"],
            item_relations=net["item_relations"],
            user_entities=net["user_entities"],
            user_relations=net["user_relations"],
            gate=c.gate,
            id_dropout=c.id_dropout,
            user_dropout=c.user_id_dropout,
            user_dropout_max_k=c.user_dropout_max_k,
            init_std=c.init_std,
            losses=c.loss_weights(),
        )
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
