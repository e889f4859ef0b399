"""A small hand-written catalog (CSV files + spec) shared by the graph tests."""

from __future__ import annotations

from pathlib import Path

import pytest

CATALOG = """item_id,title,genres,year,studio
m1,Alpha,Action|Comedy,1994,S1
m2,Beta,Comedy,2001,S2
m3,"Gamma, the movie",Drama| Action |Romance,1999,
m4,Delta,,1987,S1
"""
RATINGS = """user,item,stars,ts
u1,m1,5,100
u1,m2,3,101
u2,m2,4,102
u2,m3,5,103
u3,m5,4,104
"""
USERS = """user,age,job
u1,23,student
u2,41,artist
u3,,student
"""
KG = "head\trelation\ttail\ne1\tdirected_by\te9\ne9\tborn_in\te10\ne2\tdirected_by\te9\ne3\tsequel_of\te1\n"
LINKS = "item\tentity\nm1\te1\nm2\te2\nm3\te3\n"
FRIENDS = "src,dst\nu1,u2\nu2,u1\n"

SPEC = """
name = "tiny"

[source]
path = "."
interactions = { file = "ratings.csv", user = "user", item = "item", rating = "stars", timestamp = "ts" }
items = { file = "catalog.csv", id = "item_id", text = ["title"] }
users = { file = "users.csv", id = "user" }
kg = { file = "kg.tsv", head = "head", relation = "relation", tail = "tail" }
links = { file = "links.tsv", item = "item", entity = "entity" }
user_edges = { file = "friends.csv", src = "src", dst = "dst" }

[interactions]
min_rating = 4

[[relations]]
column = "genres"
relation = "has_genre"
node_type = "genre"
delimiter = "|"

[[relations]]
column = "year"
relation = "in_decade"
node_type = "decade"
bucket = { width = 10, label = "{lo}s" }

[[relations]]
column = "studio"
relation = "made_by"
node_type = "studio"

[[relations]]
on = "user"
column = "age"
relation = "in_age_band"
node_type = "age_band"
bucket = { edges = [18, 25, 35, 45] }

[[relations]]
on = "user"
column = "job"
relation = "has_job"
node_type = "job"

[kg]
node_type = "entity"

[user_edges]
relation = "friend_of"

[graph]
reverse_relations = false

[text]
item_fields = ["title", "genres", "year"]
"""


def write_catalog(root: Path, spec: str = SPEC) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, text in {
        "catalog.csv": CATALOG,
        "ratings.csv": RATINGS,
        "users.csv": USERS,
        "kg.tsv": KG,
        "links.tsv": LINKS,
        "friends.csv": FRIENDS,
    }.items():
        (root / name).write_text(text, encoding="utf-8")
    (root / "tiny.toml").write_text(spec, encoding="utf-8")
    return root / "tiny.toml"


@pytest.fixture()
def tiny_spec_path(tmp_path: Path) -> Path:
    return write_catalog(tmp_path / "tiny")


@pytest.fixture()
def tiny_graph(tiny_spec_path):
    from kgrec.graph import build_graph, load_spec

    return build_graph(load_spec(tiny_spec_path))
