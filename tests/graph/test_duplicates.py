"""Repeated user-item rows: an error naming the option by default; first / last / count."""

from __future__ import annotations

import numpy as np
import pytest

from kgrec.errors import DataError, SpecError
from kgrec.graph import build_graph, load_spec

CSV = """user,item,rating,ts
u1,a,3,10
u1,b,4,11
u1,a,5,12
u2,a,2,13
u1,a,4,14
"""


def _spec(tmp_path, duplicates: str | None) -> object:
    (tmp_path / "buys.csv").write_text(CSV)
    line = f'duplicates = "{duplicates}"\n' if duplicates else ""
    path = tmp_path / "g.toml"
    path.write_text(
        'name = "shop"\n[source.interactions]\nfile = "buys.csv"\nrating = "rating"\n'
        f'timestamp = "ts"\n{line}'
    )
    return load_spec(path)


def test_default_is_an_error_that_names_the_option(tmp_path):
    with pytest.raises(DataError) as e:
        _spec(tmp_path, None).load_dataset()
    msg = str(e.value)
    assert "line 4" in msg and "first at line 2" in msg and "2 duplicate row(s)" in msg
    assert 'duplicates = "first" | "last" | "count"' in msg and "[source.interactions]" in msg


def test_first_last_count(tmp_path):
    first = _spec(tmp_path, "first").load_dataset()
    f = first.interactions.frame
    assert list(zip(f.user, f.item, f.rating, strict=True)) == [
        ("u1", "a", 3.0), ("u1", "b", 4.0), ("u2", "a", 2.0)
    ]  # fmt: skip
    assert "2 repeated user-item row(s)" in first.notes[0] and '"first"' in first.notes[0]
    last = _spec(tmp_path, "last").load_dataset().interactions.frame
    assert list(zip(last.user, last.item, last.rating, strict=True)) == [
        ("u1", "b", 4.0), ("u2", "a", 2.0), ("u1", "a", 4.0)
    ]  # fmt: skip
    ds = _spec(tmp_path, "count").load_dataset()
    c = ds.interactions.frame
    # one row per pair in first-seen order; last rating, latest timestamp, weight = rows
    assert list(zip(c.user, c.item, c.weight, c.rating, c.timestamp, strict=True)) == [
        ("u1", "a", 3.0, 4.0, 14.0), ("u1", "b", 1.0, 4.0, 11.0), ("u2", "a", 1.0, 2.0, 13.0)
    ]  # fmt: skip
    # the count is the interaction edges' weight attribute in the graph
    g = build_graph(_spec(tmp_path, "count"), dataset=ds)
    et = ("user", "interacts", "item")
    w = dict(zip(map(tuple, g.edges[et].T.tolist()), g.edge_attrs[et]["weight"], strict=True))
    ua, ia = g.vocabs["user"].index("u1"), g.vocabs["item"].index("a")
    assert w[(ua, ia)] == 3.0 and np.isclose(sum(w.values()), 5.0)


def test_bad_choice_names_the_key(tmp_path):
    with pytest.raises(SpecError, match=r"source\.interactions\.duplicates.*'sum'"):
        _spec(tmp_path, "sum")


def test_count_is_a_weight_the_models_can_use(tmp_path):
    """Counted repeats reach the split as weights; a model whose config says weights="count"
    (or "log") trains on them, the others stay binary, and data without weights is an error."""
    from kgrec.data import make_split
    from kgrec.eval import positives
    from kgrec.experiment import model_weights
    from kgrec.models.cf.pop import PopConfig, Popularity

    pos = positives(_spec(tmp_path, "count").load_dataset())
    split = make_split(pos, "random", seed=0, ratios=(1.0, 0.0, 0.0))
    binary, counted = split.train_matrix(), split.train_matrix("count")
    a, b = pos.items.index("a"), pos.items.index("b")
    ua = pos.users.index("u1")
    assert binary[ua, a] == 1.0 and counted[ua, a] == 3.0
    assert np.isclose(split.train_matrix("log")[ua, a], np.log1p(3.0))
    # binary popularity ties a (2 users) above b (1 user) either way; weights widen the gap
    plain = Popularity().fit(binary)
    weighted = Popularity(PopConfig(weights="count"))
    assert model_weights(plain) == "none" and model_weights(weighted) == "count"
    weighted.fit(split.train_matrix(model_weights(weighted)))
    assert plain.counts_[a] == 2.0 and weighted.counts_[a] == 4.0 and weighted.counts_[b] == 1.0
    with pytest.raises(SpecError, match="weights must be one of"):
        PopConfig(weights="sum")
    nopos = positives(_spec(tmp_path, "first").load_dataset())
    with pytest.raises(DataError, match='duplicates = "count"'):
        make_split(nopos, "random", seed=0, ratios=(1.0, 0.0, 0.0)).train_matrix("count")
