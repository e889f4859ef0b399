"""amazon-book (KGAT/KGIN preprocessing) on its published train/test split: fit time, time per
epoch, evaluation time, peak memory, Recall@20 / NDCG@20 per model, against the published table.

Data: ``--data DIR`` with ``train.txt``/``test.txt`` (``user item item ...`` lines; in this project
``../shared/data/amazon-book-kgat``). 70,679 users, 24,915 items, 652,514 train and 193,920 test
interactions. Published on this split (KGIN paper, Table 2, all-item ranking with training items
masked, no validation set): MF 0.1300 / 0.0678, CKE 0.1342 / 0.0698, KGAT 0.1487 / 0.0799,
KGIN 0.1687 / 0.0915 (Recall@20 / NDCG@20).

Model selection (said per model in the JSON): the trained models (mf, lightgcn) early-stop on
NDCG@20 of a validation slice carved out of train (``--valid-share``, seeded, per user; sampled
to ``--valid-users`` users per epoch) and are evaluated with the weights of their best
validation epoch. With ``--valid-share 0`` they run ``--epochs`` epochs and keep the last weights.
pop / itemknn have nothing to select. ``--refit-full`` then trains the model again on the whole
train part (no validation slice, so 10% more interactions) for the selected number of epochs
(best validation epoch + 1) and keeps the last weights: the slice chooses the epoch count, the
final model sees all of train, and test is scored once per fit (both are reported, the refit is
the model's figure). ``--options KEY=VALUE,...`` overrides the model's training options
(``TrainingOptions`` fields, e.g. ``lr=1e-3,batch_size=1024,max_steps_per_epoch=0``; 0 for none;
``pair_sampling=user`` for KGAT's per-user pair sampler); ``--model-config`` the model's config
(e.g. ``reg=1e-4``). Every row records the override strings, the training options the fit ran
with (after scaling to the data) and the model config.

Each model runs in its own process (``--models mf`` ...) so that peak memory (``ru_maxrss``) is the
model's own; results are merged into ``--out`` (atomic write). ``--profile-epoch`` times one MF
epoch with dense Adam (the old default) and with sparse embeddings + SparseAdam (the new one).
Every timing carries ``os.getloadavg()``: the machine is shared. While a model trains, one line
per epoch goes to stderr (loss, validation NDCG@20 when computed, seconds per epoch, ETA; the
training loop's own reports through :func:`kgrec.train.epoch_reporter`); ``--quiet`` turns them
off. They are not written to ``--out``, and they change no figure.

Usage: OMP_WAIT_POLICY=PASSIVE nice -n 5 python bench/scale_amazon_book.py \\
    --data ../shared/data/amazon-book-kgat --models pop,itemknn,mf [--profile-epoch]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shlex
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch

from kgrec._atomic import atomic_write_text
from kgrec.data import make_split
from kgrec.data.sources import kgat
from kgrec.eval import NDCG, Recall, build_protocol, evaluate, positives
from kgrec.experiment import CompareOptions, make_model, sample_users, validator

PUBLISHED = {
    "mf": {"Recall@20": 0.1300, "NDCG@20": 0.0678},
    "cke": {"Recall@20": 0.1342, "NDCG@20": 0.0698},
    "kgat": {"Recall@20": 0.1487, "NDCG@20": 0.0799},
    "kgin": {"Recall@20": 0.1687, "NDCG@20": 0.0915},
}


@contextlib.contextmanager
def _epoch_lines(label: str, enabled: bool) -> Iterator[None]:
    """One stderr line per training epoch of the fits run inside (the loop's
    :class:`kgrec.train.EpochReport`, ``valid`` = NDCG@20 of the validation slice), prefixed
    with the time since the block began; nothing when ``enabled`` is false."""
    if not enabled:
        yield
        return
    from kgrec.train import epoch_reporter

    t0 = time.perf_counter()

    def say(report: Any) -> None:
        print(
            f"[{time.perf_counter() - t0:7.1f}s] {report.line(label)}", file=sys.stderr, flush=True
        )

    with epoch_reporter(say):
        yield


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _load(args: argparse.Namespace, valid_share: float):
    ds = kgat.load(args.data)
    pos = positives(ds)
    split = make_split(pos, "given", seed=args.seed, valid_share=valid_share)
    return split, build_protocol(split)


def profile_epoch(args: argparse.Namespace) -> dict[str, Any]:
    """One full MF epoch (batch 2048, the pre-scaling default) with dense Adam and sparse Adam."""
    from kgrec.models.cf.mf_bpr import MFModule
    from kgrec.train import BPRSampler
    from kgrec.train._optim import make_optimizer

    split, _ = _load(args, 0.0)
    m = split.train_matrix()
    out: dict[str, Any] = {}
    for name, sparse in (("dense_adam", False), ("sparse_adam", True)):
        torch.manual_seed(0)
        mod = MFModule(*m.shape, 64)
        mod.user.sparse = mod.item.sparse = sparse
        opt = make_optimizer(mod, 1e-3)
        sampler = BPRSampler(m, batch_size=2048, seed=0)
        load0 = os.getloadavg()
        t0, c0 = time.perf_counter(), time.process_time()
        for b in sampler.batches(0):
            opt.zero_grad(set_to_none=True)
            loss = mod.loss(b)
            loss.backward()
            opt.step()
        out[name] = {
            "optimizer": type(opt).__name__,
            "steps": len(sampler),
            "epoch_wall_s": time.perf_counter() - t0,
            "epoch_cpu_s": time.process_time() - c0,
            "loadavg_before": load0,
            "loadavg_after": os.getloadavg(),
        }
    out["cpu_speedup"] = out["dense_adam"]["epoch_cpu_s"] / out["sparse_adam"]["epoch_cpu_s"]
    return out


def _overrides(text: str) -> dict[str, Any]:
    from dataclasses import fields

    from kgrec.train import TrainingOptions

    kinds = {f.name: f.type for f in fields(TrainingOptions)}
    out: dict[str, Any] = {}
    for part in [p for p in text.split(",") if p.strip()]:
        key, _, value = (x.strip() for x in part.partition("="))
        if key not in kinds:
            raise SystemExit(f"--options: unknown training option {key!r}; known: {sorted(kinds)}")
        kind = str(kinds[key])
        if key == "max_steps_per_epoch":
            out[key] = int(value) or None
        elif "int" in kind:
            out[key] = int(value)
        elif "float" in kind:
            out[key] = float(value)
        elif "bool" in kind:
            out[key] = value.lower() in ("1", "true", "yes")
        else:
            out[key] = value
    return out


def _settings(model: Any, args: argparse.Namespace) -> dict[str, Any]:
    """What a fit ran with: the override strings as given, the training options after scaling to
    the data (``fit_options_``, else the model's options) and the model config."""
    used = getattr(model, "fit_options_", None) or getattr(model, "options", None)
    config = getattr(model, "config", None)
    return {
        "options_override": args.options,
        "options_override_parsed": _overrides(args.options),
        "config_override": args.model_config,
        "training_options": used.to_dict() if used is not None else None,
        "model_config": (
            {k: v for k, v in vars(config).items() if not k.startswith("_")} if config else None
        ),
    }


def _build(name: str, args: argparse.Namespace, epochs: int | None) -> Any:
    opts = CompareOptions(models=(name,), epochs=epochs, max_seconds=args.max_seconds)
    model = make_model(name, args.seed, opts)
    changes = _overrides(args.options)
    if changes and hasattr(model, "options"):
        model.options = model.options.replace(**changes)
    if args.model_config:
        from dataclasses import replace

        kinds = {k: type(getattr(model.config, k)) for k in vars(model.config)}
        cfg = {}
        for part in [p for p in args.model_config.split(",") if p.strip()]:
            key, _, value = (x.strip() for x in part.partition("="))
            if key not in kinds:
                raise SystemExit(f"--model-config: {name} has no setting {key!r}")
            kind = kinds[key]
            cfg[key] = value.lower() in ("1", "true") if kind is bool else kind(value)
        model.config = replace(model.config, **cfg)
        model.config.validate()
    return model


def refit_full(name: str, args: argparse.Namespace, epochs: int) -> dict[str, Any]:
    """Train ``name`` on the whole train part for ``epochs`` epochs, last weights; test figures."""
    split, proto = _load(args, 0.0)
    model = _build(name, args, epochs)
    model.options = model.options.replace(patience=0)
    load0 = os.getloadavg()
    t0, c0 = time.perf_counter(), time.process_time()
    with _epoch_lines(f"{name} refit", not args.quiet):
        model.fit(split.train_matrix())
    fit_s, fit_cpu = time.perf_counter() - t0, time.process_time() - c0
    res = evaluate(model.score, proto.tests[0], [Recall(20), NDCG(20)], tie_seed=0)
    result = model.result_
    return {
        "epochs": epochs,
        "fit_s": fit_s,
        "fit_cpu_s": fit_cpu,
        "epoch_s": fit_s / max(1, epochs),
        "loadavg_fit_start": load0,
        "loadavg_end": os.getloadavg(),
        "peak_rss_mib": _peak_mib(),
        "train_result": result.to_dict() if result is not None else None,
        **_settings(model, args),
        "metrics": {k: float(v) for k, v in res.mean().items()},
        "selection": (
            f"epoch count {epochs} = best epoch + 1 on the {args.valid_share:.0%} validation slice "
            "of train; refit on all of train, last weights"
        ),
    }


def _ddp_worker(rank: int, size: int, port: int, name: str, args: argparse.Namespace, out: str):
    from kgrec.train._distributed import set_rank_env

    set_rank_env(rank, size, port)
    torch.set_num_threads(args.ddp_threads)
    split, proto = _load(args, 0.0)
    model = _build(name, args, args.ddp_epochs)
    model.options = model.options.replace(patience=0)
    load0 = os.getloadavg()
    t0, c0 = time.perf_counter(), time.process_time()
    with _epoch_lines(f"{name} ddp {size}p", rank == 0 and not args.quiet):
        model.fit(split.train_matrix())
    fit_s, fit_cpu = time.perf_counter() - t0, time.process_time() - c0
    if size > 1:
        import torch.distributed as dist

        dist.destroy_process_group()
    if rank != 0:
        return
    res = evaluate(model.score, proto.tests[0], [Recall(20), NDCG(20)], tie_seed=0)
    hist = model.result_.history if model.result_ is not None else []
    row = {
        "processes": size,
        "threads_per_process": args.ddp_threads,
        "epochs": args.ddp_epochs,
        "fit_s": fit_s,
        "fit_cpu_s_rank0": fit_cpu,
        "epoch_s": [h.get("epoch_s") for h in hist],
        "epoch_s_mean": float(np.mean([h["epoch_s"] for h in hist])) if hist else None,
        "loadavg_fit_start": load0,
        "loadavg_end": os.getloadavg(),
        "peak_rss_mib_rank0": _peak_mib(),
        **_settings(model, args),
        "metrics": {k: float(v) for k, v in res.mean().items()},
        "selection": f"no validation: {args.ddp_epochs} epochs on all of train, last weights",
    }
    Path(out).write_text(json.dumps(row, default=float))


def ddp_compare(name: str, args: argparse.Namespace) -> dict[str, Any]:
    """``name`` trained for ``--ddp-epochs`` epochs in 1 and in 2 gloo processes (each a spawned
    process, ``--ddp-threads`` threads each): epoch times and test metrics side by side."""
    import socket
    import tempfile

    import torch.multiprocessing as mp

    rows: dict[str, Any] = {}
    for size in [int(x) for x in args.ddp_procs.split(",")]:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        with tempfile.TemporaryDirectory() as tmp:
            out = str(Path(tmp) / "row.json")
            mp.start_processes(
                _ddp_worker,
                args=(size, port, name, args, out),
                nprocs=size,
                join=True,
                start_method="spawn",
            )
            rows[f"{size}_processes"] = json.loads(Path(out).read_text())
        print(name, size, json.dumps(rows[f"{size}_processes"]["metrics"]), flush=True)
    return rows


def run_model(name: str, args: argparse.Namespace) -> dict[str, Any]:
    trained = name in ("mf", "lightgcn", "hybrid")
    share = args.valid_share if trained else 0.0
    split, proto = _load(args, share)
    train = split.train_matrix()
    model = _build(name, args, args.epochs)
    validate = None
    if trained and len(proto.valid.users):
        validate = validator(sample_users(proto.valid, args.valid_users, args.seed), NDCG(20))
    load0 = os.getloadavg()
    t0, c0 = time.perf_counter(), time.process_time()
    with _epoch_lines(name, not args.quiet):
        model.fit(train, validate=validate)
    fit_s, fit_cpu = time.perf_counter() - t0, time.process_time() - c0
    load1 = os.getloadavg()
    t1, c1 = time.perf_counter(), time.process_time()
    res = evaluate(model.score, proto.tests[0], [Recall(20), NDCG(20)], tie_seed=0)
    eval_s, eval_cpu = time.perf_counter() - t1, time.process_time() - c1
    row: dict[str, Any] = {
        "fit_s": fit_s,
        "fit_cpu_s": fit_cpu,
        "eval_s": eval_s,
        "eval_cpu_s": eval_cpu,
        "eval_users": len(proto.tests[0].users),
        "loadavg_fit_start": load0,
        "loadavg_eval_start": load1,
        "loadavg_end": os.getloadavg(),
        "peak_rss_mib": _peak_mib(),
        "threads": torch.get_num_threads(),
        **_settings(model, args),
        "metrics": {k: float(v) for k, v in res.mean().items()},
        "selection": (
            "nothing to select"
            if not trained
            else (
                f"early stopping on NDCG@20 of a {share:.0%} validation slice of train "
                f"({args.valid_users} sampled users per epoch); best-epoch weights"
                if validate is not None
                else f"no validation: {args.epochs} epochs, last weights"
            )
        ),
    }
    if name == "hybrid":
        inp = getattr(model, "inputs", None)
        row["inputs"] = (
            "ID-only: amazon-book here has no KG triples (kg_final.txt not included) and no item "
            "text, so the hybrid is its graph propagation over the user-item graph with the "
            "softmax ranking loss; no EASE blend (24,915 items > ease_max_items)"
            if inp is None
            else "KG / text inputs from a model context"
        )
        row["config"] = {k: v for k, v in vars(model.config).items() if not k.startswith("_")}
    result = getattr(model, "result_", None)
    if result is not None:
        hist = result.history
        row["train_result"] = result.to_dict()
        row["epoch_s"] = result.wall_s / max(1, result.epochs_run)
        row["valid_curve"] = [h.get("valid") for h in hist]
        used = getattr(model, "fit_options_", None)
        if used is not None:
            row["batch_size"], row["lr"] = used.batch_size, used.lr
        # the loop's own reason: the hybrid's budget stops training before max_seconds to leave
        # time for its later parts, so wall time alone does not tell a time cap from patience
        row["stopped_by"] = {
            "patience": "early stopping",
            "time_budget": "time cap",
            "epoch_cap": "epoch cap",
        }.get(result.stop_reason, result.stop_reason)
        if row["stopped_by"] != "early stopping":
            row["still_improving"] = result.still_improving()
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True, type=Path)
    ap.add_argument("--models", default="pop,itemknn,mf")
    ap.add_argument("--out", type=Path, default=Path("bench/results/scale_amazon_book.json"))
    ap.add_argument("--seed", type=int, default=2020)
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--max-seconds", type=float, default=None)
    ap.add_argument("--valid-share", type=float, default=0.1)
    ap.add_argument("--valid-users", type=int, default=10_000)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--profile-epoch", action="store_true")
    ap.add_argument("--options", default="", help="training option overrides KEY=VALUE,...")
    ap.add_argument("--refit-full", action="store_true")
    ap.add_argument("--ddp-procs", default="", help="e.g. 1,2: data-parallel comparison only")
    ap.add_argument("--ddp-epochs", type=int, default=3)
    ap.add_argument("--ddp-threads", type=int, default=1)
    ap.add_argument("--refit-epochs", type=int, default=0, help="refit only, this many epochs")
    ap.add_argument("--refit-from", default="", help="the results file the epoch count is from")
    ap.add_argument("--model-config", default="", help="model config overrides KEY=VALUE,...")
    ap.add_argument("--quiet", action="store_true", help="no per-epoch progress lines on stderr")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    out = json.loads(args.out.read_text()) if args.out.is_file() else {"models": {}}
    out["data"] = str(args.data)
    out["published"] = PUBLISHED
    out.setdefault("commands", []).append(
        "OMP_WAIT_POLICY=PASSIVE python " + " ".join(shlex.quote(a) for a in sys.argv)
    )
    out["machine"] = {"cpus": os.cpu_count(), "torch": torch.__version__}
    if args.profile_epoch:
        out["mf_epoch_profile"] = {**profile_epoch(args), "date": datetime.now(UTC).isoformat()}
        atomic_write_text(args.out, json.dumps(out, indent=1))
    if args.ddp_procs:
        for name in [m for m in args.models.split(",") if m]:
            ddp = out.setdefault("ddp", {})
            ddp[name] = {
                **ddp_compare(name, args),
                "command": out["commands"][-1],
                "date": datetime.now(UTC).isoformat(),
                "options_override": args.options,
                "config_override": args.model_config,
            }
            atomic_write_text(args.out, json.dumps(out, indent=1, default=float))
        return
    if args.refit_epochs:
        for name in [m for m in args.models.split(",") if m]:
            refit = refit_full(name, args, args.refit_epochs)
            refit["selection"] = (
                f"epoch count {args.refit_epochs} = best epoch + 1 of an earlier run on the "
                f"{args.valid_share:.0%} validation slice of train ({args.refit_from}); refit on "
                "all of train, last weights"
            )
            refit["command"] = out["commands"][-1]
            refit["date"] = datetime.now(UTC).isoformat()
            if name in PUBLISHED:
                pub = PUBLISHED[name]["Recall@20"]
                refit["recall20_vs_published"] = refit["metrics"]["Recall@20"] / pub - 1.0
            out.setdefault("refit", {})[name] = refit
            print(name, json.dumps(refit["metrics"]), flush=True)
            atomic_write_text(args.out, json.dumps(out, indent=1, default=float))
        return
    for name in [m for m in args.models.split(",") if m]:
        row = run_model(name, args)
        row["date"] = datetime.now(UTC).isoformat()
        row["command"] = out["commands"][-1]
        if name in PUBLISHED:
            pub = PUBLISHED[name]["Recall@20"]
            row["recall20_vs_published"] = row["metrics"]["Recall@20"] / pub - 1.0
        tr = row.get("train_result")
        if args.refit_full and tr is not None and row["selection"].startswith("early"):
            refit = refit_full(name, args, int(tr["best_epoch"]) + 1)
            row["refit_full"] = refit
            if name in PUBLISHED:
                pub = PUBLISHED[name]["Recall@20"]
                refit["recall20_vs_published"] = refit["metrics"]["Recall@20"] / pub - 1.0
        out["models"][name] = row
        print(name, json.dumps({k: row[k] for k in ("fit_s", "eval_s", "metrics")}), flush=True)
        atomic_write_text(args.out, json.dumps(out, indent=1, default=float))
    np.seterr(all="ignore")


if __name__ == "__main__":
    main()
