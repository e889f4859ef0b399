"""``Retriever``: cold-start retrieval over two :class:`~kgrec.index.VectorIndex` (items, users)
built from a :class:`~kgrec.serve.ColdStartModel`'s vectors.

* ``neighbors(item_id | NewItem, k)``: the k most similar items and the users most likely to want
  the item (user vectors searched with the item vector);
* ``recommend(user=... | history=... | text=..., k)``: top-k items, known items masked
  (``exclude=``);
* ``add_item(NewItem)``: embed a cold item and add it to the item index: retrievable at once;
* ``add_events(user, items)``: interactions of a known or new user, applied to their next
  recommendations (their items are masked and pull the query towards them);
* ``save(dir)`` / ``Retriever.load(dir, model)``: both indexes, the added items and metadata,
  written atomically; loading refuses indexes built for another model (fingerprint);
* ``attach_journal(Journal)``: replays a :class:`~kgrec.serve._journal.Journal` (added items and
  user events) and makes every later addition durable before it is acknowledged; automatic ids
  come from the journal's counter, so none is handed out twice, across restarts.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from kgrec.errors import DataError, UnknownIdError
from kgrec.index import IndexConfig, VectorIndex
from kgrec.serve._journal import EventRecord, ItemRecord, Journal
from kgrec.serve._protocol import MAX_HISTORY, MAX_TEXT_CHARS, ColdStartModel, NewItem
from kgrec.serve._results import (
    AddedItem,
    DuplicateIdError,
    Hit,
    NeighborsResult,
    QueryPlan,
    RecommendResult,
    Search,
    check_k,
    runs_plan,
)
from kgrec.serve._retriever_io import load_retriever, save_retriever

log = logging.getLogger(__name__)


class Retriever:
    """Items and users of a :class:`ColdStartModel` in two indexes (see the module docstring)."""

    def __init__(self, model: ColdStartModel, *, config: IndexConfig | None = None) -> None:
        self.model = model
        self.config = config or IndexConfig(metric="cosine")
        self._lock = threading.RLock()
        self.items_: VectorIndex | None = None
        self.users_: VectorIndex | None = None
        #: similar items, where the model has a separate similarity space (``similar_vectors``:
        #: the hybrid's is the content model's); users always come from ``users_``
        self.similar_: VectorIndex | None = None
        self._added: dict[str, tuple[NewItem, np.ndarray]] = {}
        self._added_sim: dict[str, np.ndarray] = {}
        self._next = 1
        self._urow = {str(u): r for r, u in enumerate(model.user_ids)}
        self._events: dict[str, list[EventRecord]] = {}
        self.journal: Journal | None = None

    # ------------------------------------------------------------------ build / persist
    def build(self) -> Retriever:
        """Index the model's item and user vectors; return ``self``."""
        m = self.model
        fp = m.fingerprint
        self.items_ = VectorIndex(self.config).build(
            m.item_vectors(), list(m.item_ids), fingerprint=fp, node_type="item"
        )
        self.users_ = VectorIndex(self.config).build(
            m.user_vectors(), list(m.user_ids), fingerprint=fp, node_type="user"
        )
        sim = getattr(m, "similar_vectors", None)
        if sim is not None:
            self.similar_ = VectorIndex(self.config).build(
                sim(), list(m.item_ids), fingerprint=fp, node_type="item"
            )
        return self

    def save(self, path: str | Path, *, overwrite: bool = False) -> Path:
        """Write ``items/``, ``users/`` (indexes), ``added.json`` + ``added.npy`` (live-added
        items) and ``retriever.json`` atomically."""
        return save_retriever(self, path, overwrite=overwrite)

    @classmethod
    def load(
        cls, path: str | Path, model: ColdStartModel, *, device: str | None = None
    ) -> Retriever:
        """Load a saved retriever for ``model``; refuse one built from another model."""
        return load_retriever(cls, path, model, device=device)

    def _require(self) -> tuple[VectorIndex, VectorIndex]:
        if self.items_ is None or self.users_ is None:
            raise DataError("the retriever has no indexes: call build() or Retriever.load()")
        return self.items_, self.users_

    # ------------------------------------------------------------------ lookups
    def title(self, item_id: str) -> str | None:
        added = self._added.get(item_id)
        return added[0].title if added else self.model.title(item_id)

    def is_added(self, item_id: str) -> bool:
        """Whether ``item_id`` was added live (not one of the model's items)."""
        return item_id in self._added

    def has_item(self, item_id: str) -> bool:
        return item_id in self._require()[0]

    def _item_vector(self, item_id: str) -> np.ndarray:
        if item_id in self._added:
            return self._added[item_id][1]
        row = self.model.item_row(item_id)  # type: ignore[attr-defined]
        if row is None or item_id not in self._require()[0]:
            raise UnknownIdError("item", item_id, hint="not in the model's items or added items")
        return self.model.item_vectors()[row]

    def _hits(self, res: Any, *, items: bool) -> list[Hit]:
        return self._hit_list(res.row(0), items=items)

    def _hit_list(self, row: list[tuple[str, float]], *, items: bool) -> list[Hit]:
        return [Hit(i, s, self.title(i) if items else None) for i, s in row]

    # ------------------------------------------------------------------ queries
    def neighbors(
        self, item: str | NewItem, k: int = 10, *, users_k: int | None = None
    ) -> NeighborsResult:
        """Top-``k`` similar items (the item itself excluded) and top-``users_k`` (default
        ``k``; 0 for none) users most likely to want ``item`` (a known id or a new item row,
        which is embedded but not added)."""
        return self.plan_neighbors(item, k, users_k=users_k).run()

    def plan_neighbors(
        self, item: str | NewItem, k: int = 10, *, users_k: int | None = None
    ) -> QueryPlan:
        """:meth:`neighbors` as a :class:`QueryPlan` (its searches not yet run)."""
        items, users = self._require()
        k = check_k(k)
        users_k = k if users_k is None else check_k(users_k, what="users_k", low=0)
        matched: list[str] = []
        unmatched: list[str] = []
        sim_vec = None
        if isinstance(item, NewItem):
            emb = self.model.embed_items([item])
            vec, matched, unmatched = emb.vectors[0], emb.matched[0], emb.unmatched[0]
            item_id = item.id
            exclude = [[item_id]] if item_id else None
            if emb.similar is not None:
                sim_vec = emb.similar[0]
        else:
            item_id = str(item)
            vec = self._item_vector(item_id)
            exclude = [[item_id]]
            if self.similar_ is not None:
                sim_vec = self._added_sim.get(item_id)
                sim_of = getattr(self.model, "similar_vectors", None)
                row_of = getattr(self.model, "item_row", None)
                if sim_vec is None and item_id not in self._added and sim_of and row_of:
                    row = row_of(item_id)
                    sim_vec = None if row is None else sim_of()[row]
        sim_index = self.similar_ if self.similar_ is not None and sim_vec is not None else None
        searches: list[Search] = [
            Search(sim_index, sim_vec, k, exclude)
            if sim_index is not None
            else Search(items, vec, k, exclude)
        ]
        if users_k:
            searches.append(Search(users, vec, users_k, None))

        def finish(rows: list[list[tuple[str, float]]]) -> NeighborsResult:
            found = self._hit_list(rows[1], items=False) if users_k else []
            return NeighborsResult(
                item_id, self._hit_list(rows[0], items=True), found, matched, unmatched
            )

        return QueryPlan(searches, finish)

    def plan_recommend(
        self,
        user: str | None = None,
        *,
        history: Sequence[str] = (),
        text: str | None = None,
        attributes: dict[str, Any] | None = None,
        k: int = 10,
        exclude_known: bool = True,
    ) -> QueryPlan:
        """:meth:`recommend` as a :class:`QueryPlan` (a model's new-user path, which scores
        users itself, is a plan with no searches): the one place its arguments are written."""
        items, users = self._require()
        k = check_k(k)
        history = [str(h) for h in history]
        if user is not None and (history or text):
            raise DataError("give either a known user id, or history and/or text, not both")
        if len(history) > MAX_HISTORY:
            raise DataError(f"history has {len(history)} items; at most {MAX_HISTORY}")
        if text is not None and len(text) > MAX_TEXT_CHARS:
            raise DataError(f"text is longer than {MAX_TEXT_CHARS} characters")
        attributes = self._check_profile(attributes)
        if hasattr(self.model, "score_user"):
            from kgrec.serve._users import live_user, recommend_live

            if user is None:
                for h in history:
                    self._item_vector(h)  # unknown ids: 404 naming the id
                live = live_user([], history=history, attributes=attributes, text=text)
                return QueryPlan.done(recommend_live(self, None, k, exclude_known, live))
            if self._events.get(str(user)):
                live = live_user(self._events[str(user)])
                return QueryPlan.done(recommend_live(self, str(user), k, exclude_known, live))
        if user is not None:
            user = str(user)
            row = self._urow.get(user)
            events = self._event_items(user)
            if (row is None or user not in users) and not events:
                raise UnknownIdError("user", user, hint="not in the model's users, no events")
            known = list(self.model.known_items(user)) if row is not None else []
            parts = [self.model.user_vectors()[row]] if row is not None else []
            if events:  # live interactions pull the query towards their items
                ev = np.stack([self._item_vector(i) for i in events]).mean(0)
                parts.append(ev / max(float(np.linalg.norm(ev)), 1e-12))
                known = list(dict.fromkeys([*known, *events]))
            vec = np.sum(parts, axis=0) if len(parts) > 1 else parts[0]
        else:
            has_text = bool(text and text.strip())
            if not history and not has_text:
                raise DataError("a new user needs history item ids and/or non-empty text")
            parts = []
            if history:
                hv = np.stack([self._item_vector(h) for h in history]).mean(0)
                parts.append(hv / max(float(np.linalg.norm(hv)), 1e-12))
            if has_text:
                parts.append(self.model.embed_user((), text))
            vec = np.sum(parts, axis=0)
            if not np.linalg.norm(vec) > 0:
                raise DataError("the history's vectors cancel out; give other items or text")
            known = history
        exclude = [known] if exclude_known and known else None
        masked = len(known) if exclude else 0

        def finish(rows: list[list[tuple[str, float]]]) -> RecommendResult:
            return RecommendResult(user, self._hit_list(rows[0], items=True), masked)

        return QueryPlan([Search(items, vec, k, exclude)], finish)

    recommend = runs_plan(
        plan_recommend,
        RecommendResult,
        """Top-``k`` items for a known ``user`` id (or one with live events), or for a new user
        given ``history`` item ids, free ``text`` and/or profile ``attributes``; known items (the
        user's or the history) are masked. With a model that has a new-user path
        (``score_user``: a trained hybrid) users with events and new users are scored by it
        (:mod:`kgrec.serve._users`), else by the mean of their vectors. The arguments are
        :meth:`plan_recommend`'s.""",
    )

    # ------------------------------------------------------------------ mutation
    def add_item(self, item: NewItem) -> AddedItem:
        """Embed ``item`` and add it to the item index (searchable when this returns)."""
        return self.add_items([item])[0]

    def add_items(self, rows: Sequence[NewItem]) -> list[AddedItem]:
        """Embed and add several new items at once (one encoder call)."""
        items, _ = self._require()
        if not rows:
            raise DataError("no items to add")
        emb = self.model.embed_items(list(rows))
        with self._lock:
            ids: list[str] = []
            autos: list[int | None] = []
            for row in rows:
                if row.id is not None:
                    ids.append(row.id)
                    autos.append(None)
                    continue
                while True:
                    n = self._next_auto()
                    if f"new-{n}" not in items and f"new-{n}" not in ids:
                        break
                ids.append(f"new-{n}")
                autos.append(n)
            dup = [i for i in ids if i in items]
            if dup or len(set(ids)) != len(ids):
                raise DuplicateIdError(f"item id(s) already present: {dup or ids}")
            if self.journal is not None:  # durable before it is visible or acknowledged
                self.journal.append(
                    [
                        ItemRecord(i, dataclasses.replace(row, id=i).to_dict(), v, a)
                        for i, row, v, a in zip(ids, rows, emb.vectors, autos, strict=True)
                    ]
                )
            # record first: a concurrent query that sees the new id in the index finds its row
            for i, row, v in zip(ids, rows, emb.vectors, strict=True):
                self._added[i] = (dataclasses.replace(row, id=i), np.asarray(v, np.float32))
            try:
                items.add(emb.vectors, ids)
                if self.similar_ is not None and emb.similar is not None:
                    for i, v in zip(ids, emb.similar, strict=True):
                        self._added_sim[i] = np.asarray(v, np.float32)
                    self.similar_.add(emb.similar, ids)
            except Exception:
                for i in ids:
                    self._added.pop(i, None)
                    self._added_sim.pop(i, None)
                raise
        return [AddedItem(i, m, u) for i, m, u in zip(ids, emb.matched, emb.unmatched, strict=True)]

    def _next_auto(self) -> int:
        if self.journal is not None:
            n = self.journal.next_auto_id()
            self._next = max(self._next, n + 1)
            return n
        n = self._next
        self._next += 1
        return n

    # ------------------------------------------------------------------ user events
    def add_events(
        self,
        user: str,
        items: Sequence[str],
        *,
        rating: float | None = None,
        attributes: dict[str, Any] | None = None,
        text: str | None = None,
    ) -> EventRecord:
        """Record interactions of ``user`` (known or new) with known or added ``items``;
        journaled (when a journal is attached) before they apply."""
        user = str(user)
        items_index, _ = self._require()
        ids = [str(i) for i in items]
        if not ids and not attributes and not (text and text.strip()):
            raise DataError("an event needs item ids, attributes or text")
        if len(ids) > MAX_HISTORY:
            raise DataError(f"an event names {len(ids)} items; at most {MAX_HISTORY}")
        for i in ids:
            if i not in items_index:
                raise UnknownIdError("item", i, hint="not in the model's items or added items")
        self._check_profile(attributes)  # before the journal: a bad record is never kept
        rec = EventRecord(user, tuple(ids), rating, dict(attributes or {}), text)
        with self._lock:
            if self.journal is not None:
                rec = self.journal.append([rec])[0]  # type: ignore[assignment]
            self._events.setdefault(user, []).append(rec)
        return rec

    def _check_profile(self, attributes: dict[str, Any] | None) -> dict[str, Any] | None:
        """Profile ``attributes`` of a new user checked by the model (unknown names and values
        are errors naming them); a model without a new-user path takes none."""
        if not attributes:
            return attributes
        if not hasattr(self.model, "score_user"):
            raise DataError(
                f"profile attributes need a model with a new-user path (a trained hybrid); "
                f"{self.model.name!r} has none"
            )
        check = getattr(self.model, "check_profile", None)
        if check is not None:
            check(attributes)
        return attributes

    def user_events(self, user: str) -> list[EventRecord]:
        """Events recorded for ``user`` since the model was trained, oldest first."""
        return list(self._events.get(str(user), ()))

    def has_user(self, user: str) -> bool:
        return str(user) in self._urow or str(user) in self._events

    def _event_items(self, user: str) -> list[str]:
        seen: dict[str, None] = {}
        for e in self._events.get(user, ()):
            seen.update(dict.fromkeys(e.items))
        return list(seen)

    # ------------------------------------------------------------------ journal
    def attach_journal(self, journal: Journal) -> int:
        """Replay ``journal`` (added items, user events) into this retriever and journal every
        later addition; returns the number of records applied."""
        items, _ = self._require()
        with self._lock:
            applied = 0
            new_ids: list[str] = []
            new_vecs: list[np.ndarray] = []
            for rec in journal.records():
                if isinstance(rec, ItemRecord):
                    if rec.id in self._added or rec.id in items or rec.id in new_ids:
                        continue  # already in a saved index
                    if items.dim_ is not None and rec.vector.shape != (items.dim_,):
                        raise DataError(
                            f"journal item {rec.id!r} has a {rec.vector.shape} vector; the "
                            f"index holds {items.dim_}-d vectors",
                            path=journal.dir,
                        )
                    item = NewItem.from_dict(rec.item, where=f"journal item {rec.id!r}")
                    self._added[rec.id] = (dataclasses.replace(item, id=rec.id), rec.vector)
                    new_ids.append(rec.id)
                    new_vecs.append(rec.vector)
                else:
                    self._events.setdefault(rec.user, []).append(rec)
                applied += 1
            if new_ids:
                items.add(np.stack(new_vecs), new_ids)
            self.journal = journal
            journal.reserve_auto(self._next - 1)
        log.info("journal: %d records applied (%d items)", applied, len(new_ids))
        return applied

    def info(self) -> dict[str, Any]:
        items, users = self._require()
        return {
            "model": self.model.name,
            "fingerprint": self.model.fingerprint,
            "items": len(items),
            "added_items": len(self._added),
            "users": len(users),
            "index": items.info().to_dict(),
        }
