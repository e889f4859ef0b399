"""``HybridConfig``: every setting of the hybrid (network, losses, the EASE blend, the cold
map, the text tower, the new-user path), validated at construction; a flat frozen dataclass so
that saved models' ``model.json`` configs round-trip unchanged."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kgrec.models._base import ModelConfig
from kgrec.models.hybrid._losses import LossWeights


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
    a prior of content-only items against learned ones (see
    :mod:`kgrec.models.hybrid._cold_items`).
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
    #: > 0: a second network trained with this user-ID dropout for the new-user fold-in only
    #: (the warm model untouched; about twice the training time), see hybrid/_users.py
    new_user_dropout: float = 0.0

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
            "new_user_dropout",
            0 <= self.new_user_dropout < 1,
            "new_user_dropout must be in [0, 1)",
        )
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

    def network_options(self) -> dict[str, Any]:
        """The :class:`~kgrec.models.hybrid.HybridModule` settings this config fixes (beside
        the sizes, which come from the data)."""
        return {
            "gate": self.gate,
            "id_dropout": self.id_dropout,
            "user_dropout": self.user_id_dropout,
            "user_dropout_max_k": self.user_dropout_max_k,
            "init_std": self.init_std,
            "losses": self.loss_weights(),
        }

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
