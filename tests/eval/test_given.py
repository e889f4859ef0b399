"""The given-split protocol: KGAT/KGIN line files, RecBole split .inter files, split columns."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from kgrec.data import TEST, TRAIN, VALID, load_dataset, make_split
from kgrec.data.sources import kgat
from kgrec.errors import DataError
from kgrec.eval import break_ties, build_protocol, positives, topk_masked
from kgrec.testing import write_kgat_like


def test_kgat_reader_keeps_the_split(tmp_path: Path) -> None:
    (tmp_path / "train.txt").write_text("0 1 2 3\n1 2\n2\n")
    (tmp_path / "test.txt").write_text("0 4\n1 3 5\n")
    ds = load_dataset(tmp_path)
    f = ds.interactions.frame
    assert len(f) == 7
    assert f["split"].value_counts().to_dict() == {"train": 4, "test": 3}
    split = make_split(positives(ds), "given")
    assert split.counts()["train"] == 4 and split.counts()["test"] == 3
    assert split.counts()["valid"] == 0
    assert any("no validation part" in n for n in split.notes)
    proto = build_protocol(split)
    assert len(proto.valid.users) == 0
    # test masks training items, ranks the rest
    assert proto.tests[0].mask[proto.tests[0].users].nnz == 4


@pytest.mark.parametrize(
    ("text", "where"),
    [("0 1 x\n", "line 1, column 'token 3'"), ("0 1\n0 2\n", "line 2, column 'token 1'")],
)
def test_kgat_reader_locates_bad_lines(tmp_path: Path, text: str, where: str) -> None:
    (tmp_path / "train.txt").write_text(text)
    (tmp_path / "test.txt").write_text("0 4\n")
    with pytest.raises(DataError, match=where):
        kgat.load(tmp_path)


def test_kgat_pair_in_two_parts_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "train.txt").write_text("0 1 2\n")
    (tmp_path / "test.txt").write_text("0 2\n")
    with pytest.raises(DataError, match="more than one part"):
        kgat.load(tmp_path)


def test_valid_share_carves_validation_from_train(tmp_path: Path) -> None:
    write_kgat_like(tmp_path, n_users=300, n_items=120, seed=1)
    pos = positives(load_dataset(tmp_path))
    plain = make_split(pos, "given")
    carved = make_split(pos, "given", valid_share=0.1, seed=3)
    assert (carved.part == TEST).sum() == (plain.part == TEST).sum()
    assert (carved.part[plain.part == TEST] == TEST).all()  # test untouched
    moved = (plain.part == TRAIN) & (carved.part == VALID)
    assert 0.05 < moved.sum() / (plain.part == TRAIN).sum() < 0.2
    again = make_split(pos, "given", valid_share=0.1, seed=3)
    np.testing.assert_array_equal(again.part, carved.part)


def test_recbole_split_inter_files(tmp_path: Path) -> None:
    head = "user_id:token\titem_id:token\n"
    (tmp_path / "b.train.inter").write_text(head + "u1\ti1\nu1\ti2\nu2\ti1\n")
    (tmp_path / "b.valid.inter").write_text(head + "u1\ti3\n")
    (tmp_path / "b.test.inter").write_text(head + "u2\ti3\n")
    ds = load_dataset(tmp_path)
    split = make_split(positives(ds), "given")
    assert split.counts()["train"] == 3
    assert split.counts()["valid"] == 1 and split.counts()["test"] == 1
    assert any("given validation part" in n for n in split.notes)


def test_unknown_split_value_names_the_row() -> None:
    from kgrec.testing import synthetic_dataset

    ds = synthetic_dataset(20, 12)
    ds.interactions.frame["split"] = "train"
    ds.interactions.frame.loc[3, "split"] = "holdout"
    with pytest.raises(DataError, match=r"row 4.*'holdout'"):
        positives(ds)


def test_given_split_needs_parts() -> None:
    from kgrec.testing import synthetic_dataset

    with pytest.raises(DataError, match="needs the split to come with the data"):
        make_split(positives(synthetic_dataset(20, 12)), "given")


def test_windowed_tie_breaking_matches_full_jitter() -> None:
    """The top-2k window gives the same top-k as jittering every item, and ties are random."""
    gen = torch.Generator().manual_seed(0)
    s = torch.randn(64, 500)
    s[:, :50] = torch.round(s[:, :50])  # many ties among high scores
    s[5] = 0.0  # a whole row tied: the fallback path
    items, valid = topk_masked(s, 10, generator=gen)
    assert valid.all()
    top_vals = s.gather(1, items)
    ref = torch.topk(s, 10, dim=1).values
    torch.testing.assert_close(top_vals, ref)  # same multiset of scores, sorted
    # tied scores: both orders occur over many draws (uniform, not by index)
    t = torch.zeros(1, 100)
    t[0, 0] = 1.0
    firsts = {int(topk_masked(t, 2, generator=gen)[0][0, 1]) for _ in range(40)}
    assert len(firsts) > 10
    # break_ties keeps distinct float32 scores in order
    x = torch.tensor([[1.0, torch.nextafter(torch.tensor(1.0), torch.tensor(2.0)).item()]])
    assert torch.argmax(break_ties(x, gen)).item() == 1


def test_compare_cli_given_split_files(tmp_path: Path) -> None:
    from kgrec.cli import cli

    write_kgat_like(tmp_path / "d", n_users=120, n_items=60, seed=2)
    out = tmp_path / "out"
    files = f"train={tmp_path / 'd' / 'train.txt'} test={tmp_path / 'd' / 'test.txt'}"
    res = CliRunner().invoke(
        cli,
        [
            "compare",
            "d",
            "--protocol",
            "given",
            "--split-files",
            files,
            "--models",
            "pop,mf",
            "--epochs",
            "2",
            "--out",
            str(out),
            "--no-progress",
        ],
    )
    assert res.exit_code == 0, res.output
    import json

    rep = json.loads((out / "report.json").read_text())
    text = json.dumps(rep)
    assert "no validation part" in text
    assert "Recall@20" in text


def test_train_cli_without_validation_keeps_last_weights(tmp_path: Path) -> None:
    """`kgrec train` on a given split with no validation part says the last weights are kept
    and writes strict JSON (no -Infinity for the best value it never had)."""
    import json

    from kgrec.cli import cli

    write_kgat_like(tmp_path / "d", n_users=80, n_items=40, seed=3)
    out = tmp_path / "run"
    res = CliRunner().invoke(
        cli,
        [
            "train",
            str(tmp_path / "d"),
            "--model",
            "mf",
            "--protocol",
            "given",
            "--epochs",
            "2",
            "--out",
            str(out),
            "--no-progress",
        ],
    )
    assert res.exit_code == 0, res.output
    assert "no validation: the last epoch's weights are kept" in res.output
    assert "-inf" not in res.output and "best -1" not in res.output
    metrics = json.loads(
        (out / "metrics.json").read_text(),
        parse_constant=lambda c: pytest.fail(f"non-strict JSON constant {c}"),
    )
    assert metrics["training"]["epochs_run"] == 2
    assert metrics["training"]["best_metric"] is None
