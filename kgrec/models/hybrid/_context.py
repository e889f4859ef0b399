"""What a model needs beyond the training matrix, and how the hybrid builds its inputs from it.

The comparison runner and the CLI hand a :class:`ModelContext` (dataset, positives with their
vocabularies, graph spec) to model factories; the hybrid builds its :class:`HybridInputs` (KG
links from the spec's :class:`~kgrec.graph.KnowledgeGraph`, text vectors from
:mod:`kgrec.text`, both cached on disk) once per context and reuses them across seeds.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kgrec.errors import SpecError

if TYPE_CHECKING:
    from kgrec.data import Dataset
    from kgrec.eval import Positives
    from kgrec.graph import GraphSpec
    from kgrec.models.hybrid._inputs import HybridInputs
    from kgrec.models.hybrid._recommender import HybridConfig, HybridRecommender
    from kgrec.train import TrainingOptions

log = logging.getLogger(__name__)


@dataclass(eq=False)
class ModelContext:
    """Side information for model factories: the dataset, its positives (vocabularies) and the
    graph spec it came from (``None`` for a bare dataset). ``cache`` memoises derived inputs."""

    dataset: Dataset
    positives: Positives
    spec: GraphSpec | None = None
    cache: dict[str, Any] = field(default_factory=dict)


def hybrid_inputs(context: ModelContext, *, user_links: bool = False) -> HybridInputs:
    """KG links and item text vectors for ``context``'s vocabularies (built once, then cached)."""
    key = f"hybrid_inputs:{user_links}"
    if key in context.cache:
        return context.cache[key]
    from kgrec.models.hybrid._inputs import inputs_from_graph

    spec = context.spec
    if spec is None:
        raise SpecError(
            "the hybrid needs a graph spec (graphs/<name>.toml) for its knowledge graph and text "
            "fields; pass a spec instead of a bare dataset name"
        )
    from kgrec.graph import load_or_build

    kg = load_or_build(spec)
    text = None
    if spec.text.item_fields or spec.text.item_reviews or getattr(spec.text, "item_tags", False):
        from kgrec.text import CachedEncoder, TransformerEncoder, embed_texts, texts_from_spec

        texts = texts_from_spec(spec, context.dataset)["item"]
        text = embed_texts(texts, CachedEncoder(TransformerEncoder()))
    pos = context.positives
    inputs = inputs_from_graph(kg, pos.users, pos.items, item_text=text, user_links=user_links)
    from dataclasses import replace

    from kgrec.models.hybrid._users import user_profile

    profile, social = user_profile(kg, pos.users)
    inputs = replace(inputs, user_profile=profile, user_social=social)
    log.info("hybrid inputs: %s", inputs.describe())
    context.cache[key] = inputs
    return inputs


def hybrid_from_context(
    context: ModelContext | None,
    *,
    config: HybridConfig | None = None,
    options: TrainingOptions | None = None,
) -> HybridRecommender:
    """A :class:`HybridRecommender` with inputs built from ``context`` (ID-only without one)."""
    from kgrec.models.hybrid._recommender import HybridConfig, HybridRecommender

    config = config or HybridConfig()
    inputs = None
    if context is not None and (config.kg or config.text):
        inputs = hybrid_inputs(context, user_links=config.user_links)
    elif context is None:
        log.warning("hybrid without a model context: ID-only (no KG, no text)")
    model = HybridRecommender(config, options=options, inputs=inputs)
    if config.text_finetune != "none" and context is not None and config.text:
        tower, data = text_tower_inputs(context, config)
        model.set_text_tower(tower, data)
    return model


def text_tower_inputs(context: ModelContext, config: HybridConfig) -> tuple[Any, Any]:
    """A fresh :class:`~kgrec.text.TextTower` for ``config`` (initialised from
    ``config.text_init_from`` when set) and its inputs for the context's items (tokens and, in
    top-layers mode, the frozen layers' outputs, computed once per context and mode)."""
    from kgrec.text import FinetuneConfig, TextTower, texts_from_spec

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
    if key not in context.cache:
        if context.spec is None:
            raise SpecError("the text tower needs a graph spec for the item texts")
        texts = texts_from_spec(context.spec, context.dataset)["item"]
        by_id = {str(i): k for k, i in enumerate(texts.ids)}
        rows = []
        for item in context.positives.items.ids:
            k = by_id.get(str(item))
            t = "" if k is None else (texts.texts[k] or " ".join(texts.reviews[k][:4]))
            rows.append(t)
        context.cache[key] = tower.prepare(rows)
    return tower, context.cache[key]


def load_text_tower(meta: dict[str, Any]) -> Any:
    """The (untrained) :class:`~kgrec.text.TextTower` a saved hybrid's ``text_tower`` metadata
    describes, its base model checked by file hash; the caller loads the trained tensors."""
    from kgrec.errors import KgrecError
    from kgrec.text import FinetuneConfig, TextTower

    tower = TextTower(
        FinetuneConfig.from_dict(meta["config"]), meta["model_path"], model_id=meta["model_id"]
    )
    if tower.base_hash != meta["base_hash"]:
        raise KgrecError(
            f"the text tower was fine-tuned from model files sha256 {meta['base_hash'][:12]}; "
            f"{tower.model_path} now has {tower.base_hash[:12]}"
        )
    return tower
