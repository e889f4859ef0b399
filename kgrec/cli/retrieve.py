"""``kgrec neighbors`` and ``kgrec recommend``: cold-start retrieval from the command line."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from kgrec.cli._options import DIR_PATH, FILE
from kgrec.errors import DataError

MODEL_HELP = (
    "'content' (text + KG content model, no training needed) or the output directory of "
    "`kgrec train SPEC --model hybrid --out DIR` (a trained hybrid)."
)


def common_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """SPEC, --model, --index-dir, -k and --json, shared by both commands."""
    f = click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")(f)
    f = click.option(
        "-k", "k", type=click.IntRange(1, 1000), default=10, show_default=True,
        help="Number of items to return (1..1000).",
    )(f)  # fmt: skip
    f = click.option(
        "--index-dir",
        type=DIR_PATH,
        help="Load the retriever (item + user indexes) from this directory when it was built "
        "for the same model, else build it and save it there.",
    )(f)
    f = click.option("--model", default="content", show_default=True, help=MODEL_HELP)(f)
    f = click.argument("spec", type=FILE)(f)
    return f


def _retriever(spec: Path, model: str, index_dir: Path | None) -> Any:
    from kgrec.serve import load_retriever

    return load_retriever(spec, model, index_dir=index_dir)


def _parse_attrs(pairs: tuple[str, ...]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for p in pairs:
        name, sep, value = p.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise click.BadParameter(f"expected NAME=VALUE, got {p!r}", param_hint="--attr")
        out.setdefault(name.strip(), []).extend(v.strip() for v in value.split("|") if v.strip())
    return out


def _table(title: str, hits: list[Any], *, with_title: bool = True) -> None:
    click.echo(title)
    if not hits:
        click.echo("  (none)")
        return
    width = max(len(h.id) for h in hits)
    for rank, h in enumerate(hits, start=1):
        name = f"  {h.title}" if with_title and h.title else ""
        click.echo(f"  {rank:>3}  {h.id:<{width}}  {h.score:7.4f}{name}")


@click.command()
@common_options
@click.option(
    "--item",
    "item",
    help="A known item id, or a .json / .csv file of new item rows (title, description, "
    "attributes; see kgrec.serve.read_item_file).",
)
@click.option("--title", help="A new item's title (instead of --item).")
@click.option("--description", default="", help="A new item's description (with --title).")
@click.option(
    "--attr",
    "attrs",
    multiple=True,
    metavar="NAME=VALUE",
    help="A new item's attribute (with --title), matched to KG entities through the spec: a "
    "catalog column (class=Sci-Fi, release_year=1997), a relation or an entity type; "
    "repeatable; several values as a|b.",
)
@click.option(
    "--users-k", type=click.IntRange(0, 1000), default=10, show_default=True,
    help="Users most likely to want the item (0: none).",
)  # fmt: skip
@click.option(
    "--add", "add", is_flag=True,
    help="Also add the new item(s) to the retriever (saved to --index-dir when given).",
)  # fmt: skip
def neighbors(
    spec: Path,
    model: str,
    index_dir: Path | None,
    k: int,
    as_json: bool,
    item: str | None,
    title: str | None,
    description: str,
    attrs: tuple[str, ...],
    users_k: int,
    add: bool,
) -> None:
    """The k items most similar to an item, and the users most likely to want it.

    The item is a known ITEM_ID (--item 50), new item rows from a file (--item new.json), or a
    new item given inline (--title "..." --description "..." --attr class=Sci-Fi). A new item is
    embedded inductively from its text and the KG entities its attributes match.
    """
    from kgrec.serve import NewItem, read_item_file

    if (item is None) == (title is None):
        raise click.UsageError("give exactly one of --item (id or file) or --title")
    if title is None and (description or attrs):
        raise click.UsageError("--description and --attr describe a new item given by --title")
    queries: list[Any]
    if title is not None:
        queries = [NewItem(title=title, description=description, attributes=_parse_attrs(attrs))]
    elif item is not None and Path(item).suffix.lower() in (".json", ".csv"):
        if not Path(item).is_file():
            raise DataError("no such item file", path=item)
        queries = read_item_file(item)
    else:
        queries = [str(item)]
    r = _retriever(spec, model, index_dir)
    new = [q for q in queries if isinstance(q, NewItem)]
    added: list[Any] = []
    if add and new:
        added = r.add_items(new)
        queries = [a.id for a in added]
        if index_dir is not None:
            r.save(index_dir, overwrite=True)
    results = [r.neighbors(q, k, users_k=users_k) for q in queries]
    if add and new:  # report what each added item's attributes matched
        import dataclasses

        notes = {a.id: a for a in added}
        results = [
            dataclasses.replace(
                res, matched=notes[res.item_id].matched, unmatched=notes[res.item_id].unmatched
            )
            if res.item_id in notes
            else res
            for res in results
        ]
    if as_json:
        click.echo(json.dumps([res.to_dict() for res in results], indent=1))
        return
    for q, res in zip(queries, results, strict=True):
        name = q.title if isinstance(q, NewItem) else (r.title(str(q)) or "")
        ident = res.item_id or "(new item)"
        added_note = " [added]" if add and r.is_added(ident) else ""
        click.echo(f"item {ident}{added_note}: {name}")
        if res.matched:
            click.echo(f"  matched KG entities: {', '.join(res.matched)}")
        if res.unmatched:
            click.echo(f"  not in the graph: {', '.join(res.unmatched)}")
        _table(f"top-{k} similar items:", res.items)
        if users_k:
            _table(f"top-{users_k} users likely to want it:", res.users, with_title=False)


@click.command()
@common_options
@click.option("--user", help="A known user id.")
@click.option("--history", help="A new user's known item ids, comma-separated (e.g. 50,172,181).")
@click.option("--text", help="A new user's free-text description of their taste.")
@click.option(
    "--attr",
    "attrs",
    multiple=True,
    help="A new user's profile attribute NAME=VALUE (repeatable), e.g. --attr age_band=25-34 "
    "--attr gender=F; used by models with a new-user path (a trained hybrid).",
)
@click.option("--include-known", is_flag=True, help="Do not mask the user's known (history) items.")
def recommend(
    spec: Path,
    model: str,
    index_dir: Path | None,
    k: int,
    as_json: bool,
    user: str | None,
    history: str | None,
    text: str | None,
    attrs: tuple[str, ...],
    include_known: bool,
) -> None:
    """Top-k items for a known user (--user), or a new user given item ids (--history), free
    text (--text) and/or profile attributes (--attr); the user's known items are masked."""
    hist = [h.strip() for h in (history or "").split(",") if h.strip()]
    attributes = _parse_attrs(attrs)
    if user is None and not hist and not (text and text.strip()) and not attributes:
        raise click.UsageError("give --user, or --history, --text and/or --attr")
    if user is not None and (hist or text or attributes):
        raise click.UsageError("--user cannot be combined with --history / --text / --attr")
    r = _retriever(spec, model, index_dir)
    if attributes and not hasattr(r.model, "score_user"):
        raise click.UsageError(
            f"--attr needs a model with a new-user path; {r.model.name!r} has none"
        )
    res = r.recommend(
        user,
        history=hist,
        text=text,
        attributes=attributes or None,
        k=k,
        exclude_known=not include_known,
    )
    if as_json:
        click.echo(json.dumps(res.to_dict(), indent=1))
        return
    who = f"user {user}" if user is not None else "new user"
    click.echo(f"{who}: {res.masked} known items masked")
    _table(f"top-{k} recommendations:", res.items)
