"""New users (issue 13): NDCG@20 of held-out users with k of their interactions revealed,
k in {0, 1, 3, 5, 10, 20}, the hybrid's new-user path against the baselines, with its ablations.

Protocol: ``kgrec.eval`` cold-user split (20% of users held out with all their interactions,
half validation, half test; per seed), tasks ``cold-user@k``: the first k of a test user's
interactions (seeded reveal order) are their history and masked, the rest the targets; only
test users with more than 20 positives take part so every k has the same users; full ranking.
Also the ``warm`` task (warm users' test interactions), to show the warm figures do not move.

Baselines without side information (pop, itemknn, ease, mf) answer k = 0 with training
popularity (the library's fallback, ``Recommender.new_user_path = False``); at k >= 1 they score
from the revealed items (history models) or fold them in (MF). The hybrid is trained once per
seed (``--epochs``, early stopping on warm validation NDCG@20) and its new-user path is refitted
for the ablations: ``-no-attr`` (prior = popularity, encoder without the profile),
``-no-weighting`` (behaviour weight 1/2 at every k >= 1), ``-no-encoder`` (nothing trained for
new users: the fold-in of the item vectors), ``-encoder`` (the trained user encoder forced on),
``-no-newuser`` (the hybrid before this issue: popularity at k = 0, fold-in after),
``-one-net`` (no second network: the new-user path on the warm network's fold-in and EASE).
``hybrid`` is the library default (``encoder="auto"``: the user encoder, trained with user IDs
dropped, replaces the fold-in where the validation users say so) with
``new_user_dropout=--nu-dropout`` (0.25): a second network of the same configuration trained
with a quarter of the batch users' IDs dropped (scored from the fold-in of a few of their items),
whose fold-in the new-user path mixes with the warm network's and EASE; the warm network, and so
the ``warm`` row, is the plain hybrid's. (The rate 0.25 was chosen on validation users: the
``hybrid-uid0.25`` / ``-uid0.5`` runs of the earlier results file, and
``bench/research/cold_users/dropout_probe.py``.) Every choice of the new-user path (ridge
strength, friends' weight, kappa, the mix, the encoder and its early stopping) is made on the
split's
held-out VALIDATION users (``cold-user-valid@k``, never in training); ``hybrid-carved`` is the
library default that chooses on validation users carved from the training users (no held-out
users needed; their rows were seen by the trained hybrid, so its behaviour scores look better
there than on new users). Test users are never looked at.

Usage (writes ``bench/results/cold_users.json`` and ``cold_users_<spec>.png``)::

    OMP_WAIT_POLICY=PASSIVE nice -n 5 python bench/cold_users.py run --seeds 3
    OMP_WAIT_POLICY=PASSIVE nice -n 5 python bench/cold_users.py run \\
        --spec graphs/lastfm-hetrec.toml --data-path /work/shared/data/lastfm-hetrec-kg --seeds 1
    python bench/cold_users.py assemble
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
RESULTS = HERE / "results"
PARTS = RESULTS / "cold_users_parts"
BASELINES = ("pop", "itemknn", "ease", "mf")
KS = (0, 1, 3, 5, 10, 20)
SIDE_INFO = {
    "pop": "none",
    "itemknn": "none (popularity at k = 0)",
    "ease": "none (popularity at k = 0)",
    "mf": "none (popularity at k = 0)",
    "hybrid": "KG + item text; new users: profile attributes / friends + known items (fold-in "
    "of a second network trained with user-ID dropout 0.25, mixed with the warm network's "
    "fold-in and EASE; the user encoder where validation users choose it)",
    "hybrid-one-net": "as hybrid, without the second network (the new-user path before it)",
    "hybrid-carved": "as hybrid, its choices made on validation users carved from training "
    "(the library default, e.g. kgrec compare)",
    "hybrid-no-attr": "KG + item text; new users: known items only (popularity prior)",
    "hybrid-no-weighting": "as hybrid, behaviour weight fixed at 1/2",
    "hybrid-no-encoder": "as hybrid, no trained user encoder (fold-in of the item vectors)",
    "hybrid-encoder": "as hybrid, the trained user encoder always on",
    "hybrid-uid0.5": "as hybrid, trained with user-ID dropout 0.5 (DropoutNet on users: half "
    "the batch users scored from the fold-in of 1..20 of their items)",
    "hybrid-uid0.25": "as hybrid-uid0.5, rate 0.25",
    "hybrid-no-newuser": "KG + item text; new users: popularity at k = 0, fold-in after",
}


def _git_commit() -> str | None:
    """The checkout's HEAD commit (with "+dirty" when tracked files differ), None without git."""
    import subprocess

    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=HERE, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=HERE,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return head + ("+dirty" if dirty else "")


