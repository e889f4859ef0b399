"""bench/scale_amazon_book.py reports each training epoch on stderr (and not with --quiet)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


def _bench():
    spec = importlib.util.spec_from_file_location(
        "scale_amazon_book", REPO / "bench" / "scale_amazon_book.py"
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _kgat_files(root: Path, n_users: int = 40, n_items: int = 30) -> None:
    """A generated split in the KGAT text format (``user item item ...`` per line)."""
    rng = np.random.default_rng(0)
    train, test = [], []
    for u in range(n_users):
        items = rng.choice(n_items, size=8, replace=False)
        train.append(" ".join(map(str, [u, *items[:6]])))
        test.append(" ".join(map(str, [u, *items[6:]])))
    (root / "train.txt").write_text("\n".join(train) + "\n")
    (root / "test.txt").write_text("\n".join(test) + "\n")


@pytest.mark.parametrize("quiet", [False, True])
def test_epoch_lines_on_stderr(tmp_path, monkeypatch, capsys, quiet):
    _kgat_files(tmp_path)
    out = tmp_path / "out.json"
    argv = ["scale_amazon_book.py", "--data", str(tmp_path), "--models", "mf", "--epochs", "3"]
    argv += ["--valid-users", "20", "--out", str(out)] + (["--quiet"] if quiet else [])
    monkeypatch.setattr(sys, "argv", argv)
    _bench().main()
    err = capsys.readouterr().err
    lines = [x for x in err.splitlines() if "] mf epoch " in x]
    row = json.loads(out.read_text())["models"]["mf"]
    if quiet:
        assert lines == []
        return
    assert len(lines) == row["train_result"]["epochs_run"] == 3
    for i, (line, valid) in enumerate(zip(lines, row["valid_curve"], strict=True)):
        assert f"mf epoch {i + 1}/3" in line
        assert f"valid {valid:.4f}" in line
        assert "s/epoch" in line and "ETA" in line
