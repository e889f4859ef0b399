"""The assembly of model inputs from a spec: graph build, text encoding, KG links.

A :class:`ModelContext` (dataset, positives with their vocabularies, graph spec) is what the
runner, ``kgrec train`` / ``kgrec compare`` and the benches hand to model factories. Models never
build a graph or run an encoder: they ask the context (through the
:class:`~kgrec.models.hybrid.InputSource` protocol) for tensors, and the context builds them here
(KG links from the spec's :class:`~kgrec.graph.KnowledgeGraph`, text vectors from
:mod:`kgrec.text`, both cached on disk) once, then reuses them across seeds.

Review text is the exception: it must come from the TRAINING rows of the split being evaluated,
or a test interaction's own review describes its item (and, for a held-out user, the user). A
spec whose text uses reviews gets one context per split (:meth:`ModelContext.for_split`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from kgrec.errors import SpecError

if TYPE_CHECKING:
    from kgrec.data import Dataset, Positives, Split
    from kgrec.graph import GraphSpec
    from kgrec.models.hybrid import HybridConfig, HybridInputs

log = logging.getLogger(__name__)


@dataclass(eq=False)
class ModelContext:
    """Side information for model factories: the dataset, its positives (vocabularies) and the
    graph spec it came from (``None`` for a bare dataset). ``cache`` memoises derived inputs.
    ``review_mask`` (rows of ``dataset.interactions``) says whose reviews text may use; ``None``
    is the dataset's given training split (see :func:`kgrec.text.texts_from_spec`)."""

    dataset: Dataset
    positives: Positives
    spec: GraphSpec | None = None
    cache: dict[str, Any] = field(default_factory=dict)
    review_mask: np.ndarray | None = None

    @property
    def uses_reviews(self) -> bool:
        """Whether the spec's text is made of interaction reviews (item or user)."""
        t = getattr(self.spec, "text", None)
        return bool(t is not None and (t.item_reviews or t.user_reviews))

    def for_split(self, split: Split) -> ModelContext:
        """The context to fit models on ``split``: itself, unless its text uses reviews; then a
        context (own cache) whose reviews are those of ``split``'s training interactions only."""
        if not self.uses_reviews:
            return self
        mask = training_rows(self.dataset, split)
        log.info(
            "review text from the split's %d training interactions of %d (seed %d)",
            int(mask.sum()),
            len(mask),
            split.seed,
        )
        return ModelContext(self.dataset, self.positives, self.spec, review_mask=mask)

    def texts(self) -> dict[str, Any]:
        """The spec's item (and user) texts, reviews from :attr:`review_mask` (cached)."""
        if "texts" not in self.cache:
            from kgrec.text import texts_from_spec

            spec = self._need_spec("texts need a graph spec ([text] section)")
            self.cache["texts"] = texts_from_spec(spec, self.dataset, train_mask=self.review_mask)
        return self.cache["texts"]

    @classmethod
    def from_spec(cls, spec: GraphSpec, *, min_rating: float | None = None) -> ModelContext:
        """The spec's dataset and its positives (``rating >= min_rating``; the spec's own
        ``interactions.min_rating`` by default)."""
        from kgrec.data import positives

        ds = spec.load_dataset()
        mr = spec.interactions.min_rating if min_rating is None else min_rating
        return cls(dataset=ds, positives=positives(ds, min_rating=mr), spec=spec)

    def _need_spec(self, what: str) -> GraphSpec:
        if self.spec is None:
            raise SpecError(what)
        return self.spec

    def hybrid_inputs(self, *, user_links: bool = False) -> HybridInputs:
        """KG links and item text vectors for the context's vocabularies (built once, cached)."""
        key = f"hybrid_inputs:{user_links}"
        if key in self.cache:
            return self.cache[key]
        spec = self._need_spec(
            "the hybrid needs a graph spec (graphs/<name>.toml) for its knowledge graph and text "
            "fields; pass a spec instead of a bare dataset name"
        )
        from kgrec.graph import load_or_build
        from kgrec.models.hybrid import inputs_from_graph, user_profile

        kg = load_or_build(spec)
        text = None
        if spec.text.item_fields or spec.text.item_reviews or spec.text.item_tags:
            from kgrec.text import CachedEncoder, TransformerEncoder, embed_texts

            text = embed_texts(self.texts()["item"], CachedEncoder(TransformerEncoder()))
        pos = self.positives
        inputs = inputs_from_graph(kg, pos.users, pos.items, item_text=text, user_links=user_links)
        profile, social = user_profile(kg, pos.users)
        inputs = replace(inputs, user_profile=profile, user_social=social)
        log.info("hybrid inputs: %s", inputs.describe())
        self.cache[key] = inputs
        return inputs

    def text_tower_inputs(self, config: HybridConfig) -> tuple[Any, Any]:
        """A fresh :class:`~kgrec.text.TextTower` for ``config`` (initialised from
        ``config.text_init_from`` when set) and its inputs for the context's items (tokens and,
        in top-layers mode, the frozen layers' outputs, computed once per context and mode)."""
        from kgrec.text import FinetuneConfig, TextTower

        ft = FinetuneConfig(
            mode=config.text_finetune,
            top_layers=config.text_finetune_layers,
            lora_rank=config.text_lora_rank,
            lora_alpha=2.0 * config.text_lora_rank,
        )
        tower = TextTower(ft)
        if config.text_init_from:
            tower.init_from(config.text_init_from)
        key = f"tower_data:{ft.mode}:{ft.top_layers}:{ft.max_length}"
        if key not in self.cache:
            self._need_spec("the text tower needs a graph spec for the item texts")
            texts = self.texts()["item"]
            by_id = {str(i): k for k, i in enumerate(texts.ids)}
            rows = []
            for item in self.positives.items.ids:
                k = by_id.get(str(item))
                t = "" if k is None else (texts.texts[k] or " ".join(texts.reviews[k][:4]))
                rows.append(t)
            self.cache[key] = tower.prepare(rows)
        return tower, self.cache[key]


def training_rows(dataset: Dataset, split: Split) -> np.ndarray:
    """Boolean mask over ``dataset.interactions``: rows whose (user, item) pair is a training
    interaction of ``split`` (rows outside the split's vocabularies are not)."""
    f = dataset.interactions.frame
    u = split.users.indices(f["user"].astype(str).to_numpy(), missing="-1")
    i = split.items.indices(f["item"].astype(str).to_numpy(), missing="-1")
    ok = (u >= 0) & (i >= 0)
    mask = np.zeros(len(f), dtype=bool)
    train = split.train_matrix()
    mask[ok] = np.asarray(train[u[ok], i[ok]]).ravel() > 0
    return mask
