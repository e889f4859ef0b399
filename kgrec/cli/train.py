"""``kgrec train``: fit one model on a split, with checkpoints and resume, and save it."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click

from kgrec.errors import SpecError


@click.command("train")
@click.argument("spec_or_dataset")
@click.option(
    "--model",
    "model_name",
    default="lightgcn",
    show_default=True,
    help="Short name: pop, itemknn, ease, mf (MF-BPR), lightgcn, hybrid (KG + text; needs a "
    "graph spec).",
)
@click.option(
    "--protocol",
    type=click.Choice(["warm", "temporal", "cold-item", "cold-user"]),
    default="warm",
    show_default=True,
    help="Split protocol (see `kgrec compare --help`).",
)
@click.option("--seed", type=int, default=2020, show_default=True, help="Split and training seed.")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False),
    required=True,
    help="Run directory: split.npz/.json, checkpoint/, model/, metrics.json.",
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
@click.option("--path", "data_path", default=None, help="Dataset directory for local datasets.")
@click.option("--device", default="cpu", show_default=True, help="Training device (cpu, cuda).")
@click.option("--progress/--no-progress", default=True, help="Show a progress bar.")
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
    data_path: str | None,
    device: str,
    progress: bool,
) -> None:
    """Train one recommender on SPEC_OR_DATASET and evaluate it under the protocol.

    Trained models (mf, lightgcn, hybrid) write an atomic checkpoint after every epoch to
    OUT/checkpoint and, with --resume (default), continue from it when run again. The fitted
    model is saved to OUT/model (JSON + npz, no pickle), the split to OUT/split.npz.
    """
    from kgrec.cli.compare import load_target_spec
    from kgrec.eval import build_protocol, evaluate, make_split, parse_metric, positives
    from kgrec.eval._metrics import default_metrics
    from kgrec.eval._runner import PROTOCOL_SPLITS, CompareOptions, make_model, validator
    from kgrec.models.hybrid import ModelContext
    from kgrec.train import TrainingOptions

    t0 = time.perf_counter()
    out = Path(out_dir)
    options = CompareOptions(
        models=(model_name,),
        protocol=protocol,
        seeds=(seed,),
        epochs=epochs,
        max_seconds=max_seconds,
        device=device,
    )
    ds, mr, label, spec = load_target_spec(spec_or_dataset, data_path, min_rating)
    pos = positives(ds, min_rating=mr)
    split = make_split(pos, PROTOCOL_SPLITS[protocol], seed=seed)
    split_path = out / "split.npz"
    if resume and split_path.is_file():
        from kgrec.eval import Split

        old = Split.load(split_path)
        if old.protocol != split.protocol or old.seed != seed or (old.part != split.part).any():
            raise SpecError(
                f"{split_path} holds a different split (protocol {old.protocol}, seed "
                f"{old.seed}); use another --out or --no-resume"
            )
    split.save(split_path)
    proto = build_protocol(split)
    context = ModelContext(dataset=ds, positives=pos, spec=spec)
    model = make_model(model_name, seed, options, context=context)
    if isinstance(getattr(model, "options", None), TrainingOptions):
        model.options = model.options.replace(
            checkpoint_dir=str(out / "checkpoint"), resume=resume, progress=progress
        )
    validate = validator(proto.valid, parse_metric(options.primary))
    model.fit(split.train_matrix(), validate=validate)
    metrics = default_metrics(options.ks)
    results = {}
    for task in proto.tests:
        results[task.name] = evaluate(model.score, task, metrics).mean()
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
    (out / "metrics.json").write_text(json.dumps(report, indent=1))
    for task, vals in results.items():
        shown = ", ".join(f"{k} {vals[k]:.4f}" for k in ("NDCG@20", "Recall@20", "Hit@10"))
        click.echo(f"{model_name} {task}: {shown}")
    if result is not None:
        click.echo(
            f"epochs {result.epochs_run} (best {result.best_epoch}, valid {result.best_metric:.4f})"
            + (f", resumed from epoch {result.resumed_from}" if result.resumed_from else "")
        )
    click.echo(f"saved {out / 'model'}; {time.perf_counter() - t0:.1f} s")
