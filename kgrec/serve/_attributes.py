"""Match a new item's attributes to existing KG entities through the graph spec.

An attribute name may be a catalog column of the spec (``class`` -> ``has_genre`` -> ``genre``,
with the spec's bucketing: ``release_year: 1995`` -> ``decade:1990s``), a relation of the graph
(``film.film.directed_by: m.0abc``), or an entity type (``genre: Comedy``). Values are matched
to the graph's vocabularies; a value the graph does not know is reported, never guessed. The result
is the ``(relation, "type:id")`` pairs the hybrid's :meth:`embed_items` also takes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from kgrec.errors import DataError

_SKIP_TYPES = ("user", "item")


@dataclass(frozen=True)
class _ColumnRule:
    relation: str
    node_type: str
    bucket: object | None
    delimiter: str | None
    missing: tuple[str, ...]


class AttributeMatcher:
    """Built once from a spec and its :class:`~kgrec.graph.KnowledgeGraph`."""

    def __init__(self, spec: object, kg: object) -> None:
        self._columns: dict[str, _ColumnRule] = {}
        for r in getattr(spec, "relations", ()):
            if r.on == "item":
                self._columns[r.column] = _ColumnRule(
                    r.relation, r.node_type, r.bucket, r.delimiter, tuple(r.missing)
                )
        self._relations: dict[str, str] = {}  # relation -> other node type
        for src, rel, dst in kg.forward_edge_types():  # type: ignore[attr-defined]
            if src == "item" and dst not in _SKIP_TYPES:
                self._relations.setdefault(rel, dst)
            elif dst == "item" and src not in _SKIP_TYPES:
                self._relations.setdefault(rel, src)
        self._types: dict[str, list[str]] = {}
        for rel, t in sorted(self._relations.items()):
            self._types.setdefault(t, []).append(rel)
        self._vocab = {
            t: {str(i) for i in kg.vocab(t).ids}  # type: ignore[attr-defined]
            for t in self._types
        }

    @property
    def accepted(self) -> list[str]:
        """Attribute names this graph understands."""
        return sorted(set(self._columns) | set(self._relations) | set(self._types))

    def _rule(self, name: str) -> tuple[str, str, _ColumnRule | None]:
        if name in self._columns:
            c = self._columns[name]
            return c.relation, c.node_type, c
        if name in self._relations:
            return name, self._relations[name], None
        if name in self._types:
            rels = self._types[name]
            return rels[0], name, None
        shown = self.accepted
        more = f" ... ({len(shown)} in all)" if len(shown) > 25 else ""
        raise DataError(f"unknown attribute {name!r}; accepted: {shown[:25]}{more}")

    def match(
        self, attributes: Mapping[str, Sequence[str]]
    ) -> tuple[list[tuple[str, str]], list[str]]:
        """``(relation, "type:id")`` pairs of the values the graph knows, and the unknown ones
        (``"name=value"``). An unknown attribute NAME is a :class:`DataError`."""
        pairs: list[tuple[str, str]] = []
        unmatched: list[str] = []
        for name, values in attributes.items():
            relation, node_type, rule = self._rule(name)
            vals = list(values)
            if rule is not None and rule.delimiter:
                vals = [p.strip() for v in vals for p in v.split(rule.delimiter) if p.strip()]
            for v in vals:
                key = v
                if rule is not None:
                    if v in rule.missing:
                        continue
                    if rule.bucket is not None:
                        key = self._bucket(v, rule)
                        if key is None:
                            unmatched.append(f"{name}={v}")
                            continue
                if node_type in self._vocab and key in self._vocab[node_type]:
                    pair = (relation, f"{node_type}:{key}")
                    if pair not in pairs:
                        pairs.append(pair)
                else:
                    unmatched.append(f"{name}={v}")
        return pairs, unmatched

    @staticmethod
    def _bucket(value: str, rule: _ColumnRule) -> str | None:
        from kgrec.graph import bucket_labels

        try:
            x = float(value)
        except ValueError:
            return None
        if not np.isfinite(x):
            return None
        return str(bucket_labels(np.array([x]), rule.bucket)[0])  # type: ignore[arg-type]
