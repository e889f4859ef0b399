"""``kgrec compare``: CF baselines (and later the hybrid) under one full-ranking protocol."""

from __future__ import annotations

import shlex
import sys
import time
from pathlib import Path

import click

from kgrec.cli._options import RunSettings, run_options
from kgrec.cli.models import MODEL_HELP
from kgrec.errors import KgrecError, SpecError

SETTINGS_HELP = (
    "Model setting KEY=VALUE (repeatable): a field of the model's config or training options, "
    "e.g. patience=3, dim=128, cf_blend=none; MODEL.KEY limits it to one model. See "
    "--help-config."
)

#: default positive threshold per registered dataset (None: every interaction is positive)
DEFAULT_MIN_RATING = {"ml-100k": 4.0}


def load_target(target: str, path: str | None, min_rating: float | None):
    """(dataset, min_rating, label) for a registered dataset name or a graph spec ``.toml``."""
    ds, mr, label, _ = load_target_spec(target, path, min_rating)
    return ds, mr, label


def parse_split_files(values: tuple[str, ...]) -> dict[str, Path]:
    """``("train=a.txt test=b.txt", "valid=c.txt")`` -> part -> path (KEY=PATH, spaces or commas
    between pairs; keys train, valid, test)."""
    out: dict[str, Path] = {}
    for value in values:
        for pair in value.replace(",", " ").split():
            key, sep, path = pair.partition("=")
            key = {"val": "valid", "validation": "valid"}.get(key.strip().lower(), key.strip())
            if not sep or key not in ("train", "valid", "test") or not path:
                raise SpecError(
                    f"--split-files takes PART=PATH with PART train, valid or test, got {pair!r}",
                    key="split-files",
                )
            if key in out:
                raise SpecError(f"--split-files names {key} twice", key="split-files")
            out[key] = Path(path)
    if out and ("train" not in out or "test" not in out):
        raise SpecError("--split-files needs at least train=... and test=...", key="split-files")
    return out


def load_split_files(files: dict[str, Path]):
    """A dataset from split files: KGAT/KGIN ``user item item ...`` lines (``.txt``) or RecBole
    atomic ``.inter`` files, the part of each file kept in the ``split`` column."""
    from kgrec.data import Dataset, Interactions
    from kgrec.data.sources import kgat
    from kgrec.data.sources._atomic import _read_inter
    from kgrec.errors import DataError

    for p in files.values():
        if not p.is_file():
            raise DataError("split file not found", path=p)
    if all(p.suffix == ".inter" for p in files.values()):
        inter = Interactions.concat([_read_inter(p, None, split=part) for part, p in files.items()])
    else:
        inter = kgat.interactions_from_parts(files)
    name = files["train"].parent.name or "split-files"
    return Dataset(name=name, interactions=inter, root=files["train"].parent)


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


def _run_with_epoch_lines(run_compare, pos, options, say, context, settings=None):
    """The comparison, with one progress line per epoch of each trained model (through
    :func:`kgrec.train.epoch_reporter`) when progress is on."""
    from kgrec.cli._settings import ModelSettings, settings_factory

    factory = settings_factory(settings or ModelSettings())
    if say is None:
        return run_compare(pos, options, progress=None, context=context, model_factory=factory)
    from kgrec.train import epoch_reporter

    current = {"label": ""}

    def progress(msg: str) -> None:
        current["label"] = msg.replace(": fitting ", " ")
        say(msg)

    with epoch_reporter(lambda r: say(r.line(current["label"]))):
        return run_compare(pos, options, progress=progress, context=context, model_factory=factory)


def settings_options(f):
    """``--set``, ``--config`` and ``--help-config`` (shared by compare and train)."""
    f = click.option(
        "--help-config",
        is_flag=True,
        help="List every setting of the chosen model(s) with its type and default, and exit.",
    )(f)
    f = click.option(
        "--config",
        "config_file",
        type=click.Path(dir_okay=False),
        default=None,
        help="TOML file of model settings: KEY = VALUE, [training]/[model] or [MODEL] tables.",
    )(f)
    return click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help=SETTINGS_HELP)(f)


