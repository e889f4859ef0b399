"""The registered datasets load from their real files with the source files' own counts."""

from __future__ import annotations

import pytest

from kgrec.data import DATASETS, load_dataset
from kgrec.errors import DataError


def test_ml100k_counts(ml100k):
    s = ml100k.summary()
    assert (s.users, s.items, s.interactions) == (943, 1682, 100_000)
    assert (s.kg_triples, s.kg_relations, s.linked_items) == (91_631, 24, 1_598)
    assert s.rating_histogram == {"1": 6110, "2": 11370, "3": 27145, "4": 34174, "5": 21201}
    # unlinked items are kept, with their text and interactions
    linked = set(ml100k.links.frame["item"])
    unlinked = [i for i in ml100k.items.ids if i not in linked]
    assert len(unlinked) == 1682 - 1598
    assert ml100k.interactions.frame["item"].isin(unlinked).sum() > 0
    row = ml100k.items.frame.set_index("id").loc["1"]
    assert row["movie_title"] == "Toy Story" and "Animation" in row["class"]
    assert set(ml100k.users.attributes) == {"age", "gender", "occupation", "zip_code"}


def test_lastfm_counts(lastfm_dir):
    ds = load_dataset("lastfm-hetrec", path=lastfm_dir)
    s = ds.summary()
    assert (s.users, s.items, s.interactions) == (1892, 17_632, 92_834)
    assert (s.kg_triples, s.kg_relations, s.kg_entities, s.linked_items) == (
        15_518,
        60,
        9_366,
        3_846,
    )
    assert s.user_edges == 25_434 and s.tag_assignments == 186_478
    # ISO-8859-1 tag text decoded, CRLF stripped
    tags = set(ds.tags["tag"])
    assert "metal" in tags and not any(t.endswith("\r") for t in tags)
    assert any("390 artists absent" in n for n in s.notes)


def test_amazon_counts_and_reviews(amazon_dir):
    ds = load_dataset("amazon-instruments", path=amazon_dir)
    s = ds.summary()
    assert (s.users, s.items, s.interactions) == (1429, 900, 10_261)
    assert s.splits == {"test": 1027, "train": 8208, "val": 1026}
    assert s.interactions_with_review == 10_261 - 7  # seven reviews in the source are empty
    assert ds.interactions.frame["review"].str.len().max() > 100


def test_local_dataset_without_path_is_a_clear_error():
    with pytest.raises(DataError, match="--path DIR"):
        load_dataset("lastfm-hetrec")
    with pytest.raises(DataError, match="neither a registered dataset"):
        load_dataset("no-such-dataset")
    assert set(DATASETS) == {"ml-100k", "lastfm-hetrec", "amazon-instruments", "kgat"}


def test_atomic_directory_round_trip(tmp_path, ml100k_dir):
    # a directory of atomic files is itself a dataset
    for f in ml100k_dir.iterdir():
        (tmp_path / f.name.replace("ml-100k", "copy")).write_bytes(f.read_bytes())
    ds = load_dataset(tmp_path)
    assert ds.name == "copy" and len(ds.interactions) == 100_000 and len(ds.kg) == 91_631


def test_lastfm_tag_timestamps_are_epoch_seconds(lastfm_dir):
    ts = load_dataset("lastfm-hetrec", path=lastfm_dir).tags["timestamp"].dropna()
    # HetRec tag assignments date from the 1950s-placeholder rows to 2011; most are 2005-2011
    share = ts.between(1104537600, 1325376000).mean()  # 2005-01-01 .. 2012-01-01
    assert share > 0.99


def test_amazon_book_kgat_counts():
    """The KGAT/KGIN amazon-book files: the published counts, split kept."""
    from tests.conftest import shared_dataset

    ds = load_dataset(shared_dataset("amazon-book-kgat"))
    f = ds.interactions.frame
    assert f["split"].value_counts().to_dict() == {"train": 652_514, "test": 193_920}
    assert (f["user"].nunique(), f["item"].nunique()) == (70_679, 24_915)


@pytest.mark.parametrize(
    ("module", "name"),
    [("amazon", "amazon-instruments"), ("kgat", "KGAT/KGIN"), ("lastfm", "lastfm-hetrec")],
)
def test_local_sources_need_a_directory(module, name, tmp_path):
    """A local dataset without a path says which dataset and which files; a file in place of
    the directory is named as such."""
    import importlib

    load = importlib.import_module(f"kgrec.data.sources.{module}").load
    with pytest.raises(DataError, match=f"{name}.* is read from a local directory"):
        load(None)
    not_dir = tmp_path / "train.txt"
    not_dir.write_text("0 1\n")
    with pytest.raises(DataError, match="not a directory") as exc:
        load(not_dir)
    assert str(not_dir) in str(exc.value)
