"""Live user events over HTTP: a new user's next recommendations reflect one event, a profile
alone gives the attribute prior, unknown items are 404, and the events survive a restart."""

from __future__ import annotations

import pytest

pytest.importorskip("fastapi", reason="kgrec serve needs fastapi")
pytest.importorskip("httpx", reason="fastapi's TestClient needs httpx")

from fastapi.testclient import TestClient

from kgrec.serve import HybridAdapter, Retriever
from kgrec.serve._app import create_app
from tests.serve.conftest import HashEncoder


@pytest.fixture(scope="module")
def trained_dir(spec, tmp_path_factory):
    from dataclasses import replace

    from kgrec.eval import make_split, positives
    from kgrec.graph import load_or_build
    from kgrec.models.hybrid import HybridConfig, HybridRecommender, inputs_from_graph
    from kgrec.models.hybrid._users import user_profile
    from kgrec.text import embed_texts, texts_from_spec
    from kgrec.train import TrainingOptions

    ds = spec.load_dataset()
    pos = positives(ds, min_rating=spec.interactions.min_rating)
    split = make_split(pos, "cold-user", seed=0)
    kg = load_or_build(spec)
    text = embed_texts(texts_from_spec(spec, ds)["item"], HashEncoder())
    inputs = inputs_from_graph(kg, pos.users, pos.items, item_text=text)
    prof, social = user_profile(kg, pos.users)
    inputs = replace(inputs, user_profile=prof, user_social=social)
    model = HybridRecommender(
        HybridConfig(dim=16, layers=1, cf_blend="none"),
        options=TrainingOptions(epochs=1, batch_size=256, seed=0),
        inputs=inputs,
    ).fit(split.train_matrix())
    assert model.new_users_ is not None and model.profile_entities_ is not None
    out = tmp_path_factory.mktemp("hybrid-users")
    model.save(out / "model")
    split.save(out / "split.npz")
    return out


def _client(trained_dir, spec, journal=None):
    m = HybridAdapter.from_dir(trained_dir, spec, encoder=HashEncoder())
    r = Retriever(m).build()
    if journal is not None:
        r.attach_journal(journal(m.fingerprint))
    return TestClient(create_app(r, allow_anonymous_writes=True), raise_server_exceptions=False), m


def _top(client, user):
    res = client.post("/recommend", json={"user": user, "k": 10})
    assert res.status_code == 200, res.text
    return [h["id"] for h in res.json()["items"]]


def test_one_event_changes_a_new_users_recommendations(trained_dir, spec):
    client, m = _client(trained_dir, spec)
    profile = {"age_band": "25-34", "gender": "F", "occupation": "engineer"}
    a = client.post("/users/new-a/events", json={"attributes": profile})
    assert a.status_code == 201, a.text
    item = m.item_ids[100]
    b = client.post("/users/new-b/events", json={"attributes": profile, "items": [item]})
    assert b.status_code == 201 and b.json()["events"] == 1
    top_a, top_b = _top(client, "new-a"), _top(client, "new-b")
    assert len(top_a) == 10 and len(top_b) == 10
    assert top_a != top_b
    assert item not in top_b  # the user's own item is masked
    # another profile, no events: the prior moves with the attributes
    client.post("/users/new-c/events", json={"attributes": {"age_band": "<18", "gender": "M"}})
    assert _top(client, "new-c") != top_a
    # the one-off form (nothing recorded) agrees with the recorded user
    once = client.post("/recommend", json={"history": [item], "attributes": profile, "k": 10})
    assert [h["id"] for h in once.json()["items"]] == top_b


def test_events_validate_item_ids(trained_dir, spec):
    client, _ = _client(trained_dir, spec)
    bad = client.post("/users/u1/events", json={"items": ["no-such-item"]})
    assert bad.status_code == 404 and "no-such-item" in bad.text
    assert client.post("/users/u1/events", json={"itemz": []}).status_code == 422
    assert client.post("/recommend", json={"user": "u1"}).status_code == 404  # nothing recorded


