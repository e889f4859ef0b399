"""The new-user path: a user without a training row scored from what is known at sign-up
(profile attributes, friends) and the ``k`` items they have interacted with since.

Model::

    prior(u)  = pop + (a_u - mean a) W          (ridge from the profile one-hots a_u -- age band,
                                                 gender, occupation, ... -- to the training rows:
                                                 attribute-conditioned popularity)
    social(u) = mean_{f in friends(u)} r_f / |r_f|     (the friends' training rows, if any)
    p(u)      = (1 - w_s) z(prior(u)) + w_s z(social(u))        (w_s = 0 without friends)
    s(u)      = (1 - w_k) z(p(u)) + w_k z(b(h_u)),  w_k = k / (k + kappa)

``b(h)`` is the host model's score from the known items ``h`` alone, a mix of up to three
parts (for the hybrid: ``z(m_1 z(g(h)) + m_2 z(f(h)) + m_3 z(EASE))``, ``f(h)`` the fold-in of its
item vectors, ``g(h)`` the fold-in of the item vectors of a second network trained with user IDs
dropped for new users only, where ``HybridConfig.new_user_dropout`` asks for one; or, in place of
the first part, the trained
user encoder of :mod:`kgrec.models.hybrid._user_encoder`: profile + known items, no user ID,
trained DropoutNet-style on the training users; ``encoder="auto"`` uses it where validation
users say so), ``z`` standardises each row,
``k = |h|``. So ``k = 0`` falls back to the informed prior, and the weight moves to behaviour as
``k`` grows. The ridge strength, ``w_s``, ``kappa`` and the mix ``m`` (weights on a 1/4 grid
summing to 1) are chosen on validation users (NDCG@20; ``kappa`` and ``m`` on the mean over the
``k >= 1`` tasks): held-out users given to
:meth:`NewUserModel.fit` (e.g. a cold-user split's validation users), else a seeded share of the
training users treated as new (items in a seeded order, the first ``k`` revealed, the rest the
targets; the prior is fitted without their rows, but the host model was trained on them, so
behaviour looks better on them than on truly new users). Test users are never seen.
Ablations: ``attributes=False`` (prior = popularity; the encoder without the profile),
``social=False``, ``weighting=False`` (``w_k = 1/2`` for every ``k >= 1``: no history weighting),
``encoder="off"`` (the fold-in only: nothing trained for new users).

Everything here is handed matrices; this module reads no files, builds no graph, runs no encoder.
The validation users' tasks and their metric are in :mod:`kgrec.models.hybrid._new_user_tasks`;
the hybrid's wiring of this model (:class:`NewUserMixin`) is in :mod:`kgrec.models.hybrid._users`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from kgrec.errors import DataError, KgrecError
from kgrec.models._base import ModelConfig
from kgrec.models._blend import zscore as _zscore
from kgrec.models.hybrid._new_user_tasks import ValidTask, carve_validation, ndcg20
from kgrec.models.hybrid._new_user_tasks import dense as _dense
from kgrec.models.hybrid._user_encoder import UserEncoder, UserEncoderConfig

log = logging.getLogger(__name__)

#: scores of new users from their known items only: CSR history rows -> (n, n_items) tensor,
#: or a tuple of up to three such tensors whose mix is chosen on validation with kappa
BehaviourFn = Callable[[sp.csr_matrix], torch.Tensor | tuple[torch.Tensor, ...]]

RIDGE_GRID = (1.0, 10.0, 100.0, 1000.0)
SOCIAL_GRID = (0.0, 0.25, 0.5, 0.75, 1.0)
KAPPA_GRID = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0)
#: share of the first of two behaviour scores (the hybrid: fold-in, then EASE); with three
#: parts every triple of these shares that sums to 1
MIX_GRID = (0.0, 0.25, 0.5, 0.75, 1.0)
ENCODER_MODES = ("auto", "on", "off")


def _parts(b: torch.Tensor | tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
    return b if isinstance(b, tuple) else (b,)


def mix_grid(n: int) -> list[tuple[float, ...]]:
    """The mixes tried for ``n`` behaviour parts: shares from :data:`MIX_GRID` summing to 1."""
    if n == 1:
        return [(1.0,)]
    if n == 2:
        return [(m, 1.0 - m) for m in MIX_GRID]
    if n == 3:
        return [(a, b, 1.0 - a - b) for a in MIX_GRID for b in MIX_GRID if a + b <= 1.0]
    raise KgrecError(f"the new-user path mixes at most 3 behaviour scores, not {n}")


def _as_mix(m: float | Sequence[float] | None) -> tuple[float, ...]:
    """A saved mix: a list of shares, or (older models) the first part's share of two."""
    if m is None:
        return (1.0,)
    if isinstance(m, int | float):
        return (float(m), 1.0 - float(m))
    return tuple(float(x) for x in m)


