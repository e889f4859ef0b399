"""Recommenders: the base contract and the CF baselines, with an explicit short-name registry."""

from kgrec.models._base import ModelConfig, Recommender, Validator, as_csr, csr_to_torch, fold_in
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

#: CLI short name -> class (explicit; no string-built lookups)
MODELS: dict[str, type[Recommender]] = {
    "pop": Popularity,
    "itemknn": ItemKNN,
    "ease": EASE,
    "mf": MFBPR,
    "lightgcn": LightGCN,
}

__all__ = [
    "EASE",
    "MFBPR",
    "MODELS",
    "EASEConfig",
    "ItemKNN",
    "ItemKNNConfig",
    "LightGCN",
    "LightGCNConfig",
    "MFConfig",
    "ModelConfig",
    "PopConfig",
    "Popularity",
    "Recommender",
    "Validator",
    "as_csr",
    "csr_to_torch",
    "fold_in",
]
