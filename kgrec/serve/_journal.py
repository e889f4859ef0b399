"""A durable, append-only journal of the service's live state: added items and user events.

Layout of a journal directory::

    snapshot.jsonl   header line, then every record up to the header's ``seq`` (atomic rewrite)
    journal.jsonl    records appended since that snapshot, one JSON object per line

Every :meth:`Journal.append` writes one line and ``fsync``\\ s it before returning, so a record
the caller acknowledged survives ``kill -9`` or a power cut. Every ``snapshot_every`` appends
(and on :meth:`Journal.close`) the records are folded into a new snapshot (temporary file,
fsync, rename, directory fsync) and the journal is restarted empty. A crash between the two
steps is harmless: replay skips journal records whose ``seq`` the snapshot already holds.

Records are typed (:class:`ItemRecord`, :class:`EventRecord`) and carry a ``seq`` number that only
grows. The journal also owns the counter behind automatic ids (``new-N``): :meth:`next_auto_id`
hands out a number never handed out before, across restarts, because every auto id appears in the
record that made it durable, and replay sets the counter past the largest one seen.

A last line cut short by a kill during its write (never acknowledged) is dropped at open with
a warning; any other unreadable line is a :class:`~kgrec.errors.DataError` naming file and line.
"""

from __future__ import annotations

import base64
import json
import logging
import math
import os
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from kgrec.errors import DataError, KgrecError

log = logging.getLogger(__name__)

FORMAT = "kgrec-journal"
FORMAT_VERSION = 1
SNAPSHOT = "snapshot.jsonl"
JOURNAL = "journal.jsonl"
#: largest journal line replay accepts (a record names at most a few hundred KB of text)
MAX_LINE_BYTES = 8 * 1024 * 1024


def _vec_to_b64(v: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(v, dtype="<f4").tobytes()).decode("ascii")


def _vec_from_b64(s: str, *, where: str) -> np.ndarray:
    try:
        raw = base64.b64decode(s.encode("ascii"), validate=True)
    except (ValueError, UnicodeEncodeError) as exc:
        raise DataError(f"{where}: 'vector' is not base64 ({exc})") from None
    if len(raw) % 4:
        raise DataError(f"{where}: 'vector' is not a whole number of float32 values")
    v = np.frombuffer(raw, dtype="<f4").astype(np.float32)
    if not np.isfinite(v).all():
        raise DataError(f"{where}: 'vector' holds non-finite values")
    return v


@dataclass(frozen=True)
class ItemRecord:
    """An item added live: its id, its row as given (``NewItem.to_dict()``), its vector, and
    ``auto`` (the counter value behind an automatic ``new-N`` id, else ``None``)."""

    id: str
    item: Mapping[str, Any]
    vector: np.ndarray
    auto: int | None = None
    seq: int = 0
    ts: float = 0.0

    kind = "item"

    def payload(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "item": dict(self.item),
            "vector": _vec_to_b64(self.vector),
            "auto": self.auto,
        }

    @classmethod
    def from_payload(cls, d: Mapping[str, Any], seq: int, ts: float, where: str) -> ItemRecord:
        if not isinstance(d.get("id"), str) or not isinstance(d.get("item"), dict):
            raise DataError(f"{where}: an item record needs a string 'id' and an object 'item'")
        auto = d.get("auto")
        if auto is not None and (isinstance(auto, bool) or not isinstance(auto, int) or auto < 1):
            raise DataError(f"{where}: 'auto' must be a positive integer, got {auto!r}")
        vec = _vec_from_b64(str(d.get("vector", "")), where=where)
        return cls(d["id"], d["item"], vec, auto, seq, ts)


@dataclass(frozen=True)
class EventRecord:
    """Interactions of one user (known or new): the item ids, optional ``rating`` (one for all
    items), and optional profile ``attributes`` / free ``text`` given with them."""

    user: str
    items: tuple[str, ...] = ()
    rating: float | None = None
    attributes: Mapping[str, Any] = field(default_factory=dict)
    text: str | None = None
    seq: int = 0
    ts: float = 0.0

    kind = "event"

    def payload(self) -> dict[str, Any]:
        out: dict[str, Any] = {"user": self.user, "items": list(self.items)}
        if self.rating is not None:
            out["rating"] = self.rating
        if self.attributes:
            out["attributes"] = dict(self.attributes)
        if self.text is not None:
            out["text"] = self.text
        return out

    @classmethod
    def from_payload(cls, d: Mapping[str, Any], seq: int, ts: float, where: str) -> EventRecord:
        user, items = d.get("user"), d.get("items", [])
        if not isinstance(user, str) or not isinstance(items, list):
            raise DataError(f"{where}: an event record needs a string 'user' and a list 'items'")
        if not all(isinstance(i, str) for i in items):
            raise DataError(f"{where}: event 'items' must be strings")
        rating = d.get("rating")
        if rating is not None and (
            isinstance(rating, bool)
            or not isinstance(rating, int | float)
            or not math.isfinite(rating)
        ):
            raise DataError(f"{where}: event 'rating' must be a finite number, got {rating!r}")
        attrs = d.get("attributes") or {}
        if not isinstance(attrs, dict):
            raise DataError(f"{where}: event 'attributes' must be an object")
        text = d.get("text")
        if text is not None and not isinstance(text, str):
            raise DataError(f"{where}: event 'text' must be a string")
        return cls(user, tuple(items), rating, attrs, text, seq, ts)


