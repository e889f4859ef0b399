"""Hostile and careless input (issue 15): every "Why" case of the data and path sections is a
test here. Each is either a clear error naming file / line / column / spec key, or a reported,
documented repair; never a silent wrong value, a traceback or a path outside its root."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

from kgrec.errors import DataError, SpecError
from kgrec.graph import build_graph, load_spec


def _spec(tmp_path: Path, inter: str, body: str = "", *, name: str = "shop", **files: str):
    for fname, text in files.items():
        (tmp_path / fname.replace("_", ".")).write_text(text)
    p = tmp_path / "g.toml"
    p.write_text(f'name = "{name}"\n[source.interactions]\n{inter}\n{body}')
    return p


def _load(path: Path):
    return load_spec(path).load_dataset()


# ---------------------------------------------------------------- silent wrong data
def test_two_null_user_ids_in_jsonl_name_both_lines(tmp_path):
    rows = (
        '{"u": "a", "i": "x"}\n{"u": null, "i": "y"}\n{"u": "b", "i": "y"}\n{"i": "z", "u": null}\n'
    )
    p = _spec(tmp_path, 'file = "b.jsonl"\nuser = "u"\nitem = "i"', b_jsonl=rows)
    with pytest.raises(DataError) as e:
        _load(p)
    msg = str(e.value)
    assert "b.jsonl" in msg and "column 'u'" in msg and "lines 2, 4" in msg
    assert "missing user id" in msg


def test_null_ids_in_parquet_are_an_error_not_nan(tmp_path):
    pd.DataFrame({"u": ["a", None, "b"], "i": ["x", "y", "z"]}).to_parquet(tmp_path / "b.parquet")
    p = _spec(tmp_path, 'file = "b.parquet"\nuser = "u"\nitem = "i"')
    with pytest.raises(DataError, match=r"b.parquet, row 2, column 'u': missing user id"):
        _load(p)
    pd.DataFrame({"u": pd.array([1, None, 2], dtype="Int64"), "i": ["x", "y", "z"]}).to_parquet(
        tmp_path / "b.parquet"
    )
    with pytest.raises(DataError, match=r"row 2, column 'u': missing user id"):
        _load(p)


def test_float_parquet_ids_are_refused_integer_ones_kept_exactly(tmp_path):
    pd.DataFrame({"u": ["a", "b"], "i": [1.0, 2.0]}).to_parquet(tmp_path / "b.parquet")
    p = _spec(tmp_path, 'file = "b.parquet"\nuser = "u"\nitem = "i"')
    with pytest.raises(DataError, match=r"column 'i': item ids are stored as floats.*strings or"):
        _load(p)
    pd.DataFrame({"u": ["a", "b"], "i": [1, 2]}).to_parquet(tmp_path / "b.parquet")
    assert list(_load(p).interactions.frame["item"]) == ["1", "2"]


def test_json_ids_are_read_exactly_as_written(tmp_path):
    rows = '{"u": "a", "i": 1}\n{"u": "a", "i": 1.0}\n'
    p = _spec(tmp_path, 'file = "b.jsonl"\nuser = "u"\nitem = "i"', b_jsonl=rows)
    assert list(_load(p).interactions.frame["item"]) == ["1", "1.0"]


def test_json_list_in_a_single_valued_column_is_an_error(tmp_path):
    from kgrec.data import AttributeTable
    from kgrec.data._io import read_jsonl

    (tmp_path / "c.jsonl").write_text('{"id": "m1", "g": "Drama"}\n{"id": "m2", "g": ["A", "B"]}\n')
    raw = read_jsonl(tmp_path / "c.jsonl")
    with pytest.raises(
        DataError, match=r"c.jsonl, line 2, column 'g': value \['A', 'B'\] is a list"
    ):
        AttributeTable.from_raw(raw, node_type="item", id_column="id", attributes={"g": "token"})
    t = AttributeTable.from_raw(raw, node_type="item", id_column="id", attributes={"g": "tokens"})
    assert list(t.frame["g"]) == [("Drama",), ("A", "B")]  # declared multi-valued: lists


def test_infinite_year_cannot_make_an_infs_decade(tmp_path):
    p = _spec(
        tmp_path,
        'file = "b.csv"\nuser = "u"\nitem = "i"',
        '[source.items]\nfile = "c.csv"\nid = "id"\n'
        '[[relations]]\ncolumn = "year"\nrelation = "in_decade"\nnode_type = "decade"\n'
        'bucket = { width = 10, label = "{lo}s" }\n',
        b_csv="u,i\na,m1\nb,m2\n",
        c_csv="id,year\nm1,1994\nm2,1e400\n",
    )
    with pytest.raises(DataError, match=r"year value inf of item 'm2' is not finite"):
        build_graph(load_spec(p))


@pytest.mark.parametrize("bad", ["1e308", "-5"])
def test_a_spec_declares_a_rating_range(tmp_path, bad):
    inter = 'file = "b.csv"\nuser = "u"\nitem = "i"\nrating = "r"\nrating_range = [1, 5]'
    p = _spec(tmp_path, inter, b_csv=f"u,i,r\na,x,4\nb,y,{bad}\n")
    with pytest.raises(
        DataError, match=r"b.csv, line 3, column 'r': rating .* outside the allowed range \[1, 5\]"
    ):
        _load(p)
    assert load_spec(p).source.files["interactions"].rating_range == (1.0, 5.0)
    (tmp_path / "g.toml").write_text(
        'name = "s"\n[source.interactions]\nfile = "b.csv"\nuser = "u"\nitem = "i"\n'
        'rating = "r"\nrating_range = [5, 1]\n'
    )
    with pytest.raises(SpecError, match=r"source\.interactions\.rating_range"):
        load_spec(tmp_path / "g.toml")


def test_duplicate_triples_are_dropped_and_reported(tmp_path):
    kg = "h\tr\tt\ne1\tdirected_by\te9\ne1\tdirected_by\te9\ne2\tdirected_by\te9\n"
    p = _spec(
        tmp_path,
        'file = "b.csv"\nuser = "u"\nitem = "i"',
        '[source.kg]\nfile = "kg.tsv"\nhead = "h"\nrelation = "r"\ntail = "t"\n',
        b_csv="u,i\na,m1\n",
        kg_tsv=kg,
    )
    ds = _load(p)
    assert len(ds.kg) == 2 and ds.kg.duplicates_dropped == 1
    assert any("1 duplicate KG triple(s) in kg.tsv dropped" in n for n in ds.notes)


def test_zero_interactions_or_zero_positives_is_an_error_naming_the_threshold(tmp_path):
    p = _spec(
        tmp_path, 'file = "b.csv"\nuser = "u"\nitem = "i"\nrating = "r"',
        "[interactions]\nmin_rating = 4\n", b_csv="u,i,r\na,x,3\nb,y,2\n",
    )  # fmt: skip
    with pytest.raises(
        SpecError, match=r"interactions.min_rating.*no interaction of 2 has rating >= 4"
    ):
        build_graph(load_spec(p))
    (tmp_path / "b.csv").write_text("u,i,r\n")
    with pytest.raises(DataError, match="no interactions"):
        build_graph(load_spec(p))


# ---------------------------------------------------------------- tracebacks -> messages
def test_more_fields_than_the_header_is_a_message(tmp_path):
    p = _spec(tmp_path, 'file = "b.csv"\nuser = "u"\nitem = "i"', b_csv="u,i\na,x\nb,y,extra\n")
    with pytest.raises(DataError, match=r"b.csv, line 3: expected 2 fields .* found 3 \(more"):
        _load(p)


def test_unreadable_files_are_messages(tmp_path):
    from kgrec.data._io import read_table

    (tmp_path / "d.csv").mkdir()
    with pytest.raises(DataError, match=r"d.csv: is a directory"):
        read_table(tmp_path / "d.csv")
    loop = tmp_path / "loop.csv"
    loop.symlink_to(loop)
    with pytest.raises(DataError, match=r"loop.csv: (cannot read|file not found)"):
        read_table(loop)
    if os.geteuid() != 0:  # root reads anything
        locked = tmp_path / "locked.csv"
        locked.write_text("u,i\n")
        locked.chmod(0)
        with pytest.raises(DataError, match="permission denied"):
            read_table(locked)


def test_multi_character_csv_delimiter_is_a_message(tmp_path):
    from kgrec.data._io import read_table

    (tmp_path / "b.csv").write_text("u::i\na::x\n")
    with pytest.raises(DataError, match="a CSV delimiter must be one character"):
        read_table(tmp_path / "b.csv", delimiter="::")


# ---------------------------------------------------------------- paths
@pytest.mark.parametrize("name", ["../x", "/tmp/victim", "a/b", "..", ".hidden", "x y"])
def test_spec_names_are_identifiers(tmp_path, name):
    p = _spec(tmp_path, 'file = "b.csv"\nuser = "u"\nitem = "i"', name=name, b_csv="u,i\na,x\n")
    with pytest.raises(SpecError, match=r"key 'name'.*not a valid graph name"):
        load_spec(p)


def test_dotdot_name_touches_nothing_outside_kgrec_home(tmp_path, monkeypatch, capsys):
    from kgrec.cli import main

    home = tmp_path / "home"
    victim = tmp_path / "x"
    (victim / "keep").mkdir(parents=True)
    monkeypatch.setenv("KGREC_HOME", str(home))
    p = _spec(tmp_path, 'file = "b.csv"\nuser = "u"\nitem = "i"', name="../x", b_csv="u,i\na,x\n")
    assert main(["graph", "build", str(p)]) == 2
    assert "not a valid graph name" in capsys.readouterr().err
    assert (victim / "keep").is_dir() and sorted(p.name for p in victim.iterdir()) == ["keep"]
    from kgrec._atomic import under_root

    with pytest.raises(DataError, match="would leave"):
        under_root(home / "graphs", "../../x")


def test_overwrite_refuses_a_directory_kgrec_did_not_write(tmp_path, capsys):
    from kgrec.cli import main

    p = _spec(tmp_path, 'file = "b.csv"\nuser = "u"\nitem = "i"', b_csv="u,i\na,x\nb,x\n")
    mine = tmp_path / "photos"
    (mine / "cat.jpg").parent.mkdir()
    (mine / "cat.jpg").write_text("precious")
    assert main(["graph", "build", str(p), "--out", str(mine), "--overwrite"]) == 2
    assert "was not written by kgrec" in capsys.readouterr().err
    assert (mine / "cat.jpg").read_text() == "precious"
    out = tmp_path / "g"
    assert main(["graph", "build", str(p), "--out", str(out), "--quiet"]) == 0
    assert (out / ".kgrec").is_file()
    # kgrec's own directory is replaced
    assert main(["graph", "build", str(p), "--out", str(out), "--overwrite", "--quiet"]) == 0


def test_out_dot_is_refused_before_the_build(tmp_path, monkeypatch, capsys):
    from kgrec.cli import main

    p = _spec(tmp_path, 'file = "b.csv"\nuser = "u"\nitem = "i"', b_csv="u,i\na,x\n")
    monkeypatch.chdir(tmp_path)
    before = sorted(x.name for x in tmp_path.iterdir())
    for out in (".", "..", str(tmp_path)):
        assert main(["graph", "build", str(p), "--out", out, "--overwrite"]) == 2
        assert "give a new sub-directory" in capsys.readouterr().err
    assert sorted(x.name for x in tmp_path.iterdir()) == before


def test_temp_dirs_of_killed_runs_are_cleaned_and_writes_fsynced(tmp_path, monkeypatch):
    import subprocess
    import sys

    from kgrec import _atomic

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".g.{dead.pid}.abc123.tmp"
    (stale / "edges.npz").parent.mkdir()
    live = tmp_path / f".g.{os.getpid()}.def456.tmp"  # a run still going: left alone
    live.mkdir()
    synced: list[str] = []
    real = os.fsync
    monkeypatch.setattr(_atomic.os, "fsync", lambda fd: (synced.append(fd), real(fd)))
    with _atomic.atomic_dir(tmp_path / "g") as d:
        (d / "a.bin").write_bytes(b"1")
    assert not stale.exists() and live.exists() and (tmp_path / "g" / "a.bin").is_file()
    assert len(synced) >= 3  # the file, the marker, the directories
    synced.clear()
    _atomic.atomic_write_text(tmp_path / "f.txt", "x")
    assert synced  # fsync before the rename


# ---------------------------------------------------------------- crafted files
@pytest.mark.parametrize(
    "key, value", [("dim", 10**12), ("size", -1), ("next_label", 10**13), ("dim", "64")]
)
def test_crafted_index_sizes_are_refused_before_allocation(tmp_path, key, value):
    import json

    import numpy as np

    from kgrec.index import IndexConfig, VectorIndex

    x = np.random.default_rng(0).standard_normal((20, 8)).astype(np.float32)
    VectorIndex(IndexConfig(device="cpu")).build(x, [f"i{n}" for n in range(20)]).save(
        tmp_path / "ix"
    )
    meta = json.loads((tmp_path / "ix" / "meta.json").read_text())
    meta[key] = value
    (tmp_path / "ix" / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(DataError, match=rf"meta.json: .*{key}|next_label"):
        VectorIndex.load(tmp_path / "ix")


def test_crafted_model_sizes_and_truncated_arrays_are_messages(tmp_path):
    import json

    import scipy.sparse as sp

    from kgrec.models import Popularity as Pop
    from kgrec.models import Recommender

    m = Pop().fit(sp.random(30, 40, density=0.2, format="csr", random_state=0))
    m.save(tmp_path / "m")
    meta = json.loads((tmp_path / "m" / "model.json").read_text())
    (tmp_path / "m" / "model.json").write_text(json.dumps({**meta, "n_items": 10**15}))
    with pytest.raises(DataError, match="n_items must be an integer"):
        Recommender.load(tmp_path / "m")
    (tmp_path / "m" / "model.json").write_text(json.dumps({**meta, "n_users": 10**6}))
    with pytest.raises(DataError, match="says 1000000 users but the training matrix has 30"):
        Recommender.load(tmp_path / "m")
    (tmp_path / "m" / "model.json").write_text(json.dumps(meta))
    data = (tmp_path / "m" / "arrays.npz").read_bytes()
    (tmp_path / "m" / "arrays.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=r"arrays\.npz is truncated or damaged"):
        Recommender.load(tmp_path / "m")


def test_a_full_or_read_only_disk_is_one_message(tmp_path, monkeypatch, capsys):
    import errno

    from kgrec.cli import main
    from kgrec.graph import KnowledgeGraph

    p = _spec(tmp_path, 'file = "b.csv"\nuser = "u"\nitem = "i"', b_csv="u,i\na,x\n")

    def full(*_a, **_k):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "g"))

    monkeypatch.setattr(KnowledgeGraph, "save", full)
    assert main(["graph", "build", str(p), "--out", str(tmp_path / "g"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "No space left on device" in err and "Traceback" not in err


# ---------------------------------------------------------------- checkpoints and run dirs
def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


@pytest.mark.parametrize(
    "first, then, damage, needle",
    [
        ("mf", "mf", True, "truncated or damaged"),
        ("mf", "lightgcn", False, "written for another model or other settings"),
        ("lightgcn", "mf", False, "written for another model or other settings"),
    ],
)
def test_a_truncated_or_foreign_checkpoint_is_one_message(tmp_path, first, then, damage, needle):
    """A resumed run over a checkpoint cut short by a full disk, or over another model's run
    directory (``kgrec train --model lightgcn --out DIR`` where DIR holds an mf run)."""
    from kgrec.models import MFBPR, LightGCN
    from kgrec.testing import synthetic_matrix
    from kgrec.train import CHECKPOINT_NAME, TrainingOptions

    x = synthetic_matrix(30, 20, seed=3)
    opts = TrainingOptions(epochs=1, batch_size=64, patience=0, seed=1,
                           checkpoint_dir=str(tmp_path / "ck"))  # fmt: skip
    make = {
        "mf": lambda o: MFBPR(options=o, dim=4),
        "lightgcn": lambda o: LightGCN(options=o, dim=4),
    }
    make[first](opts).fit(x)
    ckpt = tmp_path / "ck" / CHECKPOINT_NAME
    if damage:
        _truncate(ckpt)
    with pytest.raises(DataError) as e:
        make[then](opts.replace(epochs=2, resume=True)).fit(x)
    msg = str(e.value)
    assert str(ckpt) in msg and needle in msg and "--no-resume" in msg
    make[then](opts.replace(epochs=1, resume=False)).fit(x)  # the way out the message names


def test_kgrec_train_lightgcn_over_an_mf_run_is_one_message(tmp_path, capsys):
    from kgrec.cli import main

    rows = "".join(f"u{u},i{(u * 7 + j) % 40}\n" for u in range(40) for j in range(6))
    p = _spec(tmp_path, 'file = "b.csv"\nuser = "u"\nitem = "i"', b_csv="u,i\n" + rows)
    out = tmp_path / "run"
    base = ["train", str(p), "--out", str(out), "--epochs", "1", "--set", "dim=4"]
    assert main([*base, "--model", "mf"]) == 0
    capsys.readouterr()
    assert main([*base, "--model", "lightgcn"]) == 2
    err = capsys.readouterr().err
    assert str(out / "checkpoint" / "checkpoint.pt") in err and "Traceback" not in err
    assert "another model" in err


def test_a_truncated_text_tower_is_one_message(tmp_path):
    import json

    from kgrec.text._finetune import TOWER_META, TOWER_WEIGHTS, TextTower

    torch = pytest.importorskip("torch")
    from safetensors.torch import save

    (tmp_path / TOWER_META).write_text(json.dumps({"config": {}, "base_hash": "0" * 64}))
    (tmp_path / TOWER_WEIGHTS).write_bytes(save({"w": torch.zeros(64, 64)}))
    _truncate(tmp_path / TOWER_WEIGHTS)
    with pytest.raises(DataError, match=r"tower\.safetensors: the text tower's weights are trunc"):
        TextTower.load(tmp_path)
    (tmp_path / TOWER_META).write_text("{ not json")
    with pytest.raises(DataError, match=r"tower\.json: tower\.json is damaged"):
        TextTower.load(tmp_path)
