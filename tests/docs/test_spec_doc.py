"""docs/spec.md's worked example runs as written: its files, its commands and its Python block."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from kgrec.cli import main

DOC = Path(__file__).resolve().parents[2] / "docs" / "spec.md"
BLOCK = re.compile(r"<!-- (file: (?P<path>\S+)|run|run-python) -->\n```\w*\n(?P<body>.*?)```", re.S)


def _blocks() -> list[tuple[str, str | None, str]]:
    out = []
    for m in BLOCK.finditer(DOC.read_text(encoding="utf-8")):
        kind = "file" if m["path"] else m.group(1)
        out.append((kind, m["path"], m["body"]))
    return out


def test_worked_example_runs(tmp_path, monkeypatch, capsys):
    blocks = _blocks()
    kinds = [k for k, _, _ in blocks]
    assert kinds.count("file") == 5 and "run" in kinds and "run-python" in kinds
    monkeypatch.chdir(tmp_path)
    for kind, path, body in blocks:
        if kind == "file":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            Path(path).write_text(body, encoding="utf-8")
        elif kind == "run":
            for line in body.strip().splitlines():
                args = shlex.split(line)
                assert args[0] == "kgrec"
                assert main(args[1:]) == 0, (line, capsys.readouterr())
        else:
            exec(compile(body, str(DOC), "exec"), {})
    out = capsys.readouterr().out
    assert "spec shop: OK" in out and "1 repeated user-item row(s)" in out


def test_every_spec_key_is_documented():
    from kgrec.graph import _spec, _spec_source

    text = DOC.read_text(encoding="utf-8")
    keys = set(_spec._TOP) | set(_spec_source._REL_KEYS) | set(_spec_source._BUCKET_KEYS)
    for table in _spec_source._FILE_TABLES:
        keys.add(f"[source.{table}]")
    keys |= {"dataset", "path", "file", "delimiter", "duplicates", "min_rating", "attributes"}
    keys |= {"absent_items", "min_count", "reverse_relations", "reverse_prefix"}
    keys |= {"reverse_exclude", "min_entity_degree", "max_hops", "item_fields", "item_tags"}
    keys |= {"item_reviews", "user_reviews", "max_review_chars"}
    missing = sorted(k for k in keys if f"`{k}`" not in text and k not in text)
    assert not missing


def test_check_catches_an_entity_linked_to_two_items(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    for kind, path, body in _blocks():
        if kind == "file":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            Path(path).write_text(body, encoding="utf-8")
    Path("shop/links.csv").write_text("product_id,entity\nB01,kg:strings\nB02,kg:strings\n")
    assert main(["graph", "check", "shop/shop.toml"]) == 2
    assert "links entity 'kg:strings' to several items" in capsys.readouterr().err
