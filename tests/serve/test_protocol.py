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
