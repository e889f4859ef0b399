"""Early-stopping default of the hybrid: fit time and warm NDCG@20 before and after (issue 17).

``today``: the patience the hybrid had before issue 17 (10 validation rounds without improvement);
``new``: :attr:`kgrec.models.HybridRecommender.default_options` as it is now. Each run is the
hybrid with its library defaults through the comparison runner (warm protocol: RecBole-compatible
random per-user 8:1:1 split, full ranking, train (+ valid) masked, early stopping on validation
NDCG@20), one process per (spec, setting, seed), parts cached under
``bench/results/early_stopping_parts`` (git-ignored). ``assemble`` writes
``bench/results/early_stopping.json``: per spec and setting the fit wall time and epochs per seed,
the test NDCG@20 pooled over seeds with its 95% bootstrap CI, and the validation history of every
run (which the choice of the new default was made on: see ``choose``).

Usage::

    OMP_WAIT_POLICY=PASSIVE nice -n 5 python bench/early_stopping.py run \\
        --spec graphs/movielens-100k.toml --setting today --seeds 3
    OMP_WAIT_POLICY=PASSIVE nice -n 5 python bench/early_stopping.py run \\
        --spec graphs/movielens-100k.toml --setting new --seeds 3
    python bench/early_stopping.py choose      # candidate rules replayed on validation curves
    python bench/early_stopping.py assemble
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
PARTS = HERE / "results" / "early_stopping_parts"
RESULTS = HERE / "results" / "early_stopping.json"
#: the settings compared; "new" is whatever the library default is now
TODAY = {"patience": 10, "min_delta": 0.0}
#: candidate rules replayed on the validation curves of the ``today`` runs (``choose``)
CANDIDATES = [
    {"patience": p, "min_delta": d} for p in (3, 4, 5, 10) for d in (0.0, 0.0005, 0.001, 0.002)
]


def _options(setting: str, seed: int):
    from kgrec.models import HybridRecommender

    base = HybridRecommender.default_options.replace(seed=int(seed))
    return base.replace(**TODAY) if setting == "today" else base


def run(args: argparse.Namespace) -> None:
    import torch

    from kgrec.eval import positives
    from kgrec.eval._runner import CompareOptions, compare, seeds_from
    from kgrec.graph import load_spec
    from kgrec.models import HybridRecommender
    from kgrec.models.hybrid import ModelContext

    torch.set_num_threads(args.threads)
    spec = load_spec(args.spec, data_path=args.data_path)
    ds = spec.load_dataset()
    pos = positives(ds, min_rating=spec.interactions.min_rating)
    ctx = ModelContext(dataset=ds, positives=pos, spec=spec)
    PARTS.mkdir(parents=True, exist_ok=True)
    runs = []
    for k, seed in enumerate(seeds_from(args.seeds)):
        if args.setting != "both":
            runs.append((args.setting, seed))
        else:  # interleaved, order alternating per seed: both settings see the same load
            runs.extend((st, seed) for st in (("today", "new") if k % 2 == 0 else ("new", "today")))
    for setting, seed in runs:
        part = PARTS / f"{Path(args.spec).stem}_{setting}_{seed}.json"
        if part.is_file() and not args.force:
            print(f"skip {part.name} (cached)", flush=True)
            continue
        opts = _options(setting, seed)
        holder: dict[str, Any] = {}

        def factory(name, s, o, context=None, _opts=opts, holder=holder):
            model = HybridRecommender.from_context(context, options=_opts)
            fit = model.fit

            def timed_fit(train, *, validate=None):
                c0 = time.process_time()
                fit(train, validate=validate)
                holder["fit_cpu_s"] = time.process_time() - c0
                return model

            model.fit = timed_fit
            holder["model"] = model
            return model

        load0 = os.getloadavg()[0]
        t0 = time.perf_counter()
        comp = compare(
            pos,
            CompareOptions(models=("hybrid",), protocol="warm", seeds=(seed,)),
            context=ctx,
            model_factory=factory,
        )
        wall = time.perf_counter() - t0
        model = holder["model"]
        res = model.result_
        pu = comp.per_user
        ndcg = pu[(pu.task == "test") & (pu.metric == "NDCG@20")]["value"].to_numpy()
        meta = {
            "spec": args.spec,
            "setting": setting,
            "seed": seed,
            "options": opts.to_dict(),
            "fit_s": float(comp.timings["fit_s"].iloc[0]),
            "fit_cpu_s": holder["fit_cpu_s"],
            "compare_wall_s": wall,
            "train": res.to_dict(),
            "history": res.history,
            "test_ndcg20_mean": float(ndcg.mean()),
            "test_ndcg20_per_user": [round(float(v), 6) for v in ndcg],
            "blend_weight": getattr(model, "blend_w_", None),
            "kgrec_module": str(Path(sys.modules["kgrec"].__file__).parent),
            "torch_threads": torch.get_num_threads(),
            "loadavg_1min_start": round(load0, 2),
            "loadavg_1min_end": round(os.getloadavg()[0], 2),
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "command": "python " + " ".join(shlex.quote(a) for a in sys.argv),
        }
        part.write_text(json.dumps(meta, indent=1))
        print(
            f"{part.name}: fit {meta['fit_s']:.1f}s ({meta['fit_cpu_s']:.1f} s CPU), epochs {res.epochs_run} (best "
            f"{res.best_epoch}), test NDCG@20 {meta['test_ndcg20_mean']:.4f}",
            flush=True,
        )


def replay(valid: list[float], patience: int, min_delta: float) -> tuple[int, int, float]:
    """(epochs run, best epoch, best validation value) of the loop's rule on a validation curve
    (the training trajectory is the same up to the stop: same seed, same batches)."""
    best, best_epoch, bad = -math.inf, -1, 0
    for e, v in enumerate(valid):
        if v > best + min_delta:
            best, best_epoch, bad = v, e, 0
        else:
            bad += 1
        if patience and bad >= patience:
            return e + 1, best_epoch, best
    return len(valid), best_epoch, best


def choose(args: argparse.Namespace) -> dict[str, Any]:
    """Replay candidate rules on the validation curves of the ``today`` runs (validation only)."""
    out: dict[str, Any] = {}
    for p in sorted(PARTS.glob("*_today_*.json")):
        meta = json.loads(p.read_text())
        valid = [h["valid"] for h in meta["history"] if "valid" in h]
        rows = []
        for c in CANDIDATES:
            n, b, v = replay(valid, c["patience"], c["min_delta"])
            rows.append({**c, "epochs": n, "best_epoch": b, "best_valid": round(v, 5)})
        out[p.stem] = {"epochs_today": len(valid), "best_valid_today": max(valid), "rules": rows}
    if not args.quiet:
        for k, v in out.items():
            print(
                k,
                "today:",
                v["epochs_today"],
                "epochs, best valid",
                round(v["best_valid_today"], 5),
            )
            for r in v["rules"]:
                print("   ", r)
    return out


def _boot(x: np.ndarray, n: int = 1000, seed: int = 0) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, len(x), (n, len(x)))].mean(1)
    return float(np.quantile(means, 0.025)), float(np.quantile(means, 0.975))


def assemble(args: argparse.Namespace) -> None:
    from kgrec.models import HybridRecommender

    specs: dict[str, Any] = {}
    for p in sorted(PARTS.glob("*.json")):
        meta = json.loads(p.read_text())
        s = specs.setdefault(Path(meta["spec"]).stem, {}).setdefault(meta["setting"], [])
        s.append(meta)
    out: dict[str, Any] = {
        "name": "early_stopping",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "today": TODAY,
        "new": {
            k: HybridRecommender.default_options.to_dict()[k] for k in ("patience", "min_delta")
        },
        "protocol": "warm (random per-user 8:1:1, full ranking), hybrid library defaults",
        "load_note": "2-core machine shared with other jobs, nice -n 5, 1 torch thread; "
        "loadavg recorded per run. Epoch counts do not depend on the load, wall times do.",
        "choice": choose(argparse.Namespace(quiet=True)),
        "results": {},
    }
    for name, settings in specs.items():
        row: dict[str, Any] = {}
        for setting, runs in settings.items():
            runs = sorted(runs, key=lambda m: m["seed"])
            pooled = np.concatenate([np.asarray(m["test_ndcg20_per_user"]) for m in runs])
            lo, hi = _boot(pooled)
            row[setting] = {
                "seeds": [m["seed"] for m in runs],
                "fit_s": [round(m["fit_s"], 1) for m in runs],
                "fit_s_total": round(sum(m["fit_s"] for m in runs), 1),
                "fit_cpu_s": [round(m["fit_cpu_s"], 1) for m in runs if "fit_cpu_s" in m],
                "epochs_run": [m["train"]["epochs_run"] for m in runs],
                "best_epoch": [m["train"]["best_epoch"] for m in runs],
                "test_ndcg20": round(float(pooled.mean()), 4),
                "test_ndcg20_ci95": [round(lo, 4), round(hi, 4)],
                "test_ndcg20_per_seed": [round(m["test_ndcg20_mean"], 4) for m in runs],
                "loadavg_1min": [[m["loadavg_1min_start"], m["loadavg_1min_end"]] for m in runs],
                "commands": sorted({m["command"] for m in runs}),
                "valid_history": [[h.get("valid") for h in m["history"]] for m in runs],
            }
        if "today" in row and "new" in row:
            common = sorted(set(row["today"]["seeds"]) & set(row["new"]["seeds"]))
            t = {s: f for s, f in zip(row["today"]["seeds"], row["today"]["fit_s"], strict=True)}
            n = {s: f for s, f in zip(row["new"]["seeds"], row["new"]["fit_s"], strict=True)}
            row["fit_time_saved"] = round(
                1 - sum(n[s] for s in common) / sum(t[s] for s in common), 3
            )
            tc = {m["seed"]: m.get("fit_cpu_s") for m in settings["today"]}
            nc = {m["seed"]: m.get("fit_cpu_s") for m in settings["new"]}
            if all(tc.get(s) and nc.get(s) for s in common):
                row["fit_cpu_saved"] = round(
                    1 - sum(nc[s] for s in common) / sum(tc[s] for s in common), 3
                )
            row["epochs_saved"] = round(
                1 - sum(row["new"]["epochs_run"]) / sum(row["today"]["epochs_run"]), 3
            )
            lo, hi = row["today"]["test_ndcg20_ci95"]
            row["new_ndcg20_within_today_ci"] = bool(lo <= row["new"]["test_ndcg20"] <= hi)
        out["results"][name] = row
    RESULTS.write_text(json.dumps(out, indent=1))
    print(RESULTS)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--spec", default=str(HERE.parent / "graphs" / "movielens-100k.toml"))
    r.add_argument("--setting", choices=("today", "new", "both"), required=True)
    r.add_argument("--seeds", type=int, default=3)
    r.add_argument("--threads", type=int, default=1)
    r.add_argument("--data-path", default=None, help="the dataset's files (overrides the spec)")
    r.add_argument("--force", action="store_true")
    c = sub.add_parser("choose")
    c.add_argument("--quiet", action="store_true")
    sub.add_parser("assemble")
    args = ap.parse_args()
    {"run": run, "choose": choose, "assemble": assemble}[args.cmd](args)


if __name__ == "__main__":
    main()
