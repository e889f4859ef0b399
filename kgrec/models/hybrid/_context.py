"""What a model asks of the layer above it: an :class:`InputSource` hands it tensors.

The concrete source is :class:`kgrec.experiment.ModelContext` (dataset, positives, graph spec),
which builds the graph and runs the text encoder; a model only calls its two methods, so no model
imports a graph build or a text encoder. :func:`hybrid_from_context` wires a
:class:`HybridRecommender` from a source; :func:`load_text_tower` rebuilds a saved hybrid's
fine-tuned :class:`~kgrec.text.TextTower` (a part of the model, not an encoder run on the data).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from kgrec.data import Dataset, Positives
    from kgrec.models.hybrid._inputs import HybridInputs
    from kgrec.models.hybrid._recommender import HybridConfig, HybridRecommender
    from kgrec.train import TrainingOptions

log = logging.getLogger(__name__)


@runtime_checkable
class InputSource(Protocol):
    """Side information for model factories (implemented by
    :class:`kgrec.experiment.ModelContext`): the dataset, its positives (vocabularies) and the
    model inputs assembled from its spec."""

    dataset: Dataset
    positives: Positives

    def hybrid_inputs(self, *, user_links: bool = False) -> HybridInputs:
        """KG links and item text vectors over the positives' vocabularies."""
        ...

    def text_tower_inputs(self, config: HybridConfig) -> tuple[Any, Any]:
        """A fresh text tower for ``config`` and its prepared inputs for the items."""
        ...


def hybrid_inputs(context: InputSource, *, user_links: bool = False) -> HybridInputs:
    """``context``'s hybrid inputs (the cold-start baselines' and the hybrid's content)."""
    return context.hybrid_inputs(user_links=user_links)


def hybrid_from_context(
    context: InputSource | None,
    *,
    config: HybridConfig | None = None,
    options: TrainingOptions | None = None,
) -> HybridRecommender:
    """A :class:`HybridRecommender` with inputs from ``context`` (ID-only without one)."""
    from kgrec.models.hybrid._recommender import HybridConfig, HybridRecommender

    config = config or HybridConfig()
    inputs = None
    if context is not None and (config.kg or config.text):
        inputs = context.hybrid_inputs(user_links=config.user_links)
    elif context is None:
        log.warning("hybrid without a model context: ID-only (no KG, no text)")
    tower, data = None, None
    if config.text_finetune != "none" and context is not None and config.text:
        tower, data = context.text_tower_inputs(config)
    return HybridRecommender(
        config, options=options, inputs=inputs, text_tower=tower, tower_data=data
    )


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
