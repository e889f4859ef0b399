"""Item and user text, composed from a dataset without leaking evaluation reviews.

An entity's text has two parts:

* the **catalog text**: the chosen catalog columns rendered in order and joined by ``". "``: free
  text (``text`` columns) as is, other columns as ``column: value`` (multi-valued ones joined by
  ``", "``); for items optionally ``tags: a, b, ...`` (user tags, most frequent first);
* the **reviews**: the review text of the entity's TRAINING interactions only (the rows where
  ``train_mask`` is true; validation/test reviews are never read), one chunk per review, each cut
  to ``max_review_chars`` characters (at a word boundary) and then to the encoder's
  ``max_length`` tokens.

:func:`embed_texts` encodes every distinct string once (catalog texts and review chunks in one
length-bucketed call, so a review shared by its item and its user is encoded once) and combines:
the review part is the L2-normalised **mean of the per-review vectors** (long review sets are
chunked by review and averaged, not truncated), and the entity vector is the L2-normalised sum of
its normalised catalog part and review part (equal weight). An entity with no text at all gets a
zero vector and ``has_text = False``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kgrec._atomic import atomic_path
from kgrec._numeric import normalize_rows
from kgrec.data import AttributeTable, Dataset
from kgrec.errors import DataError, KgrecError, SpecError
from kgrec.text._encoder import TextEncoder
from kgrec.text._render import item_delimiters, render_text

log = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class EntityTexts:
    """The text of one node type: per entity (``ids``) a catalog text (maybe ``""``) and a
    tuple of training-review chunks (maybe empty)."""

    node_type: str
    ids: np.ndarray
    texts: list[str]
    reviews: list[tuple[str, ...]]

    def __post_init__(self) -> None:
        if not (len(self.ids) == len(self.texts) == len(self.reviews)):
            raise ValueError(
                f"{len(self.ids)} ids, {len(self.texts)} texts, {len(self.reviews)} review sets"
            )

    def __len__(self) -> int:
        return len(self.ids)

    def strings(self) -> list[str]:
        """Every non-empty string to encode (catalog texts and review chunks), deduplicated."""
        seen: dict[str, None] = {}
        for t in self.texts:
            if t:
                seen.setdefault(t)
        for rs in self.reviews:
            for r in rs:
                seen.setdefault(r)
        return list(seen)

    @property
    def n_chunks(self) -> int:
        return sum(1 for t in self.texts if t) + sum(len(r) for r in self.reviews)


@dataclass(frozen=True, eq=False)
class EntityEmbeddings:
    """Vectors of one node type: row ``i`` belongs to ``ids[i]``; ``has_text[i]`` is false for
    entities without any text (their row is zeros)."""

    node_type: str
    ids: np.ndarray
    vectors: np.ndarray
    has_text: np.ndarray
    model_id: str = ""

    def __len__(self) -> int:
        return len(self.ids)

    def vector(self, id_: str) -> np.ndarray:
        hit = np.flatnonzero(self.ids == id_)
        if not len(hit):
            from kgrec.errors import UnknownIdError

            raise UnknownIdError(self.node_type, id_)
        return self.vectors[hit[0]]

    def save(self, path: str | Path) -> Path:
        """Write an ``.npz`` (no pickle) atomically."""
        path = Path(path)
        with atomic_path(path) as tmp, tmp.open("wb") as f:
            np.savez(
                f,
                node_type=np.array(self.node_type),
                ids=np.asarray(self.ids, dtype=str),
                vectors=np.asarray(self.vectors, np.float32),
                has_text=np.asarray(self.has_text, bool),
                model_id=np.array(self.model_id),
            )
        return path

    @classmethod
    def load(cls, path: str | Path) -> EntityEmbeddings:
        with np.load(path, allow_pickle=False) as z:
            return cls(
                node_type=str(z["node_type"]),
                ids=z["ids"].astype(object),
                vectors=z["vectors"],
                has_text=z["has_text"],
                model_id=str(z["model_id"]),
            )


def render_fields(
    table: AttributeTable,
    fields: Sequence[str],
    *,
    key: str = "text.item_fields",
    delimiters: Mapping[str, str] | None = None,
) -> pd.Series:
    """Catalog text per entity of ``table`` (index: id): ``fields`` rendered in order by
    :func:`kgrec.text.render_text` (the renderer new items use too).

    Free text as is, other columns as ``column: a, b`` (``delimiters``: column -> the spec's
    relation delimiter, so ``A|B`` renders as ``A, B``); empty values are skipped. An unknown
    field is a :class:`SpecError` naming ``key`` and the available columns.
    """
    bad = [f for f in fields if f not in table.attributes]
    if bad:
        raise SpecError(
            f"unknown column(s) {bad} for {table.node_type} text; "
            f"the {table.node_type} table has {list(table.attributes)}",
            key=key,
        )
    frame = table.frame
    text_cols = {f for f in fields if table.attributes[f] == "text"}
    cols = [frame[f].tolist() for f in fields]
    texts = [
        render_text(dict(zip(fields, row, strict=True)), fields, text_cols, delimiters)
        for row in zip(*cols, strict=True)
    ]
    return pd.Series(texts if cols else [""] * len(frame), index=frame["id"], dtype=object)


def _warn_textless(rendered: pd.Series, fields: Sequence[str]) -> None:
    empty = int((rendered == "").sum())
    if empty:
        log.warning(
            "%d of %d items have no text in %s (empty or missing values): they get a zero text "
            "vector",
            empty,
            len(rendered),
            list(fields),
        )


def training_mask(
    dataset: Dataset, *, split_column: str = "split", train_value: str = "train"
) -> np.ndarray:
    """Rows of ``dataset.interactions`` that belong to its given training split.

    Only for datasets that come with a split (amazon-instruments: train/val/test files); for the
    others the caller passes the mask of its own split.
    """
    f = dataset.interactions.frame
    if split_column not in f.columns:
        raise KgrecError(
            f"dataset {dataset.name!r} has no {split_column!r} column, so its training rows are "
            "unknown: pass train_mask (a boolean array over the interaction rows of your "
            "training split)"
        )
    return (f[split_column].astype(str) == train_value).to_numpy()


def _check_mask(dataset: Dataset, train_mask: Any) -> np.ndarray:
    n = len(dataset.interactions.frame)
    mask = np.asarray(train_mask)
    if mask.dtype != bool:
        raise TypeError(f"train_mask must be a boolean array, got dtype {mask.dtype}")
    if mask.shape != (n,):
        raise ValueError(
            f"train_mask has shape {mask.shape}; dataset {dataset.name!r} has {n} interactions"
        )
    return mask


def truncate(text: str, max_chars: int) -> str:
    """``text`` cut to at most ``max_chars`` characters, at a word boundary where one is near."""
    if len(text) <= max_chars:
        return text
    cut = text[:max_chars]
    space = cut.rfind(" ")
    return cut[:space].rstrip() if space >= max_chars // 2 else cut


def training_reviews(
    dataset: Dataset,
    train_mask: np.ndarray,
    *,
    by: str,
    max_review_chars: int = 2000,
) -> dict[str, tuple[str, ...]]:
    """Non-empty review chunks of the training rows, grouped by ``by`` (``"item"``/``"user"``),
    in row order. Rows outside ``train_mask`` are never read."""
    if by not in ("item", "user"):
        raise ValueError(f"by must be 'item' or 'user', not {by!r}")
    if max_review_chars < 1:
        raise ValueError(f"max_review_chars must be >= 1 (got {max_review_chars})")
    f = dataset.interactions.frame
    if "review" not in f.columns:
        raise DataError(f"dataset {dataset.name!r} has no review text (columns: {list(f.columns)})")
    mask = _check_mask(dataset, train_mask)
    rows = f.loc[mask, [by, "review"]]
    out: dict[str, list[str]] = {}
    for key, text in zip(rows[by].to_numpy(), rows["review"].to_numpy(), strict=True):
        text = str(text).strip()
        if text:
            out.setdefault(str(key), []).append(truncate(text, max_review_chars))
    return {k: tuple(v) for k, v in out.items()}


def _tag_texts(dataset: Dataset) -> pd.Series:
    if dataset.tags is None:
        raise SpecError(f"dataset {dataset.name!r} has no tags", key="text.item_tags")
    counts = dataset.tags.groupby(["item", "tag"], sort=False).size().reset_index(name="n")
    counts = counts.sort_values(["item", "n"], ascending=[True, False], kind="stable")
    tags = counts.groupby("item", sort=False)["tag"].agg(lambda s: ", ".join(s.astype(str)))
    return "tags: " + tags


def _field_texts(
    dataset: Dataset,
    table: AttributeTable | None,
    ids: np.ndarray,
    fields: Sequence[str],
    what: str,
    key: str,
    delimiters: Mapping[str, str] | None = None,
    *,
    warn_textless: bool = False,
) -> list[str]:
    """``fields`` of ``table`` rendered per id (``""`` where an id has no row); with
    ``warn_textless``, rows without text are logged (a zero text vector awaits them)."""
    if table is None:
        raise SpecError(
            f"dataset {dataset.name!r} has no {what} to take {list(fields)} from", key=key
        )
    rendered = render_fields(table, fields, key=key, delimiters=delimiters)
    if warn_textless:
        _warn_textless(rendered, fields)
    return rendered.reindex(ids).fillna("").astype(str).tolist()


def _join(a: list[str], b: list[str]) -> list[str]:
    return [x + ". " + y if x and y else x or y for x, y in zip(a, b, strict=True)]


def item_texts(
    dataset: Dataset,
    *,
    fields: Sequence[str] = (),
    tags: bool = False,
    reviews: bool = False,
    train_mask: np.ndarray | None = None,
    max_review_chars: int = 2000,
    delimiters: Mapping[str, str] | None = None,
) -> EntityTexts:
    """Text of every item of ``dataset`` (``dataset.item_ids()`` order).

    ``fields``: catalog columns; ``tags``: append user tags; ``reviews``: add the reviews of the
    rows in ``train_mask`` (required then: only training reviews may shape item vectors).
    """
    ids = np.asarray(dataset.item_ids(), dtype=object)
    texts = [""] * len(ids)
    if fields:
        texts = _field_texts(
            dataset,
            dataset.items,
            ids,
            fields,
            "item catalog",
            "text.item_fields",
            delimiters,
            warn_textless=True,
        )
    if tags:
        texts = _join(texts, _tag_texts(dataset).reindex(ids).fillna("").astype(str).tolist())
    chunks: list[tuple[str, ...]] = [()] * len(ids)
    if reviews:
        chunks = _review_chunks(dataset, ids, train_mask, "item", max_review_chars)
    return EntityTexts("item", ids, texts, chunks)


def user_texts(
    dataset: Dataset,
    *,
    fields: Sequence[str] = (),
    reviews: bool = True,
    train_mask: np.ndarray | None = None,
    max_review_chars: int = 2000,
) -> EntityTexts:
    """Text of every user (``dataset.user_ids()`` order): their training reviews (rows of
    ``train_mask``, required when ``reviews``), optionally after user-table ``fields``."""
    ids = np.asarray(dataset.user_ids(), dtype=object)
    texts = [""] * len(ids)
    if fields:
        texts = _field_texts(dataset, dataset.users, ids, fields, "user table", "text.user_fields")
    chunks: list[tuple[str, ...]] = [()] * len(ids)
    if reviews:
        chunks = _review_chunks(dataset, ids, train_mask, "user", max_review_chars)
    return EntityTexts("user", ids, texts, chunks)


def _review_chunks(
    dataset: Dataset, ids: np.ndarray, train_mask: np.ndarray | None, by: str, max_chars: int
) -> list[tuple[str, ...]]:
    """The training reviews of each of ``ids`` (``by``: ``"item"`` or ``"user"``)."""
    if train_mask is None:
        raise ValueError(
            "reviews=True needs train_mask (the interaction rows of the training split): "
            f"review text of validation/test rows must not shape {by} vectors"
        )
    got = training_reviews(dataset, train_mask, by=by, max_review_chars=max_chars)
    return [got.get(str(i), ()) for i in ids]


def combine(
    texts: EntityTexts, lookup: dict[str, int], vectors: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Entity vectors from string vectors (``lookup``: string -> row of ``vectors``):
    normalised(normalised catalog vector + normalised mean of review vectors)."""
    n, dim = len(texts), vectors.shape[1]
    cat = np.zeros((n, dim), np.float32)
    rev = np.zeros((n, dim), np.float32)
    for i, t in enumerate(texts.texts):
        if t:
            cat[i] = vectors[lookup[t]]
    for i, rs in enumerate(texts.reviews):
        if rs:
            rev[i] = vectors[[lookup[r] for r in rs]].mean(0)
    out = normalize_rows(normalize_rows(cat) + normalize_rows(rev)).astype(np.float32)
    has = np.array([bool(t) or bool(r) for t, r in zip(texts.texts, texts.reviews, strict=True)])
    return out, has


