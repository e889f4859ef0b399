"""``kgrec graph init``: guess a commented spec from the headers and a sample of a catalog's rows.

The guesses (each written with the reason as a TOML comment, so that a user can check them):

* interactions: the user and item id columns by name (``user``, ``customer`` ... / ``item``,
  ``product``, ``asin`` ...; else the first two columns), ``rating``/``timestamp``/``weight`` by
  name when their sampled values are numbers; repeated user-item pairs -> ``duplicates = "count"``.
* items: the id column (the interactions' item column name, else ``id``-like, else the first);
  long, mostly unique strings (titles, descriptions) -> free text; columns whose values hold a
  delimiter (``|``, ``;``, ``,``) with repeating parts, and JSON lists -> multi-valued relations;
  repeating short values -> single-valued relations; unique ids, URLs and numbers are left out
  (with a comment saying how to add them).
* triples (head, relation, tail) and links (item, entity): by name, else by position.

A column taken by position (no header matched) is marked ``# by position`` in the spec and named
in the notes, since it is the guess most worth checking.

The result is meant to build without edits (``kgrec graph build``); ``kgrec graph check`` says
what it would build.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from kgrec.data import read_table
from kgrec.errors import DataError

SAMPLE = 2000
DELIMITERS = ("|", ";", ",")
_USER = re.compile(r"^(user|customer|reviewer|member|account|client|buyer|visitor|uid)", re.I)
_ITEM = re.compile(
    r"^(item|product|movie|artist|asin|sku|article|book|track|song|film|iid|offer)", re.I
)
_RATING = re.compile(r"(rating|score|stars|grade)", re.I)
_TIME = re.compile(r"(time|date|^ts$|timestamp|unix|when)", re.I)
_WEIGHT = re.compile(r"(count|plays|weight|quantity|qty|clicks|views)", re.I)
_TEXTY = re.compile(r"(title|name|description|desc|summary|text|overview|plot|about)", re.I)
_URL = re.compile(r"^(https?://|www\.)", re.I)


@dataclass
class Guess:
    """A proposed spec as TOML text, and the notes shown to the user."""

    toml: str
    notes: list[str] = field(default_factory=list)


def _strings(col: pd.Series) -> pd.Series:
    return col.dropna().map(lambda v: v if isinstance(v, list) else str(v).strip())


def _numeric(col: pd.Series) -> bool:
    s = _strings(col)
    s = s[s.map(lambda v: not isinstance(v, list) and v != "")]
    return len(s) > 0 and bool(pd.to_numeric(s, errors="coerce").notna().all())


def _pick(columns: list[str], pattern: re.Pattern, exclude: set[str]) -> str | None:
    return next((c for c in columns if c not in exclude and pattern.search(c)), None)


def _by_name_or_position(
    columns: list[str], pattern: re.Pattern, exclude: set[str], what: str, notes: list[str]
) -> tuple[str, str]:
    """The column whose name matches ``pattern``, else the first one not in ``exclude``, with
    the TOML comment to write beside it (empty when found by name)."""
    found = _pick(columns, pattern, exclude)
    if found is not None:
        return found, ""
    col = next(c for c in columns if c not in exclude)
    notes.append(f"no column is named like {what}: took {col!r} by position; check it")
    return col, f"  # by position: no column is named like {what}"


def _q(v: str) -> str:
    return json.dumps(v, ensure_ascii=False)


def _rel(path: Path, out_dir: Path) -> str:
    try:
        return os.path.relpath(path.resolve(), out_dir.resolve())
    except ValueError:  # another drive (Windows)
        return str(path.resolve())


def _slug(name: str) -> str:
    s = re.sub(r"[^0-9a-zA-Z]+", "_", name).strip("_").lower()
    return s or "value"


def _singular(name: str) -> str:
    """``categories`` -> ``category``, ``tags`` -> ``tag`` (node types name one value)."""
    if name.endswith("ies") and len(name) > 4:
        return name[:-3] + "y"
    if name.endswith("s") and not name.endswith("ss") and len(name) > 3:
        return name[:-1]
    return name


@dataclass
class _Column:
    kind: str  # "text" | "multi" | "single" | "skip"
    reason: str
    delimiter: str | None = None


def _node_type(slug: str) -> str:
    t = _singular(slug)
    return t if t not in ("user", "item") else t + "_value"


def classify(col: pd.Series, name: str) -> _Column:
    """What a catalog column probably is (see the module docstring)."""
    s = _strings(col)
    s = s[s.map(lambda v: isinstance(v, list) or v != "")]
    n = len(s)
    if n == 0:
        return _Column("skip", "empty in the sample")
    if s.map(lambda v: isinstance(v, list)).any():
        return _Column("multi", "JSON lists")
    vals = s.astype(str)
    if vals.map(lambda v: bool(_URL.match(v))).mean() > 0.5:
        return _Column("skip", "URLs")
    distinct = vals.nunique()
    mean_len = float(vals.str.len().mean())
    words = float(vals.str.split().map(len).mean())
    if _numeric(col):
        return _Column(
            "skip",
            f"numbers ({distinct:,} distinct): add a [[relations]] entry with "
            "bucket = { width = ... } to make it a relation",
        )
    for d in DELIMITERS:
        has = vals.str.contains(d, regex=False)
        if has.mean() < 0.2:
            continue
        parts = vals.str.split(d, regex=False).explode().str.strip()
        parts = parts[parts != ""]
        if d == "," and (words > 6 or mean_len > 60):  # commas inside prose
            continue
        if parts.nunique() < 0.7 * len(parts):  # the parts repeat: values of a category
            return _Column(
                "multi",
                f"{has.mean():.0%} of values hold {d!r}; {parts.nunique():,} distinct parts",
                d,
            )
    if _TEXTY.search(name) or (distinct > 0.8 * n and (words >= 3 or mean_len > 25)):
        return _Column("text", f"free text: {distinct:,} distinct of {n:,}, {words:.1f} words")
    if distinct == n and n > 20:
        return _Column("skip", "unique per row (an identifier?)")
    if distinct <= max(2, 0.5 * n):
        return _Column("single", f"{distinct:,} distinct values in {n:,} rows")
    return _Column("skip", f"{distinct:,} distinct values in {n:,} rows: neither text nor category")


def propose_spec(
    interactions: Path,
    *,
    items: Path | None = None,
    triples: Path | None = None,
    links: Path | None = None,
    out: Path,
    name: str | None = None,
) -> Guess:
    """Read headers and a sample of rows, and write a commented spec (see the module docs)."""
    out_dir = out.parent
    name = name or out.stem
    notes: list[str] = []
    lines = [
        f"# Written by `kgrec graph init` from {interactions.name}"
        + (f", {items.name}" if items else "")
        + (f", {triples.name}" if triples else "")
        + (f", {links.name}" if links else "")
        + ". Check the guesses (the comments say why),",
        "# then `kgrec graph check` and `kgrec graph build`. Keys: docs/spec.md.",
        f"name = {_q(name)}",
        "",
    ]
    raw = read_table(interactions)
    cols = raw.columns
    if len(cols) < 2:
        raise DataError(f"need at least a user and an item column, found {cols}", path=interactions)
    frame = raw.frame
    user, user_why = _by_name_or_position(cols, _USER, set(), "a user id", notes)
    item, item_why = _by_name_or_position(cols, _ITEM, {user}, "an item id", notes)
    used = {user, item}
    sample = frame.head(SAMPLE)
    opt: dict[str, str] = {}
    for key, pat in (("rating", _RATING), ("timestamp", _TIME), ("weight", _WEIGHT)):
        c = _pick(cols, pat, used)
        if c is None:
            continue
        if _numeric(sample[c]):
            opt[key] = c
            used.add(c)
        else:
            notes.append(f"{c!r} looks like a {key} but its values are not numbers: left out")
    lines += ["[source.interactions]", f"file = {_q(_rel(interactions, out_dir))}"]
    lines += [f"user = {_q(user)}{user_why}", f"item = {_q(item)}{item_why}"]
    lines += [f"{k} = {_q(v)}" for k, v in opt.items()]
    pairs = frame[[user, item]].astype(str)
    dups = int(pairs.duplicated().sum())
    if dups:
        lines += [
            f"# {dups:,} repeated user-item rows: merged into one edge with weight = count",
            '# (or "first" / "last" to keep one row, "error" to refuse them)',
            'duplicates = "count"',
        ]
        notes.append(f'{dups:,} repeated user-item rows -> duplicates = "count"')
    rest = [c for c in cols if c not in used]
    if rest:
        lines.append(f"# not used: {rest}")
    lines.append("")

    relations: list[str] = []
    text_fields: list[str] = []
    if items is not None:
        iraw = read_table(items)
        icols = iraw.columns
        id_why = ""
        if item in icols:
            id_col = item
        else:
            id_col, id_why = _by_name_or_position(
                icols, re.compile(r"id$", re.I), set(), "an item id", notes
            )
        free_text: list[str] = []
        isample = iraw.frame.head(SAMPLE)
        col_lines: list[str] = []
        for c in icols:
            if c == id_col:
                continue
            k = classify(isample[c], c)
            col_lines.append(f"#   {c}: {k.kind} ({k.reason})")
            if k.kind == "text":
                free_text.append(c)
                text_fields.append(c)
            elif k.kind in ("multi", "single"):
                slug = _slug(c)
                rel = [
                    "[[relations]]",
                    f"column = {_q(c)}            # {k.reason}",
                    f"relation = {_q('has_' + slug)}",
                    f"node_type = {_q(_node_type(slug))}",
                ]
                if k.delimiter is not None:
                    rel.append(f"delimiter = {_q(k.delimiter)}")
                relations.append("\n".join(rel) + "\n")
                text_fields.append(c)
        lines += [
            "[source.items]",
            f"file = {_q(_rel(items, out_dir))}",
            f"id = {_q(id_col)}{id_why}",
        ]
        lines += ["# free-text columns (titles, descriptions): rendered into item text as they are"]
        lines.append(f"text = {json.dumps(free_text, ensure_ascii=False)}")
        lines += ["# the columns, as guessed from a sample:", *col_lines, ""]
    if triples is not None:
        traw = read_table(triples)
        tc = traw.columns
        if len(tc) < 3:
            raise DataError(f"need head, relation and tail columns, found {tc}", path=triples)
        head, head_why = _by_name_or_position(
            tc, re.compile(r"^(head|subject|h$|src|source)", re.I), set(), "a head", notes
        )
        rel_c, rel_why = _by_name_or_position(
            tc,
            re.compile(r"^(relation|predicate|rel|r$|property)", re.I),
            {head},
            "a relation",
            notes,
        )
        tail, tail_why = _by_name_or_position(
            tc, re.compile(r"^(tail|object|t$|dst|target)", re.I), {head, rel_c}, "a tail", notes
        )
        lines += [
            "[source.kg]",
            f"file = {_q(_rel(triples, out_dir))}",
            f"head = {_q(head)}{head_why}",
            f"relation = {_q(rel_c)}{rel_why}",
            f"tail = {_q(tail)}{tail_why}",
            "",
        ]
    if links is not None:
        lraw = read_table(links)
        lc = lraw.columns
        if len(lc) < 2:
            raise DataError(f"need item and entity columns, found {lc}", path=links)
        li, li_why = _by_name_or_position(lc, _ITEM, set(), "an item id", notes)
        le, le_why = _by_name_or_position(
            lc, re.compile(r"(entity|node|kg)", re.I), {li}, "an entity", notes
        )
        lines += [
            "[source.links]",
            f"file = {_q(_rel(links, out_dir))}",
            f"item = {_q(li)}{li_why}",
            f"entity = {_q(le)}{le_why}",
            "",
        ]
    lines += ["[interactions]", 'relation = "interacts"']
    if "rating" in opt:
        lines.append("# min_rating = 4             # keep only ratings >= 4 as positive edges")
    lines.append("")
    lines += [*relations]
    if triples is not None:
        lines += [
            "# external triples; entities named in the links file become those item nodes",
            "[kg]",
            'node_type = "entity"',
            "",
        ]
        if links is None:
            notes.append("triples without a links file: no KG entity is merged into an item")
    lines += ["[text]", "# item text = these columns rendered as 'column: value' lines"]
    lines.append(f"item_fields = {json.dumps(text_fields, ensure_ascii=False)}")
    if not text_fields:
        notes.append("no text column found: items will have no text (the hybrid uses KG only)")
    return Guess("\n".join(lines) + "\n", notes)
