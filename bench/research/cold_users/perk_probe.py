"""Probe (issue 13, k = 5): is the new-user path's mix of behaviour scores and its behaviour
weight better chosen per k than once for all k? ml-100k cold-user split, held-out VALIDATION
users only (``cold-user-valid@k``); test users are never scored here.

The library's path chooses one mix ``m`` (1/4 grid over the second network's fold-in, the warm
fold-in, EASE) and one ``kappa`` (``w_k = k / (k + kappa)``) on the mean validation NDCG@20 over
``k >= 1``. The schemes compared (every one chooses on validation users):

- ``global/4``: that (one mix on the 1/4 grid, one kappa: the library as it is);
- ``global/8``: the same on a 1/8 mix grid; ``global/8-fine-kappa``: and kappa in sqrt(2) steps;
  ``global/8-power``: and a second schedule parameter, ``w_k = k^a / (k^a + kappa)``;
- ``per-k/4``, ``per-k/8``: a mix and a kappa for each k, each on its own k's validation users.

(A first version also chose the mix per k with kappa global, and kappa per k with the mix
global: 3-seed CV means over k >= 1 0.5185 and 0.5173, both below ``global/4``'s 0.5193.)

Choosing per k has 5x fewer validation figures behind each choice, so the schemes are judged by
repeated 2-fold cross-validation over the validation users (choose on one half, score the other,
swap; ``--repeats`` random halvings): the figure of a scheme is its held-out-half NDCG@20,
averaged over the folds. ``in-sample`` rows (chosen and scored on all validation users) are for
reference only. The hybrid is the bench's (``new_user_dropout=0.25``, epochs 40, patience 5),
trained once per seed and cached (``--cache``).

    OMP_WAIT_POLICY=PASSIVE nice -n 5 python bench/research/cold_users/perk_probe.py \\
        --seeds 2020,2021,2022
writes ``perk_probe.json`` next to this file (``--variant=-nu0.5 --nu-dropout 0.5 --out
perk_probe_nu0.5.json``: the second network at user-ID dropout 0.5).
"""

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np
import torch

from kgrec.data import make_split
from kgrec.eval import parse_metric
from kgrec.eval._protocol import build_protocol, cold_users_tasks
from kgrec.experiment import ModelContext, validator
from kgrec.graph import load_spec
from kgrec.models import HybridConfig, HybridRecommender, Recommender
from kgrec.models.hybrid._new_user_model import (
    KAPPA_GRID,
    RIDGE_GRID,
    NewUserConfig,
    NewUserModel,
    ValidTask,
    _dense,
    ndcg20,
)

ap = argparse.ArgumentParser()
ap.add_argument("--seeds", default="2020,2021,2022")
ap.add_argument("--repeats", type=int, default=25)
ap.add_argument("--cache", default="/tmp/i13/cache")
ap.add_argument("--nu-dropout", type=float, default=0.25)
ap.add_argument("--variant", default="", help="cache name suffix, e.g. -nu0.5")
ap.add_argument("--out", default="perk_probe.json")
args = ap.parse_args()
logging.basicConfig(level=logging.WARNING)
torch.set_num_threads(1)
spec = load_spec("graphs/movielens-100k.toml")
ctx = ModelContext.from_spec(spec)
KS = (0, 1, 3, 5, 10, 20)
KPOS = KS[1:]


def grid(step: int) -> list[tuple[float, ...]]:
    s = [i / step for i in range(step + 1)]
    return [(a, b, round(1 - a - b, 6)) for a in s for b in s if a + b <= 1 + 1e-9]


GRID4 = set(grid(4))
MIXES = grid(8)  # the 1/4 grid is a subset
FINE_KAPPA = tuple(0.25 * 2 ** (i / 2) for i in range(15))  # 0.25 .. 32 in sqrt(2) steps
POWERS = (0.5, 1.0, 1.5, 2.0)  # w_k = k^a / (k^a + kappa)
#: (kappa, power) pairs tabulated: the fine kappa grid at power 1, the library's grid at each power
SCHEDULES = sorted(
    {(kap, 1.0) for kap in FINE_KAPPA} | {(k, a) for k in KAPPA_GRID for a in POWERS}
)
#: name -> which configurations (mix, kappa, power) a scheme may choose from
SPACES = {
    "4": lambda c: c[0] in GRID4 and c[1] in KAPPA_GRID and c[2] == 1.0,
    "8": lambda c: c[1] in KAPPA_GRID and c[2] == 1.0,
    "8-fine-kappa": lambda c: c[2] == 1.0,
    "8-power": lambda c: c[1] in KAPPA_GRID,
}


def fitted(seed: int, split, validate) -> HybridRecommender:
    p = Path(args.cache) / f"hybrid{args.variant}_{seed}"
    if (p / "model.json").exists():
        return Recommender.load(p)
    opts = HybridRecommender.default_options.replace(seed=seed, epochs=40, patience=5)
    m = HybridRecommender.from_context(
        ctx, options=opts, config=HybridConfig(cf_blend="auto", new_user_dropout=0.25)
    )
    m.fit(split.train_matrix(), validate=validate)
    m.save(p)
    return m


