"""The KG + text hybrid: contract, ablation switches, losses, save/load, inductive items, resume."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from kgrec.errors import SpecError
from kgrec.models import MODELS, HybridConfig, HybridRecommender, Recommender
from kgrec.models.hybrid import HybridInputs, SideLinks
from kgrec.testing import RecommenderContract, synthetic_matrix
from kgrec.train import TrainingOptions

N_USERS, N_ITEMS, N_GROUPS = 60, 40, 3
GROUP = np.arange(N_ITEMS) % N_GROUPS  # the planted item clusters of synthetic_matrix
FAST = TrainingOptions(epochs=12, batch_size=16, lr=1e-2, patience=0, seed=7)
SMALL = {"dim": 16, "layers": 1, "tau": 0.2}


def synthetic_inputs(seed: int = 0) -> HybridInputs:
    """Text = noisy one-hot of the item's cluster; KG = item -> cluster entity (+ a noise
    relation to random shared 'studio' entities)."""
    rng = np.random.default_rng(seed)
    text = np.eye(N_GROUPS, 8, dtype=np.float32)[GROUP] + 0.1 * rng.standard_normal(
        (N_ITEMS, 8)
    ).astype(np.float32)
    ents = np.array([f"genre:g{g}" for g in range(N_GROUPS)] + ["studio:a", "studio:b"], object)
    genre = sp.csr_matrix(
        (np.ones(N_ITEMS, np.float32), (np.arange(N_ITEMS), GROUP)), shape=(N_ITEMS, len(ents))
    )
    studio = sp.csr_matrix(
        (np.ones(N_ITEMS, np.float32), (np.arange(N_ITEMS), 3 + rng.integers(0, 2, N_ITEMS))),
        shape=(N_ITEMS, len(ents)),
    )
    links = SideLinks(("has_genre", "made_by"), ents, (genre, studio))
    return HybridInputs(N_USERS, N_ITEMS, item_text=text, item_links=links)


def make_hybrid(inputs: HybridInputs | None = None, options=FAST, **overrides) -> HybridRecommender:
    return HybridRecommender(HybridConfig(**{**SMALL, **overrides}), options=options, inputs=inputs)


def without_items(matrix, items: np.ndarray):
    """``matrix`` with every interaction of ``items`` removed (they become cold items)."""
    out = matrix.tolil(copy=True)
    out[:, items] = 0
    out = out.tocsr()
    out.eliminate_zeros()
    return out


class TestHybridContract(RecommenderContract):
    def make(self):
        return make_hybrid(synthetic_inputs())


class TestHybridIdOnlyContract(RecommenderContract):
    def make(self):
        return make_hybrid(None)


@pytest.fixture(scope="module")
def data() -> sp.csr_matrix:
    return synthetic_matrix(N_USERS, N_ITEMS, seed=3)


def test_registered():
    assert MODELS["hybrid"] is HybridRecommender


def test_config_validation_and_roundtrip():
    c = HybridConfig(dim=32, kg=False, align=0.5, alpha=0.3, beta=0.7)
    assert HybridConfig.from_dict(c.to_dict()) == c
    with pytest.raises(SpecError, match="ranking"):
        HybridConfig(ranking="pointwise")
    with pytest.raises(SpecError, match="id_dropout"):
        HybridConfig(id_dropout=1.0)
    with pytest.raises(SpecError, match="alpha \\+ beta"):
        HybridConfig(alpha=0.0, beta=0.0)
    with pytest.raises(SpecError, match="unknown option"):
        HybridConfig.from_dict({"dim": 8, "heads": 2})


def test_ablation_switches_shape_the_network(data):
    inp = synthetic_inputs()
    full = make_hybrid(inp, options=FAST.replace(epochs=1)).fit(data)
    assert full.module_.item_side is not None and full.module_.fusion.proj is not None
    no_kg = make_hybrid(inp, options=FAST.replace(epochs=1), kg=False).fit(data)
    assert no_kg.module_.item_side is None and no_kg.module_.fusion.proj is not None
    no_text = make_hybrid(inp, options=FAST.replace(epochs=1), text=False).fit(data)
    assert no_text.module_.item_side is not None and no_text.module_.fusion.proj is None
    neither = make_hybrid(inp, options=FAST.replace(epochs=1), kg=False, text=False).fit(data)
    assert neither.module_.fusion is None


def test_loss_terms(data):
    """Each optional term changes the loss; all variants train to finite values."""
    from kgrec.models.hybrid import UserBatchSampler

    inp = synthetic_inputs()
    values = {}
    for name, kw in {
        "softmax": {},
        "bpr": {"ranking": "bpr"},
        "multitask": {"alpha": 0.5, "beta": 0.5},
        "align": {"align": 1.0},
        "kg": {"kg_loss": 1.0, "triples_per_batch": 64},
    }.items():
        model = make_hybrid(inp, options=FAST.replace(epochs=1), id_dropout=0.0, **kw)
        model.fit(data)
        il = model.item_links_
        sampler = UserBatchSampler(
            model.train_,
            batch_size=16,
            seed=0,
            triples=il.triples() if kw.get("kg_loss") else None,
            n_entities=len(il.entities),
            triples_per_batch=64,
        )
        batch = next(iter(sampler.batches(0)))
        torch.manual_seed(0)
        model.module_.train()
        values[name] = float(model.module_.loss(batch).detach())
        assert np.isfinite(values[name])
        assert np.isfinite(model.item_vectors().numpy()).all()
    assert len({round(v, 6) for v in values.values()}) == len(values), values


def test_sampler_excludes_positives_and_is_deterministic(data):
    from kgrec.models.hybrid import UserBatchSampler

    s = UserBatchSampler(data, batch_size=16, seed=1)
    a, b = list(s.batches(3)), list(s.batches(3))
    assert all(torch.equal(x.neg, y.neg) for x, y in zip(a, b, strict=True))
    dense = data.toarray() > 0
    for batch in a:
        u = batch.users[batch.rows].numpy()
        assert dense[u, batch.pos.numpy()].all()
        assert not dense[u, batch.neg.numpy()].any()
    assert sum(len(x.pos) for x in a) == data.nnz


def test_inductive_item_embedding_matches_cold_item_in_model(data, tmp_path):
    """An item without training interactions is represented by content only, exactly what
    embed_items computes from its text and links; it lands near its own cluster; it survives
    save/load."""
    inp = synthetic_inputs()
    cold = np.array([0, 1, 2])  # one item per cluster
    train = without_items(data, cold)
    model = make_hybrid(
        inp, options=FAST.replace(epochs=20), id_dropout=0.3, cold_map="content"
    ).fit(train)
    # the same links the model saw for these items (their "made_by" studio is random)
    stacked = [inp.item_links.matrices[1][i].indices for i in cold]
    links = [
        [("has_genre", f"genre:g{GROUP[i]}"), ("made_by", str(inp.item_links.entities[s[0]]))]
        for i, s in zip(cold, stacked, strict=True)
    ]
    emb = model.embed_items(inp.item_text[cold], links)
    inside = model.item_vectors().numpy()[cold]
    np.testing.assert_allclose(emb, inside, atol=1e-5)
    # nearest warm items by cosine belong to the cold item's own cluster, mostly
    warm = np.setdiff1d(np.arange(N_ITEMS), cold)
    sims = emb @ model.item_vectors().numpy()[warm].T
    top = warm[np.argsort(-sims, axis=1)[:, :5]]
    same = (GROUP[top] == GROUP[cold][:, None]).mean()
    assert same >= 0.6, same
    # text alone and links alone also work
    assert model.embed_items(text=inp.item_text[cold]).shape == (3, SMALL["dim"])
    assert model.embed_items(links=links).shape == (3, SMALL["dim"])
    loaded = Recommender.load(model.save(tmp_path / "m"))
    np.testing.assert_allclose(loaded.embed_items(inp.item_text[cold], links), emb, atol=1e-6)


def test_network_inputs_are_buffers_outside_the_saved_state(data):
    """The adjacency, warm mask, item text and link stacks travel with the network (buffers)
    but are not saved: the saved network is its parameters alone (the format of models saved
    before the inputs became buffers), and a network rebuilt without its inputs embeds new
    items exactly as the trained one."""
    inp = synthetic_inputs()
    model = make_hybrid(
        inp, options=FAST.replace(epochs=2), kg_loss=0.1, user_links=False, cold_map="content"
    ).fit(data)
    mod = model.module_
    buffers = {name for name, _ in mod.named_buffers()}
    assert buffers == {"adj", "warm", "text", "item_side.stack", "item_side.stack_t"}
    assert set(mod.state_dict()) == {name for name, _ in mod.named_parameters()}
    assert mod.adj.layout == torch.sparse_csr and mod.warm.dtype == torch.bool
    bare = model._new_module(model.n_users_, model.n_items_, model._extra_meta()["network"])
    assert all(b is None for b in (bare.adj, bare.warm, bare.text, bare.item_side.stack))
    bare.load_state_dict(mod.state_dict())
    bare.eval()
    mod.eval()
    t = torch.from_numpy(inp.item_text[:4])
    lk = torch.from_numpy(inp.item_links.stacked()[:4].toarray())  # any (R * n, E) matrix
    lk = lk.to_sparse_csr()
    with torch.no_grad():
        assert torch.equal(bare.embed_new_items(t, None), mod.embed_new_items(t, None))
        assert torch.equal(bare.item_side(lk), mod.item_side(lk))
    with pytest.raises(RuntimeError, match="built without"):
        bare()  # no links, no adjacency: nothing to propagate


def test_resume_matches_uninterrupted_run(data, tmp_path):
    inp = synthetic_inputs()
    straight = make_hybrid(inp, options=FAST.replace(epochs=6)).fit(data)
    ck = str(tmp_path / "ck")
    make_hybrid(inp, options=FAST.replace(epochs=3, checkpoint_dir=ck)).fit(data)
    resumed = make_hybrid(inp, options=FAST.replace(epochs=6, checkpoint_dir=ck, resume=True))
    resumed.fit(data)
    assert resumed.result_.resumed_from == 3
    np.testing.assert_allclose(resumed.item_vectors(), straight.item_vectors(), atol=1e-5)


def test_early_stopping_uses_validation(data):
    calls = []

    def validate(model) -> float:
        calls.append(1)
        return 1.0 if len(calls) == 2 else 0.5

    model = make_hybrid(synthetic_inputs(), options=FAST.replace(epochs=30, patience=3))
    model.fit(data, validate=validate)
    assert model.result_.best_epoch == 1
    assert model.result_.stopped_early and model.result_.epochs_run == 5


def test_inputs_must_match_training_matrix(data):
    from kgrec.errors import DataError

    with pytest.raises(DataError, match="hybrid inputs"):
        make_hybrid(synthetic_inputs()).fit(data[:, :30])


def test_make_model_without_context_is_id_only():
    from kgrec.experiment import CompareOptions, make_model

    m = make_model("hybrid", 5, CompareOptions(models=("hybrid",), epochs=3))
    assert isinstance(m, HybridRecommender) and m.inputs is None
    assert m.options.seed == 5 and m.options.epochs == 3


def test_ease_blend_selected_on_validation(data, tmp_path):
    calls = []

    def validate(model) -> float:
        calls.append(model.blend_w_)
        return -abs(model.blend_w_ - 0.3)  # a validation curve peaking at w = 0.3

    model = make_hybrid(synthetic_inputs(), options=FAST.replace(epochs=2), cf_blend="ease")
    model.fit(data, validate=validate)
    assert model.blend_w_ == pytest.approx(0.3)
    assert model.ease_.shape == (N_ITEMS, N_ITEMS)
    loaded = Recommender.load(model.save(tmp_path / "m"))
    assert torch.allclose(loaded.score(np.arange(5)), model.score(np.arange(5)), atol=1e-5)


@pytest.mark.parametrize("name", ["textknn", "kgknn", "content2cf"])
def test_cold_start_baselines_rank_cold_items_by_content(name, data, tmp_path):
    """Items without training interactions are ranked from content: a user's held-out cold item
    of their own cluster beats the other clusters' cold items more often than chance."""
    klass = MODELS[name]
    cold = np.arange(30, 40)
    train = without_items(data, cold)
    model = klass(inputs=synthetic_inputs()).fit(train)
    users = np.flatnonzero(np.asarray(data[:, cold].sum(1)).ravel() > 0)
    s = model.score(users)[:, cold].numpy()
    truth = data[users][:, cold].toarray() > 0
    top1 = s.argmax(1)
    hit = truth[np.arange(len(users)), top1].mean()
    assert hit > 2 * truth.mean(), (hit, truth.mean())
    loaded = Recommender.load(model.save(tmp_path / name))
    assert torch.allclose(loaded.score(users[:4]), model.score(users[:4]), atol=1e-5)


