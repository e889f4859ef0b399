"""Each malformed-input case gives a DataError naming the file, the line and the column."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from kgrec.data import AttributeTable, Interactions, Links, read_table
from kgrec.errors import DataError


def _write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    p = tmp_path / name
    p.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return p


def _inter(path: Path, **kw) -> Interactions:
    return Interactions.from_raw(
        read_table(path), user="user", item="item", rating="rating", rating_range=(1, 5), **kw
    )


def _catalog(path: Path, **kw) -> AttributeTable:
    return AttributeTable.from_raw(
        read_table(path),
        node_type="item",
        id_column="item_id",
        attributes={"title": "text", "genres": "tokens", "year": "int"},
        **kw,
    )


def _assert_located(err: DataError, path: Path, line: int, column: str | None) -> None:
    msg = str(err)
    assert str(path) in msg
    assert f"line {line}" in msg
    if column is not None:
        assert f"column {column!r}" in msg
    assert (err.path, err.line, err.column) == (str(path), line, column)


_READERS = {"inter": _inter, "catalog": _catalog, "read": read_table}

CATALOG = "item_id,title,genres,year\n"
INTER = "user,item,rating\n"

#: (file name, content, reader, reader options, message pattern, line, column)
CASES = [
    pytest.param(
        "c.csv", CATALOG + "1,A,x|y,1990\n2,B,x,1991\n1,C,y,1992\n", "catalog", {},
        r"duplicate item id '1' \(first at line 2\)", 4, "item_id", id="duplicate-item-id",
    ),
    pytest.param(
        "i.csv", INTER + "u1,i1,4\nu2,i1,3\nu1,i1,5\n", "inter", {},
        r"duplicate user-item pair \('u1', 'i1'\)", 4, "item", id="duplicate-user-item-pair",
    ),
    pytest.param(
        "i.csv", INTER + "u1,i1,4\n,i2,3\n", "inter", {}, "missing user id", 3, "user",
        id="missing-id",
    ),
    pytest.param(
        "i.tsv", "user\titem\trating\nu1\ti1\t4\nu1\ti2\tNaN\n", "inter", {},
        "rating is NaN", 3, "rating", id="nan-rating",
    ),
    pytest.param(
        "i.csv", INTER + "u1,i1,\n", "inter", {}, "missing rating", 2, "rating",
        id="empty-rating",
    ),
    pytest.param(
        "i.csv", INTER + "u1,i1,4\nu1,i2,3\nu2,i1,7\n", "inter", {},
        r"rating 7 outside the allowed range \[1, 5\]", 4, "rating", id="out-of-range-rating",
    ),
    pytest.param(
        "i.csv", INTER + "u1,i1,four\n", "inter", {}, "rating 'four' is not a number", 2,
        "rating", id="non-numeric-rating",
    ),
    pytest.param(
        "c.csv", b"item_id,title,genres,year\n1,Caf\xe9,x,1990\n", "catalog", {},
        r"byte 0xe9 .* not valid utf-8", 2, "title", id="undecodable-bytes",
    ),
    pytest.param(
        "i.csv", "usr,item,rating\nu1,i1,4\n", "inter", {},
        r"missing column\(s\) \['user'\].*the file has", 1, "user", id="header-does-not-match",
    ),
    pytest.param(
        "i.tsv", "user\titem\trating\nu1\ti1\t4\nu2\ti2\n", "read", {},
        r"expected 3 fields .* found 2", 3, "rating", id="wrong-field-count",
    ),
    pytest.param(
        "c.csv", CATALOG + '1,A,x,1990\n2,"  ",y,1991\n', "catalog", {"require_text": True},
        r"empty text for item '2'", 3, "title", id="empty-text",
    ),
    pytest.param(
        "c.csv", CATALOG + "1,A,x,19x0\n", "catalog", {}, "year '19x0' is not a number", 2,
        "year", id="bad-int-attribute",
    ),
    pytest.param(
        "c.csv", CATALOG + '1,"two\nlines",x,1990\n1,B,y,1991\n', "catalog", {}, "duplicate",
        4, "item_id", id="quoted-multiline-csv-keeps-line-numbers",
    ),
    pytest.param(
        "x.inter", "user_id:token\titem_id\n1\t2\n", "read", {}, "is not 'name:type'", 1,
        "item_id", id="atomic-header-without-type",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("name", "content", "reader", "options", "match", "line", "column"), CASES)
def test_malformed_input_is_located(
    tmp_path: Path,
    name: str,
    content: str | bytes,
    reader: str,
    options: dict,
    match: str,
    line: int,
    column: str,
) -> None:
    p = _write(tmp_path, name, content)
    with pytest.raises(DataError, match=match) as e:
        _READERS[reader](p, **options)
    _assert_located(e.value, p, line, column)


def test_what_the_located_errors_allow(tmp_path):
    """The cases above that have a permitted form: duplicates kept on request, text optional
    unless required, other bytes read with the right encoding."""
    p = _write(tmp_path, "i.csv", INTER + "u1,i1,4\nu2,i1,3\nu1,i1,5\n")
    assert len(_inter(p, on_duplicate="keep")) == 3
    p = _write(tmp_path, "c.csv", CATALOG + '1,A,x,1990\n2,"  ",y,1991\n')
    assert len(_catalog(p)) == 2
    p = _write(tmp_path, "l.csv", b"item_id,title,genres,year\n1,Caf\xe9,x,1990\n")
    assert read_table(p, encoding="latin-1").frame["title"][0] == "Café"


def test_jsonl_invalid_line_and_bad_value(tmp_path):
    p = _write(
        tmp_path, "i.jsonl", '{"user": "u1", "item": 1, "rating": 4}\n{"user": "u2", "item": 2,\n'
    )
    with pytest.raises(DataError, match="invalid JSON") as e:
        read_table(p)
    _assert_located(e.value, p, 2, None)
    q = _write(
        tmp_path,
        "j.jsonl",
        '{"user": "u1", "item": 1, "rating": 4}\n\n{"user": "u2", "item": 2, "rating": 9}\n',
    )
    with pytest.raises(DataError) as e:
        _inter(q)
    _assert_located(e.value, q, 3, "rating")


def test_parquet_rows_are_located(tmp_path):
    p = tmp_path / "i.parquet"
    pd.DataFrame({"user": ["u1", "u2"], "item": ["i1", "i2"], "rating": [4.0, 0.5]}).to_parquet(p)
    with pytest.raises(DataError, match=r"row 2, column 'rating': rating 0.5 outside"):
        _inter(p)


def test_atomic_header_without_type(tmp_path):
    p = _write(tmp_path, "x.inter", "user_id:token\titem_id\n1\t2\n")
    with pytest.raises(DataError, match="is not 'name:type'") as e:
        read_table(p)
    _assert_located(e.value, p, 1, "item_id")


def test_link_to_absent_item(tmp_path):
    p = _write(tmp_path, "x.link", "item_id:token\tentity_id:token\n1\tm.a\n99\tm.b\n")
    raw = read_table(p)
    links = Links.from_raw(raw, item="item_id", entity="entity_id")
    with pytest.raises(DataError, match="link names item '99'") as e:
        links.check_items(pd.Index(["1", "2"]), lines=raw.lines)
    _assert_located(e.value, p, 3, "item")


def test_crlf_and_latin1_read_cleanly(tmp_path):
    p = _write(tmp_path, "t.dat", "tagID\ttagValue\r\n1\tm\xf6tley\r\n2\tb\r\n".encode("latin-1"))
    raw = read_table(p, encoding="iso-8859-1")
    assert raw.frame["tagValue"].tolist() == ["mötley", "b"]
    assert raw.lines.tolist() == [2, 3]


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        read_table(tmp_path / "nope.csv")
    with pytest.raises(DataError, match="unsupported file type"):
        read_table(_write(tmp_path, "x.xlsx", "a"))


def test_amazon_style_json_error(tmp_path):
    from kgrec.data.sources import amazon

    for split in ("train", "val", "test"):
        _write(tmp_path, f"{split}.csv", "user_ids,item_ids,ratings\n")
    (tmp_path / "item_reviews").mkdir()
    _write(tmp_path, "item_reviews/0.json", json.dumps([{"review": "ok", "id": 1}])[:-3])
    with pytest.raises(DataError, match="invalid JSON") as e:
        amazon.load(tmp_path)
    assert "0.json" in str(e.value) and "line 1" in str(e.value)