@dataclass(frozen=True)
class NewUserConfig(ModelConfig):
    """New-user path settings (see the module docstring). ``valid_share``: training users kept
    as validation users; ``valid_ks``: the ``k`` of their tasks (kappa is chosen on the mean
    NDCG@20 over the ``k >= 1`` ones, the prior on ``k = 0``). ``encoder``: the trained user
    encoder as the first behaviour score instead of the fold-in: ``auto`` (train it, use it if the
    validation users' mean NDCG@20 over ``k >= 1`` is higher), ``on``, ``off``."""

    attributes: bool = True
    social: bool = True
    weighting: bool = True
    encoder: str = "auto"
    valid_share: float = 0.1
    valid_ks: tuple[int, ...] = (0, 1, 3, 5, 10, 20)
    min_items: int = 11

    def validate(self) -> None:
        self._require("valid_share", 0 < self.valid_share < 0.5, "valid_share in (0, 0.5)")
        self._require("valid_ks", 0 in self.valid_ks, "valid_ks must include 0")
        self._require("valid_ks", min(self.valid_ks) >= 0, "valid_ks must be >= 0")
        self._require("min_items", self.min_items >= 2, "min_items must be >= 2")
        self._require("encoder", self.encoder in ENCODER_MODES, "encoder: auto, on or off")

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out["valid_ks"] = list(self.valid_ks)
        return out

    @classmethod
    def from_dict(cls, obj: dict[str, Any]) -> NewUserConfig:
        obj = dict(obj)
        if "valid_ks" in obj:
            obj["valid_ks"] = tuple(int(k) for k in obj["valid_ks"])
        return super().from_dict(obj)


def _mix_name(m: tuple[float, ...]) -> str:
    """``0.75`` for the first part's share of two (as before three parts), else ``a/b/c``."""
    return str(m[0]) if len(m) <= 2 else "/".join(str(x) for x in m)


def _row_normalise(m: sp.spmatrix) -> sp.csr_matrix:
    m = sp.csr_matrix(m, dtype=np.float64)
    s = np.asarray(m.sum(1)).ravel()
    inv = np.divide(1.0, s, out=np.zeros_like(s), where=s > 0)
    return sp.csr_matrix(sp.diags(inv) @ m)


