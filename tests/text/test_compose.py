"""Item/user text composition: catalog rendering, training reviews only, per-review averaging."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from kgrec.data import Dataset, Interactions
from kgrec.errors import KgrecError, SpecError
from kgrec.text import (
    EntityEmbeddings,
    embed_many,
    embed_texts,
    item_texts,
    render_fields,
    texts_from_spec,
    training_mask,
    training_reviews,
    truncate,
    user_texts,
)

from .conftest import FakeEncoder, review_dataset


def _unit(v):
    return v / np.linalg.norm(v)


def test_catalog_fields_render_in_order():
    ds = review_dataset()
    t = item_texts(ds, fields=["title", "genre", "year"])
    assert list(t.ids) == ["i1", "i2", "i3"]
    assert t.texts == [
        "Guitar Strings. genre: accessory, strings. year: 2010",
        "Clip Tuner. genre: tuner",  # NaN year and empty values are skipped
        "Capo. year: 1234567.5",
    ]
    assert t.reviews == [(), (), ()]


def test_ml100k_item_text(ml100k):
    t = item_texts(ml100k, fields=["movie_title", "release_year", "class"])
    assert len(t) == 1682
    assert t.texts[0] == "Toy Story. release_year: 1995. class: Animation, Children's, Comedy"


def test_unknown_field_names_alternatives():
    ds = review_dataset()
    with pytest.raises(
        SpecError, match=r"unknown column\(s\) \['titel'\].*\['title', 'genre', 'year'\]"
    ) as e:
        render_fields(ds.items, ["titel"])
    assert e.value.key == "text.item_fields"
    no_catalog = Dataset("x", ds.interactions)
    with pytest.raises(SpecError, match="no item catalog"):
        item_texts(no_catalog, fields=["title"])


def test_reviews_require_an_explicit_training_mask():
    ds = review_dataset()
    with pytest.raises(ValueError, match="needs train_mask"):
        item_texts(ds, reviews=True)
    with pytest.raises(ValueError, match="needs train_mask"):
        user_texts(ds, reviews=True)
    with pytest.raises(ValueError, match="shape"):
        item_texts(ds, reviews=True, train_mask=np.ones(3, bool))
    with pytest.raises(TypeError, match="boolean"):
        item_texts(ds, reviews=True, train_mask=np.ones(6, int))


def test_only_training_reviews_are_used():
    ds = review_dataset()
    mask = training_mask(ds)
    assert mask.tolist() == [True, True, True, False, False, True]
    items = item_texts(ds, fields=["title"], reviews=True, train_mask=mask)
    users = user_texts(ds, train_mask=mask)
    every = [r for t in (items, users) for rs in t.reviews for r in rs]
    assert not [r for r in every if "ONLY" in r]  # no val/test review anywhere
    assert items.reviews[0] == ("great strings, bright tone", "strings broke after a week")
    assert items.reviews[2] == ()  # i3: test review excluded, train review empty
    assert dict(zip(users.ids, users.reviews, strict=True))["u3"] == ()


def test_training_mask_needs_a_split_column(ml100k):
    with pytest.raises(KgrecError, match=r"no 'split' column.*pass train_mask"):
        training_mask(ml100k)


def test_truncate_cuts_at_a_word_boundary():
    assert truncate("short", 10) == "short"
    assert truncate("one two three four", 12) == "one two"  # not "one two thre"
    assert truncate("x" * 30, 10) == "x" * 10
    ds = review_dataset()
    r = training_reviews(ds, training_mask(ds), by="item", max_review_chars=14)
    assert r["i1"] == ("great strings,", "strings broke")


def test_vectors_average_per_review_and_combine_with_catalog(fake):
    ds = review_dataset()
    mask = training_mask(ds)
    items = item_texts(ds, fields=["title"], reviews=True, train_mask=mask)
    emb = embed_texts(items, fake)
    f = FakeEncoder()
    title, r1, r2 = f.encode(["Guitar Strings", *items.reviews[0]])
    expected = _unit(_unit(title) + _unit((r1 + r2) / 2))
    np.testing.assert_allclose(emb.vectors[0], expected, atol=1e-6)
    np.testing.assert_allclose(emb.vectors[2], f.encode(["Capo"])[0], atol=1e-6)  # catalog only
    assert emb.has_text.all() and emb.vectors.dtype == np.float32


def test_entity_without_text_gets_a_zero_vector(fake):
    ds = review_dataset()
    users = user_texts(ds, train_mask=training_mask(ds))
    emb = embed_texts(users, fake)
    u3 = list(emb.ids).index("u3")
    assert not emb.has_text[u3] and not emb.vectors[u3].any()
    assert emb.has_text.sum() == 2


def test_shared_reviews_are_encoded_once(fake):
    ds = review_dataset()
    mask = training_mask(ds)
    parts = [item_texts(ds, reviews=True, train_mask=mask), user_texts(ds, train_mask=mask)]
    embs = embed_many(parts, fake)
    assert len(fake.calls) == 1
    assert sorted(fake.seen) == sorted(set(fake.seen))  # each distinct review once
    assert len(fake.seen) == 3
    assert [e.node_type for e in embs] == ["item", "user"]


def test_embeddings_save_load_roundtrip(fake, tmp_path):
    emb = embed_texts(item_texts(review_dataset(), fields=["title"]), fake)
    path = emb.save(tmp_path / "sub" / "item.npz")
    back = EntityEmbeddings.load(path)
    assert back.node_type == "item" and back.model_id == "fake"
    assert list(back.ids) == list(emb.ids)
    np.testing.assert_array_equal(back.vectors, emb.vectors)
    np.testing.assert_array_equal(back.vector("i2"), emb.vectors[1])
    assert not list((tmp_path / "sub").glob("*.tmp"))


def _spec(**text):
    t = dict(
        item_fields=["title"],
        item_tags=False,
        item_reviews=True,
        user_reviews=True,
        max_review_chars=100,
    )
    t.update(text)
    return SimpleNamespace(text=SimpleNamespace(**t), path="tiny.toml")


def test_texts_from_spec_maps_the_contract_attributes():
    ds = review_dataset()
    out = texts_from_spec(_spec(), ds)
    assert set(out) == {"item", "user"}
    assert out["item"].texts[0] == "Guitar Strings"
    assert out["item"].reviews[0][0] == "great strings, bright tone"
    assert set(texts_from_spec(_spec(user_reviews=False), ds)) == {"item"}
    no_split = Dataset("nosplit", Interactions(ds.interactions.frame.drop(columns="split")))
    with pytest.raises(SpecError, match="pass train_mask") as e:
        texts_from_spec(_spec(item_fields=[]), no_split)
    assert e.value.key == "text.item_reviews"
    with pytest.raises(SpecError, match="unknown column") as e:
        texts_from_spec(_spec(item_fields=["nope"]), ds)
    assert e.value.spec == "tiny.toml"


def _change_eval_reviews(ds: Dataset, new: str) -> Dataset:
    f = ds.interactions.frame.copy()
    heldout = (f["split"] != "train").to_numpy()
    f.loc[heldout, "review"] = [f"{new} {i}" for i in range(int(heldout.sum()))]
    return Dataset(ds.name, Interactions(f), items=ds.items, users=ds.users)


def test_leakage_real_encoder_test_reviews_change_no_training_embedding(encoder):
    """Must show: changing validation/test review text changes no embedding training uses."""
    ds = review_dataset()
    changed = _change_eval_reviews(ds, "completely different words about pianos")
    out = []
    for d in (ds, changed):
        mask = training_mask(d)
        parts = [
            item_texts(d, fields=["title"], reviews=True, train_mask=mask),
            user_texts(d, train_mask=mask),
        ]
        out.append(embed_many(parts, encoder))
    for a, b in zip(*out, strict=True):
        np.testing.assert_array_equal(a.vectors, b.vectors)
    # and the check has teeth: changing a TRAINING review does change an embedding
    f = ds.interactions.frame.copy()
    f.loc[0, "review"] = "completely different words about pianos"
    d = Dataset(ds.name, Interactions(f), items=ds.items)
    moved = embed_texts(
        item_texts(d, fields=["title"], reviews=True, train_mask=training_mask(d)), encoder
    )
    assert not np.allclose(moved.vectors[0], out[0][0].vectors[0])


def test_leakage_amazon_all_heldout_reviews(amazon_dir):
    """On the real amazon-instruments data: rewriting all 2,053 val/test reviews changes no
    item or user embedding (deterministic fake encoder: this is about composition)."""
    from kgrec.data import load_dataset

    ds = load_dataset("amazon-instruments", path=amazon_dir)
    changed = _change_eval_reviews(ds, "QQLEAKEDQQ")
    res = []
    for d in (ds, changed):
        enc = FakeEncoder()
        mask = training_mask(d)
        embs = embed_many(
            [item_texts(d, reviews=True, train_mask=mask), user_texts(d, train_mask=mask)], enc
        )
        assert not any("QQLEAKEDQQ" in t for t in enc.seen)
        res.append(embs)
    assert (ds.interactions.frame["split"] != "train").sum() == 2053
    for a, b in zip(*res, strict=True):
        np.testing.assert_array_equal(a.vectors, b.vectors)
    assert pd.Series(res[0][0].has_text).mean() > 0.99
