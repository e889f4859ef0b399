"""`kgrec compare` end to end on a tiny dataset directory and a tiny graph spec."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from kgrec.cli import cli, main
from kgrec.testing import synthetic_dataset


def _write_atomic(root: Path) -> Path:
    frame = synthetic_dataset(50, 30, seed=4).interactions.frame
    root.mkdir(parents=True, exist_ok=True)
    lines = ["user_id:token\titem_id:token\trating:float\ttimestamp:float"]
    lines += [
        f"{r.user}\t{r.item}\t{r.rating:g}\t{r.timestamp:g}" for r in frame.itertuples(index=False)
    ]
    (root / "tiny.inter").write_text("\n".join(lines) + "\n")
    return root


def test_compare_directory(tmp_path):
    data = _write_atomic(tmp_path / "tiny")
    out = tmp_path / "out"
    res = CliRunner().invoke(
        cli,
        [
            "compare",
            str(data),
            "--models",
            "pop,itemknn,ease,mf,lightgcn",
            "--epochs",
            "3",
            "--min-rating",
            "4",
            "--out",
            str(out),
            "--no-progress",
        ],
    )
    assert res.exit_code == 0, res.output
    assert "NDCG@20" in res.output and "lightgcn" in res.output
    report = json.loads((out / "report.json").read_text())
    models = {r["model"] for r in report["summary"]}
    assert models == {"pop", "itemknn", "ease", "mf", "lightgcn"}
    assert set(report["wall_s_per_model"]) == models
    assert (out / "report.md").is_file() and (out / "report.png").stat().st_size > 5000


def test_compare_spec(tmp_path):
    synthetic_dataset(50, 30, seed=4).interactions.frame.to_csv(tmp_path / "tiny.csv", index=False)
    spec = tmp_path / "tiny.toml"
    spec.write_text(
        'name = "tiny"\n[source.interactions]\nfile = "tiny.csv"\nuser = "user"\nitem = "item"\n'
        'rating = "rating"\ntimestamp = "timestamp"\n[interactions]\nmin_rating = 4\n'
    )
    out = tmp_path / "out"
    res = CliRunner().invoke(
        cli,
        [
            "compare",
            str(spec),
            "--models",
            "pop,itemknn",
            "--protocol",
            "cold-item",
            "--out",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    assert "== cold" in res.output and "== overall" in res.output
    report = json.loads((out / "report.json").read_text())
    assert report["min_rating"] == 4


def test_compare_errors(tmp_path, capsys):
    assert main(["compare", "no-such-dataset", "--no-progress"]) == 2
    assert "neither a graph spec" in capsys.readouterr().err
    res = CliRunner().invoke(cli, ["compare", "ml-100k", "--models", "pop,nope"])
    assert res.exit_code != 0
    assert "unknown model" in str(res.exception)


def test_help_explains_options():
    res = CliRunner().invoke(cli, ["compare", "--help"])
    assert res.exit_code == 0
    for word in ("--protocol", "cold-item", "--seeds", "--epochs", "--min-rating"):
        assert word in res.output
