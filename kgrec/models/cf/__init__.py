"""Collaborative-filtering baselines behind the :class:`~kgrec.models.Recommender` contract."""

from kgrec.models.cf.ease import EASE, EASEConfig
from kgrec.models.cf.itemknn import ItemKNN, ItemKNNConfig
from kgrec.models.cf.lightgcn import LightGCN, LightGCNConfig, LightGCNModule, normalized_adjacency
from kgrec.models.cf.mf_bpr import MFBPR, MFConfig, MFModule
from kgrec.models.cf.pop import PopConfig, Popularity

__all__ = [
    "EASE",
    "MFBPR",
    "EASEConfig",
    "ItemKNN",
    "ItemKNNConfig",
    "LightGCN",
    "LightGCNConfig",
    "LightGCNModule",
    "MFConfig",
    "MFModule",
    "PopConfig",
    "Popularity",
    "normalized_adjacency",
]
