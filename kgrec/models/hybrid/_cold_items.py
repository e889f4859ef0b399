"""The hybrid's side of the ridge cold map (``cold_map="ridge"``): :class:`ColdItemsMixin` fits
:class:`~kgrec.models.hybrid._cold_map.RidgeColdMap` on the trained warm item vectors, gives
items without training interactions the mapped vector at a length chosen on validation, embeds
new items the same way, and saves what it fitted. The map itself (arrays in, arrays out) is in
:mod:`kgrec.models.hybrid._cold_map`; this is the wiring to the model's inputs and state."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp

from kgrec.errors import KgrecError
from kgrec.models._base import Validator
from kgrec.models.hybrid import _cold_map as cold_map
from kgrec.train import Choice

log = logging.getLogger(__name__)

#: one new item's KG links: ``(relation, "entity_type:entity_id")`` pairs
NewLinks = Sequence[Sequence[tuple[str, str]]]


def new_item_count(text: np.ndarray | None, links: NewLinks | None) -> int:
    """How many new items ``text`` / ``links`` describe; an error when none."""
    n = len(text) if text is not None else (len(links) if links is not None else 0)
    if n == 0:
        raise KgrecError("embed_items needs text vectors or KG links for at least one item")
    return n


def record_choice(
    model: Any, name: str, curve: dict[float, float], chosen: float, rule: str
) -> None:
    """A choice made on validation, in the model's fit log (when it keeps one)."""
    if getattr(model, "fit_log_", None) is not None:
        model.fit_log_.choices.append(Choice.from_curve(name, curve, chosen, rule))