def test_events_survive_a_restart(trained_dir, spec, tmp_path):
    from kgrec.serve._journal import Journal

    path = tmp_path / "journal"
    client, m = _client(trained_dir, spec, lambda fp: Journal(path, fingerprint=fp))
    items = [m.item_ids[5], m.item_ids[50]]
    client.post("/users/new-r/events", json={"items": items[:1], "attributes": {"gender": "F"}})
    client.post("/users/new-r/events", json={"items": items[1:]})
    before = _top(client, "new-r")
    # a fresh process: same model, same journal
    client2, _ = _client(trained_dir, spec, lambda fp: Journal(path, fingerprint=fp))
    assert _top(client2, "new-r") == before
    ev = client2.post("/users/new-r/events", json={"text": "more of the same"})
    assert ev.status_code == 201 and ev.json()["events"] == 3  # two replayed + this one


def test_a_saved_retriever_scores_new_users_as_its_model_does(trained_dir, spec, tmp_path):
    """A retriever saved with --index-dir answered new users (history, profile, live events)
    from the mean of their item vectors instead of the hybrid's new-user path: `kgrec recommend
    --index-dir DIR --history ...` differed from the same command without --index-dir."""
    from kgrec.serve._saved import SavedModel

    m = HybridAdapter.from_dir(trained_dir, spec, encoder=HashEncoder())
    full = Retriever(m).build()
    full.save(tmp_path / "ix")
    saved = Retriever.load(tmp_path / "ix", SavedModel(tmp_path / "ix", lambda: m))
    hist = [m.item_ids[5], m.item_ids[50], m.item_ids[300]]
    profile = {"age_band": ["25-34"], "gender": ["F"]}

    def ids(r, **kw):
        return [h.id for h in r.recommend(None, k=10, **kw).items]

    assert ids(saved, history=hist) == ids(full, history=hist)
    assert ids(saved, attributes=profile) == ids(full, attributes=profile)
    for r in (full, saved):
        r.add_events("new-s", hist[:2], attributes=profile)
    assert [h.id for h in saved.recommend("new-s", k=10).items] == [
        h.id for h in full.recommend("new-s", k=10).items
    ]


def test_unknown_profile_attributes_are_422_naming_them_and_never_recorded(trained_dir, spec):
    """A profile attribute the model does not know (a name or a value) was ignored: the user got
    the prior of an empty profile with a 200 (and `kgrec recommend --attr colour=blue` ran)."""
    client, _ = _client(trained_dir, spec)
    bad = client.post("/users/new-q/events", json={"attributes": {"colour": "blue"}})
    assert bad.status_code == 422
    assert "'colour'" in bad.text and "age_band" in bad.text
    bad = client.post("/users/new-q/events", json={"attributes": {"age_band": "999"}})
    assert bad.status_code == 422
    assert "'999'" in bad.text and "25-34" in bad.text
    assert client.post("/recommend", json={"user": "new-q"}).status_code == 404  # nothing kept
    once = client.post("/recommend", json={"attributes": {"gender": "X"}, "k": 5})
    assert once.status_code == 422 and "gender" in once.text
    # the spec's own column, bucketed as the spec buckets it: age 30 is the band 25-34
    by_age = client.post("/recommend", json={"attributes": {"age": 30}, "k": 10})
    by_band = client.post("/recommend", json={"attributes": {"age_band": "25-34"}, "k": 10})
    assert by_age.status_code == 200, by_age.text
    assert by_age.json()["items"] == by_band.json()["items"]


def test_a_run_of_another_model_is_one_message_naming_it(trained_dir, spec, tmp_path):
    """`kgrec recommend --model DIR` on a `kgrec train --model pop` run said only "Popularity
    cannot embed new items (no embed_items)"."""
    import shutil

    from kgrec.data import Split
    from kgrec.errors import DataError
    from kgrec.models.cf.pop import Popularity

    for name in ("split.npz", "split.json"):
        shutil.copy(trained_dir / name, tmp_path / name)
    Popularity().fit(Split.load(tmp_path / "split.npz").train_matrix()).save(tmp_path / "model")
    with pytest.raises(DataError, match=r"holds a trained 'pop' model.*--model content"):
        HybridAdapter.from_dir(tmp_path, spec, encoder=HashEncoder())