def test_cold_start_baselines_need_inputs(data):
    from kgrec.errors import KgrecError

    with pytest.raises(KgrecError, match="inputs"):
        MODELS["textknn"]().fit(data)


@pytest.mark.slow
def test_cli_train_and_compare_hybrid_on_ml100k(ml100k_dir, tmp_path):
    """`kgrec train SPEC --model hybrid` (2 epochs, resumed to 3) and `kgrec compare SPEC
    --models ease,hybrid` run end to end on the real graph and text (slow: ~1-2 min)."""
    import json
    from pathlib import Path

    from click.testing import CliRunner

    from kgrec.cli import cli

    spec = str(Path(__file__).resolve().parents[2] / "graphs" / "movielens-100k.toml")
    out = tmp_path / "run"
    args = ["train", spec, "--model", "hybrid", "--out", str(out), "--no-progress"]
    res = CliRunner().invoke(cli, [*args, "--epochs", "2"])
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(cli, [*args, "--epochs", "3"])
    assert res.exit_code == 0, res.output
    assert "resumed from epoch 2" in res.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["test"]["test"]["NDCG@20"] > 0.1
    model = Recommender.load(out / "model")
    assert model.name == "hybrid" and model.module_.item_side is not None
    rep = tmp_path / "cmp"
    res = CliRunner().invoke(
        cli,
        [
            "compare",
            spec,
            "--models",
            "ease,hybrid",
            "--epochs",
            "2",
            "--out",
            str(rep),
            "--no-progress",
        ],
    )
    assert res.exit_code == 0, res.output
    assert "hybrid" in res.output and (rep / "report.json").is_file()