class NewUserModel:
    """Scores for users without a training row (see the module docstring).

    ``fit(train, features, social, behaviour)``: ``train`` the binary ``n_users x n_items``
    training matrix; ``features`` ``n_users x n_features`` profile one-hots (or ``None``);
    ``social`` ``n_users x n_users`` friendship links (or ``None``); ``behaviour`` the host
    model's score from history rows alone (``None``: the prior at every ``k``)."""

    def __init__(
        self,
        config: NewUserConfig | None = None,
        *,
        seed: int = 0,
        encoder_config: UserEncoderConfig | None = None,
    ) -> None:
        self.config = config or NewUserConfig()
        self.encoder_config = encoder_config or UserEncoderConfig()
        self.seed = int(seed)
        self.pop_: np.ndarray | None = None
        self.mean_f_: np.ndarray | None = None
        self.w_: np.ndarray | None = None
        self.train_: sp.csr_matrix | None = None
        self.ridge_ = 0.0
        self.social_w_ = 0.0
        self.kappa_ = float("inf")
        self.mix_: tuple[float, ...] = (1.0,)
        self.encoder_: UserEncoder | None = None
        self.use_encoder_ = False
        self.choice_: dict[str, Any] = {}

    # ------------------------------------------------------------------ prior
    def _fit_prior(self, train: sp.csr_matrix, features: sp.csr_matrix | None, lam: float) -> None:
        rows = np.flatnonzero(train.getnnz(axis=1) > 0)
        y = train[rows]
        self.pop_ = np.asarray(y.mean(0)).ravel().astype(np.float64)
        self.w_ = None
        self.mean_f_ = None
        if features is None or not self.config.attributes or features.shape[1] == 0:
            return
        x = np.asarray(features[rows].toarray(), np.float64)
        self.mean_f_ = x.mean(0)
        xc = x - self.mean_f_
        g = xc.T @ xc + lam * np.eye(x.shape[1])
        self.w_ = np.linalg.solve(g, np.asarray((y.T @ xc).T))  # (n_features, n_items)

    def prior(self, features: sp.csr_matrix | None, n: int) -> torch.Tensor:
        """Attribute-conditioned popularity of ``n`` users (popularity without features)."""
        assert self.pop_ is not None
        out = np.tile(self.pop_, (n, 1))
        if self.w_ is not None and features is not None:
            out = out + (np.asarray(features.toarray(), np.float64) - self.mean_f_) @ self.w_
        return torch.from_numpy(out.astype(np.float32))

    def social_rows(self, social: sp.csr_matrix | None) -> torch.Tensor | None:
        """Mean of the friends' row-normalised training rows (``None``: no friends given)."""
        if social is None or not self.config.social or self.train_ is None:
            return None
        if social.shape[1] != self.train_.shape[0]:
            raise DataError(
                f"social rows have {social.shape[1]} columns, not {self.train_.shape[0]}"
            )
        return _dense(_row_normalise(social) @ _row_normalise(self.train_))

    def _p(
        self,
        features: sp.csr_matrix | None,
        social: sp.csr_matrix | None,
        n: int,
        w_s: float | None = None,
    ) -> torch.Tensor:
        p = _zscore(self.prior(features, n))
        w_s = self.social_w_ if w_s is None else w_s
        s = self.social_rows(social) if w_s > 0 else None
        if s is None:
            return p
        has = s.sum(1, keepdim=True) > 0
        return torch.where(has, (1 - w_s) * p + w_s * _zscore(s), p)

    # ------------------------------------------------------------------ fit
    def carve_validation(self, train: sp.csr_matrix) -> tuple[sp.csr_matrix, list[ValidTask]]:
        """:func:`~kgrec.models.hybrid._new_user_tasks.carve_validation` with this model's
        settings and seed."""
        return carve_validation(train, self.config, self.seed)

    def fit(
        self,
        train: sp.csr_matrix,
        features: sp.csr_matrix | None = None,
        social: sp.csr_matrix | None = None,
        behaviour: BehaviourFn | None = None,
        *,
        valid: Sequence[ValidTask] | None = None,
        item_vectors: np.ndarray | None = None,
    ) -> NewUserModel:
        """Fit the prior and choose ridge strength, friends' weight and kappa on ``valid``
        (tasks of held-out users who are not in ``train``; default: :meth:`carve_validation`);
        with ``item_vectors`` (the host model's), train the user encoder and choose on ``valid``
        whether it replaces the fold-in."""
        c = self.config
        train = sp.csr_matrix(train, dtype=np.float32)
        train.data[:] = 1.0
        n_users = train.shape[0]
        if features is not None:
            features = sp.csr_matrix(features, dtype=np.float32)
            if features.shape[0] != n_users:
                raise DataError(f"user features have {features.shape[0]} rows, not {n_users}")
        if social is not None:
            social = sp.csr_matrix(social, dtype=np.float32)
            if social.shape != (n_users, n_users):
                raise DataError(f"social links have shape {social.shape}, not {(n_users,) * 2}")
        if valid is None:
            fit_train, tasks = self.carve_validation(train)
            source = f"carved: {c.valid_share:.0%} of the training users"
        else:
            fit_train, tasks = train, list(valid)
            source = "given held-out validation users"
        by_k = {t.k: t for t in tasks if len(t.users)}
        if 0 not in by_k:
            raise KgrecError("the new-user validation tasks need k = 0 (the prior)")
        self.train_ = fit_train  # validation: friends' rows without the validation users

        def inputs(t: ValidTask) -> tuple[Any, Any]:
            return (
                None if features is None else features[t.users],
                None if social is None else social[t.users],
            )

        def mean_ndcg(scores: torch.Tensor, t: ValidTask) -> float:
            shown = _dense(t.shown)
            return float(ndcg20(scores, _dense(t.targets), shown > 0).mean())

        # 1. prior: ridge strength (and the friends' weight) on k = 0
        t0 = by_k[0]
        f0, s0 = inputs(t0)
        curve_r: dict[float, float] = {}
        lams = RIDGE_GRID if (features is not None and c.attributes) else (0.0,)
        for lam in lams:
            self._fit_prior(fit_train, features, max(lam, 1e-6))
            curve_r[lam] = mean_ndcg(self.prior(f0, len(t0.users)), t0)
        self.ridge_ = max(curve_r, key=lambda x: (curve_r[x], x))
        self._fit_prior(fit_train, features, max(self.ridge_, 1e-6))
        curve_s: dict[float, float] = {}
        self.social_w_ = 0.0
        if social is not None and c.social:
            for w in SOCIAL_GRID:
                curve_s[w] = mean_ndcg(self._p(f0, s0, len(t0.users), w), t0)
            self.social_w_ = max(curve_s, key=lambda x: (curve_s[x], -x))
        # 2. the user encoder (trained on fit_train's users, early-stopped on the tasks)
        kpos = sorted(k for k in by_k if k >= 1)
        self.encoder_, self.use_encoder_ = None, False
        enc_f = features if c.attributes else None
        if c.encoder != "off" and item_vectors is not None and behaviour is not None and kpos:
            try:
                self.encoder_ = UserEncoder(self.encoder_config, seed=self.seed).fit(
                    fit_train, enc_f, item_vectors, list(by_k.values())
                )
            except KgrecError as exc:
                log.warning("no user encoder: %s", exc)
        # 3. kappa (and the behaviour mix, the encoder) on the k >= 1 tasks (mean NDCG@20)
        curve_k: dict[tuple[tuple[float, ...], float, bool], float] = {}
        self.kappa_ = float("nan")
        if behaviour is not None and kpos:
            ps = {k: self._p(*inputs(by_k[k]), len(by_k[k].users)) for k in kpos}
            parts = {k: _parts(behaviour(by_k[k].shown)) for k in kpos}
            variants = [False] if c.encoder != "on" or self.encoder_ is None else []
            if self.encoder_ is not None:
                variants.append(True)
            for enc in variants:
                vparts = parts
                if enc:
                    assert self.encoder_ is not None and item_vectors is not None
                    vparts = {
                        k: (
                            self.encoder_.score(
                                by_k[k].shown,
                                None if enc_f is None else enc_f[by_k[k].users],
                                item_vectors,
                            ),
                            *parts[k][1:],
                        )
                        for k in kpos
                    }
                mixes = mix_grid(len(vparts[kpos[0]]))
                grid = KAPPA_GRID if c.weighting else (None,)
                for mix in mixes:
                    zb = {k: self._mix(vparts[k], mix) for k in kpos}
                    for kap in grid:
                        vals = []
                        for k in kpos:
                            w = 0.5 if kap is None else k / (k + kap)
                            vals.append(mean_ndcg((1 - w) * ps[k] + w * zb[k], by_k[k]))
                        curve_k[(mix, -1.0 if kap is None else kap, enc)] = float(np.mean(vals))
            # ties: no encoder, the smaller kappa, the larger share of the first part
            best = max(curve_k, key=lambda x: (curve_k[x], not x[2], -x[1], x[0]))
            self.mix_ = best[0]
            self.kappa_ = float("nan") if best[1] == -1.0 else best[1]
            self.use_encoder_ = best[2]
        self.behaviour_ = behaviour is not None
        # 4. refit the prior on every training user
        self._fit_prior(train, features, max(self.ridge_, 1e-6))
        self.train_ = train
        self.choice_ = {
            "validation": source,
            "valid_users": {int(k): len(t.users) for k, t in by_k.items()},
            "ridge": self.ridge_,
            "ridge_curve": curve_r,
            "social_w": self.social_w_,
            "social_curve": curve_s,
            "kappa": self.kappa_,
            "mix": list(self.mix_),
            "kappa_curve": {
                f"mix={_mix_name(m)},kappa={k}" + (",encoder" if e else ""): v
                for (m, k, e), v in curve_k.items()
            },
            "encoder": self.use_encoder_,
            "encoder_curve": None if self.encoder_ is None else self.encoder_.curve_,
        }
        log.info("new-user path: %s", self.choice_)
        return self

    def weight(self, k: np.ndarray) -> np.ndarray:
        """Weight of behaviour for users with ``k`` known items."""
        k = np.asarray(k, np.float64)
        if not getattr(self, "behaviour_", False):
            return np.zeros_like(k)
        if not self.config.weighting or np.isnan(self.kappa_):
            return np.where(k > 0, 0.5, 0.0)
        return k / (k + self.kappa_)

    # ------------------------------------------------------------------ scoring
    def score(
        self,
        history: sp.csr_matrix,
        features: sp.csr_matrix | None = None,
        social: sp.csr_matrix | None = None,
        behaviour: BehaviourFn | None = None,
        *,
        item_vectors: np.ndarray | None = None,
    ) -> torch.Tensor:
        """Scores ``(n, n_items)`` of new users from their known items, profile features and
        friendship rows (over the training users); ``item_vectors``: the host model's, needed
        when the user encoder is in use."""
        if self.pop_ is None:
            raise KgrecError("the new-user path is not fitted")
        history = sp.csr_matrix(history, dtype=np.float32)
        n = history.shape[0]
        p = self._p(features, social, n)
        k = history.getnnz(axis=1)
        w = torch.from_numpy(self.weight(k).astype(np.float32))[:, None]
        if behaviour is None or not (w > 0).any():
            return p
        parts = _parts(behaviour(history))
        if self.use_encoder_ and self.encoder_ is not None:
            if item_vectors is None:
                raise KgrecError("the new-user path's user encoder needs the item vectors")
            enc_f = features if self.config.attributes else None
            parts = (self.encoder_.score(history, enc_f, item_vectors), *parts[1:])
        b = self._mix(parts, self.mix_)
        return (1 - w) * p + w * b

    @staticmethod
    def _mix(parts: tuple[torch.Tensor, ...], mix: tuple[float, ...]) -> torch.Tensor:
        if len(parts) == 1:
            return _zscore(parts[0])
        if len(mix) > len(parts):
            raise KgrecError(f"the new-user mix has {len(mix)} shares for {len(parts)} scores")
        mix = (*mix, *(0.0,) * (len(parts) - len(mix)))  # parts without a share: none
        return _zscore(sum(m * _zscore(p) for m, p in zip(mix, parts, strict=True)))

    # ------------------------------------------------------------------ persistence
    def state(self) -> dict[str, np.ndarray]:
        assert self.pop_ is not None
        out = {"nu.pop": self.pop_}
        if self.w_ is not None:
            out["nu.w"] = self.w_
            out["nu.mean_f"] = self.mean_f_
        if self.use_encoder_ and self.encoder_ is not None:
            out.update(self.encoder_.state("nu.enc."))
        return out

    def meta(self) -> dict[str, Any]:
        return {
            "config": self.config.to_dict(),
            "seed": self.seed,
            "ridge": self.ridge_,
            "social_w": self.social_w_,
            "kappa": None if not np.isfinite(self.kappa_) else self.kappa_,
            "mix": list(self.mix_),
            "behaviour": bool(getattr(self, "behaviour_", False)),
            "encoder": self.encoder_.meta()
            if (self.use_encoder_ and self.encoder_ is not None)
            else None,
        }

    @classmethod
    def from_state(
        cls, arrays: dict[str, np.ndarray], meta: dict[str, Any], train: sp.csr_matrix
    ) -> NewUserModel:
        m = cls(NewUserConfig.from_dict(meta["config"]), seed=int(meta.get("seed", 0)))
        m.pop_ = arrays["nu.pop"]
        m.w_ = arrays.get("nu.w")
        m.mean_f_ = arrays.get("nu.mean_f")
        m.train_ = train
        m.ridge_ = float(meta.get("ridge", 0.0))
        m.social_w_ = float(meta.get("social_w", 0.0))
        kap = meta.get("kappa")
        m.kappa_ = float("nan") if kap is None else float(kap)
        m.behaviour_ = bool(meta.get("behaviour", False))
        m.mix_ = _as_mix(meta.get("mix"))
        if meta.get("encoder"):
            m.encoder_ = UserEncoder.from_state(arrays, meta["encoder"], "nu.enc.")
            m.use_encoder_ = True
        return m
