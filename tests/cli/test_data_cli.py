from __future__ import annotations

import json

from click.testing import CliRunner

from kgrec.cli import cli, main


def test_help_lists_commands():
    res = CliRunner().invoke(cli, ["--help"])
    assert res.exit_code == 0
    assert "data" in res.output and "Fetch and describe datasets" in res.output


def test_describe_ml100k_prints_source_counts(ml100k_dir):
    res = CliRunner().invoke(cli, ["data", "describe", "ml-100k"])
    assert res.exit_code == 0, res.output
    for text in ("943", "1,682", "100,000", "91,631", "KG relations        24", "1,598"):
        assert text in res.output


def test_describe_lastfm_json(lastfm_dir):
    res = CliRunner().invoke(
        cli, ["data", "describe", "lastfm-hetrec", "--path", str(lastfm_dir), "--json"]
    )
    assert res.exit_code == 0, res.output
    s = json.loads(res.output)
    assert (s["users"], s["items"], s["interactions"]) == (1892, 17632, 92834)
    assert (s["kg_triples"], s["linked_items"]) == (15518, 3846)


def test_describe_amazon(amazon_dir):
    res = CliRunner().invoke(
        cli, ["data", "describe", "amazon-instruments", "--path", str(amazon_dir)]
    )
    assert res.exit_code == 0, res.output
    assert "1,429" in res.output and "900" in res.output and "10,261" in res.output


def test_errors_are_one_line_with_exit_2(capsys):
    assert main(["data", "describe", "lastfm-hetrec"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: dataset 'lastfm-hetrec' is read from a local directory")
    assert main(["data", "fetch", "nope"]) == 2


def test_fetch_local_dataset_is_a_usage_error():
    res = CliRunner().invoke(cli, ["data", "fetch", "amazon-instruments"])
    assert res.exit_code == 2 and "read from a local directory" in res.output