def _evaluate(model: Any, tasks: list, seed: int, label: str) -> pd.DataFrame:
    from kgrec.eval import evaluate, parse_metric

    m = [parse_metric("NDCG@20"), parse_metric("Recall@20")]
    out = []
    for t in tasks:
        r = evaluate(model.score, t, m).per_user
        r.insert(0, "model", label)
        r.insert(0, "task", t.name)
        r.insert(0, "seed", seed)
        out.append(r)
    return pd.concat(out, ignore_index=True)


def run(args: argparse.Namespace) -> None:
    from kgrec.data import make_split
    from kgrec.eval import parse_metric
    from kgrec.eval._protocol import build_protocol, cold_users_tasks
    from kgrec.experiment import CompareOptions, ModelContext, make_model, validator
    from kgrec.graph import load_spec
    from kgrec.models import HybridConfig, HybridRecommender
    from kgrec.models.hybrid._new_user_model import NewUserConfig, ValidTask

    torch.set_num_threads(args.threads)
    data_path = Path(args.data_path).resolve() if args.data_path else None
    spec = load_spec(args.spec, data_path=data_path)
    ctx = ModelContext.from_spec(spec)
    pos = ctx.positives
    name = Path(args.spec).stem
    work = PARTS / name
    work.mkdir(parents=True, exist_ok=True)
    models = args.models.split(",")
    commit = _git_commit()  # the code the runs use (also in the assembled file)
    for i in range(args.seeds):
        seed = 2020 + i
        split = make_split(pos, "cold-user", seed=seed, reveal_k=KS)
        proto = build_protocol(split)
        train = split.train_matrix()
        validate = validator(proto.valid, parse_metric("NDCG@20"))
        for label in models:
            part = work / f"{seed}_{label}.csv"
            if part.exists() and not args.force:
                continue
            t0 = time.perf_counter()
            load0 = os.getloadavg()
            uid = label.startswith("hybrid-uid")  # hybrid-uid<rate>: user-ID dropout in training
            if label == "hybrid" or uid:
                opts = HybridRecommender.default_options.replace(
                    seed=seed, epochs=args.epochs, patience=args.patience
                )
                config = HybridConfig(
                    cf_blend="none" if args.no_ease else "auto",
                    user_id_dropout=float(label[len("hybrid-uid") :]) if uid else 0.0,
                    new_user_dropout=0.0 if uid else args.nu_dropout,
                )
                model = HybridRecommender.from_context(ctx, options=opts, config=config)
            else:
                model = make_model(label, seed, CompareOptions(models=(label,)), context=ctx)
            model.fit(train, validate=validate)
            fit_s = time.perf_counter() - t0
            frames = [_evaluate(model, list(proto.tests), seed, label)]
            info: dict[str, Any] = {"fit_s": fit_s, "loadavg_start": load0, "commit": commit}
            if uid:  # warm rows as trained; cold rows with the new-user path chosen on the
                # split's held-out validation users (as the "hybrid" row), fold-in and encoder
                cold = [t for t in proto.tests if t.name.startswith("cold-user")]
                frames[0] = frames[0][~frames[0]["task"].str.startswith("cold-user")]
                valid = [
                    ValidTask(
                        int(t.name.split("@")[1]), t.users, t.history[t.users], t.targets[t.users]
                    )
                    for t in cold_users_tasks(split, "valid")
                ]
                for abl, cfg in ((label, NewUserConfig()),):
                    model.fit_new_users(valid, cfg)
                    frames.append(_evaluate(model, cold, seed, abl))
                    ch = model.new_users_.choice_
                    info[abl] = ch
                    info["valid_best"] = max(ch["kappa_curve"].values())
                    info["valid_k0"] = max(ch["ridge_curve"].values())
                info["warm_valid_best"] = model.result_.best_metric
            if label == "hybrid":
                res = model.result_
                info["train"] = {"epochs_run": res.epochs_run, "best_epoch": res.best_epoch}
                info["warm_valid_best"] = res.best_metric
                info["new_user_network"] = model.nu_train_
                cold = [t for t in proto.tests if t.name.startswith("cold-user")]
                # the library default (choices on users carved from training) as "-carved";
                # the bench's rows choose on the split's held-out validation users
                frames[0]["model"] = frames[0]["model"].where(
                    ~frames[0]["task"].str.startswith("cold-user"), "hybrid-carved"
                )
                info["hybrid-carved"] = model.new_users_.choice_
                valid = [
                    ValidTask(
                        int(t.name.split("@")[1]), t.users, t.history[t.users], t.targets[t.users]
                    )
                    for t in cold_users_tasks(split, "valid")
                ]
                for abl, cfg in (
                    ("hybrid", NewUserConfig()),
                    ("hybrid-no-attr", NewUserConfig(attributes=False, social=False)),
                    ("hybrid-no-weighting", NewUserConfig(weighting=False)),
                    ("hybrid-no-encoder", NewUserConfig(encoder="off")),
                    ("hybrid-encoder", NewUserConfig(encoder="on")),
                ):
                    model.fit_new_users(valid, cfg)
                    frames.append(_evaluate(model, cold, seed, abl))
                    info[abl] = model.new_users_.choice_
                if model.nu_item_vecs_ is not None:  # the path without the second network
                    nu_vecs, model.nu_item_vecs_ = model.nu_item_vecs_, None
                    model.fit_new_users(valid, NewUserConfig())
                    frames.append(_evaluate(model, cold, seed, "hybrid-one-net"))
                    info["hybrid-one-net"] = model.new_users_.choice_
                    model.nu_item_vecs_ = nu_vecs
                model.new_users_ = None
                frames.append(_evaluate(model, cold, seed, "hybrid-no-newuser"))
            info["loadavg_end"] = os.getloadavg()
            pd.concat(frames).to_csv(part, index=False)
            (work / f"{seed}_{label}.json").write_text(json.dumps(info, default=str, indent=1))
            print(f"seed {seed} {label}: {fit_s:.1f}s", flush=True)
    cmd = "python bench/cold_users.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    log = work / "commands.txt"
    with log.open("a") as f:
        f.write(cmd + "\n")


