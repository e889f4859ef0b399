"""``kgrec graph``: build graphs from specs, print their stats, export them."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click

from kgrec.cli._options import DIR, DIR_PATH, FILE, FILE_PATH, SPEC_DATA_PATH_HELP
from kgrec.errors import KgrecError


@click.group()
def graph() -> None:
    """Build, inspect and export knowledge graphs described by specs (graphs/*.toml)."""


def _default_out(name: str) -> Path:
    from kgrec._atomic import under_root
    from kgrec.data import kgrec_home

    return under_root(kgrec_home() / "graphs", name)


@graph.command()
@click.argument("spec", type=FILE_PATH)
@click.option(
    "--out",
    type=DIR_PATH,
    help="Output directory (default: $KGREC_HOME/graphs/<spec name>, replaced if present).",
)
@click.option("--data-path", type=DIR, help=SPEC_DATA_PATH_HELP)
@click.option("--overwrite", is_flag=True, help="Replace --out if it already exists.")
@click.option("--quiet", is_flag=True, help="Print only the output directory, not the stats.")
def build(spec: Path, out: Path | None, data_path: Path | None, overwrite: bool, quiet: bool):
    """Build the graph described by SPEC and save it (atomically: a failed or interrupted build
    leaves no half-written directory), then print its stats."""
    from kgrec._atomic import check_out_dir
    from kgrec.graph import build_graph, cache_key, load_spec

    t0 = time.perf_counter()
    s = load_spec(spec, data_path=data_path)
    # checked before the build: an unsafe --out fails in a second, not after the whole build
    if out is not None:
        target = check_out_dir(out, overwrite=overwrite)
    else:  # the cache directory under $KGREC_HOME is kgrec's own: replaced when present
        target = _default_out(s.name)
        check_out_dir(target, overwrite=True, what="the cache directory")
    g = build_graph(s, progress=None if quiet else lambda m: click.echo(f"  {m}", err=True))
    g.meta["cache_key"] = cache_key(s)  # lets load_or_build(spec) reuse this directory
    g.save(target, overwrite=True)
    wall = time.perf_counter() - t0
    if not quiet:
        click.echo(g.stats().to_text())
        click.echo(f"built in {wall:.1f}s (load + build + save)")
    click.echo(str(target))


@graph.command()
@click.argument("directory", type=DIR)
@click.option(
    "--plot",
    "plot",
    type=FILE_PATH,
    help="Also draw the degree distributions per node type to this PNG file.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the stats as JSON.")
def stats(directory: Path, plot: Path | None, as_json: bool) -> None:
    """Counts of a built graph: nodes per type, edges per relation and edge type, degree
    summary per node type, and the build notes (what was kept, added or removed)."""
    from kgrec.graph import KnowledgeGraph

    g = KnowledgeGraph.load(directory)
    st = g.stats()
    click.echo(json.dumps(st.to_dict(), indent=2) if as_json else st.to_text())
    if plot is not None:
        from kgrec.graph._plot import plot_degrees

        plot_degrees(g, plot)
        click.echo(f"degree plot: {plot}", err=as_json)


FORMATS = ("recbole", "networkx", "pyg")


@graph.command()
@click.argument("directory", type=DIR)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    required=True,
    help="recbole: a directory of atomic files (.inter .user .item .kg .link, every item linked); "
    "networkx: a node-link JSON file; pyg: a torch-geometric HeteroData saved with torch.save.",
)
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Output path.")
@click.option("--overwrite", is_flag=True, help="Replace --out if it exists.")
def export(directory: Path, fmt: str, out: Path, overwrite: bool) -> None:
    """Export a built graph to RecBole atomic files, networkx or torch-geometric."""
    from kgrec._atomic import atomic_path
    from kgrec.graph import KnowledgeGraph, export_recbole

    g = KnowledgeGraph.load(directory)
    if out.exists() and not overwrite:
        raise KgrecError(f"{out} already exists; pass --overwrite to replace it")
    if fmt == "recbole":
        export_recbole(g, out, overwrite=True)
    elif fmt == "networkx":
        import networkx as nx

        G = g.to_networkx()
        data = nx.node_link_data(G, edges="edges")
        for n in data["nodes"]:
            n["id"] = list(n["id"])
        for e in data["edges"]:
            e["source"], e["target"] = list(e["source"]), list(e["target"])
        with atomic_path(out, suffix=".json") as tmp:
            tmp.write_text(json.dumps(data), encoding="utf-8")
    else:
        import torch

        data = g.to_hetero_data()
        with atomic_path(out, suffix=".pt") as tmp:
            torch.save(data, tmp)
    click.echo(str(out))


@graph.command()
@click.option(
    "--interactions",
    type=FILE,
    required=True,
    help="Interactions file (user, item, optional rating / timestamp / count).",
)
@click.option("--items", type=FILE, help="Item catalog (CSV, TSV, JSON lines, Parquet).")
@click.option("--triples", type=FILE, help="External KG triples (head, relation, tail).")
@click.option("--links", type=FILE, help="Item -> KG entity links (item, entity).")
@click.option(
    "--out",
    type=FILE_PATH,
    required=True,
    help="The spec to write, e.g. graphs/NAME.toml (its name is the file's stem).",
)
@click.option("--overwrite", is_flag=True, help="Replace --out if it exists.")
def init(
    interactions: Path,
    items: Path | None,
    triples: Path | None,
    links: Path | None,
    out: Path,
    overwrite: bool,
) -> None:
    """Write a commented spec for your own files: reads their headers and a sample of rows and
    guesses the id, rating, timestamp, count, text and multi-valued columns (and delimiters).
    The spec builds as written; check the guesses with `kgrec graph check OUT`."""
    from kgrec._atomic import atomic_path
    from kgrec.graph._init import propose_spec

    if out.exists() and not overwrite:
        raise KgrecError(f"{out} already exists; pass --overwrite to replace it")
    out.parent.mkdir(parents=True, exist_ok=True)
    guess = propose_spec(interactions, items=items, triples=triples, links=links, out=out)
    with atomic_path(out, suffix=".toml") as tmp:
        tmp.write_text(guess.toml, encoding="utf-8")
    for note in guess.notes:
        click.echo(f"note: {note}", err=True)
    click.echo(str(out))


@graph.command()
@click.argument("spec", type=FILE_PATH)
@click.option("--data-path", type=DIR, help=SPEC_DATA_PATH_HELP)
def check(spec: Path, data_path: Path | None) -> None:
    """Validate SPEC and its files and print what `kgrec graph build` would make of them
    (tables, relations with their distinct values, text fields), without building the graph."""
    from kgrec.graph import load_spec
    from kgrec.graph._check import check_spec

    s = load_spec(spec, data_path=data_path)
    click.echo(check_spec(s))
    if s.text.item_fields or s.text.item_tags:
        from kgrec.text import texts_from_spec

        texts = texts_from_spec(s)["item"]
        empty = sum(1 for t in texts.texts if not t)
        i, first = next(
            ((i, t) for i, t in zip(texts.ids, texts.texts, strict=True) if t), ("", "")
        )
        click.echo(f"  e.g. item {i!r}: {first[:200]!r}")
        if empty:
            click.echo(f"  warning: {empty:,} of {len(texts):,} items have no text")
