"""What the serving layer needs from a model, as a typed protocol, and the typed new-item row.

Any model that can (1) give vectors of its known items and users in one cosine space and (2) embed
a NEW item from its text and attributes, and a new user from item ids and/or free text, into that
same space can serve cold-start retrieval: the content model (:class:`ContentAdapter`, no training)
and the trained hybrid (:class:`HybridAdapter`) both implement :class:`ColdStartModel`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from kgrec.errors import DataError

#: largest k any retrieval call accepts (the HTTP API enforces the same bound)
MAX_K = 1000
#: longest free text / title / description accepted, in characters
MAX_TEXT_CHARS = 10_000
#: most history items a new user may name
MAX_HISTORY = 1000


@dataclass(frozen=True)
class NewItem:
    """A cold item as given by a catalog row: ``title`` (required), optional ``description``,
    and ``attributes`` (column, relation or entity-type name -> one value or a list of values)
    that are matched to existing KG entities through the graph spec. ``id`` is optional: the
    retriever names the item ``new-N`` when absent."""

    title: str
    description: str = ""
    attributes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    id: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.title, str) or not self.title.strip():
            raise DataError("a new item needs a non-empty 'title'")
        for name, text in (("title", self.title), ("description", self.description)):
            if not isinstance(text, str):
                raise DataError(f"new item {name!r} must be a string, got {type(text).__name__}")
            if len(text) > MAX_TEXT_CHARS:
                raise DataError(f"new item {name!r} is longer than {MAX_TEXT_CHARS} characters")
        if self.id is not None and (not isinstance(self.id, str) or not self.id.strip()):
            raise DataError(f"new item 'id' must be a non-empty string, got {self.id!r}")
        if not isinstance(self.attributes, Mapping):
            raise DataError("new item 'attributes' must be a mapping of name -> value(s)")
        attrs: dict[str, tuple[str, ...]] = {}
        for k, v in self.attributes.items():
            values = v if isinstance(v, list | tuple) else [v]
            if not all(
                isinstance(x, str | int | float) and not isinstance(x, bool) for x in values
            ):
                raise DataError(f"attribute {k!r} values must be strings or numbers")
            attrs[str(k)] = tuple(str(x).strip() for x in values if str(x).strip())
        object.__setattr__(self, "attributes", attrs)

    @property
    def text(self) -> str:
        """Title and description, as free text."""
        return ". ".join(p.strip() for p in (self.title, self.description) if p.strip())

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"title": self.title}
        if self.description:
            out["description"] = self.description
        if self.attributes:
            out["attributes"] = {k: list(v) for k, v in self.attributes.items()}
        if self.id is not None:
            out["id"] = self.id
        return out

    @classmethod
    def from_dict(cls, row: Mapping[str, Any], *, where: str = "item") -> NewItem:
        """Validate a JSON-like row; unknown keys are refused with the accepted ones listed."""
        if not isinstance(row, Mapping):
            raise DataError(f"{where}: expected an object, got {type(row).__name__}")
        known = {"id", "title", "description", "attributes"}
        unknown = sorted(set(row) - known)
        if unknown:
            raise DataError(f"{where}: unknown key(s) {unknown}; accepted: {sorted(known)}")
        attrs_in = row.get("attributes") or {}
        if not isinstance(attrs_in, Mapping):
            raise DataError(f"{where}: 'attributes' must be an object of name -> value(s)")
        attrs: dict[str, tuple[str, ...]] = {}
        for k, v in attrs_in.items():
            values = v if isinstance(v, list | tuple) else [v]
            if not all(
                isinstance(x, str | int | float) and not isinstance(x, bool) for x in values
            ):
                raise DataError(f"{where}: attribute {k!r} values must be strings or numbers")
            attrs[str(k)] = tuple(str(x).strip() for x in values if str(x).strip())
        rid = row.get("id")
        return cls(
            title=row.get("title", ""),
            description=row.get("description") or "",
            attributes=attrs,
            id=None if rid is None else str(rid),
        )


def read_item_file(path: str | Path) -> list[NewItem]:
    """New items from a ``.json`` file (one object or a list) or a ``.csv`` file (columns
    ``title``, optional ``id``, ``description``; every other non-empty column is an attribute,
    multiple values separated by ``|``). The CSV is read by the same validated reader as the
    catalogs (:func:`kgrec.data.read_delimited`: a ragged row, a duplicate header column or an
    undecodable byte is an error naming the line; a UTF-8 byte-order mark is skipped); a file
    without an item, or a CSV without a ``title`` column, is an error too."""
    path = Path(path)
    if path.suffix.lower() == ".csv":
        from kgrec.data import read_delimited

        raw = read_delimited(path)
        raw.require(["title"], what="new items")
        out = []
        for r, rec in enumerate(raw.frame.to_dict("records")):
            attrs = {
                k: [x.strip() for x in (v or "").split("|") if x.strip()]
                for k, v in rec.items()
                if k not in ("id", "title", "description") and (v or "").strip()
            }
            row = {k: rec[k] for k in ("id", "title", "description") if rec.get(k)}
            try:
                out.append(NewItem.from_dict({**row, "attributes": attrs}))
            except DataError as exc:
                raise DataError(exc.message, path=path, line=int(raw.lines[r])) from None
        if not out:
            raise DataError("no new item in the file (a header row only)", path=path)
        return out
    try:
        data = json.loads(path.read_bytes().decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise DataError(
            f"byte 0x{exc.object[exc.start]:02x} at offset {exc.start} is not valid UTF-8 "
            "(JSON is UTF-8)",
            path=path,
        ) from None
    except json.JSONDecodeError as exc:
        raise DataError(
            f"invalid JSON: {exc.msg} (column {exc.colno})", path=path, line=exc.lineno
        ) from None
    rows = data if isinstance(data, list) else [data]
    if not rows:
        raise DataError("no new item in the file (an empty list)", path=path)
    items = []
    for i, row in enumerate(rows, start=1):
        try:
            items.append(NewItem.from_dict(row, where=f"item {i} of {len(rows)}"))
        except DataError as exc:
            raise DataError(exc.message, path=path) from None
    return items


@dataclass(frozen=True)
class EmbeddedItems:
    """Vectors of new items (rows, in input order) and, per item, which attribute values were
    matched to existing KG entities (``"relation -> type:id"``) and which were not."""

    vectors: np.ndarray
    matched: list[list[str]]
    unmatched: list[list[str]]
    #: vectors in the model's item-similarity space (``similar_vectors()``), where it has one
    similar: np.ndarray | None = None


@runtime_checkable
class ColdStartModel(Protocol):
    """A model that serves cold-start retrieval (see the module docstring).

    Vectors are compared by cosine: ``item_vectors()[i]`` belongs to ``item_ids[i]``,
    ``user_vectors()[u]`` to ``user_ids[u]``. ``fingerprint`` names the model (saved indexes
    built from other vectors are refused).
    """

    @property
    def name(self) -> str: ...

    @property
    def fingerprint(self) -> str: ...

    @property
    def item_ids(self) -> Sequence[str]: ...

    @property
    def user_ids(self) -> Sequence[str]: ...

    def item_vectors(self) -> np.ndarray: ...

    def user_vectors(self) -> np.ndarray: ...

    def item_row(self, item_id: str) -> int | None:
        """Row of a known item in :meth:`item_vectors` (``None`` when unknown)."""
        ...

    def known_items(self, user_id: str) -> Sequence[str]:
        """Items the user already knows (masked from their recommendations)."""
        ...

    def title(self, item_id: str) -> str | None: ...

    def embed_items(self, rows: Sequence[NewItem]) -> EmbeddedItems: ...

    def embed_user(self, history: Sequence[str] = (), text: str | None = None) -> np.ndarray:
        """Vector of a new user from known item ids and/or free text."""
        ...


class CatalogIdsMixin:
    """The id side of a :class:`ColdStartModel`: fingerprint, item/user ids, row lookup and
    titles, read from ``_fingerprint``, ``_item_ids``, ``_user_ids``, ``_row``, ``_titles``."""

    _fingerprint: str
    _item_ids: list[str]
    _user_ids: list[str]
    _row: dict[str, int]
    _titles: Mapping[str, str]

    @property
    def fingerprint(self) -> str:
        return self._fingerprint

    @property
    def item_ids(self) -> list[str]:
        return self._item_ids

    @property
    def user_ids(self) -> list[str]:
        return self._user_ids

    def item_row(self, item_id: str) -> int | None:
        """Row of a known item in ``item_vectors()`` (``None`` when unknown)."""
        return self._row.get(str(item_id))

    def title(self, item_id: str) -> str | None:
        return self._titles.get(str(item_id))


class VectorTableMixin(CatalogIdsMixin):
    """:class:`CatalogIdsMixin` plus the vectors and known items of a model held as tables:
    ``_items`` and ``_users`` (one row per id), ``_urow`` (user id -> row) and
    :meth:`_known_rows`, the item rows a user row has interacted with."""

    _items: np.ndarray
    _users: np.ndarray
    _urow: dict[str, int]

    def _known_rows(self, user_row: int) -> Sequence[int]:
        raise NotImplementedError

    def item_vectors(self) -> np.ndarray:
        return self._items

    def user_vectors(self) -> np.ndarray:
        return self._users

    def known_items(self, user_id: str) -> list[str]:
        r = self._urow.get(str(user_id))
        if r is None:
            return []
        return [self._item_ids[j] for j in self._known_rows(r)]
