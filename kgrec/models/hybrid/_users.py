"""The hybrid's new-user path: :class:`NewUserMixin` fits a
:class:`~kgrec.models.hybrid._new_user_model.NewUserModel` after training (profile prior,
friends, history weighting; the model is described there) and scores users without a training
row with it; :func:`user_profile` reads the profile links and friendships from a built graph.

With ``HybridConfig.new_user_dropout > 0`` a second network of the same configuration is trained
with that share of user IDs dropped (:mod:`kgrec.models.hybrid._user_dropout`: users scored from
the fold-in of a few of their items, as new users are) and only its item vectors are kept, for
the new users' fold-in: the warm model and its figures are untouched, and the new-user path
chooses on validation users how to mix the two fold-ins with EASE.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from kgrec.errors import KgrecError

# re-exported: the hybrid's config names it here
from kgrec.models.hybrid._new_user_model import NewUserConfig as NewUserConfig
from kgrec.models.hybrid._new_user_model import NewUserModel
from kgrec.models.hybrid._new_user_tasks import ValidTask
from kgrec.models.hybrid._new_user_tasks import dense as _dense

log = logging.getLogger(__name__)


def user_profile(kg: Any, users: Any, *, min_degree: int = 1) -> tuple[Any, sp.csr_matrix | None]:
    """Profile links (:class:`~kgrec.models.hybrid.SideLinks` of user -> attribute value, or
    ``None``) and the user x user friendship matrix (symmetric, or ``None``) of ``users`` from a
    built :class:`~kgrec.graph.KnowledgeGraph`."""
    from kgrec.graph._side import entity_links, friendships

    return entity_links(kg, "user", users, min_degree=min_degree), friendships(kg, users)


class NewUserMixin:
    """The new-user path of a recommender with ``item_vecs_`` (and optionally EASE weights
    ``ease_`` / ``blend_w_``) and :class:`HybridInputs`: fitted after training, used by
    ``_score`` for users without a training row, and by :meth:`score_new_users`."""

    #: this model scores users without history from side information (no popularity fallback)
    new_user_path = True
    new_users_: NewUserModel | None = None
    profile_entities_: np.ndarray | None = None
    #: item vectors of the second network trained with user-ID dropout (None: not trained)
    nu_item_vecs_: np.ndarray | None = None
    #: its training summary (epochs, best validation figure)
    nu_train_: dict[str, Any] | None = None

    def _fit_new_user_network(self, train: sp.csr_matrix, validate: Any | None) -> None:
        """Train the second network for new users (``config.new_user_dropout`` > 0): the same
        configuration and training options, user-ID dropout at that rate, no EASE blend, no
        new-user path of its own and no text tower (only its item vectors are used, for new
        users' fold-in; the tower embeds cold items after training and is the warm model's);
        early-stopped on ``validate`` like the warm model."""
        self.nu_item_vecs_, self.nu_train_ = None, None
        rate = float(getattr(self.config, "new_user_dropout", 0.0))
        if rate <= 0:
            return
        cfg = replace(
            self.config,
            user_id_dropout=rate,
            new_user_dropout=0.0,
            new_users=False,
            cf_blend="none",
            text_finetune="none",
        )
        twin = type(self)(cfg, options=self.options, inputs=getattr(self, "inputs", None))
        twin.shared_fits = getattr(self, "shared_fits", None)
        twin.fit(train, validate=validate)
        self.nu_item_vecs_ = np.asarray(twin.item_vecs_, np.float32)
        res = twin.result_
        self.nu_train_ = {"user_id_dropout": rate, **({} if res is None else res.to_dict())}
        log.info("new-user network (user-ID dropout %.2f): %s", rate, self.nu_train_)

    def _profile(self) -> tuple[sp.csr_matrix | None, sp.csr_matrix | None]:
        inp = getattr(self, "inputs", None)
        if inp is None:  # a loaded model: the matrices it was saved with
            return getattr(self, "saved_profile_", (None, None))
        f = None
        if inp.user_profile is not None:
            f = sp.csr_matrix(sum(inp.user_profile.matrices), dtype=np.float32)
            f.data[:] = 1.0
        return f, inp.user_social

    def behaviour_scores(self, history: sp.csr_matrix) -> torch.Tensor | tuple[torch.Tensor, ...]:
        """Scores of new users from their known items alone: the fold-in (mean of the history
        items' vectors) of the new-user network's item vectors when there is one, the fold-in of
        the model's item vectors, and the EASE scores when the model has EASE weights (the
        new-user path chooses their mix on validation users)."""
        from kgrec.models._base import fold_in

        parts = []
        for vecs in (getattr(self, "nu_item_vecs_", None), self.item_vecs_):
            if vecs is not None:
                items = torch.from_numpy(vecs)
                parts.append(fold_in(items, history) @ items.T)
        ease = getattr(self, "ease_", None)
        if ease is not None:
            parts.append(_dense(history) @ torch.from_numpy(ease))
        return parts[0] if len(parts) == 1 else tuple(parts)

    def _fit_new_users(
        self,
        train: sp.csr_matrix,
        config: NewUserConfig,
        seed: int,
        valid: Sequence[ValidTask] | None = None,
    ) -> None:
        f, social = self._profile()
        inp = getattr(self, "inputs", None)
        self.profile_entities_ = (
            None
            if inp is None or inp.user_profile is None
            else np.asarray(inp.user_profile.entities, dtype=str)
        )
        try:
            self.new_users_ = NewUserModel(config, seed=seed).fit(
                train,
                f,
                social,
                behaviour=self.behaviour_scores,
                valid=valid,
                item_vectors=getattr(self, "item_vecs_", None),
            )
        except KgrecError as exc:  # too little data: popularity for users without history
            log.warning("no new-user path: %s", exc)
            self.new_users_ = None

    def fit_new_users(
        self, valid: Sequence[ValidTask] | None = None, config: NewUserConfig | None = None
    ) -> None:
        """Refit the new-user path of the fitted model, its choices made on ``valid`` (held-out
        users who are not in the training matrix, e.g. a cold-user split's validation users;
        default: validation users carved from the training users)."""
        self._check_fitted()
        c = self.config
        cfg = config or NewUserConfig(
            attributes=c.new_user_attributes,
            weighting=c.new_user_weighting,
            encoder=c.new_user_encoder,
        )
        self._fit_new_users(self.train_, cfg, self.options.seed, valid)

    def _score_new_users(
        self, users: np.ndarray, history: sp.csr_matrix, out: torch.Tensor
    ) -> torch.Tensor:
        """``out`` with the rows of users without a training row replaced by the new-user path."""
        nu = self.new_users_
        if nu is None:
            return self._popularity_fallback(users, history, out)
        cold = np.flatnonzero(self.train_.getnnz(axis=1)[users] == 0)
        if not len(cold):
            return out
        f, social = self._profile()
        u = users[cold]
        s = nu.score(
            history[cold],
            None if f is None else f[u],
            None if social is None else social[u],
            behaviour=self.behaviour_scores,
            item_vectors=self.item_vecs_,
        )
        out = out.clone()
        out[torch.from_numpy(cold)] = s.to(out.dtype)
        return out

    def new_user_state(self) -> dict[str, np.ndarray]:
        """Arrays that save the new-user path (prior, profile and friendship matrices)."""
        if self.new_users_ is None:
            return {}
        out = self.new_users_.state()
        if self.nu_item_vecs_ is not None:
            out["nu.item_vecs"] = self.nu_item_vecs_
        if self.profile_entities_ is not None:
            out["nu.entities"] = self.profile_entities_
        for name, m in zip(("profile", "social"), self._profile(), strict=True):
            if m is not None:
                m = sp.csr_matrix(m)
                out[f"nu.{name}_indptr"] = m.indptr.astype(np.int64)
                out[f"nu.{name}_indices"] = m.indices.astype(np.int64)
                out[f"nu.{name}_shape"] = np.array(m.shape, np.int64)
        return out

    def set_new_user_state(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        """Restore what :meth:`new_user_state` saved (``meta``: the model's ``new_users``)."""
        self.new_users_ = NewUserModel.from_state(arrays, meta, self.train_)
        self.nu_item_vecs_ = arrays.get("nu.item_vecs")
        ents = arrays.get("nu.entities")
        self.profile_entities_ = None if ents is None else ents.astype(str)
        mats = []
        for name in ("profile", "social"):
            if f"nu.{name}_indptr" not in arrays:
                mats.append(None)
                continue
            ind = arrays[f"nu.{name}_indices"]
            shape = tuple(int(x) for x in arrays[f"nu.{name}_shape"])
            mats.append(
                sp.csr_matrix(
                    (np.ones(len(ind), np.float32), ind, arrays[f"nu.{name}_indptr"]), shape=shape
                )
            )
        self.saved_profile_ = (mats[0], mats[1])

    def profile_rows(self, attributes: list[dict[str, Any]]) -> sp.csr_matrix | None:
        """Profile one-hot rows of new users from ``{"age_band": "25-34", ...}`` mappings (keys:
        the attribute's entity type; unknown values are ignored and logged)."""
        ents = self.profile_entities_
        if ents is None:
            return None
        col = {str(e): j for j, e in enumerate(ents)}
        rows, cols = [], []
        for i, attrs in enumerate(attributes):
            for key, vals in (attrs or {}).items():
                for v in vals if isinstance(vals, list | tuple) else [vals]:
                    j = col.get(f"{key}:{v}")
                    if j is None:
                        log.info("unknown profile value %s:%s ignored", key, v)
                        continue
                    rows.append(i)
                    cols.append(j)
        return sp.csr_matrix(
            (np.ones(len(rows), np.float32), (rows, cols)), shape=(len(attributes), len(ents))
        )

    def score_new_users(
        self,
        history: sp.csr_matrix,
        *,
        attributes: list[dict[str, Any]] | None = None,
        friends: sp.csr_matrix | None = None,
    ) -> torch.Tensor:
        """Scores of users who are not in the training matrix: known items ``history``
        (CSR rows over the items), profile ``attributes`` (one mapping per row, e.g.
        ``{"age_band": "25-34", "gender": "F"}``) and ``friends`` (CSR rows over the training
        users). Without a fitted new-user path: the behaviour scores (popularity when empty)."""
        history = sp.csr_matrix(history, dtype=np.float32)
        nu = self.new_users_
        if nu is None:
            raise KgrecError("this model has no new-user path (fit with new_users=True)")
        f = None if attributes is None else self.profile_rows(attributes)
        return nu.score(
            history, f, friends, behaviour=self.behaviour_scores, item_vectors=self.item_vecs_
        )
