"""Recommendations for users with live events (``Retriever.add_events``, ``POST
/users/{id}/events``; stored and journaled by the retriever) and for one-off new users.

A user here is a profile (``attributes``: e.g. ``{"age_band": "25-34", "gender": "F"}``, and
optional free ``text``) plus the item ids they interacted with (``items``, in arrival order).
Recommendations for them come from the model's new-user path when it has one
(:meth:`HybridAdapter.score_user`: profile prior blended with the user's items, the weight moving
to the items as they accumulate), otherwise from the mean vector of their items.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kgrec.errors import DataError
from kgrec.serve._protocol import MAX_HISTORY, MAX_TEXT_CHARS

log = logging.getLogger(__name__)


@dataclass
class LiveUser:
    """What is known about one user beyond the model's training data."""

    items: list[str] = field(default_factory=list)
    attributes: dict[str, list[str]] = field(default_factory=dict)
    text: str | None = None


def _attrs(obj: Mapping[str, Any] | None) -> dict[str, list[str]]:
    if obj is None:
        return {}
    if not isinstance(obj, Mapping):
        raise DataError("'attributes' must be an object of name -> value(s)")
    out = {}
    for k, v in obj.items():
        vals = v if isinstance(v, list | tuple) else [v]
        if not all(isinstance(x, str | int | float) and not isinstance(x, bool) for x in vals):
            raise DataError(f"attribute {k!r} values must be strings or numbers")
        out[str(k)] = [str(x).strip() for x in vals if str(x).strip()]
    return out


def live_user(
    events: Sequence[Any],
    *,
    history: Sequence[str] = (),
    attributes: Mapping[str, Any] | None = None,
    text: str | None = None,
) -> LiveUser:
    """A user's state from their event records (oldest first, with ``items``, ``attributes``,
    ``text`` as :class:`~kgrec.serve._journal.EventRecord`), then the ``history`` /
    ``attributes`` / ``text`` of a query: items in order without repeats, per attribute the
    latest values, the latest non-empty text."""
    out = LiveUser()
    for e in [*events, LiveUser(list(history), _attrs(attributes), text)]:
        out.items.extend(i for i in dict.fromkeys(getattr(e, "items", ())) if i not in out.items)
        out.attributes.update(_attrs(getattr(e, "attributes", None)))
        t = getattr(e, "text", None)
        if t and str(t).strip():
            if len(t) > MAX_TEXT_CHARS:
                raise DataError(f"text is longer than {MAX_TEXT_CHARS} characters")
            out.text = str(t)
    if len(out.items) > MAX_HISTORY:
        raise DataError(f"a user may hold at most {MAX_HISTORY} items")
    return out


def recommend_live(
    retriever: Any, user: str | None, k: int, exclude_known: bool, live: LiveUser
) -> Any:
    """Top-``k`` items for a user with live events or a profile (see the module docstring);
    ``user=None`` with ``live``: a one-off new user (nothing recorded)."""
    import numpy as np

    from kgrec.serve._results import Hit, RecommendResult

    assert live is not None
    user = "" if user is None else user
    model = retriever.model
    items, _ = retriever._require()
    known_model = list(model.known_items(user))
    known = list(dict.fromkeys(known_model + live.items))
    if hasattr(model, "score_user"):
        scores = np.asarray(
            model.score_user(user, live.items, attributes=live.attributes, text=live.text),
            np.float64,
        )
        ids = list(model.item_ids)
        if exclude_known and known:
            rows = [r for r in (model.item_row(i) for i in known) if r is not None]
            scores[rows] = -np.inf
        k_eff = min(k, int(np.isfinite(scores).sum()))
        top = np.argpartition(-scores, k_eff - 1)[:k_eff] if k_eff else np.zeros(0, int)
        top = top[np.argsort(-scores[top], kind="stable")]
        hits = [Hit(ids[j], float(scores[j]), retriever.title(ids[j])) for j in top]
        return RecommendResult(user or None, hits, len(known) if exclude_known else 0)
    # a model without a new-user path: the mean vector of the user's items (+ text)
    parts = []
    if user in retriever._urow:
        parts.append(model.user_vectors()[retriever._urow[user]])
    if live.items:
        v = np.stack([retriever._item_vector(i) for i in live.items]).mean(0)
        parts.append(v / max(float(np.linalg.norm(v)), 1e-12))
    if live.text and live.text.strip():
        parts.append(model.embed_user((), live.text))
    if not parts:
        raise DataError(
            f"user {user!r} has no events or text yet, and this model has no profile prior"
        )
    vec = np.sum(parts, axis=0)
    exclude = [known] if exclude_known and known else None
    res = items.search(vec, k, exclude=exclude)
    return RecommendResult(
        user or None, retriever._hits(res, items=True), len(known) if exclude else 0
    )


