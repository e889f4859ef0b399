"""The KG + text hybrid against the compare harness's baselines (issue 6): ml-100k by default,
any graph spec with ``--spec`` (lastfm-hetrec: ``--spec graphs/lastfm-hetrec.toml``).

Same protocol and splits as ``bench/compare_ml100k.py`` (positives per the spec's min_rating,
RecBole-compatible random per-user 8:1:1 split per seed, full ranking, train (+ valid) masked,
early stopping on validation NDCG@20) through :func:`kgrec.experiment.compare`, with the
hybrid's inputs (KG links from the spec, all-MiniLM-L6-v2 item text vectors) built by the same
:class:`~kgrec.experiment.ModelContext` the CLI uses. Configurations are fixed before the run
(chosen on validation NDCG@20 of ml-100k seed 2020, ``bench/research/hybrid_ml100k``); the EASE
blend weight and, in the cold-item protocol, the cold map are chosen per seed on validation data
(the cold map on the cold VALIDATION items); nothing is selected on test.

Runs are done in parts (one ``run`` per protocol/model set, cached per model and seed under the
parts folder, which git ignores) and ``assemble`` writes ``bench/results/hybrid_ml100k.json``
(``hybrid_<spec>.json`` for another spec): per model mean NDCG@20 / Recall@20 with bootstrap CIs,
per-seed values, the paired test of each hybrid variant against the best baseline, wall time to
the best epoch; for cold-item the three cold-start baselines; ablations. Protocols without parts
on this machine are kept from the existing results file.

Usage::

    OMP_WAIT_POLICY=PASSIVE nice -n 5 python bench/hybrid_ml100k.py run --protocol warm \\
        --models pop,itemknn,ease,mf,lightgcn,hybrid --seeds 3
    OMP_WAIT_POLICY=PASSIVE nice -n 5 python bench/hybrid_ml100k.py run --protocol cold-item \\
        --models textknn,kgknn,content2cf,hybrid --seeds 3
    python bench/hybrid_ml100k.py assemble
    python bench/hybrid_ml100k.py run --spec graphs/lastfm-hetrec.toml --protocol warm ...
    python bench/hybrid_ml100k.py assemble --spec graphs/lastfm-hetrec.toml
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import torch

HERE = Path(__file__).resolve().parent
SPEC = HERE.parent / "graphs" / "movielens-100k.toml"
BASELINES = ("pop", "itemknn", "ease", "mf", "lightgcn")
COLD_BASELINES = ("textknn", "kgknn", "content2cf")
#: label -> HybridConfig overrides (the ablations are options of the one model)
#: each is built from parts: the hybrid without its own blend (cf_blend="none") inside
#: ScoreBlend(hybrid, EASE) (kgrec.models.ScoreBlend), trained once and evaluated twice: the
#: hybrid alone (label as is) and the blend (weight chosen on validation, label + "+ease");
#: the same scores as the hybrid's built-in blend (cf_blend="ease"), which is this same part
VARIANTS: dict[str, dict[str, Any]] = {
    "hybrid": {},
    "hybrid-no-kg": {"kg": False},
    "hybrid-no-text": {"text": False},
    "hybrid-no-kg-no-text": {"kg": False, "text": False},
    "hybrid+align": {"align": 0.1},
    # DropoutNet's usual rate and the text/graph alignment on: declared before seeing its results,
    # after the default (id_dropout 0.1, no alignment) ranked cold items poorly
    "hybrid-inductive": {"id_dropout": 0.5, "align": 0.1},
    # the library's default since the cold-item runs: items without a training interaction get
    # the calibrated ridge map (measured in the warm protocol, where only a few such items exist)
    "hybrid-ridge": {"cold_map": "ridge"},
}
#: cold-item protocol: every hybrid variant is trained once and evaluated with each way of
#: embedding items that have no training interaction: label as is = the network's content path
#: (text + KG through the fusion, no ID), "+ridge" = the post-hoc ridge map content -> trained item
#: vector (cold_map="ridge"), "+auto" = per seed whichever of the two ranks the cold VALIDATION
#: items better (Recall@20 on the "cold-valid" task; the cold test items are never looked at)
COLD_MAPS = ("", "+ridge")
COLD_SELECT = "+auto"
PEERS_BEST = {"RecBole CKE (KG split)": 0.2346, "RecBole ItemKNN (full data)": 0.2336}
MAIN_TASK = {"warm": "test", "cold-item": "cold"}


def _paths(args: argparse.Namespace) -> tuple[Path, Path]:
    """(parts folder, results JSON) for the spec: ml-100k keeps its historical names."""
    name = Path(args.spec).stem
    stem = "hybrid_ml100k" if name == "movielens-100k" else f"hybrid_{name}"
    work = Path(args.work) if args.work else HERE / "results" / f"{stem}_parts"
    return work, HERE / "results" / f"{stem}.json"


def _factory(label: str, threads: int):
    from kgrec.experiment import make_model
    from kgrec.models import HybridConfig, HybridRecommender, ScoreBlend

    def factory(name: str, seed: int, options, context=None):
        if label in VARIANTS:
            opts = HybridRecommender.default_options.replace(seed=int(seed))
            hybrid = HybridRecommender.from_context(
                context,
                options=opts,
                config=HybridConfig(cf_blend="none", **{"cold_map": "content", **VARIANTS[label]}),
            )
            timed(hybrid)
            return ScoreBlend(hybrid, make_model("ease", seed, options))
        return timed(make_model(label, seed, options, context=context))

    return factory


def timed(model):
    """``model`` with its ``fit`` timing the validation calls (``bench_time_to_best_``: wall
    time from the start of the fit to the best epoch's validation)."""
    fit = model.fit
    stamps: list[float] = []

    def timed_fit(train, *, validate=None):
        t0 = time.perf_counter()

        def v(m):
            out = validate(m)
            stamps.append(time.perf_counter() - t0)
            return out

        fit(train, validate=v if validate is not None else None)
        res = getattr(model, "result_", None)
        model.bench_time_to_best_ = (
            stamps[res.best_epoch]
            if res is not None and 0 <= res.best_epoch < len(stamps)
            else None
        )
        return model

    model.fit = timed_fit
    return model


def run(args: argparse.Namespace) -> None:
    from kgrec.experiment import CompareOptions, ModelContext, compare, seeds_from
    from kgrec.graph import load_spec

    torch.set_num_threads(args.threads)
    spec = load_spec(args.spec)
    ctx = ModelContext.from_spec(spec)
    pos = ctx.positives
    work = _paths(args)[0] / args.protocol
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    for label in args.models.split(","):
        for seed in seeds_from(args.seeds):
            part = work / f"{label}_{seed}"
            if (part.with_suffix(".json")).is_file() and not args.force:
                print(f"skip {label} seed {seed} (cached)", flush=True)
                continue
            name = "hybrid" if label in VARIANTS else label
            opts = CompareOptions(models=(name,), protocol=args.protocol, seeds=(seed,))
            print(
                f"[{time.perf_counter() - t0:7.1f}s] {args.protocol} {label} seed {seed}",
                flush=True,
            )
            holder: dict[str, Any] = {}
            fac = _factory(label, args.threads)

            def keep(n, s, o, context=None, _fac=fac, holder=holder):
                holder["model"] = _fac(n, s, o, context=context)
                return holder["model"]

            comp = compare(pos, opts, context=ctx, model_factory=keep)
            blend = holder["model"] if label in VARIANTS else None
            model = holder["model"] if blend is None else blend.first  # the hybrid alone
            pu = comp.per_user.assign(model=label)
            if blend is not None and args.protocol == "cold-item":
                pu = _evaluate_cold_maps(model, pos, seed, label)
            elif blend is not None:
                pu = pu.assign(model=label + "+ease")
                raw = _evaluate_raw(model, pos, args.protocol, seed).assign(model=label)
                pu = pd.concat([raw, pu], ignore_index=True)
            pu.to_csv(part.with_suffix(".csv.gz"), index=False)
            res = getattr(model, "result_", None)
            meta = {
                "label": label,
                "seed": seed,
                "protocol": args.protocol,
                "fit_s": float(comp.timings["fit_s"].iloc[0]),
                "eval_s": float(comp.timings["eval_s"].iloc[0]),
                "train": None if res is None else res.to_dict(),
                "time_to_best_epoch_s": getattr(model, "bench_time_to_best_", None),
                "config": model.config.to_dict(),
                "blend": None if blend is None else "ScoreBlend(hybrid, ease)",
                "blend_weight": None if blend is None else blend.mix_.weight,
                "blend_valid_curve": None if blend is None else blend.mix_.curve,
                "cold_scale": model.cold_scale_
                if getattr(model, "cold_w_", None) is not None
                else None,
                "cold_scale_valid_curve": getattr(model, "cold_scale_curve_", None),
                "inputs": None
                if getattr(model, "inputs", None) is None
                else model.inputs.describe(),
                "torch_threads": torch.get_num_threads(),
                "loadavg_1min": round(os.getloadavg()[0], 2),
                "date": datetime.now(UTC).isoformat(timespec="seconds"),
                "command": "python " + " ".join(shlex.quote(a) for a in sys.argv),
            }
            part.with_suffix(".json").write_text(json.dumps(meta, indent=1))
            s = comp.summary()
            s = s[s.metric.isin(["NDCG@20", "Recall@20"])]
            print(s[["task", "metric", "mean"]].to_string(index=False), flush=True)
            print(
                f"  fit {meta['fit_s']:.1f}s, best epoch at {meta['time_to_best_epoch_s']}",
                flush=True,
            )


def _long(model, tasks, seed: int) -> pd.DataFrame:
    """Per-user values (long format) of ``model`` on ``tasks``."""
    from kgrec.eval import default_metrics, evaluate

    parts = []
    for task in tasks:
        res = evaluate(model.score, task, default_metrics((10, 20)))
        long = res.per_user.melt(id_vars="user", var_name="metric", value_name="value")
        parts.append(long.assign(seed=int(seed), task=task.name))
    return pd.concat(parts, ignore_index=True)


def _evaluate_raw(model, pos, protocol: str, seed: int) -> pd.DataFrame:
    """Per-user test values of the hybrid alone (the first part of its blend with EASE)."""
    from kgrec.eval import build_protocol, make_split
    from kgrec.experiment import PROTOCOL_SPLITS

    proto = build_protocol(make_split(pos, PROTOCOL_SPLITS[protocol], seed=int(seed)))
    return _long(model, proto.tests, seed)


def _evaluate_cold_maps(model, pos, seed: int, label: str) -> pd.DataFrame:
    """Cold-item protocol: the trained hybrid (without the EASE blend) evaluated with each cold
    map, plus the per-seed choice between them on the cold validation items (see COLD_MAPS)."""
    from kgrec.data import TRAIN
    from kgrec.eval import build_protocol, cold_items_task, make_split, parse_metric
    from kgrec.experiment import validator

    split = make_split(pos, "cold-item", seed=int(seed))
    proto = build_protocol(split)
    tasks = (*proto.tests, cold_items_task(split, "valid"))  # cold-valid: chooses the map
    validate = validator(proto.valid, parse_metric("NDCG@20"))  # the runner's: the cold scale

    out = {}
    for suffix in COLD_MAPS:
        if suffix == "+ridge":  # the ridge map fitted on the trained network's item vectors
            model.fit_cold_map(split.matrix(TRAIN), validate)
        out[suffix] = _long(model, tasks, seed).assign(model=label + suffix)

    def cold_valid(f: pd.DataFrame) -> float:
        return float(f[(f.task == "cold-valid") & (f.metric == "Recall@20")]["value"].mean())

    best = max(COLD_MAPS, key=lambda k: (cold_valid(out[k]), k == ""))
    print(f"  cold map chosen on cold-valid: {best or 'content'} "
          f"({ {k or 'content': round(cold_valid(v), 4) for k, v in out.items()} })", flush=True)  # fmt: skip
    chosen = out[best].assign(model=label + COLD_SELECT, cold_map=best or "content")
    return pd.concat([*out.values(), chosen], ignore_index=True)


def _figures(frame: pd.DataFrame, metric: str) -> dict[str, Any]:
    from kgrec.eval import bootstrap_ci

    sub = frame[frame.metric == metric]
    ci = bootstrap_ci(sub["value"].to_numpy(), n_boot=1000)
    per_seed = sub.groupby("seed")["value"].mean()
    return {
        "mean": round(ci.mean, 4),
        "ci95": [round(ci.low, 4), round(ci.high, 4)],
        "per_seed": {str(k): round(float(v), 4) for k, v in per_seed.items()},
        "seed_std": round(float(per_seed.std(ddof=1)), 4) if len(per_seed) > 1 else 0.0,
    }


def _not_rerun(old: dict[str, Any], protocol: str, block: dict[str, Any]) -> dict[str, Any]:
    """Models of the previous results file that this assembly's parts do not have: kept apart,
    with the date of the file they come from, so that figures of an older library version never
    sit beside fresh ones as if comparable (re-run them to bring them back)."""
    prev = old.get("protocols", {}).get(protocol)
    if not prev:
        return {}
    out: dict[str, Any] = {}
    for task, tb in prev.get("tasks", {}).items():
        fresh = block["tasks"].get(task, {}).get("models", {})
        gone = {m: f for m, f in tb.get("models", {}).items() if m not in fresh}
        if gone:
            out[task] = gone
    if not out:
        return {}
    return {
        "note": "not re-run in this assembly: figures from the previous results file "
        f"(assembled {old.get('date')}), made by an earlier library version; not comparable "
        "with the rows above",
        "tasks": out,
    }


def assemble(args: argparse.Namespace) -> None:
    from kgrec._atomic import atomic_write_text
    from kgrec.eval import paired_test
    from kgrec.experiment import environment

    work, out_path = _paths(args)
    # protocols without parts here (e.g. a fresh clone: parts are not committed) are kept as they
    # are in the existing results file, with the commands that made them
    old = json.loads(out_path.read_text()) if out_path.is_file() else {}
    fresh = {p.name for p in work.iterdir() if p.is_dir()} if work.is_dir() else set()
    kept = {k: v for k, v in old.get("protocols", {}).items() if k not in fresh}
    for block in kept.values():  # the load note of the run that made a kept protocol
        if "load_note" in old and "load_note" not in block:
            block["load_note"] = old["load_note"]
    kept_cmds = [c for c in old.get("commands", []) if any(f"--protocol {k}" in c for k in kept)]
    out: dict[str, Any] = {
        "name": out_path.stem,
        "spec": str(Path(args.spec).resolve().relative_to(HERE.parent)),
        "commands": sorted(
            {*kept_cmds, *(json.loads(p.read_text())["command"] for p in work.glob("*/*.json"))}
        ),
        "assembled_by": "python " + " ".join(shlex.quote(a) for a in sys.argv),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "environment": environment(),
        "load_note": "2-core machine, runs niced (nice -n 5), torch.set_num_threads(2); wall "
        "times depend on the load, recorded per run (timing.loadavg_1min); kept protocols carry "
        "their own note",
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "protocol": f"{Path(args.spec).stem}: positives per the spec's min_rating (ml-100k: "
        "rating >= 4, other rows dropped; lastfm-hetrec: every listen), RecBole-compatible random "
        "per-user 8:1:1 split per seed (same splits as bench/compare_ml100k.py), full ranking, "
        "train (+ valid at test) masked; early stopping on valid NDCG@20; cold-item: 20% of items "
        "held out (half validation, half test), 'cold' task ranks the cold test items only, "
        "'cold-valid' the cold validation items only (used to choose the cold map, see cold_maps)",
        "selection": "hybrid configuration fixed before these runs from validation NDCG@20 of "
        "ml-100k seed 2020 (bench/research/hybrid_ml100k); the EASE blend weight and the cold map "
        "are chosen per seed on validation; no test figure was used to choose anything",
        "cold_maps": {"": "network content path", "+ridge": "ridge map", COLD_SELECT: "chosen"},
        "library_default": "HybridConfig() = cf_blend 'auto' (EASE blend, weight chosen on "
        "validation, for catalogs up to 20,000 items) + cold_map 'ridge' (calibrated, length "
        "chosen on validation): the 'hybrid-ridge+ease' row of the warm protocol and the "
        "'hybrid+auto' rows of the cold task (where the blend cannot act: EASE gives every cold "
        "item the same score); rows without '+ease' are the hybrid without the blend",
        "variants": VARIANTS,
        "peers": PEERS_BEST if "movielens" in Path(args.spec).stem else {},
        "protocols": dict(kept),
    }
    for k in ("timing_lower_load",):
        if k in old:
            out[k] = old[k]
    for proto_dir in sorted(work / p for p in fresh):
        protocol = proto_dir.name
        frames, metas = [], {}
        for p in sorted(proto_dir.glob("*.csv.gz")):
            frames.append(pd.read_csv(p))
            m = json.loads(p.with_name(p.name.replace(".csv.gz", ".json")).read_text())
            metas.setdefault(m["label"], []).append(m)
        if not frames:
            continue
        pu = pd.concat(frames, ignore_index=True)
        block: dict[str, Any] = {"tasks": {}}
        for task, g in pu.groupby("task", sort=False):
            models = {}
            for label, gm in g.groupby("model", sort=False):
                models[label] = {
                    m: _figures(gm, m)
                    for m in ("NDCG@20", "Recall@20", "Hit@10")
                    if m in set(gm.metric)
                }
                models[label]["seeds"] = sorted(int(s) for s in gm.seed.unique())
            block["tasks"][task] = {"models": models}
            # paired tests of each hybrid variant against the best baseline (same seeds/users)
            base = [m for m in models if not m.startswith("hybrid")]
            key = "NDCG@20" if task != "cold" else "Recall@20"
            tests = {}
            for hv in [m for m in models if m.startswith("hybrid")]:
                seeds = set(models[hv]["seeds"])
                cands = [b for b in base if set(models[b]["seeds"]) >= seeds]
                if not cands:
                    continue
                sub = g[(g.metric == key) & g.seed.isin(seeds)]
                wide = sub.pivot_table(index=["seed", "user"], columns="model", values="value")
                best = max(cands, key=lambda b: wide[b].mean())
                w = wide[[hv, best]].dropna()
                t = paired_test(w[hv].to_numpy(), w[best].to_numpy())
                tests[hv] = {
                    "metric": key,
                    "best_baseline": best,
                    "seeds": sorted(seeds),
                    "hybrid": round(float(w[hv].mean()), 4),
                    "baseline": round(float(w[best].mean()), 4),
                    "ratio": round(float(w[hv].mean() / w[best].mean()), 4),
                    **{
                        k: (round(v, 6) if isinstance(v, float) else v)
                        for k, v in t.to_dict().items()
                    },
                }
            block["tasks"][task]["paired_vs_best_baseline"] = tests
            # ablation table: every hybrid variant on the seeds all variants share, paired
            # against the full model (raw and +ease separately)
            hyb = [m for m in models if m.startswith("hybrid")]
            if len(hyb) > 1:
                common = set.intersection(*(set(models[m]["seeds"]) for m in hyb))
                sub = g[g.seed.isin(common)]
                abl: dict[str, Any] = {"seeds": sorted(common), "rows": {}}
                for m in hyb:
                    gm = sub[sub.model == m]
                    abl["rows"][m] = {
                        k: round(float(gm[gm.metric == k]["value"].mean()), 4)
                        for k in ("NDCG@20", "Recall@20")
                    }
                    ref = "hybrid" + (m[m.index("+") :] if "+" in m else "")
                    if m != ref and ref in hyb:
                        wide = sub[sub.metric == key].pivot_table(
                            index=["seed", "user"], columns="model", values="value"
                        )
                        w = wide[[m, ref]].dropna()
                        t = paired_test(w[m].to_numpy(), w[ref].to_numpy())
                        abl["rows"][m][f"vs_{ref}_{key}_t_pvalue"] = round(t.t_pvalue, 6)
                        abl["rows"][m][f"vs_{ref}_{key}_mean_diff"] = round(t.mean_diff, 4)
                block["tasks"][task]["ablation"] = abl
        timing = {}
        for label, ms in metas.items():
            ms = sorted(ms, key=lambda m: m["seed"])
            ttb = [m["time_to_best_epoch_s"] for m in ms if m["time_to_best_epoch_s"] is not None]
            timing[label] = {
                "fit_s": [round(m["fit_s"], 1) for m in ms],
                "time_to_best_epoch_s": [round(x, 1) for x in ttb],
                "best_epoch": [m["train"]["best_epoch"] for m in ms if m["train"]],
                "epochs_run": [m["train"]["epochs_run"] for m in ms if m["train"]],
                "torch_threads": sorted({m["torch_threads"] for m in ms}),
                "loadavg_1min": [m.get("loadavg_1min") for m in ms],
            }
            if ms[0].get("inputs"):
                timing[label]["inputs"] = ms[0]["inputs"]
            if label.startswith("hybrid"):
                timing[label]["config"] = ms[0]["config"]
                timing[label]["ease_blend_weight_per_seed"] = [m.get("blend_weight") for m in ms]
                timing[label]["cold_scale_per_seed"] = [m.get("cold_scale") for m in ms]
        block["timing"] = timing
        stale = _not_rerun(old, protocol, block)
        if stale:
            block["not_rerun"] = stale
        out["protocols"][protocol] = block
    atomic_write_text(out_path, json.dumps(out, indent=1))
    print(f"wrote {out_path}")
    for protocol, block in out["protocols"].items():
        for task, tb in block["tasks"].items():
            print(f"== {protocol} / {task}")
            for label, f in tb["models"].items():
                print(
                    f"  {label:22s} NDCG@20 {f['NDCG@20']['mean']:.4f} "
                    f"Recall@20 {f['Recall@20']['mean']:.4f} seeds {f['seeds']}"
                )
            for hv, t in tb.get("paired_vs_best_baseline", {}).items():
                print(
                    f"  {hv} vs {t['best_baseline']}: {t['hybrid']} vs {t['baseline']} "
                    f"p_t={t.get('t_pvalue', t)}"
                )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="fit and evaluate models, caching per model and seed")
    r.add_argument("--protocol", choices=["warm", "cold-item"], default="warm")
    r.add_argument("--models", default=",".join((*BASELINES, "hybrid")))
    r.add_argument("--seeds", type=int, default=3)
    r.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    r.add_argument("--force", action="store_true", help="recompute cached parts")
    r.add_argument("--work", default=None, help="parts folder (default: next to the results)")
    a = sub.add_parser("assemble", help="write bench/results/hybrid_ml100k.json")
    a.add_argument("--work", default=None, help="parts folder (default: next to the results)")
    for p in (r, a):
        p.add_argument("--spec", default=str(SPEC), help="graph spec (dataset + KG + text)")
    args = ap.parse_args()
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    (run if args.cmd == "run" else assemble)(args)


if __name__ == "__main__":
    main()