def assemble(args: argparse.Namespace) -> None:
    from kgrec._atomic import atomic_write_text
    from kgrec.eval import bootstrap_ci, paired_test
    from kgrec.experiment import cpu_name

    out: dict[str, Any] = {
        "name": "cold_users",
        "issue": 13,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "assembled_by": "python bench/cold_users.py assemble",
        "cpu": cpu_name(),
        "metric": "NDCG@20 (mean over test users, 95% bootstrap CI over (seed, user) rows)",
        "protocol": __doc__.split("Usage")[0].strip(),
        "side_information": SIDE_INFO,
        "selection": "every choice of the new-user path is made on the split's held-out validation "
        "users (hybrid-carved: on users carved from training); hybrid training settings fixed "
        "before the runs; no test figure was used to choose anything",
        "datasets": {},
        "datasets_note": "each dataset's ``assembled`` says when, and from which commit, its entry "
        "was assembled from its runs (``run_commits``: the code the runs used); a dataset without "
        "runs here is kept from the previous results file as it was (``carried_over``)",
    }
    works = sorted(p for p in PARTS.iterdir() if p.is_dir()) if PARTS.is_dir() else []
    for work in works:
        parts = sorted(work.glob("*.csv"))
        if not parts:
            continue
        df = pd.concat([pd.read_csv(p) for p in parts], ignore_index=True)
        infos = {p.stem: json.loads(p.read_text()) for p in sorted(work.glob("*.json"))}
        cmds = (
            (work / "commands.txt").read_text().splitlines()
            if (work / "commands.txt").exists()
            else []
        )
        d: dict[str, Any] = {
            "assembled": {
                "at": out["created"],
                "commit": _git_commit(),
                "run_commits": sorted({str(i.get("commit")) for i in infos.values()}),
            },
            "commands": sorted(set(cmds)),
            "runs": infos,
            "tasks": {},
        }
        d["seeds"] = sorted(int(s) for s in df["seed"].unique())
        for task, g in df.groupby("task", sort=False):
            wide = g.pivot_table(index=["seed", "user"], columns="model", values="NDCG@20")
            wide = wide.dropna(axis=1)
            t: dict[str, Any] = {"users": len(wide), "models": {}}
            for m in wide.columns:
                ci = bootstrap_ci(wide[m].to_numpy())
                per_seed = wide[m].groupby(level="seed").mean()
                t["models"][m] = {
                    "ndcg20": round(ci.mean, 4),
                    "ci": [round(ci.low, 4), round(ci.high, 4)],
                    "per_seed": {str(k): round(v, 4) for k, v in per_seed.items()},
                }
            base = [m for m in BASELINES if m in wide.columns]
            if base and "hybrid" in wide.columns:
                best = max(base, key=lambda m: wide[m].mean())
                t["best_baseline"] = best
                for ref in dict.fromkeys([best, "pop"]):
                    if ref not in wide.columns:
                        continue
                    for m in [c for c in wide.columns if c.startswith("hybrid")]:
                        pt = paired_test(wide[m].to_numpy(), wide[ref].to_numpy())
                        t.setdefault("paired", []).append(
                            {
                                "model": m,
                                "against": ref,
                                "ratio": round(float(wide[m].mean() / wide[ref].mean()), 4),
                                **pt.to_dict(),
                            }
                        )
            if task == "warm" and "hybrid" in wide.columns:  # do training variants move warm?
                for m in [c for c in wide.columns if c.startswith("hybrid-")]:
                    pt = paired_test(wide[m].to_numpy(), wide["hybrid"].to_numpy())
                    t.setdefault("paired_vs_hybrid", []).append(
                        {
                            "model": m,
                            "ratio": round(float(wide[m].mean() / wide["hybrid"].mean()), 4),
                            **pt.to_dict(),
                        }
                    )
            d["tasks"][task] = t
        d["must_show"] = _must_show(d["tasks"])
        out["datasets"][work.name] = d
        _plot(df, work.name)
        d["plot"] = f"bench/results/cold_users_{work.name}.png"
    _carry_over(out)
    atomic_write_text(RESULTS / "cold_users.json", json.dumps(out, indent=1, default=float))
    print(
        json.dumps(
            {
                k: {
                    t: {m: v["ndcg20"] for m, v in x["models"].items()}
                    for t, x in d["tasks"].items()
                }
                for k, d in out["datasets"].items()
            },
            indent=1,
        )
    )


