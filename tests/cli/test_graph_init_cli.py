"""`kgrec graph init` on a hand-written catalog (multi-valued column, repeat purchases, JSON-lines
lists) writes a spec that `kgrec graph build` accepts as written; `kgrec graph check` describes it."""

from __future__ import annotations

import json
import tomllib

from click.testing import CliRunner

from kgrec.cli import cli
from kgrec.graph import KnowledgeGraph

ITEMS = """product_id,title,categories,brand,price,url
B01,Light-gauge acoustic guitar strings in phosphor bronze,Guitar|Strings|Accessories,Acme,7.99,http://x/1
B02,Quick-release trigger capo for six-string guitars,Guitar|Accessories,Acme,12.50,http://x/2
B03,Maple drumsticks with nylon tips for rock drummers,Drums|Sticks|Accessories,Beatco,9.00,http://x/3
B04,Clip-on chromatic tuner with a backlit display,Accessories|Tuners,Tunely,15.00,http://x/4
B05,Padded gig bag for electric guitars with shoulder straps,Guitar|Cases,Acme,39.00,http://x/5
B06,Practice pad for drummers with a gum rubber surface,Drums|Accessories,Beatco,21.00,http://x/6
"""
BUYS = """customer_id,product_id,stars,unix_time
c1,B01,5,1000
c1,B02,4,1001
c1,B01,5,1500
c2,B03,3,1002
c2,B06,4,1003
c3,B04,5,1004
c3,B05,2,1005
c3,B01,4,1006
c1,B01,4,1900
"""


def _write(tmp_path):
    (tmp_path / "items.csv").write_text(ITEMS)
    (tmp_path / "purchases.csv").write_text(BUYS)
    return tmp_path / "purchases.csv", tmp_path / "items.csv"


def test_init_writes_a_spec_that_builds_without_edits(tmp_path):
    inter, items = _write(tmp_path)
    spec = tmp_path / "graphs" / "shop.toml"
    r = CliRunner().invoke(
        cli,
        ["graph", "init", "--interactions", str(inter), "--items", str(items), "--out", str(spec)],
    )
    assert r.exit_code == 0, r.output
    assert "2 repeated user-item rows" in r.output
    text = spec.read_text()
    s = tomllib.loads(text)
    si = s["source"]["interactions"]
    assert (si["user"], si["item"], si["rating"], si["timestamp"]) == (
        "customer_id", "product_id", "stars", "unix_time"
    )  # fmt: skip
    assert si["duplicates"] == "count" and si["file"] == "../purchases.csv"
    assert s["source"]["items"]["id"] == "product_id"
    assert s["source"]["items"]["text"] == ["title"]
    rels = {r["column"]: r for r in s["relations"]}
    assert rels["categories"]["delimiter"] == "|" and "delimiter" not in rels["brand"]
    assert "price" not in rels and "url" not in rels  # numbers and URLs are left out
    assert "#   price: skip (numbers" in text and "#   url: skip (URLs)" in text
    assert s["text"]["item_fields"] == ["title", "categories", "brand"]

    r = CliRunner().invoke(cli, ["graph", "check", str(spec)])
    assert r.exit_code == 0, r.output
    assert "item -has_categories-> category: column 'categories' split on '|'" in r.output
    assert "7 category nodes, 14 edges" in r.output
    assert (
        "Light-gauge acoustic guitar strings in phosphor bronze. categories: Guitar, " in r.output
    )

    out = tmp_path / "built"
    r = CliRunner().invoke(cli, ["graph", "build", str(spec), "--out", str(out), "--quiet"])
    assert r.exit_code == 0, r.output
    g = KnowledgeGraph.load(out)
    et = ("user", "interacts", "item")
    assert g.edges[et].shape[1] == 7  # 9 purchases, c1-B01 three times -> one edge
    assert sorted(g.edge_attrs[et]["weight"].tolist()) == [1, 1, 1, 1, 1, 1, 3]
    assert g.vocabs["category"].ids.size == 7


