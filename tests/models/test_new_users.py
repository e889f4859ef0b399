"""The new-user path: attribute prior, history weighting chosen on validation users, popularity
fallback of models without side information, and the hybrid's use of it (warm users untouched)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from kgrec.errors import SpecError
from kgrec.models import EASE, MFBPR, HybridRecommender, ItemKNN
from kgrec.models.hybrid import HybridInputs, SideLinks
from kgrec.models.hybrid._new_user_model import NewUserConfig, NewUserModel
from kgrec.models.hybrid._new_user_tasks import ValidTask, ndcg20
from kgrec.train import TrainingOptions

N_USERS, N_ITEMS, N_GROUPS = 240, 30, 3


def planted(seed: int = 0) -> tuple[sp.csr_matrix, sp.csr_matrix, np.ndarray]:
    """Users of 3 taste groups (attribute = the group, 10% mislabelled); a user likes items of
    their group with p = 0.6, others with p = 0.05."""
    rng = np.random.default_rng(seed)
    group = np.arange(N_USERS) % N_GROUPS
    p = np.where(group[:, None] == (np.arange(N_ITEMS) % N_GROUPS)[None, :], 0.6, 0.05)
    r = sp.csr_matrix((rng.random((N_USERS, N_ITEMS)) < p).astype(np.float32))
    label = np.where(rng.random(N_USERS) < 0.1, rng.integers(0, N_GROUPS, N_USERS), group)
    f = sp.csr_matrix(
        (np.ones(N_USERS, np.float32), (np.arange(N_USERS), label)), shape=(N_USERS, N_GROUPS)
    )
    return r, f, group


def first_users(r: sp.csr_matrix, n: int = 200) -> sp.csr_matrix:
    """``r`` with the rows of users ``n..`` emptied (they are the new users)."""
    out = sp.csr_matrix(sp.diags((np.arange(r.shape[0]) < n).astype(np.float32)) @ r)
    out.eliminate_zeros()
    return out


def test_attribute_prior_beats_popularity_for_new_users():
    r, f, _ = planted()
    test = np.arange(200, N_USERS)
    train = first_users(r)
    with_attr = NewUserModel(seed=0).fit(train, f)
    no_attr = NewUserModel(NewUserConfig(attributes=False), seed=0).fit(train, f)
    empty = sp.csr_matrix((len(test), N_ITEMS), dtype=np.float32)
    tgt = torch.from_numpy(r[test].toarray())
    mask = torch.zeros_like(tgt, dtype=torch.bool)
    a = ndcg20(with_attr.score(empty, f[test]), tgt, mask).mean()
    b = ndcg20(no_attr.score(empty, f[test]), tgt, mask).mean()
    assert a > b + 0.1, (float(a), float(b))
    assert with_attr.choice_["ridge"] in with_attr.choice_["ridge_curve"]


def test_history_weight_grows_with_k_and_is_chosen_on_validation():
    r, f, _ = planted(1)

    def behaviour(h):  # item-item co-occurrence from the revealed items
        return torch.from_numpy(np.asarray((h @ (r.T @ r)).toarray(), np.float32))

    m = NewUserModel(seed=0).fit(r, f, behaviour=behaviour)
    w = m.weight(np.array([0, 1, 3, 10, 100]))
    assert w[0] == 0 and np.all(np.diff(w) > 0) and w[-1] < 1
    from kgrec.models.hybrid._new_user_model import KAPPA_GRID

    assert m.kappa_ in KAPPA_GRID and m.choice_["kappa"] == m.kappa_
    flat = NewUserModel(NewUserConfig(weighting=False), seed=0).fit(r, f, behaviour=behaviour)
    assert list(flat.weight(np.array([0, 1, 20]))) == [0.0, 0.5, 0.5]


def test_given_validation_tasks_are_used():
    r, f, _ = planted(2)
    val = np.arange(200, N_USERS)
    train = first_users(r)
    empty = sp.csr_matrix((len(val), N_ITEMS), dtype=np.float32)
    m = NewUserModel(seed=0).fit(train, f, valid=[ValidTask(0, val, empty, r[val])])
    assert m.choice_["validation"] == "given held-out validation users"
    assert m.choice_["valid_users"] == {0: len(val)}
    with pytest.raises(Exception, match="k = 0"):
        NewUserModel(seed=0).fit(train, f, valid=[ValidTask(1, val, r[val], r[val])])


@pytest.mark.parametrize("klass", [EASE, ItemKNN])
def test_models_without_side_information_fall_back_to_popularity(klass):
    r, _, _ = planted(3)
    train = first_users(r)
    m = klass().fit(train)
    s = m.score(np.array([210, 5]), sp.csr_matrix((2, N_ITEMS), dtype=np.float32))
    pop = np.asarray(train.sum(0)).ravel()
    assert np.allclose(s[0].numpy(), pop)  # new user, no history: popularity
    assert not np.allclose(s[1].numpy(), pop)  # a known user keeps the model's scores


def test_mf_new_user_without_history_gets_popularity_not_ties():
    r, _, _ = planted(4)
    train = first_users(r)
    m = MFBPR(options=TrainingOptions(epochs=1, batch_size=256, seed=0)).fit(train)
    s = m.score(np.array([220]), sp.csr_matrix((1, N_ITEMS), dtype=np.float32))[0]
    assert len(set(s.numpy().round(6))) > 1


def _profile_inputs(f: sp.csr_matrix) -> HybridInputs:
    """Hybrid inputs whose only side information is each user's planted group."""
    prof = SideLinks(("in_group",), np.array([f"group:{g}" for g in range(N_GROUPS)], object), (f,))
    return HybridInputs(N_USERS, N_ITEMS, user_profile=prof)


