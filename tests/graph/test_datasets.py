"""The shipped specs on the real datasets: counts reconcile with the source files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kgrec.graph import build_graph, export_recbole, import_recbole, load_spec
from kgrec.text import texts_from_spec

GRAPHS = Path(__file__).resolve().parents[2] / "graphs"


@pytest.fixture(scope="module")
def ml_graph(ml100k):
    spec = load_spec(GRAPHS / "movielens-100k.toml")
    return spec, build_graph(spec, ml100k)


def test_ml100k_counts_reconcile_with_the_source_files(ml100k, ml_graph):
    _, g = ml_graph
    st = g.stats()
    # every item and user of the source files, linked or not
    assert st.nodes["item"] == 1682 and st.nodes["user"] == 943
    # all 91,631 Freebase triples are kept; linked entities are the item nodes themselves
    kg_rel = set(ml100k.kg.relations)
    kg_edges = sum(v for k, v in st.relations.items() if k in kg_rel)
    assert kg_edges == 91_631 == len(ml100k.kg)
    assert st.linked_items == 1598 == len(g.item_entities)
    assert st.nodes["entity"] == len(ml100k.kg.entities) - 1598
    linked = np.isin(g.vocabs["item"].ids, list(g.item_entities))
    assert (~linked).sum() == 84
    # the 84 unlinked items keep their interactions
    inter = g.interactions
    assert inter["item"].isin(np.flatnonzero(~linked)).sum() > 0
    # positives: rating >= 4, the full table of 100,000 ratings stays available
    assert st.positive_interactions == 34_174 + 21_201 == 55_375
    assert st.interactions == 100_000
    assert st.relations["has_genre"] == sum(len(t) for t in ml100k.items.frame["class"])
    assert st.relations["released_in_decade"] == 1682 - 2  # two items have no year
    assert st.nodes["age_band"] == 7 and st.nodes["gender"] == 2 and st.nodes["occupation"] == 21
    for r in ("has_occupation", "in_age_band", "has_gender"):
        assert st.relations[r] == 943
    # reverse edges mirror every forward relation
    assert st.reverse_edges == st.num_edges - st.reverse_edges
    text = st.to_text()
    assert "91,631 of 91,631 KG triples kept" in text and "1,598" in text


def test_ml100k_recbole_round_trip_is_identical(ml_graph, tmp_path):
    _, g = ml_graph
    export_recbole(g, tmp_path / "rb")
    names = sorted(p.name for p in (tmp_path / "rb").iterdir() if p.name != ".kgrec")
    assert names == sorted(
        f"movielens-100k{s}"
        for s in (".inter", ".item", ".user", ".kg", ".link", ".uedge", ".kgrec.json")
    )
    # every item is linked (RecBole's KG datasets would otherwise drop the 84 unlinked items)
    link = (tmp_path / "rb" / "movielens-100k.link").read_text().splitlines()
    assert len(link) == 1 + 1682
    h = import_recbole(tmp_path / "rb")
    assert g.differences(h, check_meta=True) == []


@pytest.mark.slow
def test_ml100k_networkx_counts_equal_stats(ml_graph):
    _, g = ml_graph
    G = g.to_networkx()
    st = g.stats()
    assert (G.number_of_nodes(), G.number_of_edges()) == (st.num_nodes, st.num_edges)


def test_ml100k_item_text(ml100k, ml_graph):
    spec, _ = ml_graph
    texts = texts_from_spec(spec, ml100k)  # the spec's [text] section drives kgrec.text
    t = dict(zip(texts["item"].ids, texts["item"].texts, strict=True))
    assert len(t) == 1682
    assert t["1"] == "Toy Story. release_year: 1995. class: Animation, Children's, Comedy"
    assert "user" not in texts  # user_reviews = false


def test_lastfm_graph(lastfm_dir):
    spec = load_spec(GRAPHS / "lastfm-hetrec.toml", data_path=lastfm_dir)
    ds = spec.load_dataset()
    g = build_graph(spec, ds)
    st = g.stats()
    # 17,632 catalog artists + 390 artists known only from tag assignments, added explicitly
    assert st.nodes["item"] == 17_632 + 390
    assert any("390 items absent" in n and "added as item nodes" in n for n in g.notes)
    assert st.positive_interactions == 92_834
    assert (
        g.edge_attrs[("user", "listened", "item")]["weight"].sum()
        == ds.interactions.frame["weight"].sum()
    )
    kg_edges = sum(v for k, v in st.relations.items() if k in set(ds.kg.relations))
    assert kg_edges == 15_518 and st.linked_items == 3_846
    assert st.relations["friend_of"] == 25_434
    tagged = ("item", "tagged", "tag")
    assert g.edge_attrs[tagged]["count"].sum() == 186_478  # every tag assignment counted
    assert st.nodes["tag"] == ds.tags["tag"].nunique()
    assert ("user", "rev_friend_of", "user") not in g.edges
    text = texts_from_spec(spec, ds)["item"]
    # one text per catalog artist (name + tags); the graph's items are those plus the
    # 390 tag-only artists, which have no name and get their vectors from the graph alone
    assert text.ids.tolist() == g.vocabs["item"].ids.tolist()[: len(text.ids)]
    assert sum("tags: " in t for t in text.texts) > 10_000


def test_amazon_graph_and_training_only_review_text(amazon_dir):
    spec = load_spec(GRAPHS / "amazon-instruments.toml", data_path=amazon_dir)
    ds = spec.load_dataset()
    g = build_graph(spec, ds)
    st = g.stats()
    assert (st.nodes["user"], st.nodes["item"], st.positive_interactions) == (1429, 900, 10_261)
    ie = ("user", "rated", "item")
    split = np.asarray(g.categories["split"])[g.edge_attrs[ie]["split"]]
    assert (split == "train").sum() == 8_208
    # dropping val/test edges before training is one call, and copies
    train = g.filter_edges(ie, split == "train")
    assert train.edges[ie].shape[1] == 8_208 and g.edges[ie].shape[1] == 10_261
    f = ds.interactions.frame
    texts = texts_from_spec(spec, ds)
    items = {i: " ".join(r) for i, r in zip(texts["item"].ids, texts["item"].reviews, strict=True)}
    users = {u: " ".join(r) for u, r in zip(texts["user"].ids, texts["user"].reviews, strict=True)}
    assert len(items) == 900 and len(users) == 1429
    # a test-split review must appear in no text
    test_rows = f[(f["split"] == "test") & (f["review"].str.len() > 60)]
    row = test_rows.iloc[0]
    snippet = row["review"][:60]
    assert snippet not in items[row["item"]] and snippet not in users[row["user"]]
    train_rows = f[(f["split"] == "train") & (f["review"].str.len() > 60)]
    r = train_rows.iloc[0]
    assert r["review"][:40] in users[r["user"]]
    assert max(len(c) for rs in texts["item"].reviews for c in rs) <= spec.text.max_review_chars
