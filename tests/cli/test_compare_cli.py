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
    counts = report["data_counts"]  # the data section, from the CLI too
    assert counts["positives"] + counts["below_min_rating"] == counts["interactions"]
    assert [f["model"] for f in report["fits"]] == ["pop", "itemknn"]


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


def test_compare_prints_epoch_lines_and_total(tmp_path):
    data = _write_atomic(tmp_path / "tiny")
    res = CliRunner().invoke(
        cli,
        ["compare", str(data), "--models", "pop,mf", "--epochs", "3", "--out", str(tmp_path / "o")],
    )
    assert res.exit_code == 0, res.output
    lines = [ln for ln in res.output.splitlines() if "seed 2020 mf epoch" in ln]
    assert [ln.split("epoch ")[1].split()[0] for ln in lines] == ["1/3", "2/3", "3/3"]
    assert all("loss " in ln and "valid " in ln and "s/epoch" in ln and "ETA" in ln for ln in lines)
    assert "early stop in" in lines[0]
    assert "total wall time" in res.output and "from the command's start" in res.output


def test_epoch_report_eta_accounts_for_early_stopping():
    from kgrec.train import TrainingOptions
    from kgrec.train._progress import epoch_reporter, report_epoch

    got = []
    opts = TrainingOptions(epochs=100, patience=3)
    with epoch_reporter(got.append):
        # epoch 10 of 100 at 2 s/epoch, 1 round without improvement: at most 2 more epochs
        report_epoch(
            epoch=9,
            start_epoch=0,
            row={"epoch": 9, "loss": 0.5, "valid": 0.2, "epoch_s": 2.0},
            best=0.21,
            best_epoch=8,
            bad=1,
            elapsed_s=20.0,
            options=opts,
            validating=True,
        )
    (r,) = got
    assert r.stop_in == 2 and r.eta_s == 4.0 and r.eta_cap_s == 180.0
    assert "ETA 4 s (early stop in 2 unless it improves; cap 3.0 min)" in r.line()
    report_epoch(  # no reporter installed: nothing happens
        epoch=0, start_epoch=0, row={"loss": 1.0}, best=0, best_epoch=0, bad=0,
        elapsed_s=1, options=opts, validating=False,
    )  # fmt: skip
    assert len(got) == 1


def test_out_and_models_are_checked_before_the_run(tmp_path, monkeypatch, capsys):
    """`kgrec compare --out .` fitted every model and refused the directory only when writing
    the report; `--models pop,pop` fitted pop twice."""
    import kgrec.cli.compare as compare_cli

    def no_data(*a, **k):
        raise AssertionError("the data were read before the command line was checked")

    monkeypatch.setattr(compare_cli, "load_target_spec", no_data)
    data = _write_atomic(tmp_path / "tiny")
    monkeypatch.chdir(tmp_path)
    args = ["compare", str(data), "--no-progress"]
    assert main([*args, "--models", "pop", "--out", "."]) == 2
    assert "is the current directory" in capsys.readouterr().err
    assert main([*args, "--models", "pop,pop"]) == 2
    assert "['pop'] named more than once" in capsys.readouterr().err
    assert main([*args, "--models", "pop", "--max-seconds", "0"]) == 2
    assert "max_seconds" in capsys.readouterr().err