class JournalError(KgrecError, OSError):
    """The journal could not make a record durable (disk full, read-only ...): nothing applied."""


Record = ItemRecord | EventRecord
_KINDS: dict[str, type[ItemRecord] | type[EventRecord]] = {"item": ItemRecord, "event": EventRecord}


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def _line(rec: Record) -> bytes:
    d = {"seq": rec.seq, "ts": rec.ts, "type": rec.kind, **rec.payload()}
    # allow_nan=False: a record is strict JSON or it is refused before anything is written
    return (json.dumps(d, ensure_ascii=False, allow_nan=False) + "\n").encode("utf-8")


class Journal:
    """The journal in ``directory`` for the model named by ``fingerprint`` (see the module
    docstring). ``records()`` after opening yields the replayed state in order; new records go
    through :meth:`append` (thread-safe)."""

    def __init__(
        self, directory: str | Path, *, fingerprint: str, snapshot_every: int = 1000
    ) -> None:
        if snapshot_every < 1:
            raise DataError(f"snapshot_every must be >= 1, got {snapshot_every}")
        self.dir = Path(directory)
        self.fingerprint = fingerprint
        self.snapshot_every = snapshot_every
        self._lock = threading.Lock()
        self._records: list[Record] = []
        self._seq = 0
        self._auto = 0
        self._since_snapshot = 0
        self._fh: Any = None
        self._open()

    # ------------------------------------------------------------------ open / replay
    def _read(self, path: Path, *, header: bool) -> tuple[dict[str, Any] | None, list[Record]]:
        out: list[Record] = []
        head: dict[str, Any] | None = None
        if not path.is_file():
            return None, out
        with path.open("rb") as f:
            lines = f.read().split(b"\n")
        last = len(lines) - 1  # the element after the final newline ("" when complete)
        for n, raw in enumerate(lines):
            lineno = n + 1
            if not raw.strip():
                continue
            where = f"{path}, line {lineno}"
            try:
                if len(raw) > MAX_LINE_BYTES:
                    raise ValueError(f"line longer than {MAX_LINE_BYTES} bytes")
                d = json.loads(raw.decode("utf-8"))
                if not isinstance(d, dict):
                    raise ValueError("not a JSON object")
            except (ValueError, UnicodeDecodeError) as exc:
                if n == last and not header:
                    log.warning("%s: dropping a record cut short by a crash (%s)", where, exc)
                    self._truncate_tail(path, len(raw))
                    break
                raise DataError(
                    f"unreadable journal record: {exc}", path=path, line=lineno
                ) from None
            if header and head is None:
                if d.get("format") != FORMAT or d.get("format_version") != FORMAT_VERSION:
                    raise DataError(f"not a kgrec journal snapshot: {d!r:.200}", path=path, line=1)
                head = d
                continue
            kind = d.get("type")
            cls = _KINDS.get(str(kind))
            seq, ts = d.get("seq"), d.get("ts", 0.0)
            if cls is None or isinstance(seq, bool) or not isinstance(seq, int) or seq < 1:
                raise DataError(
                    f"journal record needs 'type' in {sorted(_KINDS)} and a positive 'seq', "
                    f"got type={kind!r} seq={seq!r}",
                    path=path,
                    line=lineno,
                )
            out.append(cls.from_payload(d, seq, float(ts), where))
        return head, out

    @staticmethod
    def _truncate_tail(path: Path, nbytes: int) -> None:
        size = path.stat().st_size
        with path.open("r+b") as f:
            f.truncate(size - nbytes)
            f.flush()
            os.fsync(f.fileno())

    def _open(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        for stale in self.dir.glob(".*.tmp"):  # a snapshot cut short by a kill
            stale.unlink(missing_ok=True)
        head, snap = self._read(self.dir / SNAPSHOT, header=True)
        if head is not None and head.get("fingerprint") != self.fingerprint:
            raise DataError(
                f"journal belongs to model {head.get('fingerprint')!r}, not {self.fingerprint!r}"
                " (serve that model, or start a new journal directory)",
                path=self.dir / SNAPSHOT,
            )
        snap_seq = int(head.get("seq", 0)) if head else 0
        _, tail = self._read(self.dir / JOURNAL, header=False)
        records = list(snap) + [r for r in tail if r.seq > snap_seq]
        prev = 0
        for r in records:
            if r.seq <= prev:
                raise DataError(f"journal records out of order at seq {r.seq}", path=self.dir)
            prev = r.seq
        self._records = records
        self._seq = max(prev, snap_seq)
        self._auto = max([int(head.get("auto", 0)) if head else 0] + [
            r.auto for r in records if isinstance(r, ItemRecord) and r.auto is not None
        ])  # fmt: skip
        self._since_snapshot = len(records) - len(snap)
        self._fh = (self.dir / JOURNAL).open("ab")
        _fsync_dir(self.dir)
        log.info(
            "journal %s: %d records replayed (%d from the snapshot), seq %d",
            self.dir, len(records), len(snap), self._seq,
        )  # fmt: skip

    # ------------------------------------------------------------------ state
    def records(self) -> list[Record]:
        """Every durable record, in order (snapshot, then journal)."""
        with self._lock:
            return list(self._records)

    def items(self) -> Iterator[ItemRecord]:
        return (r for r in self.records() if isinstance(r, ItemRecord))

    def events(self) -> Iterator[EventRecord]:
        return (r for r in self.records() if isinstance(r, EventRecord))

    @property
    def seq(self) -> int:
        return self._seq

    def next_auto_id(self) -> int:
        """A counter value never handed out before (durable once a record carrying it is)."""
        with self._lock:
            self._auto += 1
            return self._auto

    def reserve_auto(self, n: int) -> None:
        """Never hand out a counter value <= ``n`` (ids a saved index already used)."""
        with self._lock:
            self._auto = max(self._auto, int(n))

    # ------------------------------------------------------------------ append
    def append(self, records: Sequence[Record]) -> list[Record]:
        """Make ``records`` durable (one write + fsync for all) and return them numbered."""
        import dataclasses

        if not records:
            return []
        with self._lock:
            if self._fh is None:
                raise DataError("the journal is closed", path=self.dir)
            now = time.time()
            numbered = [
                dataclasses.replace(r, seq=self._seq + 1 + n, ts=r.ts or now)
                for n, r in enumerate(records)
            ]
            data = b"".join(_line(r) for r in numbered)  # ValueError (NaN) before any write
            pos = self._fh.tell()
            try:
                self._fh.write(data)
                self._fh.flush()
                os.fsync(self._fh.fileno())
            except BaseException as exc:
                try:  # leave no partial record behind a failed write (disk full ...)
                    self._fh.truncate(pos)
                    self._fh.seek(pos)
                except OSError:  # pragma: no cover
                    pass
                if isinstance(exc, OSError):
                    raise JournalError(f"{self.dir / JOURNAL}: cannot append ({exc})") from exc
                raise
            self._seq += len(numbered)
            for r in numbered:
                if isinstance(r, ItemRecord) and r.auto is not None:
                    self._auto = max(self._auto, r.auto)
            self._records.extend(numbered)
            self._since_snapshot += len(numbered)
            if self._since_snapshot >= self.snapshot_every:
                self._snapshot_locked()
            return numbered

    # ------------------------------------------------------------------ snapshot / close
    def snapshot(self) -> None:
        """Fold every record into a new snapshot and restart the journal empty."""
        with self._lock:
            self._snapshot_locked()

    def _snapshot_locked(self) -> None:
        head = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "fingerprint": self.fingerprint,
            "seq": self._seq,
            "auto": self._auto,
            "records": len(self._records),
        }
        dest = self.dir / SNAPSHOT
        tmp = self.dir / f".{SNAPSHOT}.{os.getpid()}.tmp"
        with tmp.open("wb") as f:
            f.write((json.dumps(head) + "\n").encode())
            for r in self._records:
                f.write(_line(r))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, dest)
        _fsync_dir(self.dir)
        # the snapshot now holds everything: restart the journal (replay skips seq <= head)
        if self._fh is not None:
            self._fh.close()
        jtmp = self.dir / f".{JOURNAL}.{os.getpid()}.tmp"
        with jtmp.open("wb") as f:
            os.fsync(f.fileno())
        os.replace(jtmp, self.dir / JOURNAL)
        _fsync_dir(self.dir)
        self._fh = (self.dir / JOURNAL).open("ab")
        self._since_snapshot = 0
        log.info(
            "journal %s: snapshot at seq %d (%d records)", self.dir, self._seq, len(self._records)
        )

    def close(self, *, snapshot: bool = True) -> None:
        """Snapshot (by default) and close; later appends are refused."""
        with self._lock:
            if self._fh is None:
                return
            if snapshot and self._since_snapshot:
                self._snapshot_locked()
            self._fh.close()
            self._fh = None

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