def _carry_over(out: dict[str, Any], results: Path = RESULTS) -> None:
    """Keep the datasets of the previous results file that have no parts here (not rerun: the
    parts folder is git-ignored, so a fresh checkout re-assembling one dataset has only that
    dataset's parts), unchanged and marked as such, with when and from which commit they were
    assembled. A dataset rerun here whose new entry lacks models of its previous entry is
    reported (e.g. only the hybrid rerun: the baselines' rows are gone)."""
    old_path = results / "cold_users.json"
    if not old_path.exists():
        return
    old = json.loads(old_path.read_text())
    for name, d in old.get("datasets", {}).items():
        if name in out["datasets"]:
            lost = _models(d) - _models(out["datasets"][name])
            if lost:
                print(
                    f"warning: {name}: models of the previous entry without parts here, "
                    f"dropped: {', '.join(sorted(lost))} (rerun them before assembling)",
                    file=sys.stderr,
                )
            continue
        d = dict(d)
        if "assembled" not in d:  # assembled before the per-dataset record: the file's time,
            # and the commit that stored that file (its figures are as committed there)
            d["assembled"] = {
                "at": old.get("created"),
                "commit": None,
                "stored_in": _last_commit(old_path),
            }
        d.setdefault(
            "carried_over",
            f"not rerun: kept from the results file assembled {d['assembled']['at']} (the code "
            "of that time; its commands above)",
        )
        out["datasets"][name] = dict(
            {"assembled": d.pop("assembled"), "carried_over": d.pop("carried_over")}, **d
        )