def _hybrid_pair(tmp_path):
    r, f, _ = planted(5)
    train = first_users(r)
    inputs = _profile_inputs(f)
    opts = TrainingOptions(epochs=3, batch_size=32, seed=1)
    on = HybridRecommender(dim=8, layers=1, cf_blend="none", options=opts, inputs=inputs)
    off = HybridRecommender(
        dim=8, layers=1, cf_blend="none", new_users=False, options=opts, inputs=inputs
    )
    return r, f, train, on.fit(train), off.fit(train)


def test_hybrid_new_user_path_leaves_warm_users_untouched(tmp_path):
    _, _, train, on, off = _hybrid_pair(tmp_path)
    warm = np.arange(0, 50)
    assert torch.equal(on.score(warm), off.score(warm))
    new = np.arange(200, 210)
    empty = sp.csr_matrix((len(new), N_ITEMS), dtype=np.float32)
    s_on, s_off = on.score(new, empty), off.score(new, empty)
    pop = torch.from_numpy(np.asarray(train.sum(0), np.float32).ravel())
    assert torch.allclose(s_off, pop.expand_as(s_off))  # without the path: popularity
    assert not torch.allclose(s_on[0], s_on[1]) or not torch.allclose(s_on[0], s_on[2])
    # saved and loaded: the same new-user scores, and from attribute values by name
    on.save(tmp_path / "m")
    back = HybridRecommender.load(tmp_path / "m")
    assert torch.allclose(back.score(new, empty), s_on, atol=1e-5)
    by_name = back.score_new_users(
        sp.csr_matrix((1, N_ITEMS), dtype=np.float32), attributes=[{"group": "1"}]
    )
    ref = back.score_new_users(
        sp.csr_matrix((1, N_ITEMS), dtype=np.float32), attributes=[{"group": "2"}]
    )
    assert not torch.allclose(by_name, ref)


