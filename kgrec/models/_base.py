"""The recommender contract every model follows (baselines and, later, the hybrid).

Estimator habits: ``__init__`` stores a frozen config (and training options); ``fit(train)``
learns from a binary ``n_users x n_items`` CSR matrix of training positives and returns ``self``;
learned state ends in ``_``. ``score(users, history)`` returns a dense ``(len(users), n_items)``
tensor, higher is better; ``history`` holds those users' known items as CSR rows (the training rows
for warm users, the revealed items for cold users), which history-based models (ItemKNN, EASE)
score from and embedding models use to fold in users they have no vector for. ``save``/``load``
write a directory with ``model.json`` (class, config, shapes) and ``arrays.npz`` (no pickle).
"""

from __future__ import annotations

import json
import zipfile
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, ClassVar, Protocol, Self, runtime_checkable

import numpy as np
import scipy.sparse as sp
import torch

from kgrec._atomic import atomic_dir
from kgrec._numeric import csr_to_torch as csr_to_torch
from kgrec.data._tables import WEIGHT_MODES
from kgrec.errors import DataError, KgrecError, SpecError

#: validation callback handed to ``fit``: model -> validation metric (higher is better)
Validator = Callable[["Recommender"], float]
_FORMAT = "kgrec.model/1"


@dataclass(frozen=True)
class ModelConfig:
    """Base of the per-model frozen configs: validation hook and a dict round trip."""

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise :class:`SpecError` naming the bad key; subclasses override."""

    def _require(self, key: str, ok: bool, msg: str) -> None:
        if not ok:
            raise SpecError(f"{msg}, got {getattr(self, key)!r}", key=key)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, obj: dict[str, Any]) -> Self:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(obj) - known)
        if unknown:
            raise SpecError(
                f"unknown option(s) {unknown} for {cls.__name__}; known {sorted(known)}"
            )
        return cls(**obj)


def as_csr(train: sp.spmatrix | np.ndarray, *, binary: bool = True) -> sp.csr_matrix:
    """A float32 CSR copy of ``train`` (binarised), with sorted indices."""
    m = sp.csr_matrix(train, dtype=np.float32, copy=True)
    m.sum_duplicates()
    if binary:
        m.data[:] = 1.0
    m.sort_indices()
    return m


@dataclass(frozen=True)
class WeightedConfig(ModelConfig):
    """Config of a model that can use interaction weights: ``weights = "none"`` (binary, the
    default), ``"count"`` (the weight itself: play counts, or repeats under ``duplicates =
    "count"``) or ``"log"`` (``log1p`` of it). The comparison runner and ``kgrec train`` give
    such a model its training matrix accordingly."""

    weights: str = "none"

    def validate(self) -> None:
        self._require(
            "weights", self.weights in WEIGHT_MODES, f"weights must be one of {WEIGHT_MODES}"
        )


class Recommender(ABC):
    """Base class of every kgrec recommender."""

    #: short name used by the CLI and in reports (``pop``, ``itemknn`` ...)
    name: ClassVar[str] = "recommender"
    config_class: ClassVar[type[ModelConfig]] = ModelConfig
    #: True for models that score users without any history from side information (profile
    #: attributes, friends); every other model falls back to training popularity for them
    #: (:meth:`score`), instead of ranking by ties or by an untrained vector
    new_user_path: ClassVar[bool] = False

    def __init__(self, config: ModelConfig | None = None, **overrides: Any) -> None:
        if config is None:
            config = self.config_class(**overrides)
        elif overrides:
            config = self.config_class.from_dict({**config.to_dict(), **overrides})
        if not isinstance(config, self.config_class):
            raise SpecError(
                f"{type(self).__name__} needs a {self.config_class.__name__}, "
                f"got {type(config).__name__}"
            )
        self.config = config
        self.n_users_: int | None = None
        self.n_items_: int | None = None
        self.train_: sp.csr_matrix | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.config!r})"

    # ---------------------------------------------------------------- contract
    @abstractmethod
    def fit(self, train: sp.spmatrix, *, validate: Validator | None = None) -> Self:
        """Learn from the binary training matrix; ``validate`` drives early stopping."""

    @abstractmethod
    def _score(self, users: np.ndarray, history: sp.csr_matrix) -> torch.Tensor:
        """Scores for ``users`` given their ``history`` rows (fitted model)."""

    def score(self, users: np.ndarray, history: sp.csr_matrix | None = None) -> torch.Tensor:
        """Dense ``(len(users), n_items)`` float32 scores; ``history`` defaults to training rows."""
        self._check_fitted()
        users = np.asarray(users, dtype=np.int64)
        if users.size and (users.min() < 0 or users.max() >= self.n_users_):
            raise KgrecError(f"user index outside 0..{self.n_users_ - 1}")
        if history is None:
            history = self.train_[users]
        history = sp.csr_matrix(history, dtype=np.float32)
        if history.shape != (len(users), self.n_items_):
            raise KgrecError(
                f"history has shape {history.shape}, expected {(len(users), self.n_items_)}"
            )
        out = self._score(users, history).to(torch.float32)
        if not self.new_user_path:
            out = self._popularity_fallback(users, history, out)
        return out

    def _popularity_fallback(
        self, users: np.ndarray, history: sp.csr_matrix, out: torch.Tensor
    ) -> torch.Tensor:
        """Rows of users with neither a training row nor any history get the items' training
        popularity: the honest k = 0 answer of a model without side information."""
        empty = (history.getnnz(axis=1) == 0) & (self.train_.getnnz(axis=1)[users] == 0)
        if not empty.any():
            return out
        pop = torch.from_numpy(np.asarray(self.train_.sum(0), dtype=np.float32).ravel())
        out = out.clone()
        out[torch.from_numpy(np.flatnonzero(empty))] = pop
        return out

    def recommend(
        self,
        users: np.ndarray,
        k: int = 10,
        *,
        history: sp.csr_matrix | None = None,
        exclude_seen: bool = True,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` item indices and scores per user, the history items excluded by default."""
        from kgrec._topk import topk_masked

        users = np.asarray(users, dtype=np.int64)
        h = self.train_[users] if history is None else sp.csr_matrix(history)
        s = self.score(users, h)
        mask = None
        if exclude_seen:
            mask = torch.from_numpy(h.toarray() > 0)
        items, valid = topk_masked(s, k, mask=mask)
        vals = s.gather(1, items)
        return np.where(valid.numpy(), items.numpy(), -1), np.where(
            valid.numpy(), vals.numpy(), -np.inf
        )

    def user_vectors(self, users: np.ndarray | None = None) -> torch.Tensor | None:
        """Learned user vectors (rows for ``users``), or ``None`` for models without any."""
        return None

    def item_vectors(self) -> torch.Tensor | None:
        """Learned item vectors, or ``None`` for models without any."""
        return None

    # ---------------------------------------------------------------- persistence
    def _state(self) -> dict[str, np.ndarray]:
        """Learned arrays to save (subclasses extend)."""
        assert self.train_ is not None
        return {
            "train_indptr": self.train_.indptr.astype(np.int64),
            "train_indices": self.train_.indices.astype(np.int64),
        }

    def _set_state(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        n_users, n_items = _check_shape(meta, arrays)
        indices = arrays["train_indices"]
        self.train_ = sp.csr_matrix(
            (np.ones(len(indices), np.float32), indices, arrays["train_indptr"]),
            shape=(n_users, n_items),
        )
        self.n_users_, self.n_items_ = n_users, n_items

    def save(self, path: str | Path, *, overwrite: bool = True) -> Path:
        """Write ``path/model.json`` and ``path/arrays.npz`` atomically (no pickle)."""
        self._check_fitted()
        path = Path(path)
        meta = {
            "format": _FORMAT,
            "model": self.name,
            "class": type(self).__name__,
            "config": self.config.to_dict(),
            "n_users": self.n_users_,
            "n_items": self.n_items_,
            **self._extra_meta(),
        }
        with atomic_dir(path, overwrite=overwrite) as tmp:
            with (tmp / "arrays.npz").open("wb") as f:
                np.savez(f, **self._state())
            (tmp / "model.json").write_text(json.dumps(meta, indent=1))
        return path

    def _extra_meta(self) -> dict[str, Any]:
        return {}

    @classmethod
    def load(cls, path: str | Path) -> Recommender:
        """Load a model saved by :meth:`save` (dispatching on the saved short name)."""
        from kgrec.models import MODELS

        path = Path(path)
        meta_path = path / "model.json"
        if not meta_path.is_file():
            raise DataError("no model.json here: not a saved kgrec model", path=path)
        meta = json.loads(meta_path.read_text())
        if meta.get("format") != _FORMAT:
            raise DataError(f"unknown model format {meta.get('format')!r}", path=meta_path)
        name = meta.get("model")
        if name not in MODELS:
            raise DataError(f"unknown model {name!r}; known {sorted(MODELS)}", path=meta_path)
        klass = MODELS[name]
        if cls is not Recommender and not issubclass(klass, cls):
            raise DataError(f"saved model is a {klass.__name__}, not a {cls.__name__}", path=path)
        model = klass(klass.config_class.from_dict(meta["config"]))
        try:
            with np.load(path / "arrays.npz", allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
        except FileNotFoundError:
            raise DataError("arrays.npz missing next to model.json", path=path) from None
        except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
            raise DataError(
                f"arrays.npz is truncated or damaged ({type(exc).__name__}: {exc})", path=path
            ) from None
        model._set_state(arrays, meta)
        return model

    # ---------------------------------------------------------------- helpers
    def _check_fitted(self) -> None:
        if self.train_ is None:
            raise KgrecError(f"{type(self).__name__} is not fitted: call fit(train) first")

    def _start_fit(self, train: sp.spmatrix) -> sp.csr_matrix:
        # binarised unless the config asks for interaction weights (WeightedConfig)
        m = as_csr(train, binary=getattr(self.config, "weights", "none") == "none")
        if m.shape[0] == 0 or m.shape[1] == 0:
            raise DataError(f"empty training matrix of shape {m.shape}")
        self.train_ = m
        self.n_users_, self.n_items_ = m.shape
        return m


def history_tensor(history: sp.csr_matrix) -> torch.Tensor:
    """Dense float32 tensor of CSR history rows."""
    return torch.from_numpy(np.asarray(history.toarray(), dtype=np.float32))


def fold_in(
    item_vectors: torch.Tensor, history: sp.csr_matrix, *, normalize: bool = True
) -> torch.Tensor:
    """User vectors as the mean of their history items' vectors (zeros without history): how an
    embedding model scores users it has no learned vector for (cold users)."""
    h = history_tensor(history)
    out = h @ item_vectors
    if normalize:
        out = out / h.sum(1, keepdim=True).clamp(min=1.0)
    return out


def embedding_scores(
    user_vectors: np.ndarray,
    item_vectors: np.ndarray,
    train: sp.csr_matrix,
    users: np.ndarray,
    history: sp.csr_matrix,
) -> torch.Tensor:
    """Dot-product scores of ``users`` against every item; users without training rows get a
    vector folded in from ``history`` (:func:`fold_in`) instead of their untrained one."""
    items = torch.from_numpy(item_vectors)
    u = torch.from_numpy(user_vectors[users])
    known = train.getnnz(axis=1)[users] > 0
    if not known.all():
        cold = np.flatnonzero(~known)
        u = u.clone()
        u[torch.from_numpy(cold)] = fold_in(items, history[cold])
    return u @ items.T


class LearnedVectorsMixin:
    """Scoring and vector access for a recommender that learned ``user_vecs_`` and
    ``item_vecs_`` (numpy, float32) on ``train_``: dot products, cold users folded in."""

    user_vecs_: np.ndarray
    item_vecs_: np.ndarray
    train_: sp.csr_matrix

    def _score(self, users: np.ndarray, history: sp.csr_matrix) -> torch.Tensor:
        return embedding_scores(self.user_vecs_, self.item_vecs_, self.train_, users, history)

    def user_vectors(self, users: np.ndarray | None = None) -> torch.Tensor | None:
        self._check_fitted()
        v = torch.from_numpy(self.user_vecs_)
        return v if users is None else v[torch.as_tensor(users)]

    def item_vectors(self) -> torch.Tensor | None:
        self._check_fitted()
        return torch.from_numpy(self.item_vecs_)


@runtime_checkable
class ContextFactory(Protocol):
    """A recommender class built from an :class:`~kgrec.models.hybrid.InputSource` (side
    information assembled above the models: KG links, text vectors) instead of from settings
    alone: the hybrid and the content-only cold-start baselines. The runner and the CLI build
    such a class with ``klass.from_context(context, options=..., config=...)``."""

    @classmethod
    def from_context(cls, context: Any, /, **kwargs: Any) -> Recommender:
        """A model with its inputs from ``context`` (``None``: without side information)."""
        ...


#: largest user / item counts a saved model may claim (checked before anything is allocated)
MAX_ENTITIES = 1 << 31


def _check_shape(meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> tuple[int, int]:
    """``n_users``, ``n_items`` of ``model.json``, checked against the saved training matrix so
    that a crafted size is an error, never a huge allocation."""
    out = []
    for key in ("n_users", "n_items"):
        v = meta.get(key)
        if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= MAX_ENTITIES:
            raise DataError(f"model.json: {key} must be an integer in 1..{MAX_ENTITIES}, got {v!r}")
        out.append(v)
    n_users, n_items = out
    indptr, indices = arrays.get("train_indptr"), arrays.get("train_indices")
    if indptr is None or indices is None:
        raise DataError("arrays.npz lacks the training matrix (train_indptr, train_indices)")
    if indptr.ndim != 1 or len(indptr) != n_users + 1:
        raise DataError(
            f"model.json says {n_users} users but the training matrix has {len(indptr) - 1} rows"
        )
    if len(indices) and (int(indices.max()) >= n_items or int(indices.min()) < 0):
        raise DataError(f"training matrix names item columns outside 0..{n_items - 1}")
    return n_users, n_items
