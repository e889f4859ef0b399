"""Training and serving render an item's text with one renderer: a catalog row and the same item
given as a new item produce the same string."""

from __future__ import annotations

import logging

from kgrec.graph import load_spec
from kgrec.serve import NewItem
from kgrec.serve._item_text import render_item_text, text_columns, title_map
from kgrec.text import texts_from_spec
from kgrec.text._render import item_delimiters

ITEMS = """sku,title,description,categories,brand
p1,Steel strings,Bright light-gauge strings,Guitar|Strings|Accessories,Acme
p2,Capo,,Guitar|Accessories,Acme
p3,,,Drums,
"""


def _spec(tmp_path, text_cols='["title", "description"]'):
    (tmp_path / "items.csv").write_text(ITEMS)
    (tmp_path / "buys.csv").write_text("user,item\nu1,p1\nu2,p2\nu2,p3\n")
    (tmp_path / "g.toml").write_text(
        'name = "shop"\n[source.interactions]\nfile = "buys.csv"\n'
        f'[source.items]\nfile = "items.csv"\nid = "sku"\ntext = {text_cols}\n'
        '[[relations]]\ncolumn = "categories"\nrelation = "in_category"\nnode_type = "category"\n'
        'delimiter = "|"\n[[relations]]\ncolumn = "brand"\nrelation = "by"\nnode_type = "brand"\n'
        '[text]\nitem_fields = ["title", "description", "categories", "brand"]\n'
    )
    return load_spec(tmp_path / "g.toml")


def test_catalog_row_and_new_item_render_the_same(tmp_path, caplog):
    spec = _spec(tmp_path)
    ds = spec.load_dataset()
    with caplog.at_level(logging.WARNING):
        texts = texts_from_spec(spec, ds)["item"]
    by_id = dict(zip(texts.ids, texts.texts, strict=True))
    assert by_id["p1"] == (
        "Steel strings. Bright light-gauge strings. categories: Guitar, Strings, Accessories. "
        "brand: Acme"
    )
    assert "1 of 3 items have no text" not in caplog.text  # p3 still has "categories: Drums"
    fields = list(spec.text.item_fields)
    cols, delims = text_columns(ds, fields), item_delimiters(spec)
    new = [
        NewItem(
            title="Steel strings",
            description="Bright light-gauge strings",
            attributes={"categories": ["Guitar", "Strings", "Accessories"], "brand": "Acme"},
        ),
        NewItem(title="Capo", attributes={"categories": "Guitar|Accessories", "brand": "Acme"}),
    ]
    # a delimited string given for a multi-valued column renders like the catalog's, too
    served = [render_item_text(n, fields, cols, delims) for n in new]
    assert served == [by_id["p1"], by_id["p2"]]


def test_warnings_for_missing_text_and_undeclared_title(tmp_path, caplog):
    spec = _spec(tmp_path, text_cols="[]")
    ds = spec.load_dataset()
    (tmp_path / "items.csv").write_text(ITEMS.replace("p3,,,Drums,", "p3,,,,"))
    ds = spec.load_dataset()
    with caplog.at_level(logging.WARNING):
        texts_from_spec(spec, ds)
        titles = title_map(ds)
    assert "1 of 3 items have no text" in caplog.text
    assert "showing column 'title' as the item title" in caplog.text
    assert titles["p1"] == "Steel strings"
