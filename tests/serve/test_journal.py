"""The journal behind durable live state: append + fsync, replay, snapshots, a torn last line,
ids never reused, and a retriever that gets its added items and user events back."""

from __future__ import annotations

import json

import numpy as np
import pytest

from kgrec.errors import DataError
from kgrec.serve._journal import JOURNAL, SNAPSHOT, EventRecord, ItemRecord, Journal


def _item(i: str, auto: int | None = None, dim: int = 4) -> ItemRecord:
    return ItemRecord(i, {"title": f"t {i}", "id": i}, np.arange(dim, dtype=np.float32), auto)


def test_append_replay_and_auto_ids_survive(tmp_path):
    j = Journal(tmp_path, fingerprint="fp")
    n1, n2 = j.next_auto_id(), j.next_auto_id()
    j.append([_item(f"new-{n1}", n1), _item("mine")])
    j.append([EventRecord("u1", ("mine",), rating=4.0)])
    # no close: as after kill -9 (every append was fsynced)
    j2 = Journal(tmp_path, fingerprint="fp")
    recs = j2.records()
    assert [r.seq for r in recs] == [1, 2, 3]
    assert [r.id for r in j2.items()] == ["new-1", "mine"]
    np.testing.assert_array_equal(recs[0].vector, np.arange(4, dtype=np.float32))
    ev = next(j2.events())
    assert (ev.user, ev.items, ev.rating) == ("u1", ("mine",), 4.0)
    assert n2 == 2 and j2.next_auto_id() == 2  # 2 was handed out but never made durable
    assert j2.next_auto_id() == 3


def test_snapshot_folds_the_journal_and_crash_between_steps_is_harmless(tmp_path):
    j = Journal(tmp_path, fingerprint="fp", snapshot_every=3)
    for n in range(1, 6):
        j.append([_item(f"new-{n}", n)])
    assert (tmp_path / SNAPSHOT).is_file()
    assert len((tmp_path / JOURNAL).read_text().splitlines()) == 2  # seq 4, 5 after the snapshot
    # a crash after the snapshot's rename but before the journal restarted: records repeat
    snap_lines = (tmp_path / SNAPSHOT).read_text().splitlines()[1:]
    with (tmp_path / JOURNAL).open("a") as f:
        f.write("\n".join(snap_lines) + "\n")
    (tmp_path / f".{SNAPSHOT}.123.tmp").write_text("half")  # a snapshot killed mid-write
    j2 = Journal(tmp_path, fingerprint="fp")
    assert [r.id for r in j2.items()] == [f"new-{n}" for n in range(1, 6)]
    assert not list(tmp_path.glob(".*.tmp"))
    j2.close()
    j3 = Journal(tmp_path, fingerprint="fp")
    assert len(j3.records()) == 5 and (tmp_path / JOURNAL).read_text() == ""
    assert j3.next_auto_id() == 6


def test_torn_last_line_is_dropped_other_damage_is_an_error(tmp_path):
    j = Journal(tmp_path, fingerprint="fp")
    j.append([_item("a"), _item("b")])
    with (tmp_path / JOURNAL).open("ab") as f:
        f.write(b'{"seq": 3, "type": "item", "id": "c", "ite')  # killed during write
    j2 = Journal(tmp_path, fingerprint="fp")
    assert [r.id for r in j2.items()] == ["a", "b"]
    j2.append([_item("c")])  # the torn bytes were truncated: the new line parses
    assert [r.id for r in Journal(tmp_path, fingerprint="fp").items()] == ["a", "b", "c"]
    lines = (tmp_path / JOURNAL).read_text().splitlines()
    lines[0] = "{not json"
    (tmp_path / JOURNAL).write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"journal.jsonl, line 1: unreadable journal record"):
        Journal(tmp_path, fingerprint="fp")


def test_refuses_another_models_journal_and_non_finite_records(tmp_path):
    j = Journal(tmp_path, fingerprint="fp")
    with pytest.raises(ValueError):
        j.append([EventRecord("u", ("a",), rating=float("nan"))])
    assert (tmp_path / JOURNAL).read_text() == ""  # nothing written
    j.append([_item("a")])
    j.close()
    with pytest.raises(DataError, match="belongs to model 'fp'"):
        Journal(tmp_path, fingerprint="other")
    bad = {"seq": 9, "type": "item", "id": "x", "item": {"title": "x"}, "vector": "!!"}
    (tmp_path / JOURNAL).write_text(json.dumps(bad) + "\n" + json.dumps(bad) + "\n")
    with pytest.raises(DataError, match="not base64"):
        Journal(tmp_path, fingerprint="fp")


def test_retriever_gets_items_and_events_back(tmp_path, content_model):
    from kgrec.index import IndexConfig
    from kgrec.serve import NewItem, Retriever

    def fresh():
        cfg = IndexConfig(metric="cosine", device="cpu")
        r = Retriever(content_model, config=cfg).build()
        r.attach_journal(Journal(tmp_path, fingerprint=content_model.fingerprint))
        return r

    r = fresh()
    added = r.add_items([NewItem("Galaxy Raiders", "space opera"), NewItem("Mine", id="mine")])
    assert [a.id for a in added] == ["new-1", "mine"]
    before = r.recommend("1", k=5).items
    r.add_events("1", ["mine", "50"])
    r.add_events("newbie", ["new-1"])
    after = r.recommend("1", k=5)
    assert {"mine", "50"}.isdisjoint(h.id for h in after.items) and after.items != before
    r2 = fresh()  # a restart: nothing was closed
    assert r2.is_added("new-1") and r2.title("mine") == "Mine"
    assert r2.neighbors("new-1", k=3).items  # retrievable by id, vector replayed
    assert [h.id for h in r2.recommend("1", k=5).items] == [h.id for h in after.items]
    assert r2.recommend("newbie", k=3).masked == 1
    assert r2.add_item(NewItem("Third")).id == "new-2"
    with pytest.raises(DataError):
        r2.add_events("1", [])
