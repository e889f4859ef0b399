"""Retriever: neighbours, recommendations with masking, live adds, bounds, save/load."""

from __future__ import annotations

import numpy as np
import pytest

from kgrec.errors import DataError, UnknownIdError
from kgrec.index import FingerprintMismatchError
from kgrec.serve import DuplicateIdError, NewItem, Retriever

GALAXY = NewItem(
    title="Galaxy Raiders",
    description="rebels fight an evil empire across the galaxy with starships",
    attributes={"class": ["Sci-Fi", "Action", "Adventure"], "release_year": "1997"},
)


def test_neighbors_of_known_item(retriever, content_model):
    res = retriever.neighbors("50", 10, users_k=5)
    ids = [h.id for h in res.items]
    assert len(ids) == 10 and "50" not in ids
    scores = [h.score for h in res.items]
    assert scores == sorted(scores, reverse=True)
    # exact search: the top hit is the best cosine among all other items
    v = content_model.item_vectors()
    unit = v / np.linalg.norm(v, axis=1, keepdims=True)
    sims = unit @ unit[content_model.item_row("50")]
    sims[content_model.item_row("50")] = -np.inf
    assert ids[0] == content_model.item_ids[int(np.argmax(sims))]
    assert all(h.title for h in res.items) and len(res.users) == 5
    assert {h.id for h in res.users} <= set(content_model.user_ids)


def test_recommend_known_user_masks_known_items(retriever, content_model):
    res = retriever.recommend("1", k=50)
    known = set(content_model.known_items("1"))
    assert res.masked == len(known) == 272
    assert len(res.items) == 50 and not known & {h.id for h in res.items}
    unmasked = retriever.recommend("1", k=50, exclude_known=False)
    assert known & {h.id for h in unmasked.items}  # the mask is what removed them


def test_recommend_new_user_history_and_text(retriever):
    res = retriever.recommend(history=["50", "172", "181"], k=10)
    ids = {h.id for h in res.items}
    assert res.masked == 3 and not ids & {"50", "172", "181"}
    assert {"271", "228", "229", "230"} & ids or any("Star" in (h.title or "") for h in res.items)
    both = retriever.recommend(history=["50"], text="paris romance", k=10)
    assert [h.id for h in both.items] != [
        h.id for h in retriever.recommend(history=["50"], k=10).items
    ]


def test_unknown_ids_and_bad_queries(retriever):
    with pytest.raises(UnknownIdError, match="unknown user id 'nobody'"):
        retriever.recommend("nobody")
    with pytest.raises(UnknownIdError, match="unknown item id 'x9'"):
        retriever.recommend(history=["50", "x9"])
    with pytest.raises(UnknownIdError, match="unknown item id 'x9'"):
        retriever.neighbors("x9")
    with pytest.raises(DataError, match="not both"):
        retriever.recommend("1", text="x")
    with pytest.raises(DataError, match="history item ids and/or"):
        retriever.recommend(text="  ")
    for k in (0, 1001, 2.5, True):
        with pytest.raises(DataError, match=r"k must be an integer in 1\.\.1000"):
            retriever.neighbors("50", k)


def test_added_item_is_retrievable_at_once(retriever):
    before = len(retriever.items_)
    added = retriever.add_item(GALAXY)
    assert added.id == "new-1" and "released_in_decade -> decade:1990s" in added.matched
    assert len(retriever.items_) == before + 1 and retriever.title("new-1") == "Galaxy Raiders"
    # its own neighbours exclude it; as a neighbour of its twin row it comes first
    twin = retriever.neighbors(GALAXY, 5)
    assert twin.items[0].id == "new-1" and twin.items[0].score == pytest.approx(1.0, abs=1e-4)
    own = retriever.neighbors("new-1", 5)
    assert "new-1" not in {h.id for h in own.items} and len(own.users) == 5
    # a new user who knows it gets it masked; one who likes what it resembles gets it
    assert "new-1" not in {h.id for h in retriever.recommend(history=["new-1"], k=20).items}
    fan = retriever.recommend(history=[own.items[0].id, "new-1"], k=5)
    assert own.items[0].id not in {h.id for h in fan.items}
    with pytest.raises(DuplicateIdError):
        retriever.add_item(NewItem(title="dup", id="50"))
    with pytest.raises(DuplicateIdError):
        retriever.add_item(NewItem(title="dup", id="new-1"))
    second = retriever.add_items([NewItem(title="A"), NewItem(title="B", id="mine")])
    assert [a.id for a in second] == ["new-2", "mine"]


def test_save_load_round_trip(retriever, content_model, tmp_path):
    retriever.add_item(GALAXY)
    path = retriever.save(tmp_path / "r")
    loaded = Retriever.load(path, content_model)
    for q in ("50", "new-1"):
        a, b = retriever.neighbors(q, 20), loaded.neighbors(q, 20)
        assert [h.id for h in a.items] == [h.id for h in b.items]
        assert [h.id for h in a.users] == [h.id for h in b.users]
    assert loaded.title("new-1") == "Galaxy Raiders"
    assert loaded.recommend("1", k=10).items == retriever.recommend("1", k=10).items
    assert loaded.add_item(NewItem(title="next")).id == "new-2"  # counter restored
    with pytest.raises(DataError):
        retriever.save(path)  # exists: not overwritten silently
    retriever.save(path, overwrite=True)


class _OtherModel:
    """The content model under another fingerprint (as if retrained)."""

    def __init__(self, inner):
        self._inner = inner

    def __getattr__(self, name):
        return getattr(self._inner, name)

    @property
    def fingerprint(self):
        return "content:0000000000000000"


def test_load_refuses_fingerprint_mismatch(retriever, content_model, tmp_path):
    path = retriever.save(tmp_path / "r")
    with pytest.raises(FingerprintMismatchError, match="fingerprint"):
        Retriever.load(path, _OtherModel(content_model))
    with pytest.raises(DataError, match="not a kgrec retriever"):
        Retriever.load(tmp_path, content_model)