def _models(d: dict[str, Any]) -> set[str]:
    return {m for t in d.get("tasks", {}).values() for m in t.get("models", {})}


def _last_commit(path: Path) -> str | None:
    """The last commit that changed ``path`` (None outside git or when never committed)."""
    import subprocess

    try:
        r = subprocess.run(
            ["git", "log", "-1", "--format=%H", "--", path.name],
            cwd=path.parent,
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return r.stdout.strip() or None


def _must_show(tasks: dict[str, Any]) -> dict[str, Any]:
    """Issue 13's targets per hybrid row: k = 0 significantly above popularity (p < 0.05); at
    k = 1, 3, 5 at least 1.05x the best baseline with p < 0.05; never below popularity."""
    rows = sorted({p["model"] for t in tasks.values() for p in t.get("paired", [])})
    out: dict[str, Any] = {}
    for m in rows:
        r: dict[str, Any] = {}
        for k in KS:
            t = tasks.get(f"cold-user@{k}")
            if t is None:
                continue
            pv = {p["against"]: p for p in t.get("paired", []) if p["model"] == m}
            if "pop" not in pv:
                continue
            ref = "pop" if k == 0 else t["best_baseline"]
            p = pv[ref]
            need = 1.0 if k == 0 else 1.05
            r[f"k{k}"] = {
                "against": ref,
                "ratio": p["ratio"],
                "t_pvalue": p["t_pvalue"],
                "target": f">= {need}x {ref}, p < 0.05" if k else "> pop, p < 0.05",
                "met": bool(p["ratio"] > 1.0 and p["t_pvalue"] < 0.05)
                if k == 0
                else (bool(p["ratio"] >= need and p["t_pvalue"] < 0.05) if k <= 5 else None),
                "below_pop": bool(pv["pop"]["ratio"] < 1.0),
            }
        out[m] = r
    return out


def _plot(df: pd.DataFrame, name: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from kgrec.eval import bootstrap_ci

    cold = df[df["task"].str.startswith("cold-user@")].copy()
    cold["k"] = cold["task"].str.split("@").str[1].astype(int)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for m, g in cold.groupby("model"):
        ks, mu, lo, hi = [], [], [], []
        for k, gk in sorted(g.groupby("k")):
            ci = bootstrap_ci(gk["NDCG@20"].to_numpy())
            (
                ks.append(k),
                mu.append(ci.mean),
                lo.append(ci.mean - ci.low),
                hi.append(ci.high - ci.mean),
            )
        style = "-" if m == "hybrid" else ("--" if m.startswith("hybrid") else ":")
        ax.errorbar(ks, mu, yerr=[lo, hi], label=m, linestyle=style, marker="o", capsize=3)
    ax.set_xscale("symlog", linthresh=1)
    ax.set_xticks(list(KS), [str(k) for k in KS])
    ax.set_xlabel("k interactions revealed")
    ax.set_ylabel("NDCG@20 (95% CI)")
    ax.set_title(f"New users: interest transfer curve ({name})")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(RESULTS / f"cold_users_{name}.png", dpi=110)
    plt.close(fig)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--spec", default=str(HERE.parent / "graphs" / "movielens-100k.toml"))
    r.add_argument("--data-path", default=None, help="local copy of the dataset (lastfm-hetrec)")
    r.add_argument("--seeds", type=int, default=3)
    r.add_argument("--models", default="pop,itemknn,ease,mf,hybrid")
    r.add_argument("--epochs", type=int, default=40)
    r.add_argument("--patience", type=int, default=5)
    r.add_argument("--threads", type=int, default=1)
    r.add_argument(
        "--nu-dropout",
        type=float,
        default=0.25,
        help="the hybrid's new_user_dropout: user-ID dropout of its second network for new "
        "users (0: none)",
    )
    r.add_argument("--force", action="store_true")
    r.add_argument(
        "--no-ease",
        action="store_true",
        help="hybrid without its EASE blend (cf_blend='none'): EASE on a 17,632-item catalog "
        "does not fit this machine's time budget",
    )
    sub.add_parser("assemble")
    args = p.parse_args()
    run(args) if args.cmd == "run" else assemble(args)


if __name__ == "__main__":
    main()