def embed_texts(texts: EntityTexts, encoder: TextEncoder) -> EntityEmbeddings:
    """Encode every distinct string of ``texts`` in one call and combine per entity."""
    return embed_many([texts], encoder)[0]


def embed_many(parts: Sequence[EntityTexts], encoder: TextEncoder) -> list[EntityEmbeddings]:
    """Like :func:`embed_texts` for several node types, encoding the union of their distinct
    strings in ONE call (a review shared by an item and a user is encoded once, and all texts are
    length-bucketed together)."""
    union: dict[str, None] = {}
    for p in parts:
        union.update(dict.fromkeys(p.strings()))
    strings = list(union)
    vectors = (
        np.asarray(encoder.encode(strings), np.float32)
        if strings
        else np.zeros((0, encoder.dim), np.float32)
    )
    lookup = {s: i for i, s in enumerate(strings)}
    out = []
    for p in parts:
        vecs, has = combine(p, lookup, vectors)
        out.append(EntityEmbeddings(p.node_type, p.ids, vecs, has, model_id=encoder.model_id))
    return out


def texts_from_spec(
    spec: Any, dataset: Dataset | None = None, *, train_mask: np.ndarray | None = None
) -> dict[str, EntityTexts]:
    """Item (and, with ``text.user_reviews``, user) texts as a graph spec's ``[text]`` says.

    ``train_mask`` defaults to the dataset's given training split (``split == "train"``); a
    dataset without one needs an explicit mask when the spec asks for reviews.
    """
    ds = dataset if dataset is not None else spec.load_dataset()
    t = spec.text
    needs_reviews = bool(t.item_reviews or t.user_reviews)
    if needs_reviews and train_mask is None:
        try:
            train_mask = training_mask(ds)
        except KgrecError as exc:
            key = "text.item_reviews" if t.item_reviews else "text.user_reviews"
            raise SpecError(str(exc), key=key, spec=getattr(spec, "path", None)) from None
    try:
        out = {
            "item": item_texts(
                ds,
                fields=list(t.item_fields),
                tags=bool(t.item_tags),
                reviews=bool(t.item_reviews),
                train_mask=train_mask,
                max_review_chars=int(t.max_review_chars),
                delimiters=item_delimiters(spec),
            )
        }
        if t.user_reviews:
            out["user"] = user_texts(
                ds,
                reviews=True,
                train_mask=train_mask,
                max_review_chars=int(t.max_review_chars),
            )
    except SpecError as exc:
        raise SpecError(exc.message, key=exc.key, spec=getattr(spec, "path", None)) from None
    return out
