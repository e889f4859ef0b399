"""``kgrec graph build / stats / export`` through click's test runner."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from kgrec.cli import cli, main
from tests.graph.conftest import SPEC, write_catalog


def test_build_stats_export(tmp_path):
    spec = write_catalog(tmp_path / "cat")
    out = tmp_path / "g"
    r = CliRunner().invoke(cli, ["graph", "build", str(spec), "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert str(out) in r.output and "has_genre" in r.output
    assert (out / "graph.json").is_file()

    png = tmp_path / "deg.png"
    r = CliRunner().invoke(cli, ["graph", "stats", str(out), "--plot", str(png)])
    assert r.exit_code == 0, r.output
    assert "edges per relation" in r.output and "degree per node type" in r.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    r = CliRunner().invoke(cli, ["graph", "stats", str(out), "--json"])
    st = json.loads(r.output)
    assert st["relations"]["has_genre"] == 6 and st["nodes"]["item"] == 5

    r = CliRunner().invoke(
        cli, ["graph", "export", str(out), "--format", "recbole", "--out", str(tmp_path / "rb")]
    )
    assert r.exit_code == 0, r.output
    assert (tmp_path / "rb" / "tiny.kg").is_file()
    r = CliRunner().invoke(
        cli,
        ["graph", "export", str(out), "--format", "networkx", "--out", str(tmp_path / "g.json")],
    )
    assert r.exit_code == 0, r.output
    nl = json.loads((tmp_path / "g.json").read_text())
    assert len(nl["nodes"]) == st["num_nodes"] and len(nl["edges"]) == st["num_edges"]
    r = CliRunner().invoke(
        cli, ["graph", "export", str(out), "--format", "pyg", "--out", str(tmp_path / "g.pt")]
    )
    assert r.exit_code == 0, r.output
    assert (tmp_path / "g.pt").stat().st_size > 0


def test_existing_out_needs_overwrite(tmp_path, capsys):
    spec = write_catalog(tmp_path / "cat")
    out = tmp_path / "g"
    assert main(["graph", "build", str(spec), "--out", str(out), "--quiet"]) == 0
    assert main(["graph", "build", str(spec), "--out", str(out), "--quiet"]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main(["graph", "build", str(spec), "--out", str(out), "--overwrite", "--quiet"]) == 0


def test_bad_spec_prints_the_key_and_alternatives(tmp_path, capsys):
    spec = write_catalog(tmp_path / "cat", SPEC.replace('column = "studio"', 'column = "studoi"'))
    out = tmp_path / "g"
    assert main(["graph", "build", str(spec), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("error: ") and "relations[2].column" in err and "'studio'" in err
    assert not out.exists()


def test_data_path_option(tmp_path):
    spec = write_catalog(tmp_path / "a")
    mine = tmp_path / "mine"
    write_catalog(mine)
    (mine / "ratings.csv").write_text("user,item,stars,ts\nu9,m1,5,1\n")
    out = tmp_path / "g"
    r = CliRunner().invoke(
        cli, ["graph", "build", str(spec), "--data-path", str(mine), "--out", str(out), "--quiet"]
    )
    assert r.exit_code == 0, r.output
    from kgrec.graph import KnowledgeGraph

    assert "u9" in KnowledgeGraph.load(out).vocabs["user"]


def test_help_explains_options():
    r = CliRunner().invoke(cli, ["graph", "build", "--help"])
    assert "--data-path" in r.output and "atomically" in r.output
    r = CliRunner().invoke(cli, ["graph", "export", "--help"])
    assert "recbole" in r.output and "networkx" in r.output


def test_stats_on_a_non_graph_dir(tmp_path, capsys):
    assert main(["graph", "stats", str(tmp_path)]) == 2
    assert "not a kgrec graph directory" in capsys.readouterr().err


def test_repo_root_on_path():
    assert Path(__file__).resolve().parents[2].joinpath("graphs", "movielens-100k.toml").is_file()