def test_ridge_cold_map_embeds_new_items(data, tmp_path):
    inp = synthetic_inputs()
    cold = np.array([0, 1, 2])
    train = without_items(data, cold)
    model = make_hybrid(inp, options=FAST.replace(epochs=10), cold_map="ridge").fit(train)
    links = [
        [("has_genre", f"genre:g{GROUP[i]}"), ("made_by", str(inp.item_links.entities[s[0]]))]
        for i, s in zip(cold, [inp.item_links.matrices[1][i].indices for i in cold], strict=True)
    ]
    emb = model.embed_items(inp.item_text[cold], links)
    np.testing.assert_allclose(emb, model.item_vectors().numpy()[cold], atol=1e-4)
    loaded = Recommender.load(model.save(tmp_path / "m"))
    np.testing.assert_allclose(loaded.embed_items(inp.item_text[cold], links), emb, atol=1e-5)


def test_cold_map_calibration_undoes_ridge_shrinkage():
    """A strong ridge shrinks predictions for unseen rows toward their mean; the out-of-fold
    calibration scales them back to the spread of the targets."""
    from kgrec.models.hybrid._cold_map import calibration, ridge

    rng = np.random.default_rng(0)
    x = np.hstack([rng.normal(size=(400, 30)), np.ones((400, 1))])
    y = x[:, :30] @ rng.normal(size=(30, 8)) + 3.0
    seen, unseen = slice(0, 300), slice(300, 400)
    w = ridge(x[seen], y[seen], 200.0)
    alpha, offset = calibration(x[seen], y[seen], 200.0, seed=0)
    assert alpha > 1.0

    def spread(v):
        return float(((v - v.mean(0)) ** 2).sum(1).mean())

    raw, fixed = x[unseen] @ w, alpha * (x[unseen] @ w) + offset
    truth = y[unseen]
    assert spread(raw) < 0.8 * spread(truth)
    assert abs(spread(fixed) / spread(truth) - 1.0) < abs(spread(raw) / spread(truth) - 1.0)


