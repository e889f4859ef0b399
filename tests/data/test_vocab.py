import numpy as np
import pytest

from kgrec.data import Vocabulary
from kgrec.errors import DataError, UnknownIdError


def test_round_trip_and_lookup():
    v = Vocabulary(["b", "a", 7], node_type="item")
    assert len(v) == 3
    assert v.index("a") == 1
    assert v.index(7) == 2 and "7" in v
    assert v.id(0) == "b"
    np.testing.assert_array_equal(v.indices(["7", "b"]), [2, 0])
    assert Vocabulary.from_json(v.to_json()) == v


def test_unknown_id_names_id_and_type():
    v = Vocabulary(["u1", "u2"], node_type="user")
    with pytest.raises(UnknownIdError, match=r"unknown user id 'u9'") as err:
        v.index("u9")
    assert err.value.node_type == "user" and err.value.id == "u9"
    with pytest.raises(UnknownIdError, match=r"unknown user id 'zz' \(2 unknown"):
        v.indices(["u1", "zz", "yy"])
    np.testing.assert_array_equal(v.indices(["u2", "zz"], missing="-1"), [1, -1])


def test_duplicates_rejected_and_from_unique_keeps_first_order():
    with pytest.raises(DataError, match="duplicate item ids"):
        Vocabulary(["a", "a"], node_type="item")
    v = Vocabulary.from_unique(["c", "a", "c", "b"], node_type="item")
    assert list(v.ids) == ["c", "a", "b"]


def test_extend_keeps_existing_indices():
    v = Vocabulary(["a", "b"], node_type="item")
    w = v.extend(["b", "c", "c"])
    assert list(w.ids) == ["a", "b", "c"] and w.index("a") == 0
    assert len(v) == 2  # the original is unchanged


def test_index_out_of_range():
    with pytest.raises(IndexError, match=r"item index 5 outside 0\.\.1"):
        Vocabulary(["a", "b"], node_type="item").id(5)
