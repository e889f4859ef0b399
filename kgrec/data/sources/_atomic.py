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


def _split_inters(inters: list[Path]) -> tuple[str, dict[str, Path]] | None:
    """(NAME, part -> file) when the files are RecBole's ``NAME.train.inter`` /
    ``NAME.valid.inter`` / ``NAME.test.inter`` (benchmark_filename), else ``None``."""
    found: dict[str, dict[str, Path]] = {}
    for p in inters:
        stem, _, part = p.stem.rpartition(".")
        if stem and part in ("train", "valid", "test"):
            found.setdefault(stem, {})[part] = p
    if len(found) != 1 or len(inters) != len(next(iter(found.values()))):
        return None
    name, parts = next(iter(found.items()))
    if "train" not in parts or "test" not in parts:
        return None
    return name, {k: parts[k] for k in ("train", "valid", "test") if k in parts}


def _read_inter(
    path: Path,
    rating_range: tuple[float, float] | None,
    *,
    split: str | None = None,
    notes: list[str] | None = None,
) -> Interactions:
    raw = read_atomic(path)
    if "item_id_list" in raw.columns:  # sequential: one row per event, never a dropped column
        from kgrec.data.sources._sequential import expand_item_lists

        raw, seq_notes = expand_item_lists(raw)
        if notes is not None:
            notes.extend(seq_notes)
    cols = raw.columns
    review = next((c for c in ("review", "review_text") if c in cols), None)
    if split is not None:
        if "split" in cols:
            raise DataError(
                "a split file must not also have a split column", path=path, column="split"
            )
        raw.frame["split"] = split
    extra = {c: c for c in cols if c not in ("user_id", "item_id", "rating", "timestamp", review)}
    if split is not None:
        extra["split"] = "split"
    return Interactions.from_raw(
        raw,
        user="user_id",
        item="item_id",
        rating="rating" if "rating" in cols else None,
        timestamp="timestamp" if "timestamp" in cols else None,
        review=review,
        rating_range=rating_range,
        extra=extra,
    )


def load_atomic_dir(
    root: str | Path,
    *,
    name: str | None = None,
    rating_range: tuple[float, float] | None = None,
    text_fields: Iterable[str] = (),
) -> Dataset:
    """Read ``root/NAME.*`` atomic files. ``NAME`` defaults to the stem of the single ``.inter``.

    RecBole's pre-split ``NAME.train.inter`` / ``NAME.valid.inter`` / ``NAME.test.inter``
    (``benchmark_filename``) are read into one table with the part in its ``split`` column.

    Fields named in ``text_fields`` are free text rather than token sequences (e.g. a title).
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError("not a directory of RecBole atomic files", path=root)
    parts: dict[str, Path] = {}
    if name is None:
        inters = sorted(root.glob("*.inter"))
        split_names = _split_inters(inters)
        if split_names is not None:
            name, parts = split_names
        elif len(inters) != 1:
            raise DataError(
                f"expected one NAME.inter file or NAME.train.inter/NAME.valid.inter/"
                f"NAME.test.inter, found {[p.name for p in inters]}",
                path=root,
            )
        else:
            name = inters[0].stem
    elif not (root / f"{name}.inter").exists():
        parts = {
            part: root / f"{name}.{part}.inter"
            for part in ("train", "valid", "test")
            if (root / f"{name}.{part}.inter").exists()
        }
    notes: list[str] = []
    if parts:
        inter = Interactions.concat(
            [_read_inter(p, rating_range, split=part, notes=notes) for part, p in parts.items()]
        )
    else:
        inter = _read_inter(root / f"{name}.inter", rating_range, notes=notes)
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
