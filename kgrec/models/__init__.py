"""Recommenders: the base contract, the CF baselines, the KG + text hybrid and the untrained
content model (text + KG, :class:`ContentModel`), with an explicit short-name registry."""

from kgrec.models._base import (
    ContextFactory,
    ModelConfig,
    Recommender,
    Validator,
    as_csr,
    csr_to_torch,
    fold_in,
)
from kgrec.models._blend import ScoreBlend, ScoreBlendConfig, ScoreMix
from kgrec.models._content import ContentConfig, ContentModel
from kgrec.models.cf import (
    EASE,
    MFBPR,
    EASEConfig,
    ItemKNN,
    ItemKNNConfig,
    LightGCN,
    LightGCNConfig,
    MFConfig,
    PopConfig,
    Popularity,
)
from kgrec.models.hybrid import (
    KGKNN,
    ContentToCF,
    HybridConfig,
    HybridRecommender,
    TextKNN,
)

#: CLI short name -> class (explicit; no string-built lookups)
MODELS: dict[str, type[Recommender]] = {
    "pop": Popularity,
    "itemknn": ItemKNN,
    "ease": EASE,
    "mf": MFBPR,
    "lightgcn": LightGCN,
    "hybrid": HybridRecommender,
    # cold-start baselines (content only; need a graph spec like the hybrid)
    "textknn": TextKNN,
    "kgknn": KGKNN,
    "content2cf": ContentToCF,
}

__all__ = [
    "EASE",
    "KGKNN",
    "MFBPR",
    "MODELS",
    "ContentConfig",
    "ContentModel",
    "ContentToCF",
    "ContextFactory",
    "EASEConfig",
    "HybridConfig",
    "HybridRecommender",
    "ItemKNN",
    "ItemKNNConfig",
    "LightGCN",
    "LightGCNConfig",
    "MFConfig",
    "ModelConfig",
    "PopConfig",
    "Popularity",
    "Recommender",
    "ScoreBlend",
    "ScoreBlendConfig",
    "ScoreMix",
    "TextKNN",
    "Validator",
    "as_csr",
    "csr_to_torch",
    "fold_in",
]
