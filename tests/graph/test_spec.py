"""Spec parsing: every bad key, type or value is a SpecError naming the key and alternatives."""

from __future__ import annotations

from pathlib import Path

import pytest

from kgrec.errors import SpecError
from kgrec.graph import GraphSpec, load_spec

from .conftest import SPEC, write_catalog

GRAPHS = Path(__file__).resolve().parents[2] / "graphs"


def _err(tmp_path: Path, text: str) -> SpecError:
    p = tmp_path / "s.toml"
    p.write_text(text, encoding="utf-8")
    with pytest.raises(SpecError) as err:
        load_spec(p)
    return err.value


@pytest.mark.parametrize(
    ("old", "new", "key", "words"),
    [
        ("[interactions]", "[interactons]", "interactons", "'interactions'"),
        ("min_rating = 4", "min_ratting = 4", "interactions.min_ratting", "'min_rating'"),
        ("min_rating = 4", 'min_rating = "4"', "interactions.min_rating", "expected int/float"),
        ('delimiter = "|"', 'delimiter = ""', "relations[0].delimiter", "empty delimiter"),
        ('node_type = "studio"', 'node_type = "item"', "relations[2].node_type", "reserved"),
        ('on = "user"\ncolumn = "age"', 'on = "usr"\ncolumn = "age"', "relations[3].on", "'user'"),
        ("{ width = 10,", "{ widht = 10,", "relations[1].bucket.widht", "'width'"),
        (
            "{ edges = [18, 25, 35, 45] }",
            "{ edges = [18, 35, 25] }",
            "relations[3].bucket.edges",
            "increasing",
        ),
        ('label = "{lo}s"', 'label = "{low}s"', "relations[1].bucket.label", "{lo}"),
        ('relation = "made_by"', 'relation = "has_genre"', "relations[2].relation", "already"),
        ("[kg]", "[kg]\nnodes = 1", "kg.nodes", "'node_type'"),
        ('file = "ratings.csv"', 'file = ""', "source.interactions.file", "non-empty"),
    ],
)
def test_bad_spec_is_a_spec_error_naming_the_key(tmp_path, old, new, key, words):
    assert old in SPEC
    e = _err(tmp_path, SPEC.replace(old, new, 1))
    assert e.key == key
    assert words in str(e)
    assert "s.toml" in str(e)


def test_source_needs_a_dataset_or_files(tmp_path):
    e = _err(tmp_path, 'name = "x"\n[source]\n')
    assert e.key == "source"
    e = _err(tmp_path, 'name = "x"\n[source]\ndataset = "ml-1m"\n')
    assert e.key == "source.dataset" and "ml-100k" in str(e)
    e = _err(tmp_path, '[source]\ndataset = "ml-100k"\n')
    assert e.key == "name"


def test_invalid_toml_and_missing_file(tmp_path):
    e = _err(tmp_path, "name = \n")
    assert "invalid TOML" in str(e)
    with pytest.raises(SpecError, match="not found"):
        load_spec(tmp_path / "absent.toml")


def test_contract_attributes_and_round_trip(tiny_spec_path):
    s = load_spec(tiny_spec_path)
    assert s.name == "tiny"
    assert s.source.dataset is None and s.source.path == tiny_spec_path.parent.resolve()
    assert s.interactions.min_rating == 4.0
    assert s.text.item_fields == ["title", "genres", "year"]
    assert (s.text.item_reviews, s.text.user_reviews, s.text.max_review_chars) == (
        False,
        False,
        2000,
    )
    again = GraphSpec.from_dict(s.to_dict())
    assert again.to_dict() == s.to_dict()
    assert again.digest() == s.digest()


def test_data_path_overrides_the_spec_path(tmp_path):
    path = write_catalog(tmp_path / "a")
    other = tmp_path / "mine"
    write_catalog(other)
    s = load_spec(path, data_path=other)
    assert s.source.path == other.resolve()
    assert s.source.files["items"].file == other.resolve() / "catalog.csv"
    ds = s.load_dataset()
    assert len(ds.interactions) == 5


@pytest.mark.parametrize("name", ["movielens-100k", "lastfm-hetrec", "amazon-instruments"])
def test_shipped_specs_parse(name):
    s = load_spec(GRAPHS / f"{name}.toml")
    assert s.name == name
    assert s.source.dataset is not None
    assert GraphSpec.from_dict(s.to_dict()).to_dict() == s.to_dict()


def test_lastfm_spec_default_path_is_relative_to_the_spec():
    s = load_spec(GRAPHS / "lastfm-hetrec.toml")
    assert (
        s.source.path == (GRAPHS / ".." / ".." / "shared" / "data" / "lastfm-hetrec-kg").resolve()
    )
    s2 = load_spec(GRAPHS / "lastfm-hetrec.toml", data_path="/somewhere/else")
    assert s2.source.path == Path("/somewhere/else")


def test_absent_data_directory_suggests_data_path(tmp_path):
    p = tmp_path / "s.toml"
    p.write_text('name = "x"\n[source]\ndataset = "lastfm-hetrec"\npath = "nowhere"\n')
    with pytest.raises(SpecError, match="--data-path") as err:
        load_spec(p).load_dataset()
    assert err.value.key == "source.path"
