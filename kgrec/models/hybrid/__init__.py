"""The KG + text hybrid: relational side encoder, gated text fusion, LightGCN propagation, and the
:class:`HybridRecommender` wrapper trained with :func:`kgrec.train.train_loop`; plus the
content-only cold-start baselines it is measured against (:class:`TextKNN`, :class:`KGKNN`,
:class:`ContentToCF`). Inputs come from an :class:`InputSource` (the layer above:
:class:`kgrec.experiment.ModelContext`, which builds the graph and the text vectors)."""

from kgrec.models.hybrid._coldstart import (
    KGKNN,
    ContentToCF,
    ContentToCFConfig,
    KGKNNConfig,
    TextKNN,
    TextKNNConfig,
)
from kgrec.models.hybrid._config import HybridConfig
from kgrec.models.hybrid._context import InputSource, hybrid_from_context
from kgrec.models.hybrid._inputs import HybridInputs, SideLinks, inputs_from_graph, links_from_graph
from kgrec.models.hybrid._losses import LossWeights, UserBatch
from kgrec.models.hybrid._modules import GatedFusion, HybridModule, RelationalSideEncoder
from kgrec.models.hybrid._recommender import HybridRecommender
from kgrec.models.hybrid._sampler import UserBatchSampler
from kgrec.models.hybrid._users import user_profile

__all__ = [
    "KGKNN",
    "ContentToCF",
    "ContentToCFConfig",
    "GatedFusion",
    "HybridConfig",
    "HybridInputs",
    "HybridModule",
    "HybridRecommender",
    "InputSource",
    "KGKNNConfig",
    "LossWeights",
    "RelationalSideEncoder",
    "SideLinks",
    "TextKNN",
    "TextKNNConfig",
    "UserBatch",
    "UserBatchSampler",
    "hybrid_from_context",
    "inputs_from_graph",
    "links_from_graph",
    "user_profile",
]