class ColdItemsMixin:
    """Ridge cold-map state of an embedding model with :class:`HybridInputs` (``inputs``) and
    item vectors ``item_vecs_``: ``cold_w_`` (the map), ``cold_scale_`` (length of mapped
    vectors), ``idf_`` (entity IDF of the bags), ``cold_knn_x_`` / ``cold_knn_items_`` (the
    warm items' features and ids for the kNN blend)."""

    cold_w_: np.ndarray | None = None
    cold_scale_: float = 1.0
    idf_: np.ndarray | None = None
    cold_knn_x_: sp.csr_matrix | None = None
    cold_knn_items_: np.ndarray | None = None

    def _content_features(self, text: np.ndarray | None, bags: np.ndarray | None) -> np.ndarray:
        return cold_map.content_features(
            text if self.config.text else None, bags if self.config.kg else None
        )

    def _cold_features(self) -> np.ndarray:
        """The cold map's input per item: normalised text and the IDF entity bag (sets ``idf_``)."""
        from kgrec.models.hybrid._coldstart import link_features

        inp = self.inputs
        bags = None
        self.idf_ = None
        if inp.item_links is not None and self.config.kg:
            self.idf_ = cold_map.link_idf(inp.item_links.matrices)
            bags = link_features(inp)
        return self._content_features(inp.item_text, bags)

    def fit_cold_map(self, train: sp.csr_matrix, validate: Validator | None = None) -> None:
        """Ridge from content features to the trained vectors of warm items
        (:class:`~kgrec.models.hybrid._cold_map.RidgeColdMap`); items without training
        interactions get the mapped vector, scaled by :attr:`cold_scale_` (chosen on
        ``validate`` when given, see :meth:`_choose_cold_scale`). Public so that a model
        trained with ``cold_map="content"`` can be measured with the ridge map too."""
        x = self._cold_features()
        warm = np.asarray(train.sum(0)).ravel() > 0
        c = self.config
        cmap = cold_map.RidgeColdMap(c.cold_ridge, c.cold_calibrate, self.options.seed)
        cmap.fit(x[warm], self.item_vecs_[warm])
        if cmap.alpha is not None and getattr(self, "fit_log_", None) is not None:
            self.fit_log_.settings["cold_calibration_alpha"] = round(cmap.alpha, 4)
        self.cold_w_ = cmap.w
        cold = np.flatnonzero(~warm)
        self.cold_scale_ = 1.0
        self.cold_knn_x_ = self.cold_knn_items_ = None
        if c.cold_knn > 0:  # warm items' features and ids, for new items too
            self.cold_knn_items_ = np.flatnonzero(warm)
            self.cold_knn_x_ = sp.csr_matrix(cold_map.unit_rows(x[warm, :-1]), dtype=np.float32)
        if len(cold):
            v = self._knn_blend(x[cold], cmap.map(x[cold]))
            self.item_vecs_ = self.item_vecs_.copy()
            self.item_vecs_[cold] = v
            if validate is not None:
                self._choose_cold_scale(cold, v, validate)
        log.info("cold map fitted on %d warm items; %d items mapped", int(warm.sum()), len(cold))

    def _choose_cold_scale(self, cold: np.ndarray, v: np.ndarray, validate: Validator) -> None:
        """The length of content-only item vectors against learned ones, chosen on validation
        from 0.25, 0.5, 0.75, 1 (ties: the larger; never 0, which would leave a new item without
        a direction to retrieve by). Scores are dot products, so the length is a prior:
        in a warm split the items without a training interaction are the rarest ones and rarely
        relevant (a short vector keeps them out of top lists), while a new item of average appeal
        should compete at full length. Directions, hence cosine neighbours and the ranking among
        content-only items, do not change."""

        def at(g: float) -> float:
            self.item_vecs_[cold] = g * v
            return float(validate(self))

        self.cold_scale_, curve = cold_map.choose_scale(at)
        self.item_vecs_[cold] = self.cold_scale_ * v
        self.cold_scale_curve_ = curve
        record_choice(self, "cold_scale", curve, self.cold_scale_, "highest; ties: the larger")
        log.info("cold scale %.2f (validation %s)", self.cold_scale_, curve)

    def _embed_ridge(self, text: np.ndarray | None, links: NewLinks | None) -> np.ndarray:
        n = new_item_count(text, links)
        bags = self._new_bags(n, links)
        if text is None and self.config.text and self.module_ is not None:
            d = self.module_.fusion.proj.in_features if self.module_.fusion.proj else 0
            text = np.zeros((n, d)) if d else None
        x = self._content_features(text, bags)
        v = self._knn_blend(x, cold_map.unit_rows(x @ self.cold_w_))
        return (v * self.cold_scale_).astype(np.float32)

    def _knn_blend(self, x: np.ndarray, v: np.ndarray) -> np.ndarray:
        """``v`` (unit ridge vectors of items with features ``x``) blended with the kNN
        regression over the warm items (``cold_knn`` of it; ``v`` itself when off)."""
        known = self.cold_knn_x_
        if known is None or self.config.cold_knn <= 0:
            return np.asarray(v, np.float32)
        knn = cold_map.knn_vectors(
            x[:, :-1], known, self.item_vecs_[self.cold_knn_items_], k=self.config.cold_knn_k
        )
        return cold_map.blend_unit(v, knn, self.config.cold_knn)

    def _new_bags(self, n: int, links: NewLinks | None) -> np.ndarray | None:
        """IDF-weighted, L2-normalised entity bags of new items (as the cold map's features)."""
        if self.idf_ is None or self.item_links_ is None:
            return None
        return cold_map.entity_bags(self.idf_, self.item_links_.entities, links or [()] * n)

    # ------------------------------------------------------------------ persistence
    def cold_map_state(self) -> dict[str, np.ndarray]:
        """Arrays that save the fitted map (none without one)."""
        if self.cold_w_ is None:
            return {}
        out = {"cold_w": self.cold_w_, "cold_scale": np.array(self.cold_scale_, np.float64)}
        if self.idf_ is not None:
            out["idf"] = self.idf_
        if self.cold_knn_x_ is not None:
            kx = self.cold_knn_x_
            out["cold_knn.data"], out["cold_knn.indices"] = kx.data, kx.indices
            out["cold_knn.indptr"] = kx.indptr
            out["cold_knn.shape"] = np.asarray(kx.shape, np.int64)
            out["cold_knn.items"] = self.cold_knn_items_
        return out

    def set_cold_map_state(self, arrays: dict[str, np.ndarray]) -> None:
        """The map saved by :meth:`cold_map_state` (cleared when the arrays have none)."""
        self.cold_w_ = arrays.get("cold_w")
        self.cold_scale_ = float(arrays["cold_scale"]) if "cold_scale" in arrays else 1.0
        self.idf_ = arrays.get("idf")
        self.cold_knn_x_ = self.cold_knn_items_ = None
        if "cold_knn.items" in arrays:
            self.cold_knn_x_ = sp.csr_matrix(
                (arrays["cold_knn.data"], arrays["cold_knn.indices"], arrays["cold_knn.indptr"]),
                shape=tuple(int(n) for n in arrays["cold_knn.shape"]),
            )
            self.cold_knn_items_ = np.asarray(arrays["cold_knn.items"], np.int64)
