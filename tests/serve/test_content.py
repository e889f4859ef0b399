"""The content-only model: protocol conformance, vectors, attribute matching, inductive
embedding consistent with the catalog items' vectors."""

from __future__ import annotations

import numpy as np
import pytest

from kgrec.errors import DataError, UnknownIdError
from kgrec.serve import ColdStartModel, NewItem
from kgrec.testing import ColdStartContract


def test_conforms_to_protocol_and_shapes(content_model):
    m = content_model
    assert isinstance(m, ColdStartModel)
    items, users = m.item_vectors(), m.user_vectors()
    assert items.shape == (1682, users.shape[1]) and users.shape[0] == len(m.user_ids) == 942
    assert np.isfinite(items).all() and np.isfinite(users).all()
    # every ml-100k item has text, so every vector is non-zero; parts are unit-norm -> norm <= 1
    norms = np.linalg.norm(items, axis=1)
    assert (norms > 0.5).all() and (norms <= 1 + 1e-5).all()
    assert m.title("50") == "Star Wars" and m.item_row("50") == m.item_ids.index("50")
    assert m.fingerprint.startswith("content:") and len(m.known_items("1")) == 272


def test_user_vector_is_mean_of_positive_items(content_model, spec):
    from kgrec.eval import positives

    m = content_model
    pos = positives(spec.load_dataset(), min_rating=spec.interactions.min_rating)
    u = "1"
    rows = [m.item_row(str(i)) for i, uu in zip(
        np.asarray(pos.items.ids)[pos.item], np.asarray(pos.users.ids)[pos.user], strict=True
    ) if str(uu) == u]  # fmt: skip
    mean = m.item_vectors()[rows].mean(0)
    got = m.user_vectors()[m.user_ids.index(u)]
    np.testing.assert_allclose(got, mean / np.linalg.norm(mean), atol=1e-5)


def test_attributes_matched_through_spec(content_model):
    emb = content_model.embed_items(
        [
            NewItem(
                title="Galaxy Raiders",
                attributes={"class": ["Sci-Fi", "Nope"], "release_year": 1997, "genre": "Drama"},
            )
        ]
    )
    assert emb.vectors.shape == (1, content_model.item_vectors().shape[1])
    assert "has_genre -> genre:Sci-Fi" in emb.matched[0]
    assert "released_in_decade -> decade:1990s" in emb.matched[0]  # bucketed like the spec
    assert "has_genre -> genre:Drama" in emb.matched[0]  # by entity type
    assert emb.unmatched[0] == ["class=Nope"]
    with pytest.raises(DataError, match=r"unknown attribute 'colour'.*accepted"):
        content_model.embed_items([NewItem(title="x", attributes={"colour": "red"})])


def _graph_attributes(kg, item_id: str) -> dict[str, list[str]]:
    """Every KG link of a catalog item, as new-item attributes (relation -> entity ids)."""
    row = int(kg.vocab("item").index(item_id))
    out: dict[str, list[str]] = {}
    for src, rel, dst in kg.forward_edge_types():
        if src == "item" and dst not in ("user", "item"):
            e, mine, other, ot = kg.edge_index((src, rel, dst)), 0, 1, dst
        elif dst == "item" and src not in ("user", "item"):
            e, mine, other, ot = kg.edge_index((src, rel, dst)), 1, 0, src
        else:
            continue
        ids = kg.vocab(ot).ids[e[other][e[mine] == row]]
        if len(ids):
            out.setdefault(rel, []).extend(str(i) for i in ids)
    return out


def test_catalog_row_embeds_exactly_like_its_item(content_model, spec):
    """An existing movie given as a NEW row (title, genres, year and its KG links; no id, no
    interactions) gets exactly its catalog vector: the inductive path is the catalog path."""
    from kgrec.graph import load_or_build

    kg = load_or_build(spec)
    frame = spec.load_dataset().items.frame.set_index("id")
    ids = ["1", "50", "100", "181", "267"]
    rows = []
    for i in ids:
        attrs = _graph_attributes(kg, i)
        attrs["class"] = list(frame.loc[i, "class"])
        attrs["release_year"] = [frame.loc[i, "release_year"]]
        rows.append(NewItem(title=str(frame.loc[i, "movie_title"]), attributes=attrs))
    emb = content_model.embed_items(rows)
    want = content_model.item_vectors()[[content_model.item_row(i) for i in ids]]
    np.testing.assert_allclose(emb.vectors, want, atol=1e-5)
    assert any(m.startswith("film.") for m in emb.matched[1])  # Star Wars has Freebase links


def test_embed_user_history_and_text(content_model):
    v = content_model.embed_user(["50", "181"], None)
    assert abs(np.linalg.norm(v) - 1) < 1e-5
    with pytest.raises(UnknownIdError, match="'nope'"):
        content_model.embed_user(["50", "nope"])
    with pytest.raises(DataError, match="history item ids and/or free text"):
        content_model.embed_user([], "  ")
    t = content_model.embed_user([], "space war")
    assert t.shape == v.shape and abs(np.linalg.norm(t) - 1) < 1e-5


def test_randomized_svd_matches_exact_top_singular_values():
    import scipy.sparse as sp

    from kgrec.models._content import randomized_svd

    x = sp.random(300, 500, density=0.02, random_state=0, format="csr")
    s, vt = randomized_svd(x, 10, seed=0)
    exact = np.linalg.svd(x.toarray(), compute_uv=False)[:10]
    np.testing.assert_allclose(s, exact, rtol=0.02)  # a flat spectrum: the hard case
    np.testing.assert_allclose(vt @ vt.T, np.eye(10), atol=1e-5)
    _s2, vt2 = randomized_svd(x, 10, seed=0)
    assert np.array_equal(vt, vt2)  # deterministic in the seed


class TestContentModelColdStart(ColdStartContract):
    """The content model honours the cold-start contract (kgrec.testing)."""

    @pytest.fixture
    def model(self, content_model):
        return content_model

    def new_items(self):
        return [
            NewItem(title="Galaxy Raiders", attributes={"class": ["Sci-Fi"]}),
            NewItem(title="A quiet village romance", description="Two neighbours fall in love."),
        ]
