"""``kgrec compare``: CF baselines (and later the hybrid) under one full-ranking protocol."""

from __future__ import annotations

import shlex
import sys
import time
from pathlib import Path

import click

from kgrec.errors import KgrecError, SpecError

#: default positive threshold per registered dataset (None: every interaction is positive)
DEFAULT_MIN_RATING = {"ml-100k": 4.0}


def load_target(target: str, path: str | None, min_rating: float | None):
    """(dataset, min_rating, label) for a registered dataset name or a graph spec ``.toml``."""
    ds, mr, label, _ = load_target_spec(target, path, min_rating)
    return ds, mr, label


def load_target_spec(target: str, path: str | None, min_rating: float | None):
    """(dataset, min_rating, label, spec or None) for a dataset name or a graph spec ``.toml``."""
    from kgrec.data import DATASETS, load_dataset

    if target.endswith(".toml") or Path(target).is_file():
        from kgrec.graph import load_spec

        spec = load_spec(target)
        ds = spec.load_dataset()
        mr = min_rating if min_rating is not None else spec.interactions.min_rating
        return ds, mr, f"spec {spec.name} ({target})", spec
    if target not in DATASETS and not Path(target).is_dir():
        raise SpecError(
            f"{target!r} is neither a graph spec (.toml) nor a registered dataset "
            f"{sorted(DATASETS)} nor a directory of atomic files"
        )
    ds = load_dataset(target, path=path)
    mr = min_rating if min_rating is not None else DEFAULT_MIN_RATING.get(target)
    return ds, mr, f"dataset {target}", None


@click.command("compare")
@click.argument("spec_or_dataset")
@click.option(
    "--models",
    default="pop,itemknn,ease,mf,lightgcn",
    show_default=True,
    help="Comma-separated short names: pop, itemknn, ease, mf (MF-BPR), lightgcn, hybrid "
    "(KG + text hybrid; needs a graph spec for its knowledge graph and text fields).",
)
@click.option(
    "--protocol",
    type=click.Choice(["warm", "temporal", "cold-item", "cold-user"]),
    default="warm",
    show_default=True,
    help="warm: random per-user 8:1:1 (RecBole RS grouped by user); temporal: leave-last-out; "
    "cold-item: 20% of items held out (cold / warm / overall tasks); cold-user: 20% of users "
    "held out, k in {0,1,3,5} of their items revealed.",
)
@click.option(
    "--seeds", type=int, default=1, show_default=True, help="Number of seeds (2020, 2021, ...)."
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Report directory (default ./out/compare-<name>-<protocol>).",
)
@click.option(
    "--epochs",
    type=int,
    default=None,
    help="Epoch cap for trained models (mf, lightgcn, hybrid); default: each model's own.",
)
@click.option(
    "--max-seconds",
    type=float,
    default=None,
    help="Training wall-time cap per trained model and seed.",
)
@click.option(
    "--min-rating",
    type=float,
    default=None,
    help="Ratings >= this are positives, the rest are dropped (default 4 for ml-100k, the "
    "spec's [interactions] min_rating for a spec, otherwise every interaction).",
)
@click.option("--path", "data_path", default=None, help="Dataset directory for local datasets.")
@click.option("--k", "ks", default="10,20", show_default=True, help="Cutoffs, comma-separated.")
@click.option("--device", default="cpu", show_default=True, help="Training device (cpu, cuda).")
@click.option("--progress/--no-progress", default=True, help="Show progress messages on stderr.")
def compare(
    spec_or_dataset: str,
    models: str,
    protocol: str,
    seeds: int,
    out_dir: str | None,
    epochs: int | None,
    max_seconds: float | None,
    min_rating: float | None,
    data_path: str | None,
    ks: str,
    device: str,
    progress: bool,
) -> None:
    """Compare recommenders on SPEC_OR_DATASET (a graph spec .toml or a dataset name).

    Every model is ranked over all candidate items with each user's training (and at test
    time validation) items masked; per-user values give 95% bootstrap confidence intervals and
    paired tests. Writes report.md, report.json, report.png and per_user.csv.gz, and prints the
    table.
    """
    from kgrec.eval import positives
    from kgrec.eval._report import summary_table, write_report
    from kgrec.eval._runner import CompareOptions, seeds_from
    from kgrec.eval._runner import compare as run_compare

    t0 = time.perf_counter()
    try:
        cutoffs = tuple(int(k) for k in ks.split(",") if k.strip())
    except ValueError:
        raise SpecError(f"--k must be comma-separated integers, got {ks!r}", key="k") from None
    names = tuple(m.strip() for m in models.split(",") if m.strip())
    options = CompareOptions(
        models=names,
        protocol=protocol,
        seeds=seeds_from(seeds),
        ks=cutoffs,
        primary=f"NDCG@{max(cutoffs)}",
        epochs=epochs,
        max_seconds=max_seconds,
        device=device,
    )
    from kgrec.models.hybrid import ModelContext

    ds, mr, label, spec = load_target_spec(spec_or_dataset, data_path, min_rating)
    pos = positives(ds, min_rating=mr)
    context = ModelContext(dataset=ds, positives=pos, spec=spec)
    say = (
        (lambda msg: click.echo(f"[{time.perf_counter() - t0:6.1f}s] {msg}", err=True))
        if progress
        else None
    )
    if say:
        say(f"{label}: {len(pos):,} positives, {len(pos.users):,} users, {len(pos.items):,} items")
    comp = run_compare(pos, options, progress=say, context=context)
    name = Path(spec_or_dataset).stem if spec_or_dataset.endswith(".toml") else spec_or_dataset
    out = Path(out_dir) if out_dir else Path("out") / f"compare-{Path(name).name}-{protocol}"
    command = (
        "kgrec compare " + " ".join(shlex.quote(a) for a in sys.argv[2:])
        if len(sys.argv) > 2 and sys.argv[1] == "compare"
        else None
    )
    total = time.perf_counter() - t0
    paths = write_report(
        comp,
        out,
        title=f"kgrec compare: {label}, protocol {protocol}",
        command=command,
        extra={"total_wall_s": total, "data": label, "min_rating": mr},
    )
    shown = [f"NDCG@{k}" for k in cutoffs] + [f"Recall@{k}" for k in cutoffs]
    shown += [f"Hit@{max(cutoffs)}"]
    for task in comp.per_user["task"].unique():
        click.echo(f"\n== {task} ({protocol}, seeds {list(options.seeds)}) ==")
        click.echo(summary_table(comp, task=task, metrics=shown).to_string())
    click.echo(f"\nreport: {paths['markdown']} {paths['json']} {paths['png']}")
    click.echo(f"total wall time {total:.1f} s")
    if comp.per_user.empty:  # pragma: no cover - defensive
        raise KgrecError("nothing was evaluated")
