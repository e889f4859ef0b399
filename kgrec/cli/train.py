"""``kgrec train``: fit one model on a split, with checkpoints and resume, and save it."""

from __future__ import annotations

import json
import os
import time

import click

from kgrec.cli._options import RunSettings, run_options
from kgrec.cli.compare import settings_options
from kgrec.cli.models import MODEL_HELP
from kgrec.errors import SpecError


@click.command("train")
@click.argument("spec_or_dataset", required=False)
@click.option(
    "--model",
    "model_name",
    default="lightgcn",
    show_default=True,
    help="Short name, one of: " + ", ".join(MODEL_HELP) + " (`kgrec models` describes them).",
)
@click.option(
    "--protocol",
    type=click.Choice(["warm", "temporal", "cold-item", "cold-user", "given"]),
    default="warm",
    show_default=True,
    help="Split protocol (see `kgrec compare --help`).",
)
@click.option(
    "--nproc",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Data-parallel training in N processes (torch.distributed: gloo on CPU, nccl on GPU), "
    "started through torchrun; the same as `torchrun --nproc-per-node N -m kgrec.cli train ...`.",
)
@click.option("--seed", type=int, default=2020, show_default=True, help="Split and training seed.")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Run directory: split.npz/.json, checkpoint/, model/, metrics.json (required).",
)
@click.option("--epochs", type=int, default=None, help="Epoch cap (trained models).")
@click.option("--max-seconds", type=float, default=None, help="Training wall-time cap.")
@click.option(
    "--resume/--no-resume",
    default=True,
    show_default=True,
    help="Continue from OUT/checkpoint after an interruption (same split and settings).",
)
@click.option("--min-rating", type=float, default=None, help="Ratings >= this are positives.")
@run_options(
    "One line per epoch on stderr: loss, validation, epoch time and an ETA that accounts "
    "for early stopping."
)
@settings_options
def train(
    spec_or_dataset: str,
    model_name: str,
    protocol: str,
    seed: int,
    out_dir: str,
    epochs: int | None,
    max_seconds: float | None,
    resume: bool,
    min_rating: float | None,
    run: RunSettings,
    sets: tuple[str, ...],
    config_file: str | None,
    help_config: bool,
    nproc: int,
) -> None:
    """Train one recommender on SPEC_OR_DATASET and evaluate it under the protocol.

    Trained models (mf, lightgcn, hybrid) write an atomic checkpoint after every epoch to
    OUT/checkpoint and, with --resume (default), continue from it when run again. The fitted
    model is saved to OUT/model (JSON + npz, no pickle), the split to OUT/split.npz.
    """
    if model_name not in MODEL_HELP:
        raise SpecError(
            f"unknown model {model_name!r}; choose from {list(MODEL_HELP)}", key="model"
        )
    if help_config:
        from kgrec.cli._settings import help_config as describe

        click.echo(describe(model_name))
        return
    if spec_or_dataset is None:
        raise click.UsageError("Missing argument 'SPEC_OR_DATASET'.")
    if nproc > 1 and "WORLD_SIZE" not in os.environ:
        from kgrec.cli._launch import relaunch

        relaunch(("train",), nproc)
        return
    if out_dir is None:
        raise click.UsageError("Missing option '--out'.")
    from kgrec.cli.compare import load_settings

    # settings are checked before the data is read and the split written into --out
    settings = load_settings((model_name,), sets, config_file)
    from kgrec._atomic import refuse_broad_dir
    from kgrec.cli import elapsed
    from kgrec.cli._settings import settings_factory
    from kgrec.cli.compare import load_target_spec
    from kgrec.data import Split, make_split, positives
    from kgrec.eval import build_protocol, parse_metric
    from kgrec.experiment import (
        PROTOCOL_SPLITS,
        CompareOptions,
        ModelContext,
        fit_and_evaluate,
        validator,
    )
    from kgrec.train import TrainingOptions

    t0 = time.perf_counter() - elapsed()
    out = refuse_broad_dir(out_dir)
    options = CompareOptions(
        models=(model_name,),
        protocol=protocol,
        seeds=(seed,),
        epochs=epochs,
        max_seconds=max_seconds,
        **run.option_fields(),
    )
    ds, mr, label, spec = load_target_spec(spec_or_dataset, run.data_path, min_rating)
    pos = positives(ds, min_rating=mr)
    split = make_split(pos, PROTOCOL_SPLITS[protocol], seed=seed)
    split_path = out / "split.npz"
    if resume and split_path.is_file():
        old = Split.load(split_path)
        if old.protocol != split.protocol or old.seed != seed or (old.part != split.part).any():
            raise SpecError(
                f"{split_path} holds a different split (protocol {old.protocol}, seed "
                f"{old.seed}); use another --out or --no-resume"
            )
    from kgrec.train._distributed import init_from_env, is_main

    init_from_env(run.device)
    main_rank = is_main()  # under torchrun only rank 0 writes files
    if main_rank:
        split.save(split_path)
    proto = build_protocol(split)
    context = ModelContext(dataset=ds, positives=pos, spec=spec).for_split(split)
    model = settings_factory(settings)(model_name, seed, options, context=context)
    if isinstance(getattr(model, "options", None), TrainingOptions):
        model.options = model.options.replace(
            checkpoint_dir=str(out / "checkpoint"), resume=resume, progress=False
        )
    # no validation users (given split without a validation part): fixed epochs, last weights
    validate = (
        validator(proto.valid, parse_metric(options.primary)) if len(proto.valid.users) else None
    )
    # the one fit + evaluate step of every run; under torchrun only rank 0 evaluates
    tasks = proto.tests if main_rank else []
    if run.progress:
        from kgrec.train import epoch_reporter

        def line(r) -> None:
            click.echo(f"[{time.perf_counter() - t0:6.1f}s] {r.line(model_name)}", err=True)

        with epoch_reporter(line):
            fe = fit_and_evaluate(model, split, tasks, options.metrics, validate=validate)
    else:
        fe = fit_and_evaluate(model, split, tasks, options.metrics, validate=validate)
    if not main_rank:
        return
    results = {r.task: r.mean() for r in fe.results}
    model.save(out / "model")
    report = {
        "data": label,
        "model": model_name,
        "protocol": protocol,
        "seed": seed,
        "split": split.describe(),
        "test": results,
        "wall_s": time.perf_counter() - t0,
    }
    result = getattr(model, "result_", None)
    if result is not None:
        report["training"] = result.to_dict()
    from kgrec._atomic import atomic_write_text
    from kgrec.experiment import strict_json

    # strict JSON (a run without validation has no best value: null, not -Infinity)
    atomic_write_text(
        out / "metrics.json", json.dumps(strict_json(report), indent=1, allow_nan=False)
    )
    for task, vals in results.items():
        shown = ", ".join(f"{k} {vals[k]:.4f}" for k in ("NDCG@20", "Recall@20", "Hit@10"))
        click.echo(f"{model_name} {task}: {shown}")
    if result is not None:
        chosen = (
            f"best {result.best_epoch}, valid {result.best_metric:.4f}"
            if result.best_epoch >= 0
            else "no validation: the last epoch's weights are kept"
        )
        click.echo(
            f"epochs {result.epochs_run} ({chosen})"
            + (f", resumed from epoch {result.resumed_from}" if result.resumed_from else "")
        )
    click.echo(f"saved {out / 'model'}; {time.perf_counter() - t0:.1f} s")
