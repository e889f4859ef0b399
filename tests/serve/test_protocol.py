"""NewItem validation and item files."""

from __future__ import annotations

import json

import pytest

from kgrec.errors import DataError
from kgrec.serve import NewItem, read_item_file


def test_new_item_normalises_attribute_values():
    item = NewItem(title="X", attributes={"release_year": 1997, "class": ["Sci-Fi", " ", "Drama"]})
    assert item.attributes == {"release_year": ("1997",), "class": ("Sci-Fi", "Drama")}
    assert NewItem.from_dict(item.to_dict()) == item


@pytest.mark.parametrize(
    ("row", "needle"),
    [
        ({"description": "no title"}, "non-empty 'title'"),
        ({"title": "   "}, "non-empty 'title'"),
        ({"title": "x", "colour": "red"}, "unknown key(s) ['colour']"),
        ({"title": "x", "attributes": ["a"]}, "'attributes' must be"),
        ({"title": "x", "attributes": {"class": [{"a": 1}]}}, "strings or numbers"),
        ({"title": "x" * 10_001}, "longer than 10000"),
        ("just a string", "expected an object"),
    ],
)
def test_new_item_rejects_bad_rows(row, needle):
    with pytest.raises(DataError) as err:
        NewItem.from_dict(row)
    assert needle in str(err.value)


def test_read_item_file_json_and_csv(tmp_path):
    j = tmp_path / "items.json"
    j.write_text(json.dumps([{"title": "A", "attributes": {"class": "Comedy"}}, {"title": "B"}]))
    items = read_item_file(j)
    assert [i.title for i in items] == ["A", "B"] and items[0].attributes["class"] == ("Comedy",)
    c = tmp_path / "items.csv"
    c.write_text("id,title,class,release_year\nn1,Alpha,Comedy|Drama,1995\nn2,,Drama,\n")
    with pytest.raises(DataError) as err:
        read_item_file(c)
    assert "line 3" in str(err.value) and "title" in str(err.value)
    c.write_text("id,title,class,release_year\nn1,Alpha,Comedy|Drama,1995\n")
    (item,) = read_item_file(c)
    assert item.id == "n1" and item.attributes == {
        "class": ("Comedy", "Drama"),
        "release_year": ("1995",),
    }
    bad = tmp_path / "bad.json"
    bad.write_text('{"title": ')
    with pytest.raises(DataError, match="invalid JSON"):
        read_item_file(bad)


@pytest.mark.parametrize(
    "name, data, needle",
    [
        # each was a traceback (AttributeError, UnicodeDecodeError) or silently nothing / wrong
        ("ragged.csv", b"title,description\nA,d,extra\n", "line 2: expected 2 fields"),
        ("latin1.csv", b"title\nCaf\xe9\n", "line 2, column 'title': byte 0xe9"),
        ("dup.csv", b"title,title\nA,B\n", "duplicate column names in header: ['title']"),
        ("notitle.csv", b"name\nA\n", "missing column(s) ['title'] for new items"),
        ("header.csv", b"title,description\n", "no new item in the file"),
        ("empty.json", b"[]", "no new item in the file"),
        ("utf16.json", b"\xff\xfe[\x00]\x00", "byte 0xff at offset 0 is not valid UTF-8"),
        ("second.json", b'[{"title": "A"}, {"titl": "B"}]', "item 2 of 2: unknown key(s)"),
    ],
)
def test_item_files_with_bad_rows_are_one_message(tmp_path, name, data, needle):
    p = tmp_path / name
    p.write_bytes(data)
    with pytest.raises(DataError) as err:
        read_item_file(p)
    assert needle in str(err.value) and name in str(err.value)


def test_item_csv_with_a_byte_order_mark_reads_its_title(tmp_path):
    p = tmp_path / "bom.csv"
    p.write_bytes(b"\xef\xbb\xbftitle,description\nAlpha,d\n")
    (item,) = read_item_file(p)
    assert item.title == "Alpha" and item.description == "d"
    j = tmp_path / "bom.json"
    j.write_bytes(b'\xef\xbb\xbf{"title": "Beta"}')
    assert [i.title for i in read_item_file(j)] == ["Beta"]