def test_user_encoder_learns_the_profile_and_history_without_user_ids():
    """Trained with the user ID dropped (profile + a few items of each training user), the
    encoder ranks a held-out user's items from the profile alone, and uses known items."""
    from kgrec.models.hybrid._user_encoder import UserEncoder, UserEncoderConfig

    r, f, _ = planted(6)
    train, val, test = first_users(r), np.arange(200, 220), np.arange(220, N_USERS)
    items = np.random.default_rng(0).normal(size=(N_ITEMS, 8)).astype(np.float32)
    items[np.arange(N_ITEMS), np.arange(N_ITEMS) % N_GROUPS] += 1.5  # weak group structure
    items /= np.linalg.norm(items, axis=1, keepdims=True)
    empty = sp.csr_matrix((len(val), N_ITEMS), dtype=np.float32)
    valid = [ValidTask(0, val, empty, r[val])]
    cfg = UserEncoderConfig(epochs=20, patience=20, batch_size=16)
    enc = UserEncoder(cfg, seed=0).fit(train, f, items, valid)
    assert len(enc.curve_) == 20 and enc.curve_[enc.best_epoch_] == max(enc.curve_)
    tgt = torch.from_numpy(r[test].toarray())
    none = torch.zeros_like(tgt, dtype=torch.bool)
    no_hist = sp.csr_matrix((len(test), N_ITEMS), dtype=np.float32)
    with_attr = ndcg20(enc.score(no_hist, f[test], items), tgt, none).mean()
    blind = UserEncoder(cfg, seed=0).fit(train, None, items, valid)
    without = ndcg20(blind.score(no_hist, None, items), tgt, none).mean()
    assert with_attr > without + 0.1, (float(with_attr), float(without))
    # one known item (each test user's first): better than no item at all
    first_item = r[test].indices[r[test].indptr[:-1]]
    one = sp.csr_matrix(
        (np.ones(len(test), np.float32), (np.arange(len(test)), first_item)),
        shape=(len(test), N_ITEMS),
    )
    m1 = torch.from_numpy(one.toarray()) > 0
    e1 = ndcg20(blind.score(one, None, items), tgt, m1).mean()
    e0 = ndcg20(blind.score(no_hist, None, items), tgt, m1).mean()
    assert e1 > e0 + 0.05, (float(e1), float(e0))


