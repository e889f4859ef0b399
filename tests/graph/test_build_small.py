"""Build from a small hand-written catalog CSV and check every edge."""

from __future__ import annotations

import numpy as np
import pytest

from kgrec.errors import SpecError
from kgrec.graph import build_graph, load_spec

from .conftest import SPEC, write_catalog


def named_edges(g, et):
    """Edges of one type as a list of (src id, dst id) in stored order."""
    e = g.edges[et]
    s = g.vocabs[et[0]].ids[e[0]]
    d = g.vocabs[et[2]].ids[e[1]]
    return list(zip(s.tolist(), d.tolist(), strict=True))


def test_every_edge_of_the_tiny_catalog(tiny_graph):
    g = tiny_graph
    # every catalog item plus the interaction-only item m5; nothing dropped
    assert g.vocabs["item"].ids.tolist() == ["m1", "m2", "m3", "m4", "m5"]
    assert g.vocabs["user"].ids.tolist() == ["u1", "u2", "u3"]
    assert g.vocabs["genre"].ids.tolist() == ["Action", "Comedy", "Drama", "Romance"]
    assert g.vocabs["decade"].ids.tolist() == ["1990s", "2000s", "1980s"]
    assert g.vocabs["studio"].ids.tolist() == ["S1", "S2"]
    # KG entities linked to items are the item nodes, not duplicate entities
    assert g.vocabs["entity"].ids.tolist() == ["e9", "e10"]
    assert g.item_entities == {"m1": "e1", "m2": "e2", "m3": "e3"}
    expected = {
        ("user", "interacts", "item"): [("u1", "m1"), ("u2", "m2"), ("u2", "m3"), ("u3", "m5")],
        ("item", "has_genre", "genre"): [
            ("m1", "Action"),
            ("m1", "Comedy"),
            ("m2", "Comedy"),
            ("m3", "Drama"),
            ("m3", "Action"),
            ("m3", "Romance"),
        ],
        ("item", "in_decade", "decade"): [
            ("m1", "1990s"),
            ("m2", "2000s"),
            ("m3", "1990s"),
            ("m4", "1980s"),
        ],
        ("item", "made_by", "studio"): [("m1", "S1"), ("m2", "S2"), ("m4", "S1")],
        ("user", "in_age_band", "age_band"): [("u1", "18-25"), ("u2", "35-45")],  # [lo, hi),
        ("user", "has_job", "job"): [("u1", "student"), ("u2", "artist"), ("u3", "student")],
        ("item", "directed_by", "entity"): [("m1", "e9"), ("m2", "e9")],
        ("entity", "born_in", "entity"): [("e9", "e10")],
        ("item", "sequel_of", "item"): [("m3", "m1")],
        ("user", "friend_of", "user"): [("u1", "u2"), ("u2", "u1")],
    }
    assert set(g.edges) == set(expected)
    for et, pairs in expected.items():
        assert named_edges(g, et) == pairs, et
    # positive edges carry rating, timestamp and their row in the full interaction table
    a = g.edge_attrs[("user", "interacts", "item")]
    assert a["rating"].tolist() == [5.0, 4.0, 5.0, 4.0]
    assert a["timestamp"].tolist() == [100.0, 102.0, 103.0, 104.0]
    assert a["row"].tolist() == [0, 2, 3, 4]
    # the full interaction table stays available (including the rating-3 row)
    assert len(g.interactions) == 5
    assert g.interactions["rating"].tolist() == [5.0, 3.0, 4.0, 5.0, 4.0]
    st = g.stats()
    assert st.num_edges == sum(len(v) for v in expected.values())
    assert st.relations["directed_by"] == 2
    assert any("4 of 4 KG triples kept" in n for n in g.notes)
    g.validate()


def test_reverse_relations_mirror_forward_edges(tiny_spec_path):
    text = tiny_spec_path.read_text().replace(
        "reverse_relations = false", "reverse_relations = true"
    )
    text = text.replace("[graph]", '[graph]\nreverse_exclude = ["friend_of"]')
    tiny_spec_path.write_text(text)
    g = build_graph(load_spec(tiny_spec_path))
    fwd = g.forward_edge_types()
    assert len(g.edges) == 2 * len(fwd) - 1  # friend_of excluded
    rev = ("genre", "rev_has_genre", "item")
    assert g.reverse_of[rev] == ("item", "has_genre", "genre")
    assert np.array_equal(g.edges[rev], g.edges[("item", "has_genre", "genre")][::-1])
    assert ("user", "rev_friend_of", "user") not in g.edges
    # stats count relations over forward types only; degrees do not double count
    assert g.stats().relations["has_genre"] == 6
    assert g.degrees("genre").tolist() == [2, 2, 1, 1]


