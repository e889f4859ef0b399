"""`kgrec neighbors` and `kgrec recommend` through the click runner."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from kgrec.cli import cli, main
from tests.serve.conftest import SPEC, HashEncoder, build_content_model


@pytest.fixture
def shared_model(ml100k_dir, monkeypatch):
    """Serve the session's content model (hashing encoder) instead of rebuilding per command."""
    model = build_content_model()
    monkeypatch.setattr("kgrec.serve._load.load_model", lambda spec, name="content", **kw: model)
    return model


def invoke(*args: str):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def test_neighbors_of_known_item_table_and_json(shared_model):
    res = invoke("neighbors", SPEC, "--item", "50", "-k", "3", "--users-k", "2")
    assert res.exit_code == 0, res.output
    assert res.output.startswith("item 50: Star Wars")
    assert "top-3 similar items:" in res.output and "top-2 users likely to want it:" in res.output
    data = json.loads(invoke("neighbors", SPEC, "--item", "50", "-k", "3", "--json").output)
    assert len(data) == 1 and len(data[0]["items"]) == 3 and data[0]["item_id"] == "50"
    assert all(h["title"] for h in data[0]["items"])


def test_neighbors_of_new_item_inline_and_from_file(shared_model, tmp_path):
    res = invoke(
        "neighbors", SPEC, "--title", "Galaxy Raiders", "--description", "space rebels",
        "--attr", "class=Sci-Fi|Action", "--attr", "release_year=1997", "--attr", "class=Nope",
        "-k", "5",
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "item (new item): Galaxy Raiders" in res.output
    assert "has_genre -> genre:Sci-Fi" in res.output and "decade:1990s" in res.output
    assert "not in the graph: class=Nope" in res.output
    path = tmp_path / "new.json"
    path.write_text(
        json.dumps([{"id": "n1", "title": "Galaxy Raiders", "attributes": {"class": "Sci-Fi"}}])
    )
    idx = tmp_path / "idx"
    res = invoke("neighbors", SPEC, "--item", path, "--add", "--index-dir", idx, "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)[0]
    assert out["item_id"] == "n1" and out["matched"] == ["has_genre -> genre:Sci-Fi"]
    # the added item was saved with the retriever: a later command finds it
    res = invoke("recommend", SPEC, "--history", "n1", "--index-dir", idx, "-k", "3", "--json")
    assert res.exit_code == 0 and json.loads(res.output)["masked"] == 1


def test_recommend_user_history_text(shared_model):
    res = invoke("recommend", SPEC, "--user", "1", "-k", "4")
    assert res.exit_code == 0, res.output
    assert "user 1: 272 known items masked" in res.output
    assert len([ln for ln in res.output.splitlines() if ln.startswith("    ")]) == 4
    out = json.loads(
        invoke("recommend", SPEC, "--history", "50, 181", "--text", "war", "--json").output
    )
    assert out["masked"] == 2 and len(out["items"]) == 10


def test_errors_are_clear(shared_model, capsys):
    assert main(["recommend", str(SPEC), "--user", "nobody"]) == 2
    assert "unknown user id 'nobody'" in capsys.readouterr().err
    assert main(["neighbors", str(SPEC), "--item", "zz-9"]) == 2
    assert "unknown item id 'zz-9'" in capsys.readouterr().err
    assert main(["neighbors", str(SPEC), "--title", "x", "--attr", "colour=red"]) == 2
    assert "unknown attribute 'colour'" in capsys.readouterr().err
    for args in (
        ["recommend", str(SPEC)],
        ["recommend", str(SPEC), "--user", "1", "--text", "x"],
        ["neighbors", str(SPEC)],
        ["neighbors", str(SPEC), "--item", "50", "--title", "x"],
        ["neighbors", str(SPEC), "--item", "50", "-k", "0"],
        ["neighbors", str(SPEC), "--title", "x", "--attr", "novalue"],
    ):
        assert main(args) == 2, args


def test_content_model_built_by_the_command(ml100k_dir, monkeypatch):
    """No shortcut: the command builds the content model itself (hashing encoder in place of
    MiniLM so a cold embedding cache costs nothing)."""
    monkeypatch.setattr("kgrec.serve._item_text.default_encoder", HashEncoder)
    res = invoke("recommend", SPEC, "--model", "content", "--user", "2", "-k", "2", "--json")
    assert res.exit_code == 0, res.output
    assert len(json.loads(res.output)["items"]) == 2
    assert main(["recommend", str(SPEC), "--model", "/no/such/dir", "--user", "2"]) == 2


@pytest.mark.slow
def test_end_to_end_with_minilm(ml100k_dir, tmp_path):
    """The real default path: MiniLM text embeddings (cached under $KGREC_HOME/embeddings; about
    30 s on 2 cores when the cache is cold), a cold item from text, its neighbours."""
    res = invoke(
        "neighbors", SPEC, "--title", "Galaxy Raiders",
        "--description", "A space opera: rebels fight an evil galactic empire with starships",
        "--attr", "class=Sci-Fi|Action|Adventure", "--attr", "release_year=1997", "-k", "10",
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    titles = res.output
    assert any(
        t in titles for t in ("Star Wars", "Star Trek", "Starship Troopers", "Return of the Jedi")
    )


def test_saved_retriever_answers_known_items_without_the_model(ml100k_dir, monkeypatch, tmp_path):
    model = build_content_model()
    loads: list[str] = []

    def load(spec, name="content", **kw):
        loads.append(name)
        return model

    monkeypatch.setattr("kgrec.serve._load.load_model", load)
    idx = tmp_path / "idx"
    args = ("neighbors", SPEC, "--item", "50", "-k", "5", "--index-dir", idx, "--json")
    first = invoke(*args)
    assert first.exit_code == 0 and loads == ["content"]  # built, saved with its model state
    assert (idx / "model_state.npz").is_file()
    second = invoke(*args)
    assert second.exit_code == 0 and second.output == first.output
    assert loads == ["content"]  # loaded from DIR: no dataset, graph or encoder
    user = invoke("recommend", SPEC, "--user", "1", "-k", "3", "--index-dir", idx, "--json")
    assert user.exit_code == 0 and loads == ["content"]
    # a new item needs the encoder: the full model is loaded then, once
    new = invoke("neighbors", SPEC, "--title", "Galaxy Raiders", "--index-dir", idx, "-k", "3")
    assert new.exit_code == 0 and loads == ["content", "content"]