def test_user_encoder_epochs_are_capped_at_max_steps(monkeypatch):
    """Large catalogs: an epoch is at most ``max_steps_per_epoch`` batches (a fresh sample of the
    users each epoch); 0 keeps every user every epoch."""
    from kgrec.models.hybrid._user_encoder import UserEncoder, UserEncoderConfig

    r, f, _ = planted(6)
    train, val = first_users(r), np.arange(200, 220)
    n_train = int((train.getnnz(axis=1) >= 2).sum())
    items = np.random.default_rng(0).normal(size=(N_ITEMS, 8)).astype(np.float32)
    valid = [ValidTask(0, val, sp.csr_matrix((len(val), N_ITEMS), dtype=np.float32), r[val])]
    steps = []
    step = torch.optim.Adam.step

    def counted(self, *a, **k):
        steps.append(1)
        return step(self, *a, **k)

    monkeypatch.setattr(torch.optim.Adam, "step", counted)
    for cap, want in ((2, 2), (0, -(-n_train // 16))):
        steps.clear()
        cfg = UserEncoderConfig(epochs=1, batch_size=16, max_steps_per_epoch=cap)
        UserEncoder(cfg, seed=0).fit(train, f, items, valid)
        assert len(steps) == want, (cap, len(steps), n_train)
    with pytest.raises(SpecError, match="max_steps_per_epoch"):
        UserEncoderConfig(max_steps_per_epoch=-1)


def test_new_user_path_chooses_the_encoder_on_validation_and_saves_it():
    r, f, _ = planted(7)
    train = first_users(r)
    items = np.random.default_rng(1).normal(size=(N_ITEMS, 8)).astype(np.float32)
    it = torch.from_numpy(items)

    def behaviour(h):  # fold-in of random vectors: a poor behaviour score to beat
        return torch.from_numpy(h.toarray()) @ it @ it.T

    auto = NewUserModel(seed=0).fit(train, f, behaviour=behaviour, item_vectors=items)
    curve = auto.choice_["kappa_curve"]
    best_enc = max(v for k, v in curve.items() if k.endswith(",encoder"))
    best_fold = max(v for k, v in curve.items() if not k.endswith(",encoder"))
    assert auto.use_encoder_ == (best_enc > best_fold) == auto.choice_["encoder"]
    on = NewUserModel(NewUserConfig(encoder="on"), seed=0)
    on.fit(train, f, behaviour=behaviour, item_vectors=items)
    assert on.use_encoder_ and all(k.endswith(",encoder") for k in on.choice_["kappa_curve"])
    off = NewUserModel(NewUserConfig(encoder="off"), seed=0).fit(
        train, f, behaviour=behaviour, item_vectors=items
    )
    assert off.encoder_ is None and not any("encoder" in k for k in off.choice_["kappa_curve"])
    new = np.arange(200, 210)
    hist = sp.csr_matrix(r[new].toarray() * (np.arange(N_ITEMS) < 8))
    s = on.score(hist, f[new], behaviour=behaviour, item_vectors=items)
    assert not torch.allclose(s, off.score(hist, f[new], behaviour=behaviour))
    with pytest.raises(Exception, match="item vectors"):
        on.score(hist, f[new], behaviour=behaviour)
    back = NewUserModel.from_state(on.state(), on.meta(), train)
    assert torch.allclose(back.score(hist, f[new], behaviour=behaviour, item_vectors=items), s)
    with pytest.raises(Exception, match="encoder"):
        NewUserConfig(encoder="sometimes")


def test_hybrid_with_the_user_encoder_saves_and_loads_it(tmp_path):
    r, f, _ = planted(8)
    train = first_users(r)
    inputs = _profile_inputs(f)
    opts = TrainingOptions(epochs=2, batch_size=32, seed=1)
    m = HybridRecommender(
        dim=8, layers=1, cf_blend="none", new_user_encoder="on", options=opts, inputs=inputs
    ).fit(train)
    assert m.new_users_ is not None and m.new_users_.use_encoder_
    new = np.arange(200, 210)
    hist = sp.csr_matrix(r[new].toarray() * (np.arange(N_ITEMS) < 6))
    s = m.score(new, hist)
    m.save(tmp_path / "m")
    back = HybridRecommender.load(tmp_path / "m")
    assert back.new_users_.use_encoder_
    assert torch.allclose(back.score(new, hist), s, atol=1e-5)
    off = HybridRecommender(
        dim=8, layers=1, cf_blend="none", new_user_encoder="off", options=opts, inputs=inputs
    ).fit(train)
    warm = np.arange(0, 50)
    assert torch.equal(off.score(warm), m.score(warm))  # warm users: the encoder changes nothing
    with pytest.raises(Exception, match="new_user_encoder"):
        HybridRecommender(new_user_encoder="maybe")


def test_mix_grid_covers_the_simplex_and_old_saved_mixes_load():
    from kgrec.models.hybrid._new_user_model import _as_mix, mix_grid

    assert mix_grid(1) == [(1.0,)]
    assert (0.75, 0.25) in mix_grid(2) and len(mix_grid(2)) == 5
    three = mix_grid(3)
    assert len(three) == 15 and all(abs(sum(m) - 1.0) < 1e-12 and min(m) >= 0 for m in three)
    assert _as_mix(0.75) == (0.75, 0.25) and _as_mix([0.5, 0.25, 0.25]) == (0.5, 0.25, 0.25)
    with pytest.raises(Exception, match="at most 3"):
        mix_grid(4)


def test_new_user_network_leaves_warm_users_untouched_and_is_saved(tmp_path):
    """``new_user_dropout``: a second network trained with user IDs dropped gives the new users'
    first behaviour score; warm scores are the plain hybrid's; the vectors survive save/load."""
    r, f, _ = planted(9)
    train = first_users(r)
    inputs = _profile_inputs(f)
    opts = TrainingOptions(epochs=2, batch_size=32, seed=1)
    kw = dict(dim=8, layers=1, cf_blend="none", new_user_encoder="off", options=opts)
    plain = HybridRecommender(**kw, inputs=inputs).fit(train)
    twin = HybridRecommender(**kw, new_user_dropout=0.5, inputs=inputs).fit(train)
    warm = np.arange(0, 50)
    assert torch.equal(twin.score(warm), plain.score(warm))
    assert plain.nu_item_vecs_ is None and twin.nu_item_vecs_ is not None
    assert twin.nu_item_vecs_.shape == twin.item_vecs_.shape
    assert not np.allclose(twin.nu_item_vecs_, twin.item_vecs_)
    assert twin.nu_train_ is not None and twin.nu_train_["user_id_dropout"] == 0.5
    new = np.arange(200, 210)
    hist = sp.csr_matrix(r[new].toarray() * (np.arange(N_ITEMS) < 6))
    parts = twin.behaviour_scores(hist)
    assert isinstance(parts, tuple) and len(parts) == 2  # its fold-in, then the warm one's
    assert len(twin.new_users_.mix_) == 2
    s = twin.score(new, hist)
    twin.save(tmp_path / "m")
    back = HybridRecommender.load(tmp_path / "m")
    assert np.array_equal(back.nu_item_vecs_, twin.nu_item_vecs_)
    assert torch.allclose(back.score(new, hist), s, atol=1e-5)
    with pytest.raises(Exception, match="new_user_dropout"):
        HybridRecommender(new_user_dropout=1.0)
