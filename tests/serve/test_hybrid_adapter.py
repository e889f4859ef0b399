"""The trained hybrid behind the serving protocol: a tiny hybrid (1 epoch, dim 16) trained on
ml-100k, saved like `kgrec train` saves it, loaded by HybridAdapter.from_dir and served."""

from __future__ import annotations

import numpy as np
import pytest

from kgrec.serve import ColdStartModel, HybridAdapter, NewItem, Retriever
from kgrec.testing import ColdStartContract
from tests.serve.conftest import HashEncoder


@pytest.fixture(scope="module")
def trained_dir(spec, tmp_path_factory):
    from kgrec.eval import make_split, positives
    from kgrec.graph import load_or_build
    from kgrec.models import hybrid
    from kgrec.text import embed_texts, texts_from_spec
    from kgrec.train import TrainingOptions

    ds = spec.load_dataset()
    pos = positives(ds, min_rating=spec.interactions.min_rating)
    split = make_split(pos, "random", seed=0)
    text = embed_texts(texts_from_spec(spec, ds)["item"], HashEncoder())
    inputs = hybrid.inputs_from_graph(load_or_build(spec), pos.users, pos.items, item_text=text)
    model = hybrid.HybridRecommender(
        hybrid.HybridConfig(dim=16, layers=1),
        options=TrainingOptions(epochs=1, batch_size=256, seed=0),
        inputs=inputs,
    ).fit(split.train_matrix())
    out = tmp_path_factory.mktemp("hybrid")
    model.save(out / "model")
    split.save(out / "split.npz")
    return out


@pytest.fixture(scope="module")
def adapter(trained_dir, spec):
    return HybridAdapter.from_dir(trained_dir, spec, encoder=HashEncoder())


def test_adapter_serves_a_trained_hybrid(adapter):
    m = adapter
    assert isinstance(m, ColdStartModel) and m.fingerprint.startswith("hybrid:")
    assert m.item_vectors().shape == (len(m.item_ids), 16)
    assert m.user_vectors().shape == (len(m.user_ids), 16)
    assert m.known_items(m.user_ids[0])  # training positives
    emb = m.embed_items([NewItem(title="Galaxy Raiders", attributes={"class": ["Sci-Fi"]})])
    assert emb.vectors.shape == (1, 16) and np.isfinite(emb.vectors).all()
    assert "has_genre -> genre:Sci-Fi" in emb.matched[0]
    r = Retriever(m).build()
    added = r.add_item(NewItem(title="Galaxy Raiders", attributes={"class": ["Sci-Fi"]}))
    twin = r.neighbors(NewItem(title="Galaxy Raiders", attributes={"class": ["Sci-Fi"]}), 3)
    assert twin.items[0].id == added.id
    rec = r.recommend(m.user_ids[0], k=5)
    assert len(rec.items) == 5 and not {h.id for h in rec.items} & set(m.known_items(m.user_ids[0]))
    assert len(r.recommend(text="space war", k=3).items) == 3


def test_similar_items_come_from_the_content_space_users_from_the_hybrid(adapter, spec):
    """neighbors(): similar items from the content model's space (what items are), the users
    likely to want the item from the hybrid's CF-trained vectors."""
    from kgrec.serve import ContentAdapter

    m = adapter
    content = ContentAdapter.from_spec(spec, encoder=HashEncoder())
    new = NewItem(title="Galaxy Raiders", attributes={"class": ["Sci-Fi"]})
    got = Retriever(m).build().neighbors(new, 5, users_k=5)
    want = Retriever(content).build().neighbors(new, 20, users_k=0)
    assert [h.id for h in got.items] == [h.id for h in want.items if h.id in set(m.item_ids)][:5]
    vec = m.embed_items([new]).vectors[0]
    users = m.user_vectors() @ vec
    assert got.users[0].id == m.user_ids[int(np.argmax(users))]


class TestHybridAdapterColdStart(ColdStartContract):
    """The trained hybrid behind the serving protocol honours the cold-start contract."""

    @pytest.fixture
    def model(self, adapter):
        return adapter

    def new_items(self):
        return [
            NewItem(title="Galaxy Raiders", attributes={"class": ["Sci-Fi"]}),
            NewItem(title="A quiet village romance", attributes={"class": ["Romance"]}),
        ]