def load_settings(names, sets, config_file):
    """Parsed and checked :class:`~kgrec.cli._settings.ModelSettings` for ``names``."""
    from kgrec.cli._settings import ModelSettings, model_classes

    settings = ModelSettings.parse(sets, config_file, models=MODEL_HELP)
    classes = model_classes(names)
    settings.check(classes)
    settings.validate(classes)  # bad values too, before any data is read or file written
    return settings


def _models_epilog() -> str:
    width = max(map(len, MODEL_HELP))
    rows = [f"  {n:<{width}}  {d}" for n, (d, _) in MODEL_HELP.items()]
    return "\b\nModels (kgrec models: with the side information each uses):\n" + "\n".join(rows)


@click.command("compare", epilog=_models_epilog())
@click.argument("spec_or_dataset", required=False)
@click.option(
    "--models",
    default="pop,itemknn,ease,mf,lightgcn",
    show_default=True,
    help="Comma-separated short names, any of: " + ", ".join(MODEL_HELP) + " (listed below; "
    "hybrid, textknn, kgknn and content2cf need a graph spec for their KG and text).",
)
@click.option(
    "--protocol",
    type=click.Choice(["warm", "temporal", "cold-item", "cold-user", "given"]),
    default="warm",
    show_default=True,
    help="warm: random per-user 8:1:1 (RecBole RS grouped by user); temporal: leave-last-out; "
    "cold-item: 20% of items held out (cold / warm / overall tasks); cold-user: 20% of users "
    "held out, k in {0,1,3,5} of their items revealed; given: the split the data come with "
    "(a split column, KGAT/KGIN train.txt/test.txt, RecBole NAME.train/valid/test.inter, or "
    "--split-files).",
)
@click.option(
    "--split-files",
    "split_files",
    multiple=True,
    help="With --protocol given: PART=PATH pairs (train=..., valid=..., test=...; KGAT/KGIN "
    "'user item item ...' lines or RecBole .inter files). SPEC_OR_DATASET is then only a label.",
)
@click.option(
    "--valid-share",
    type=float,
    default=0.0,
    show_default=True,
    help="With --protocol given and no validation part: share of each user's training rows "
    "held out for validation (early stopping). 0: no validation, fixed epochs, last weights.",
)
@click.option(
    "--valid-users",
    type=int,
    default=None,
    help="Validate trained models each epoch on this many sampled validation users (large data).",
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
    help="Wall-time budget per trained model and seed for its whole fit (training, and for the "
    "hybrid its cold map and EASE blend: training stops early enough to leave them their "
    "measured time); the report says which parts ran inside it.",
)
@click.option(
    "--min-rating",
    type=float,
    default=None,
    help="Ratings >= this are positives, the rest are dropped (default 4 for ml-100k, the "
    "spec's [interactions] min_rating for a spec, otherwise every interaction).",
)
@click.option("--k", "ks", default="10,20", show_default=True, help="Cutoffs, comma-separated.")
@run_options(
    "Progress on stderr: one line per epoch of each trained model (loss, validation, epoch "
    "time, ETA with early stopping)."
)
@settings_options
def compare(
    spec_or_dataset: str,
    models: str,
    protocol: str,
    split_files: tuple[str, ...],
    valid_share: float,
    valid_users: int | None,
    seeds: int,
    out_dir: str | None,
    epochs: int | None,
    max_seconds: float | None,
    min_rating: float | None,
    ks: str,
    run: RunSettings,
    sets: tuple[str, ...],
    config_file: str | None,
    help_config: bool,
) -> None:
    """Compare recommenders on SPEC_OR_DATASET (a graph spec .toml or a dataset name).

    Every model is ranked over all candidate items with each user's training (and at test
    time validation) items masked; per-user values give 95% bootstrap confidence intervals and
    paired tests. Writes report.md, report.json, report.png and per_user.csv.gz, and prints the
    table.
    """
    from kgrec.cli import elapsed
    from kgrec.data import positives
    from kgrec.experiment import (
        CompareOptions,
        ModelContext,
        data_summary,
        seeds_from,
        summary_table,
        write_report,
    )
    from kgrec.experiment import compare as run_compare

    t0 = time.perf_counter() - elapsed()  # the command's start, not this function's
    try:
        cutoffs = tuple(int(k) for k in ks.split(",") if k.strip())
    except ValueError:
        raise SpecError(f"--k must be comma-separated integers, got {ks!r}", key="k") from None
    names = tuple(m.strip() for m in models.split(",") if m.strip())
    unknown = [n for n in names if n not in MODEL_HELP]
    if unknown:
        raise SpecError(f"unknown model(s) {unknown}; choose from {list(MODEL_HELP)}", key="models")
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise SpecError(f"model(s) {twice} named more than once", key="models")
    if help_config:
        from kgrec.cli._settings import help_config as describe

        click.echo("\n\n".join(describe(n) for n in names))
        return
    if spec_or_dataset is None:
        raise click.UsageError("Missing argument 'SPEC_OR_DATASET'.")
    settings = load_settings(names, sets, config_file)
    from kgrec._atomic import refuse_broad_dir

    # the report directory is checked before the run, not after minutes of fitting
    name = Path(spec_or_dataset).stem if spec_or_dataset.endswith(".toml") else spec_or_dataset
    out = refuse_broad_dir(
        Path(out_dir) if out_dir else Path("out") / f"compare-{Path(name).name}-{protocol}"
    )
    if out.exists() and not out.is_dir():
        raise SpecError(f"--out {str(out)!r} exists and is not a directory", key="out")
    options = CompareOptions(
        models=names,
        protocol=protocol,
        seeds=seeds_from(seeds),
        ks=cutoffs,
        primary=f"NDCG@{max(cutoffs)}",
        epochs=epochs,
        max_seconds=max_seconds,
        valid_share=valid_share,
        valid_users=valid_users,
        eval_progress=run.progress,
        **run.option_fields(),
    )
    files = parse_split_files(split_files)
    if files and protocol != "given":
        raise SpecError("--split-files needs --protocol given", key="split-files")
    if files:
        ds, mr, spec = load_split_files(files), min_rating, None
        label = f"split files {', '.join(f'{k}={v}' for k, v in files.items())}"
    else:
        ds, mr, label, spec = load_target_spec(spec_or_dataset, run.data_path, min_rating)
    pos = positives(ds, min_rating=mr)
    context = ModelContext(dataset=ds, positives=pos, spec=spec)
    say = (
        (lambda msg: click.echo(f"[{time.perf_counter() - t0:6.1f}s] {msg}", err=True))
        if run.progress
        else None
    )
    if say:
        say(f"{label}: {len(pos):,} positives, {len(pos.users):,} users, {len(pos.items):,} items")
    from functools import partial

    data = data_summary(ds, pos, min_rating=mr)
    if say:
        for note in data["notes"]:
            say(f"data: {note}")
    comp = _run_with_epoch_lines(
        partial(run_compare, data=data), pos, options, say, context, settings
    )
    command = (
        "kgrec compare " + " ".join(shlex.quote(a) for a in sys.argv[2:])
        if len(sys.argv) > 2 and sys.argv[1] == "compare"
        else None
    )
    paths = write_report(
        comp,
        out,
        title=f"kgrec compare: {label}, protocol {protocol}",
        command=command,
        extra={
            "total_wall_s_before_report": time.perf_counter() - t0,
            "data": label,
            "min_rating": mr,
        },
    )
    shown = [f"NDCG@{k}" for k in cutoffs] + [f"Recall@{k}" for k in cutoffs]
    shown += [f"Hit@{max(cutoffs)}"]
    for task in comp.per_user["task"].unique():
        click.echo(f"\n== {task} ({protocol}, seeds {list(options.seeds)}) ==")
        click.echo(summary_table(comp, task=task, metrics=shown).to_string())
    click.echo(f"\nreport: {paths['markdown']} {paths['json']} {paths['png']}")
    fits = comp.timings
    click.echo(
        f"total wall time {elapsed():.1f} s (from the command's start: start-up, data, fits "
        f"{fits['fit_s'].sum():.1f} s, evaluation {fits['eval_s'].sum():.1f} s, report)"
    )
    if comp.per_user.empty:  # pragma: no cover - defensive
        raise KgrecError("nothing was evaluated")