def test_cold_scale_is_chosen_on_validation_and_kept(data, tmp_path):
    """The length of content-only vectors comes from the validation callback; embed_items and a
    reloaded model give the same scaled vectors."""
    inp = synthetic_inputs()
    cold = np.array([0, 1, 2])
    train = without_items(data, cold)
    seen: list[float] = []

    def validate(m) -> float:  # prefers content-only vectors of length 0.5
        n = float(np.linalg.norm(m.item_vectors().numpy()[cold], axis=1).mean())
        seen.append(n)
        return -((n - 0.5) ** 2)

    model = make_hybrid(inp, options=FAST.replace(epochs=3)).fit(train, validate=validate)
    assert model.cold_scale_ == 0.5 and set(model.cold_scale_curve_) == {0.25, 0.5, 0.75, 1}
    inside = model.item_vectors().numpy()[cold]
    np.testing.assert_allclose(np.linalg.norm(inside, axis=1), 0.5, atol=1e-5)
    links = [[("has_genre", f"genre:g{GROUP[i]}")] for i in cold]
    emb = model.embed_items(inp.item_text[cold], links)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 0.5, atol=1e-5)
    loaded = Recommender.load(model.save(tmp_path / "m"))
    assert loaded.cold_scale_ == 0.5
    np.testing.assert_allclose(loaded.embed_items(inp.item_text[cold], links), emb, atol=1e-6)