def per_user_tables(seed: int) -> dict:
    """NDCG@20 per (config, validation user) for each k: ``tab[k][ridge][(mix, kappa, power)]``."""
    split = make_split(ctx.positives, "cold-user", seed=seed, reveal_k=KS)
    proto = build_protocol(split)
    validate = validator(proto.valid, parse_metric("NDCG@20"))
    m = fitted(seed, split, validate)
    m.inputs = HybridRecommender.from_context(ctx).inputs
    valid = [
        ValidTask(int(t.name.split("@")[1]), t.users, t.history[t.users], t.targets[t.users])
        for t in cold_users_tasks(split, "valid")
    ]
    by_k = {t.k: t for t in valid}
    f_all, _ = m._profile()
    nu = NewUserModel(NewUserConfig(encoder="off"), seed=seed)
    train = m.train_
    nu.train_ = train
    t0 = by_k[0]
    ridge_rows = {}
    priors = {}
    for lam in RIDGE_GRID:
        nu._fit_prior(train, f_all, lam)
        ridge_rows[lam] = ndcg20(
            nu.prior(f_all[t0.users], len(t0.users)), _dense(t0.targets), _dense(t0.shown) > 0
        ).numpy()
        priors[lam] = {k: nu._p(f_all[by_k[k].users], None, len(by_k[k].users)) for k in KPOS}
    tab: dict = {}
    for k in KPOS:
        t = by_k[k]
        parts = m.behaviour_scores(t.shown)
        tg, mask = _dense(t.targets), _dense(t.shown) > 0
        tab[k] = {lam: {} for lam in RIDGE_GRID}
        for mix in MIXES:
            zb = NewUserModel._mix(parts, mix)
            for lam in RIDGE_GRID:
                p = priors[lam][k]
                for kap, a in SCHEDULES:
                    w = k**a / (k**a + kap)
                    tab[k][lam][(mix, kap, a)] = ndcg20((1 - w) * p + w * zb, tg, mask).numpy()
    return {"ridge": ridge_rows, "tab": tab, "n": len(t0.users)}


def choose(scheme: str, g: str, tab: dict, lam: float, idx: np.ndarray) -> dict:
    """The (mix, kappa, power) per k a scheme picks on the validation users ``idx``."""
    keys = [c for c in tab[KPOS[0]][lam] if SPACES[g](c)]
    mean = {k: {c: float(tab[k][lam][c][idx].mean()) for c in keys} for k in KPOS}
    overall = {c: float(np.mean([mean[k][c] for k in KPOS])) for c in keys}
    if scheme == "global":
        best = max(keys, key=lambda c: overall[c])
        return dict.fromkeys(KPOS, best)
    if scheme == "per-k":
        return {k: max(keys, key=lambda c: mean[k][c]) for k in KPOS}
    raise ValueError(scheme)


SCHEMES = ("global", "per-k")
RUNS = [("global", g) for g in SPACES] + [("per-k", "4"), ("per-k", "8")]
res: dict = {"seeds": {}, "repeats": args.repeats}
for seed in (int(s) for s in args.seeds.split(",")):
    t_start = time.perf_counter()
    data = per_user_tables(seed)
    n = data["n"]
    rng = np.random.default_rng(seed)
    out: dict = {}
    for scheme, g in RUNS:
        name = f"{scheme}/{g}"
        held = {k: [] for k in KPOS}
        for _ in range(args.repeats):
            perm = rng.permutation(n)
            for a, b in ((perm[: n // 2], perm[n // 2 :]), (perm[n // 2 :], perm[: n // 2])):
                lam = max(RIDGE_GRID, key=lambda x: (data["ridge"][x][a].mean(), x))
                pick = choose(scheme, g, data["tab"], lam, a)
                for k in KPOS:
                    held[k].append(float(data["tab"][k][lam][pick[k]][b].mean()))
        lam = max(RIDGE_GRID, key=lambda x: (data["ridge"][x].mean(), x))
        allidx = np.arange(n)
        pick = choose(scheme, g, data["tab"], lam, allidx)
        out[name] = {
            "cv": {str(k): float(np.mean(v)) for k, v in held.items()},
            "cv_mean": float(np.mean([np.mean(v) for v in held.values()])),
            "in_sample": {str(k): float(data["tab"][k][lam][pick[k]].mean()) for k in KPOS},
            "pick_all_valid": {str(k): [list(pick[k][0]), *pick[k][1:]] for k in KPOS},
        }
        print(
            seed,
            name,
            {k: round(v, 4) for k, v in out[name]["cv"].items()},
            round(out[name]["cv_mean"], 4),
            flush=True,
        )
    res["seeds"][str(seed)] = {"valid_users": n, "schemes": out, "s": time.perf_counter() - t_start}
seeds = list(res["seeds"])
res["mean_over_seeds"] = {
    name: {
        str(k): float(np.mean([res["seeds"][s]["schemes"][name]["cv"][str(k)] for s in seeds]))
        for k in KPOS
    }
    for name in res["seeds"][seeds[0]]["schemes"]
}
for name, v in res["mean_over_seeds"].items():
    print("mean", name, {k: round(x, 4) for k, x in v.items()}, round(np.mean(list(v.values())), 4))
Path(__file__).with_name(args.out).write_text(json.dumps(res, indent=1, default=str))