def test_pruning_min_degree_and_hops(tmp_path):
    spec = SPEC.replace("[graph]", "[prune]\nmin_entity_degree = 2\n\n[graph]")
    g = build_graph(load_spec(write_catalog(tmp_path / "a", spec)))
    # e10 (degree 1) goes with its edge; e9 has degree 3 and stays; genres Drama/Romance go
    assert g.vocabs["entity"].ids.tolist() == ["e9"]
    assert ("entity", "born_in", "entity") in g.edges and g.edges[
        ("entity", "born_in", "entity")
    ].shape[1] == 0
    assert g.vocabs["genre"].ids.tolist() == ["Action", "Comedy"]
    assert g.vocabs["item"].ids.tolist() == ["m1", "m2", "m3", "m4", "m5"]  # never pruned
    assert any("prune:" in n for n in g.notes)
    spec = SPEC.replace("[graph]", "[prune]\nmax_hops = 1\n\n[graph]")
    g = build_graph(load_spec(write_catalog(tmp_path / "b", spec)))
    assert g.vocabs["entity"].ids.tolist() == ["e9"]  # e10 is 2 hops from m1/m2
    # user-side entity types are exempt from the hop limit
    assert g.vocabs["job"].ids.tolist() == ["student", "artist"]
    assert any("3 of 4 KG triples kept (after pruning)" in n for n in g.notes)


def test_min_rating_absent_keeps_all_interactions(tmp_path):
    spec = SPEC.replace("min_rating = 4", "")
    g = build_graph(load_spec(write_catalog(tmp_path, spec)))
    assert g.edges[("user", "interacts", "item")].shape[1] == 5


def test_link_file_naming_absent_items_is_a_spec_error(tmp_path):
    path = write_catalog(tmp_path)
    (tmp_path / "links.tsv").write_text("item\tentity\nm1\te1\nm42\te2\n")
    with pytest.raises(SpecError, match=r"links.tsv, line 3, column 'item'.*'m42'") as err:
        build_graph(load_spec(path))
    assert err.value.key == "source.links.file"
    assert "known items are e.g. ['m1', 'm2', 'm3', 'm4', 'm5']" in str(err.value)


@pytest.mark.parametrize(
    ("old", "new", "key", "alternatives"),
    [
        ('column = "studio"', 'column = "studoi"', "relations[2].column", "'studio'"),
        (
            '[kg]\nnode_type = "entity"',
            '[kg]\nrelations = ["directed_by", "directd_by"]',
            "kg.relations",
            "'born_in'",
        ),
        (
            "reverse_relations = false",
            'reverse_exclude = ["has_genr"]',
            "graph.reverse_exclude",
            "'has_genre'",
        ),
    ],
)
def test_unknown_names_are_spec_errors_with_alternatives(tmp_path, old, new, key, alternatives):
    assert old in SPEC
    path = write_catalog(tmp_path, SPEC.replace(old, new))
    with pytest.raises(SpecError) as err:
        build_graph(load_spec(path))
    assert err.value.key == key
    assert alternatives in str(err.value)


def test_multi_valued_column_of_tokens_rejects_a_delimiter(ml100k):
    from kgrec.graph import GraphSpec

    spec = GraphSpec.from_dict(
        {
            "name": "x",
            "source": {"dataset": "ml-100k"},
            "relations": [
                {"column": "class", "relation": "g", "node_type": "genre", "delimiter": " "}
            ],
        }
    )
    with pytest.raises(SpecError, match="already multi-valued") as err:
        build_graph(spec, ml100k)
    assert err.value.key == "relations[0].delimiter"


def test_non_numeric_bucket_value_names_the_item(tmp_path):
    path = write_catalog(tmp_path, SPEC)
    (tmp_path / "catalog.csv").write_text(
        "item_id,title,genres,year,studio\nm1,A,X,199x,S\n", encoding="utf-8"
    )
    from kgrec.errors import DataError

    with pytest.raises(DataError, match=r"'199x' of item 'm1'.*relations\[1\]\.bucket"):
        build_graph(load_spec(path))
    # listing the value as missing makes it explicit: no edge, and a note
    spec = SPEC.replace('label = "{lo}s" }', 'label = "{lo}s" }\nmissing = ["199x"]')
    path = write_catalog(tmp_path / "m", spec)
    (tmp_path / "m" / "catalog.csv").write_text(
        "item_id,title,genres,year,studio\nm1,A,X,199x,S\n", encoding="utf-8"
    )
    g = build_graph(load_spec(path))
    assert g.edges[("item", "in_decade", "decade")].shape[1] == 0
    assert any("199x" in n for n in g.notes)


def test_build_does_not_mutate_the_dataset(tiny_spec_path):
    spec = load_spec(tiny_spec_path)
    ds = spec.load_dataset()
    before = ds.interactions.frame.copy()
    cat = ds.items.frame.copy()
    build_graph(spec, ds)
    assert ds.interactions.frame.equals(before) and ds.items.frame.equals(cat)


def test_missing_values_of_a_multi_valued_column(tmp_path):
    spec = SPEC.replace('delimiter = "|"', 'delimiter = "|"\nmissing = ["Drama"]')
    g = build_graph(load_spec(write_catalog(tmp_path, spec)))
    assert "Drama" not in g.vocabs["genre"]
    assert g.edges[("item", "has_genre", "genre")].shape[1] == 5
    assert any("1 genres value(s) in ['Drama']" in n for n in g.notes)


def test_check_names_a_min_rating_of_zero(tmp_path):
    from kgrec.graph._check import check_spec

    path = write_catalog(tmp_path, SPEC.replace("min_rating = 4", "min_rating = 0"))
    text = check_spec(load_spec(path))
    assert "5 positive edges (rating >= 0)" in text
