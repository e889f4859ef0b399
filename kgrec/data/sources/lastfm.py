"""HetRec 2011 Last.FM-2K joined with the Satori KG as preprocessed for KGCN (read from a directory).

Files (see the dataset's README): ``user_artists.dat`` (listens with play counts), ``artists.dat``
(UTF-8 names), ``tags.dat`` (ISO-8859-1, CRLF), ``user_taggedartists.dat`` (free-text tags users gave
artists), ``user_friends.dat`` (CRLF), ``item_index2entity_id.txt`` and ``kg.txt`` (no headers, CRLF).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from kgrec.data._columns import _ids, _numbers
from kgrec.data._dataset import Dataset
from kgrec.data._io import read_delimited
from kgrec.data._tables import AttributeTable, Interactions, Links, Triples
from kgrec.data.sources._local import local_dir
from kgrec.errors import DataError

FILES = (
    "user_artists.dat",
    "artists.dat",
    "tags.dat",
    "user_taggedartists.dat",
    "user_friends.dat",
    "item_index2entity_id.txt",
    "kg.txt",
)


def _tsv(root: Path, name: str, **kw):
    return read_delimited(root / name, delimiter="\t", quoting=False, **kw)


def load(path: str | Path | None) -> Dataset:
    """Load the dataset from ``path``, the directory holding the files listed in ``FILES``."""
    root = local_dir(path, dataset="lastfm-hetrec", holding="user_artists.dat, kg.txt, ...")
    missing = [f for f in FILES if not (root / f).is_file()]
    if missing:
        raise DataError(f"missing file(s) {missing}", path=root)
    inter = Interactions.from_raw(
        _tsv(root, "user_artists.dat"), user="userID", item="artistID", weight="weight"
    )
    items = AttributeTable.from_raw(
        _tsv(root, "artists.dat"),
        node_type="item",
        id_column="id",
        attributes={"name": "text", "url": "token"},
    )
    tag_raw = _tsv(root, "tags.dat", encoding="iso-8859-1")
    tag_ids = _ids(tag_raw, "tagID", what="tag")
    tag_names = pd.Series(tag_raw.frame["tagValue"].to_numpy(), index=tag_ids.to_numpy())
    if not tag_names.index.is_unique:
        raise tag_raw.error(
            int(np.flatnonzero(tag_names.index.duplicated())[0]), "tagID", "duplicate tag id"
        )
    ta = _tsv(root, "user_taggedartists.dat")
    tag_col = _ids(ta, "tagID", what="tag")
    unknown = ~tag_col.isin(tag_names.index).to_numpy()
    if unknown.any():
        row = int(np.flatnonzero(unknown)[0])
        raise ta.error(row, "tagID", f"tag id {tag_col[row]!r} is not in tags.dat")
    day = _numbers(ta, "day", what="day", integer=True, value_range=(1, 31))
    month = _numbers(ta, "month", what="month", integer=True, value_range=(1, 12))
    year = _numbers(ta, "year", what="year", integer=True)
    ts = pd.to_datetime(pd.DataFrame({"year": year, "month": month, "day": day}), errors="coerce")
    tags = pd.DataFrame(
        {
            "user": _ids(ta, "userID", what="user"),
            "item": _ids(ta, "artistID", what="item"),
            "tag": tag_names.loc[tag_col.to_numpy()].to_numpy(),
            "timestamp": (ts.astype("datetime64[s]").astype("int64")).where(ts.notna(), np.nan),
        }
    )
    friends = _tsv(root, "user_friends.dat")
    user_edges = pd.DataFrame(
        {"src": _ids(friends, "userID", what="user"), "dst": _ids(friends, "friendID", what="user")}
    )
    link_raw = _tsv(root, "item_index2entity_id.txt", header=["item", "entity"])
    links = Links.from_raw(link_raw)
    ds = Dataset(
        name="lastfm-hetrec",
        interactions=inter,
        items=items,
        kg=Triples.from_raw(_tsv(root, "kg.txt", header=["head", "relation", "tail"])),
        links=links,
        user_edges=user_edges,
        tags=tags,
        root=root,
    )
    links.check_items(ds.item_ids(), lines=link_raw.lines)
    absent = ~tags["item"].isin(pd.Index(ds.item_ids()))
    if absent.any():
        ds.notes.append(
            f"{int(absent.sum()):,} tag assignments name {tags.loc[absent, 'item'].nunique():,} "
            "artists absent from artists.dat; they are kept in `tags` and flagged by the graph "
            "builder, not dropped"
        )
    return ds
