"""Load a directory of RecBole atomic files (``NAME.inter``, ``.item``, ``.user``, ``.kg``, ``.link``)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from kgrec.data._dataset import Dataset
from kgrec.data._io import read_atomic
from kgrec.data._tables import AttributeTable, Interactions, Links, Triples
from kgrec.errors import DataError

_ATOMIC_TO_ATTR = {"token": "token", "token_seq": "tokens", "float": "float", "float_seq": "text"}


def _attr_table(
    path: Path, node_type: str, id_col: str, text_fields: Iterable[str]
) -> AttributeTable:
    raw = read_atomic(path)
    text = set(text_fields)
    attrs = {
        c: ("text" if c in text else _ATOMIC_TO_ATTR[raw.types[c]])
        for c in raw.columns
        if c != id_col
    }
    delims = {c: " " for c, t in attrs.items() if t == "tokens"}
    return AttributeTable.from_raw(
        raw, node_type=node_type, id_column=id_col, attributes=attrs, delimiters=delims
    )


def load_atomic_dir(
    root: str | Path,
    *,
    name: str | None = None,
    rating_range: tuple[float, float] | None = None,
    text_fields: Iterable[str] = (),
) -> Dataset:
    """Read ``root/NAME.*`` atomic files. ``NAME`` defaults to the stem of the single ``.inter``.

    Fields named in ``text_fields`` are free text rather than token sequences (e.g. a title).
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError("not a directory of RecBole atomic files", path=root)
    if name is None:
        inters = sorted(root.glob("*.inter"))
        if len(inters) != 1:
            raise DataError(
                f"expected exactly one .inter file, found {[p.name for p in inters]}", path=root
            )
        name = inters[0].stem
    inter_path = root / f"{name}.inter"
    raw = read_atomic(inter_path)
    notes: list[str] = []
    if "item_id_list" in raw.columns:  # sequential: one row per event, never a dropped column
        from kgrec.data.sources._sequential import expand_item_lists

        raw, notes = expand_item_lists(raw)
    cols = raw.columns
    review = next((c for c in ("review", "review_text") if c in cols), None)
    inter = Interactions.from_raw(
        raw,
        user="user_id",
        item="item_id",
        rating="rating" if "rating" in cols else None,
        timestamp="timestamp" if "timestamp" in cols else None,
        review=review,
        rating_range=rating_range,
        extra={
            c: c for c in cols if c not in ("user_id", "item_id", "rating", "timestamp", review)
        },
    )
    ds = Dataset(name=name, interactions=inter, root=root, notes=notes)
    text = tuple(text_fields)
    if (root / f"{name}.item").exists():
        ds.items = _attr_table(root / f"{name}.item", "item", "item_id", text)
    if (root / f"{name}.user").exists():
        ds.users = _attr_table(root / f"{name}.user", "user", "user_id", text)
    if (root / f"{name}.kg").exists():
        ds.kg = Triples.from_raw(
            read_atomic(root / f"{name}.kg"), head="head_id", relation="relation_id", tail="tail_id"
        )
    if (root / f"{name}.link").exists():
        link_raw = read_atomic(root / f"{name}.link")
        ds.links = Links.from_raw(link_raw, item="item_id", entity="entity_id")
        ds.links.check_items(ds.item_ids(), lines=link_raw.lines)
    return ds
