"""A user's own words through the hybrid's text path, for the new-user (and known-user) scores.

The text of a user (a few words of interests, or the reviews they wrote) is embedded exactly as a
new item's text is (:meth:`HybridRecommender.embed_items`: the frozen encoder + ridge map, or the
fine-tuned text tower when the hybrid has one, whose encoder :meth:`text_encoder` names), so it
lands in the item space; its cosine with every item is blended into the user's scores
(``z(scores) + weight * z(text cosines)``) at a weight chosen on validation users. A weight of 0
(text does not help those users) leaves the scores exactly as they were.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from kgrec._numeric import normalize_rows
from kgrec.models._blend import zscore

log = logging.getLogger(__name__)

#: the weight serving uses for a new user's free text (``kgrec recommend --text``,
#: ``POST /users/{id}/events``): the one amazon-instruments' validation users chose for every
#: seed of ``bench/user_text.py`` (ids + their words); no other dataset here has user text
USER_TEXT_WEIGHT = 0.5

#: weights tried by :func:`fit_text_blend` (0 = scores without text)
TEXT_WEIGHTS = (0.0, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0)

ScoreFn = Callable[[np.ndarray, Any], torch.Tensor]
#: ``measure(score, task)``: the validation metric of ``score`` on ``task`` (the layer above
#: passes e.g. the mean NDCG@20 of :func:`kgrec.eval.evaluate`; models do not import eval)
Measure = Callable[[ScoreFn, Any], float]


def text_item_scores(model: Any, text_vectors: np.ndarray) -> torch.Tensor:
    """``(n_texts, n_items)`` cosine between each text's item-space vector (``model``'s
    :meth:`embed_items` of the text vectors, from ``model.text_encoder()`` when it has a tower)
    and the model's item vectors."""
    t = np.asarray(text_vectors, np.float32)
    if t.ndim != 2 or len(t) == 0:
        raise ValueError(f"text_vectors must be a non-empty (n, d) array, got shape {t.shape}")
    v = normalize_rows(np.asarray(model.embed_items(text=t), np.float32))
    items = normalize_rows(np.asarray(model.item_vectors().numpy(), np.float32))
    return torch.from_numpy(v @ items.T)


@dataclass(frozen=True)
class TextBlend:
    """``z(scores) + weight * z(text cosines)`` per user; ``curve``: validation metric per
    weight tried (how the weight was chosen)."""

    weight: float
    curve: dict[float, float] = field(default_factory=dict)

    def blend(self, scores: torch.Tensor, text: torch.Tensor | None) -> torch.Tensor:
        """Scores with the text term; rows without text (all-zero ``text``) keep their order."""
        if text is None or self.weight == 0:
            return scores
        return zscore(scores) + self.weight * zscore(text.to(scores.dtype))

    def score_fn(self, score: ScoreFn, text: torch.Tensor, row_of: dict[int, int]) -> ScoreFn:
        """``score`` with the text term of each user (``row_of``: user index -> row of
        ``text``; users without one get zeros, i.e. their plain scores)."""

        def fn(users: np.ndarray, history: Any) -> torch.Tensor:
            s = score(users, history)
            rows = torch.zeros((len(users), text.shape[1]), dtype=text.dtype)
            for j, u in enumerate(np.asarray(users).tolist()):
                r = row_of.get(int(u))
                if r is not None:
                    rows[j] = text[r]
            return self.blend(s, rows)

        return fn


def fit_text_blend(
    score: ScoreFn,
    parts: Sequence[tuple[Any, torch.Tensor, dict[int, int]]],
    measure: Measure,
    weights: Sequence[float] = TEXT_WEIGHTS,
) -> TextBlend:
    """The weight of ``weights`` with the best mean ``measure`` over validation ``parts``:
    ``(task, text cosines, user -> row)`` per :class:`~kgrec.eval.RankingTask` (e.g. one per
    number of known items); ties go to the smaller weight, so text must help to be used."""
    if not parts:
        raise ValueError("fit_text_blend needs at least one validation task")
    curve: dict[float, float] = {}
    for w in weights:
        vals = []
        for task, text, row_of in parts:
            fn = TextBlend(float(w)).score_fn(score, text, row_of)
            vals.append(float(measure(fn, task)))
        curve[float(w)] = float(np.mean(vals))
    best = max(curve, key=lambda w: (round(curve[w], 6), -w))
    log.info(
        "user text weight %.2f (validation %.4f; without text %.4f)",
        best,
        curve[best],
        curve.get(0.0, float("nan")),
    )
    return TextBlend(best, curve)
