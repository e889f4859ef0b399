"""Cold-start serving: a typed model protocol, adapters for the content-only model
(:class:`ContentAdapter` over :class:`kgrec.models.ContentModel`) and for the trained hybrid, a
:class:`Retriever` over two FAISS/torch indexes, and the HTTP app (``kgrec serve``).

``Retriever(model).build()`` indexes a :class:`ColdStartModel`'s items and users;
``neighbors(item_id | NewItem)``, ``recommend(user | history | text)``, ``add_item(NewItem)``.
``load_model(spec, "content" | PATH)`` gives the content model (no training) or a trained hybrid.
Importing this package does not import fastapi, faiss or transformers.
"""

from kgrec.models._content import ContentConfig
from kgrec.serve._attributes import AttributeMatcher
from kgrec.serve._content import ContentAdapter, item_links
from kgrec.serve._item_text import default_encoder
from kgrec.serve._load import HybridAdapter, load_model, load_retriever
from kgrec.serve._protocol import (
    MAX_HISTORY,
    MAX_K,
    MAX_TEXT_CHARS,
    ColdStartModel,
    EmbeddedItems,
    NewItem,
    read_item_file,
)
from kgrec.serve._results import (
    AddedItem,
    DuplicateIdError,
    Hit,
    NeighborsResult,
    RecommendResult,
    check_k,
)
from kgrec.serve._retriever import Retriever

__all__ = [
    "MAX_HISTORY",
    "MAX_K",
    "MAX_TEXT_CHARS",
    "AddedItem",
    "AttributeMatcher",
    "ColdStartModel",
    "ContentAdapter",
    "ContentConfig",
    "DuplicateIdError",
    "EmbeddedItems",
    "Hit",
    "HybridAdapter",
    "NeighborsResult",
    "NewItem",
    "RecommendResult",
    "Retriever",
    "check_k",
    "default_encoder",
    "item_links",
    "load_model",
    "load_retriever",
    "read_item_file",
]