class ProfileMatcher:
    """A new user's profile ``attributes`` matched to the values the model's profile prior knows
    (``entities``: ``"type:value"`` strings, e.g. ``"age_band:25-34"``). A name is an entity type
    (``age_band``), a user-side relation of the spec (``in_age_band``) or its column (``age``,
    bucketed as the spec buckets it: ``age=30`` -> ``age_band:25-34``). An unknown name or value
    is a :class:`~kgrec.errors.DataError` naming it and the accepted ones: never ignored, which
    would silently answer with a different user's prior."""

    def __init__(self, entities: Sequence[str], spec: Any = None) -> None:
        self._values: dict[str, set[str]] = {}
        for e in entities:
            t, _, v = str(e).partition(":")
            self._values.setdefault(t, set()).add(v)
        self._names: dict[str, tuple[str, Any]] = {t: (t, None) for t in self._values}
        for r in getattr(spec, "relations", ()):
            if r.on == "user" and r.node_type in self._values:
                self._names.setdefault(r.relation, (r.node_type, None))
                self._names.setdefault(r.column, (r.node_type, r))

    @property
    def accepted(self) -> list[str]:
        return sorted(self._names)

    def match(
        self, attributes: Mapping[str, Any] | None, *, strict: bool = True
    ) -> dict[str, list[str]]:
        """``{entity type: [values]}`` of ``attributes``; unknown names or values raise (with
        ``strict=False``: are logged and left out, for records journaled before this check)."""
        out: dict[str, list[str]] = {}
        for name, values in _attrs(attributes).items():
            if name not in self._names:
                problem = DataError(
                    f"unknown profile attribute {name!r}; this model's profile knows "
                    f"{self.accepted}"
                )
                if strict:
                    raise problem
                log.warning("%s: left out", problem)
                continue
            node_type, rule = self._names[name]
            vals = list(values)
            if rule is not None and rule.delimiter:
                vals = [p.strip() for v in vals for p in v.split(rule.delimiter) if p.strip()]
            for v in vals:
                key = v
                if rule is not None and v in rule.missing:
                    continue
                if (
                    rule is not None
                    and rule.bucket is not None
                    and v not in self._values[node_type]
                ):
                    key = _bucket(v, rule.bucket)
                if key not in self._values[node_type]:
                    known = sorted(self._values[node_type])
                    more = f" ... ({len(known)} in all)" if len(known) > 25 else ""
                    problem = DataError(
                        f"profile attribute {name}={v!r}: not a value the model knows; "
                        f"{node_type} is one of {known[:25]}{more}"
                    )
                    if strict:
                        raise problem
                    log.warning("%s: left out", problem)
                    continue
                if key not in out.setdefault(node_type, []):
                    out[node_type].append(key)
        return out


def _bucket(value: str, bucket: Any) -> str | None:
    import numpy as np

    from kgrec.graph import bucket_labels

    try:
        x = float(value)
    except ValueError:
        return None
    if not np.isfinite(x):
        return None
    return str(bucket_labels(np.array([x]), bucket)[0])
