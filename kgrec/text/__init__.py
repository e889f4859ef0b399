"""Offline text embeddings of item descriptions and reviews, cached and fast.

``TransformerEncoder()`` encodes with the bundled all-MiniLM-L6-v2 (or any local HuggingFace model
directory) exactly as sentence-transformers does, with length-bucketed batches and optional int8;
``CachedEncoder(encoder)`` serves texts seen before from ``$KGREC_HOME/embeddings``;
``item_texts``/``user_texts`` compose entity text from a dataset using training reviews only;
``embed_texts`` turns them into per-entity vectors. Importing this package does not import torch or
transformers: they load on first use.
"""

from kgrec.text._cache import CachedEncoder, EmbeddingCache, EncodeStats, text_hashes
from kgrec.text._compose import (
    EntityEmbeddings,
    EntityTexts,
    embed_many,
    embed_texts,
    item_texts,
    render_fields,
    texts_from_spec,
    training_mask,
    training_reviews,
    truncate,
    user_texts,
)
from kgrec.text._encoder import (
    EncoderConfig,
    EncoderKey,
    TextEncoder,
    TransformerEncoder,
    pool,
    quantize_int8,
)
from kgrec.text._finetune import FinetunedEncoder, TextTower
from kgrec.text._model_dir import (
    DEFAULT_MODEL_ID,
    ModelNotFoundError,
    default_model_path,
    model_fingerprint,
)
from kgrec.text._sharded import encode_shard, shard_texts
from kgrec.text._tower_module import FINETUNE_MODES, FinetuneConfig, TowerBatch, TowerData

__all__ = [
    "DEFAULT_MODEL_ID",
    "FINETUNE_MODES",
    "CachedEncoder",
    "EmbeddingCache",
    "EncodeStats",
    "EncoderConfig",
    "EncoderKey",
    "EntityEmbeddings",
    "EntityTexts",
    "FinetuneConfig",
    "FinetunedEncoder",
    "ModelNotFoundError",
    "TextEncoder",
    "TextTower",
    "TowerBatch",
    "TowerData",
    "TransformerEncoder",
    "default_model_path",
    "embed_many",
    "embed_texts",
    "encode_shard",
    "item_texts",
    "model_fingerprint",
    "pool",
    "quantize_int8",
    "render_fields",
    "shard_texts",
    "text_hashes",
    "texts_from_spec",
    "training_mask",
    "training_reviews",
    "truncate",
    "user_texts",
]