def test_ridge_cold_map_module_matches_the_hybrids_cold_vectors(data):
    """The extracted cold map (kgrec.models.hybrid._cold_map) is what the hybrid uses: fitting it
    on the hybrid's warm vectors reproduces the hybrid's cold-item vectors."""
    from kgrec.models.hybrid._cold_map import RidgeColdMap

    inp = synthetic_inputs()
    cold = np.array([0, 1, 2])
    m = without_items(data, cold)
    model = make_hybrid(inp, cold_map="ridge", cold_knn=0.0).fit(m)
    x = model._cold_features()
    warm = np.asarray(m.sum(0)).ravel() > 0
    ref = RidgeColdMap(model.config.cold_ridge, model.config.cold_calibrate, model.options.seed)
    ref.fit(x[warm], model.item_vecs_[warm])
    np.testing.assert_allclose(ref.w, model.cold_w_, atol=1e-6)
    np.testing.assert_allclose(
        model.cold_scale_ * ref.map(x[cold]), model.item_vecs_[cold], atol=1e-5
    )


def test_knn_vectors_follow_the_most_similar_known_items():
    """A query equal to one known item's features gets (nearly) that item's vector; a blend
    weight of 0 leaves the ridge vectors as they are."""
    from kgrec.models.hybrid._cold_map import blend_unit, knn_vectors, unit_rows

    rng = np.random.default_rng(1)
    feats = unit_rows(rng.normal(size=(40, 12)))
    vecs = unit_rows(rng.normal(size=(40, 6)))
    out = knn_vectors(feats[[3, 7]], sp.csr_matrix(feats), vecs, k=5, temperature=0.01)
    np.testing.assert_allclose(out, vecs[[3, 7]], atol=1e-3)
    np.testing.assert_allclose(blend_unit(vecs[:2], out, 0.0), vecs[:2], atol=1e-6)


def test_cold_knn_blend_changes_cold_vectors_and_survives_reload(data, tmp_path):
    inp = synthetic_inputs()
    cold = np.array([0, 1, 2])
    m = without_items(data, cold)
    plain = make_hybrid(inp, cold_map="ridge", cold_knn=0.0).fit(m)
    knn = make_hybrid(inp, cold_map="ridge", cold_knn=0.5).fit(m)
    assert np.abs(knn.item_vecs_[cold] - plain.item_vecs_[cold]).max() > 1e-3
    np.testing.assert_allclose(knn.item_vecs_[3:], plain.item_vecs_[3:], atol=1e-6)
    emb = knn.embed_items(inp.item_text[cold], [[] for _ in cold])
    loaded = Recommender.load(knn.save(tmp_path / "m"))
    np.testing.assert_allclose(
        loaded.embed_items(inp.item_text[cold], [[] for _ in cold]), emb, atol=1e-5
    )