def test_init_jsonl_catalog_with_list_attributes(tmp_path):
    inter, _ = _write(tmp_path)
    rows = [
        {"product_id": "B01", "title": "Bronze acoustic guitar strings", "tags": ["guitar", "strings"]},
        {"product_id": "B02", "title": "Trigger capo for guitars", "tags": ["guitar"]},
        {"product_id": "B03", "title": "Maple drumsticks, nylon tips", "tags": ["drums", "sticks"]},
        {"product_id": "B04", "title": "Clip-on chromatic tuner", "tags": []},
        {"product_id": "B05", "title": "Padded gig bag", "tags": ["guitar", "cases"]},
        {"product_id": "B06", "title": "Gum rubber practice pad", "tags": ["drums"]},
    ]  # fmt: skip
    items = tmp_path / "items.jsonl"
    items.write_text("".join(json.dumps(r) + "\n" for r in rows))
    spec = tmp_path / "shop.toml"
    r = CliRunner().invoke(
        cli,
        ["graph", "init", "--interactions", str(inter), "--items", str(items), "--out", str(spec)],
    )
    assert r.exit_code == 0, r.output
    s = tomllib.loads(spec.read_text())
    (rel,) = [x for x in s["relations"] if x["column"] == "tags"]
    assert "delimiter" not in rel  # JSON lists are multi-valued as they are
    out = tmp_path / "built"
    r = CliRunner().invoke(cli, ["graph", "build", str(spec), "--out", str(out), "--quiet"])
    assert r.exit_code == 0, r.output
    g = KnowledgeGraph.load(out)
    assert sorted(g.vocabs["tag"].ids.tolist()) == ["cases", "drums", "guitar", "sticks", "strings"]
    assert g.edges[("item", "has_tags", "tag")].shape[1] == 8


def test_init_refuses_to_overwrite(tmp_path):
    inter, _ = _write(tmp_path)
    spec = tmp_path / "s.toml"
    spec.write_text("x")
    r = CliRunner().invoke(cli, ["graph", "init", "--interactions", str(inter), "--out", str(spec)])
    assert r.exit_code != 0 and "already exists" in str(r.exception)


def test_columns_taken_by_position_are_marked_and_named(tmp_path):
    (tmp_path / "log.csv").write_text("a,b,c\nx1,y1,3\nx2,y2,4\n")
    (tmp_path / "kg.tsv").write_text("s\tp\to\ne1\tr\te2\n")
    (tmp_path / "links.tsv").write_text("thing\tref\ny1\te1\n")
    spec = tmp_path / "s.toml"
    r = CliRunner().invoke(
        cli,
        ["graph", "init", "--interactions", str(tmp_path / "log.csv"), "--triples", str(tmp_path / "kg.tsv"),
         "--links", str(tmp_path / "links.tsv"), "--out", str(spec)],
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    text = spec.read_text()
    s = tomllib.loads(text)
    assert (s["source"]["interactions"]["user"], s["source"]["interactions"]["item"]) == ("a", "b")
    assert 'user = "a"  # by position: no column is named like a user id' in text
    assert 'item = "b"  # by position: no column is named like an item id' in text
    assert (s["source"]["kg"]["head"], s["source"]["kg"]["relation"]) == ("s", "p")
    assert text.count("# by position") == 7  # user, item, head, relation, tail, link item, entity
    assert "took 'a' by position; check it" in r.output
    assert "took 'ref' by position; check it" in r.output


def test_named_columns_are_not_marked(tmp_path):
    inter, items = _write(tmp_path)
    spec = tmp_path / "s.toml"
    r = CliRunner().invoke(
        cli,
        ["graph", "init", "--interactions", str(inter), "--items", str(items), "--out", str(spec)],
    )
    assert r.exit_code == 0, r.output
    assert "by position" not in spec.read_text() and "by position" not in r.output
