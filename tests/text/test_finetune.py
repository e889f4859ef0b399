"""Trainable text towers (top-layers, LoRA, full): equal to the base encoder before training,
safetensors save/load, weights hash in the cache key, and a fine-tuned hybrid that reloads in a
new process and embeds a new item to the same vector."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from kgrec.text import FinetuneConfig, FinetunedEncoder, TextTower, TransformerEncoder

TEXTS = [
    "Star Wars. class: Action, Adventure, Sci-Fi",
    "Toy Story. class: Animation, Children's, Comedy",
    "a much longer description of a quiet drama about two sisters on a farm in winter",
]


@pytest.fixture(scope="module")
def base_vectors() -> np.ndarray:
    from kgrec.text import ModelNotFoundError

    try:
        return TransformerEncoder(max_length=64, threads=1, progress=False).encode(TEXTS)
    except ModelNotFoundError as exc:
        pytest.skip(f"default text model unavailable: {exc}")


def _step(tower: TextTower, texts=TEXTS) -> None:
    """One optimisation step that moves the trained tensors."""
    data = tower.prepare(texts)
    opt = torch.optim.SGD(tower.parameters(), lr=0.5)
    tower.module.train()
    v = tower.module(data.batch(np.arange(len(texts))))
    loss = -(v[0] * v[1]).sum()
    loss.backward()
    opt.step()
    tower.module.eval()


def test_config_validation():
    with pytest.raises(ValueError, match="unknown text-finetune mode"):
        FinetuneConfig(mode="adapters")
    with pytest.raises(ValueError, match="top_layers"):
        FinetuneConfig(top_layers=0)
    c = FinetuneConfig(mode="lora", lora_targets=("query", "key"))
    assert FinetuneConfig.from_dict(json.loads(json.dumps(c.to_dict()))) == c
    with pytest.raises(ValueError, match="unknown text-finetune setting"):
        FinetuneConfig.from_dict({"rank": 4})


@pytest.mark.parametrize("mode", ["top-layers", "lora", "full"])
def test_untrained_tower_equals_base_encoder(mode, base_vectors):
    tower = TextTower(FinetuneConfig(mode=mode, top_layers=2))
    np.testing.assert_allclose(tower.encode(TEXTS), base_vectors, atol=1e-5)
    n_train = sum(p.numel() for p in tower.parameters())
    n_all = sum(p.numel() for p in tower.module.parameters())
    assert {"lora": n_train < 0.01 * n_all, "full": n_train == n_all}.get(mode, n_train < n_all)


@pytest.mark.parametrize("mode", ["top-layers", "lora", "full"])
def test_mixed_precision_is_bf16_autocast_close_to_fp32(mode, base_vectors):
    tower = TextTower(FinetuneConfig(mode=mode, mixed_precision=True))
    v = tower.encode(TEXTS)
    assert v.dtype == np.float32
    cos = (v * base_vectors).sum(1)
    assert cos.min() > 0.98 and not np.allclose(v, base_vectors, atol=1e-5)  # bf16, not fp32
    key = tower.encoder().cache_key()
    assert key.precision == "bf16-autocast"
    assert key != TextTower(FinetuneConfig(mode=mode)).encoder().cache_key()
    _step(tower)  # a backward pass through the autocast forward reaches the trained weights
    assert all(torch.isfinite(p).all() for p in tower.parameters())


def _grads(tower: TextTower) -> list[torch.Tensor]:
    data = tower.prepare(TEXTS)
    tower.module.train()
    torch.manual_seed(0)  # the same dropout masks with and without checkpointing
    v = tower.module(data.batch(np.arange(len(TEXTS))))
    (-(v[0] * v[1]).sum()).backward()
    # None: a weight outside the pooled path (the unused BERT pooler in full mode)
    return [None if p.grad is None else p.grad.clone() for p in tower.parameters()]


@pytest.mark.parametrize("mode", ["top-layers", "lora", "full"])
def test_gradient_checkpointing_gives_the_same_gradients(mode, base_vectors):
    torch.manual_seed(1)  # the same LoRA initialisation in both towers
    plain = _grads(TextTower(FinetuneConfig(mode=mode)))
    torch.manual_seed(1)
    ckpt_tower = TextTower(FinetuneConfig(mode=mode, gradient_checkpointing=True))
    layer = ckpt_tower.module._bert().encoder.layer[-1]
    assert layer.gradient_checkpointing  # the trained layers recompute in backward
    ckpt = _grads(ckpt_tower)
    assert len(plain) == len(ckpt) > 0
    assert sum(g is not None for g in plain) > 0
    for a, b in zip(plain, ckpt, strict=True):
        assert (a is None) == (b is None)
        if a is not None:
            torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-4)


def test_cached_lower_layers_match_full_forward(base_vectors):
    """top-layers: the cached frozen outputs + trained layers give what the whole net gives."""
    tower = TextTower(FinetuneConfig(mode="top-layers", top_layers=1))
    _step(tower)
    data = tower.prepare(TEXTS)
    assert data.hidden is not None
    cached = tower.encode_data(data)
    data.hidden = None  # forces the lower layers to run inside forward
    np.testing.assert_allclose(tower.encode_data(data), cached, atol=1e-5)
    assert np.abs(cached - base_vectors).max() > 1e-3  # the step changed the vectors


@pytest.mark.parametrize("mode", ["top-layers", "lora"])
def test_save_load_safetensors_and_cache_key(mode, tmp_path, base_vectors):
    tower = TextTower(FinetuneConfig(mode=mode))
    enc0 = FinetunedEncoder(tower)
    key0 = enc0.cache_key()
    _step(tower)
    trained = tower.encode(TEXTS)
    tower.save(tmp_path / "t")
    files = sorted(p.name for p in (tmp_path / "t").iterdir())
    assert files == ["tower.json", "tower.safetensors"]
    # only the trained tensors are stored
    from safetensors.torch import load_file

    stored = load_file(tmp_path / "t" / "tower.safetensors")
    assert set(stored) == set(tower.trainable_state())
    back = FinetunedEncoder.load(tmp_path / "t")
    np.testing.assert_allclose(back.encode(TEXTS), trained, atol=1e-6)
    key1 = back.cache_key()
    base_key = TransformerEncoder(max_length=64).cache_key()
    assert key1.model_hash != key0.model_hash  # trained weights: a new cache key
    assert key1.model_hash != base_key.model_hash
    assert key1.digest() != base_key.digest()


def test_finetuned_encoder_embeds_new_texts_at_the_frozen_encoders_length(base_vectors):
    """New texts (a new item's or user's words) go through the tower at ENCODE_MAX_LENGTH tokens,
    not at the 64 it trains on: an untrained tower's encoder equals the frozen encoder at that
    length on a text longer than 64 tokens, and truncating it to 64 changes the vector."""
    from kgrec.text._finetune import ENCODE_MAX_LENGTH

    long = [" ".join(f"the {w} knob and the {w} string" for w in TEXTS[2].split()) * 2]
    tower = TextTower(FinetuneConfig(mode="top-layers"))
    assert len(tower.tokenize(long)[0][0]) == tower.config.max_length  # truncated at training
    enc = tower.encoder()
    frozen = TransformerEncoder(max_length=ENCODE_MAX_LENGTH, threads=1, progress=False)
    np.testing.assert_allclose(enc.encode(long), frozen.encode(long), atol=1e-5)
    assert np.abs(enc.encode(long) - tower.encode(long)).max() > 1e-3
    assert enc.cache_key().max_length == ENCODE_MAX_LENGTH
    assert FinetunedEncoder(tower, max_length=64).cache_key() != enc.cache_key()
    np.testing.assert_allclose(
        FinetunedEncoder(tower, max_length=64).encode(long), tower.encode(long), atol=1e-6
    )


def test_load_refuses_a_missing_tower(tmp_path):
    from kgrec.errors import KgrecError

    with pytest.raises(KgrecError, match="no saved text tower"):
        TextTower.load(tmp_path)


def test_init_from_copies_weights(tmp_path):
    a = TextTower(FinetuneConfig(mode="top-layers"))
    _step(a)
    a.save(tmp_path / "a")
    b = TextTower(FinetuneConfig(mode="top-layers"))
    b.init_from(tmp_path / "a")
    assert b.weights_hash() == a.weights_hash()
    from kgrec.errors import KgrecError

    c = TextTower(FinetuneConfig(mode="lora"))
    with pytest.raises(KgrecError, match="top-layers"):
        c.init_from(tmp_path / "a")


# --------------------------------------------------------------------------- hybrid
N_USERS, N_ITEMS, N_GROUPS = 50, 36, 3
GENRES = ["space opera with starships", "romantic comedy in paris", "haunted house horror"]


def _hybrid_with_tower(mode: str = "top-layers", device: str = "cpu", tower_extra=None, **extra):
    from kgrec.models import HybridConfig, HybridRecommender
    from kgrec.models.hybrid import HybridInputs
    from kgrec.testing import synthetic_matrix
    from kgrec.train import TrainingOptions

    group = np.arange(N_ITEMS) % N_GROUPS
    texts = [f"film {i}: a {GENRES[g]}" for i, g in enumerate(group)]
    tower = TextTower(FinetuneConfig(mode=mode, **(tower_extra or {})))
    text = tower.encode(texts)
    inputs = HybridInputs(N_USERS, N_ITEMS, item_text=text)
    cfg = HybridConfig(
        dim=16,
        layers=1,
        tau=0.2,
        cf_blend="none",
        text_finetune=mode,
        text_finetune_epochs=2,
        text_finetune_lr=1e-3,
        **extra,
    )
    opts = TrainingOptions(epochs=3, batch_size=16, lr=1e-2, patience=0, seed=7, device=device)
    model = HybridRecommender(
        cfg, options=opts, inputs=inputs, text_tower=tower, tower_data=tower.prepare(texts)
    )
    m = synthetic_matrix(N_USERS, N_ITEMS, seed=3).tolil()
    m[:, [0, 1, 2]] = 0  # three cold items
    m = sp.csr_matrix(m)
    m.eliminate_zeros()
    return model.fit(m)


def test_hybrid_tower_trains_and_embeds_cold_items():
    model = _hybrid_with_tower()
    assert model.uses_tower()
    res = model.tower_result_
    assert len(res["history"]) == 3 and "epoch_s" in res["history"][1]
    enc = model.text_encoder()
    assert isinstance(enc, FinetunedEncoder)
    # a cold item inside the model is exactly what embed_items gives for its text
    v = model.embed_items(text=model.tower_text_[[0, 1]])
    np.testing.assert_allclose(v, model.item_vecs_[[0, 1]], atol=1e-5)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (none here)")
@pytest.mark.parametrize("mode", ["top-layers", "lora"])
def test_tower_trains_on_cuda_with_mixed_precision_and_checkpointing(mode):
    model = _hybrid_with_tower(
        mode, device="cuda", tower_extra={"mixed_precision": True, "gradient_checkpointing": True}
    )
    assert model.uses_tower() and len(model.tower_result_["history"]) == 3
    assert {p.device.type for p in model.text_tower_.module.parameters()} == {"cpu"}
    assert {p.device.type for p in model.tower_head_.parameters()} == {"cpu"}
    assert np.isfinite(model.item_vecs_).all()
    v = model.embed_items(text=model.tower_text_[[0, 1]])
    np.testing.assert_allclose(v, model.item_vecs_[[0, 1]], atol=1e-5)


def test_tower_with_a_second_new_user_network():
    """new_user_dropout > 0 beside a text tower: the second network (item vectors for new users'
    fold-in) is trained without a tower of its own, on the frozen item text."""
    model = _hybrid_with_tower(new_users=True, new_user_dropout=0.25)
    assert model.uses_tower() and model.nu_train_ is not None
    assert model.nu_item_vecs_ is not None and model.nu_item_vecs_.shape == model.item_vecs_.shape
    assert np.isfinite(model.nu_item_vecs_).all()


def test_saved_hybrid_reloads_in_new_process_same_vector(tmp_path):
    model = _hybrid_with_tower()
    model.save(tmp_path / "model")
    assert (tmp_path / "model" / "text_tower" / "tower.safetensors").is_file()
    text = "Galaxy Raiders: a space opera, rebels fight an empire with starships"
    here = model.embed_items(text=model.text_encoder().encode([text]))[0]
    code = (
        "import sys, json, numpy as np\n"
        "from kgrec.models import Recommender\n"
        "m = Recommender.load(sys.argv[1])\n"
        "v = m.embed_items(text=m.text_encoder().encode([sys.argv[2]]))[0]\n"
        "print(json.dumps([float(x) for x in v]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "model"), text],
        check=True,
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    there = np.array(json.loads(out.stdout.strip().splitlines()[-1]))
    np.testing.assert_allclose(there, here, atol=1e-5)
