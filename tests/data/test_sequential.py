"""RecBole sequential interactions (item_id_list) become one interaction per event."""

from __future__ import annotations

import pytest

from kgrec.data import load_dataset
from kgrec.errors import DataError

SEQ = (
    "user_id:token\titem_id_list:token_seq\titem_id:token\n"
    "u1\ta\tb\n"
    "u1\ta b\tc\n"
    "u1\ta b c\ta\n"  # a again: a repeat
    "u2\tx\ty\n"
)


def test_item_lists_expand_in_order(tmp_path):
    (tmp_path / "shop.inter").write_text(SEQ)
    ds = load_dataset(tmp_path)
    f = ds.interactions.frame
    assert list(zip(f.user, f.item, f.timestamp, strict=True)) == [
        ("u1", "a", 0.0), ("u1", "b", 1.0), ("u1", "c", 2.0), ("u2", "x", 0.0), ("u2", "y", 1.0)
    ]  # fmt: skip
    assert "4 sequential rows (item_id_list) expanded into 6 events of 2 users" in ds.notes[0]
    assert "1 repeated user-item events" in ds.notes[1]


def test_item_lists_with_times_and_unknown_columns(tmp_path):
    (tmp_path / "s.inter").write_text(
        "user_id:token\titem_id_list:token_seq\ttimestamp_list:float_seq\titem_id:token\t"
        "timestamp:float\nu1\ta b\t10 20\tc\t30\n"
    )
    f = load_dataset(tmp_path).interactions.frame
    assert f.timestamp.tolist() == [10.0, 20.0, 30.0] and f.item.tolist() == ["a", "b", "c"]
    (tmp_path / "s.inter").write_text(
        "user_id:token\titem_id_list:token_seq\titem_id:token\tprice:float\nu1\ta\tb\t3\n"
    )
    with pytest.raises(DataError, match=r"other columns \['price'\]"):
        load_dataset(tmp_path)
