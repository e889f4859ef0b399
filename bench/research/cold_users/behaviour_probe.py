# ruff: noqa: B023
"""Probe (issue 13, k = 3 / 5): behaviour scores for new users on the cold-user split's
held-out VALIDATION users only (ml-100k, ``cold-user-valid@k``): the hybrid's fold-in (mean of
its item vectors), its EASE weights, a ridge fold-in of its item vectors, an MF-BPR fold-in, and
their mixes with the profile prior, per k. Test users are never scored here.

    OMP_WAIT_POLICY=PASSIVE nice -n 5 python bench/research/cold_users/behaviour_probe.py --seed 2020
writes ``behaviour_probe_<seed>.json`` next to this file (models cached under --cache).
"""

import argparse
import itertools
import json
import logging
from pathlib import Path

import torch

from kgrec.data import make_split
from kgrec.eval import parse_metric
from kgrec.eval._protocol import build_protocol, cold_users_tasks
from kgrec.experiment import CompareOptions, ModelContext, make_model, validator
from kgrec.graph import load_spec
from kgrec.models import HybridConfig, HybridRecommender, Recommender
from kgrec.models._blend import zscore as _zscore
from kgrec.models.hybrid._new_user_model import NewUserConfig, ValidTask, _dense, ndcg20

log = logging.getLogger("probe")
ap = argparse.ArgumentParser()
ap.add_argument("--seed", type=int, default=2020)
ap.add_argument("--cache", default="/tmp/i13")
args = ap.parse_args()
logging.basicConfig(level=logging.WARNING)
torch.set_num_threads(1)
seed = args.seed
spec = load_spec("graphs/movielens-100k.toml")
ctx = ModelContext.from_spec(spec)
KS = (0, 1, 3, 5, 10, 20)
split = make_split(ctx.positives, "cold-user", seed=seed, reveal_k=KS)
proto = build_protocol(split)
train = split.train_matrix()
validate = validator(proto.valid, parse_metric("NDCG@20"))
cache = Path(args.cache)


def cached(label: str, make):
    p = cache / f"{label}_{seed}"
    if (p / "model.json").exists():
        return Recommender.load(p)
    m = make()
    m.fit(train, validate=validate)
    m.save(p)
    return m


def make_hybrid() -> HybridRecommender:
    opts = HybridRecommender.default_options.replace(seed=seed)
    return HybridRecommender.from_context(ctx, options=opts, config=HybridConfig())


hyb = cached("hybrid", make_hybrid)
hyb.inputs = HybridRecommender.from_context(ctx).inputs
mf = cached("mf", lambda: make_model("mf", seed, CompareOptions(models=("mf",)), context=ctx))
valid = [
    ValidTask(int(t.name.split("@")[1]), t.users, t.history[t.users], t.targets[t.users])
    for t in cold_users_tasks(split, "valid")
]
by_k = {t.k: t for t in valid}
hyb.fit_new_users(valid, NewUserConfig(encoder="off"))
nu = hyb.new_users_
f_all, _ = hyb._profile()
V = torch.from_numpy(hyb.item_vecs_)
B = torch.from_numpy(hyb.ease_)
VM = torch.from_numpy(mf.item_vecs_)


def ridge_fold(vecs: torch.Tensor, h: torch.Tensor, lam: float, alpha: float) -> torch.Tensor:
    # u = argmin sum_{i in h} (1 - u.v_i)^2 + alpha sum_j (u.v_j)^2 + lam |u|^2
    g0 = alpha * vecs.T @ vecs + lam * torch.eye(vecs.shape[1])
    out = []
    for row in h:
        idx = row.nonzero().ravel()
        vh = vecs[idx]
        out.append(torch.linalg.solve(g0 + vh.T @ vh, vh.sum(0)))
    return torch.stack(out) @ vecs.T


res: dict = {"seed": seed, "valid_users": {k: len(t.users) for k, t in by_k.items()}}
res["choice"] = {k: v for k, v in nu.choice_.items() if "curve" not in k}
per_k: dict = {}
for k in KS[1:]:
    t = by_k[k]
    h = _dense(t.shown)
    tg = _dense(t.targets)
    mask = h > 0
    p = nu._p(None if f_all is None else f_all[t.users], None, len(t.users))

    def score(s: torch.Tensor) -> float:
        return float(ndcg20(s, tg, mask).mean())

    comps = {
        "fold": _zscore((h @ V / h.sum(1, keepdim=True)) @ V.T),
        "ease": _zscore(h @ B),
        "mf": _zscore(h @ VM @ VM.T),
    }
    for lam, alpha in itertools.product((0.1, 1.0), (0.0, 0.01, 0.1)):
        comps[f"ridge{lam},{alpha}"] = _zscore(ridge_fold(V, h, lam, alpha))
    row = {
        "current": score(
            nu.score(
                t.shown,
                None if f_all is None else f_all[t.users],
                behaviour=hyb.behaviour_scores,
                item_vectors=hyb.item_vecs_,
            )
        )
    }
    ws = (0.0, 0.2, 0.35, 0.5, 0.65, 0.8, 1.0)
    for name, c in comps.items():
        row[name] = score(c)
        row[f"{name}+prior"] = max(score((1 - w) * p + w * c) for w in ws)
    mixes = (0.25, 0.5, 0.75)
    for a, b in itertools.combinations(comps, 2):
        best = 0.0
        for m in mixes:
            zb = _zscore(m * comps[a] + (1 - m) * comps[b])
            best = max(best, max(score((1 - w) * p + w * zb) for w in ws))
        row[f"{a}|{b}+prior"] = best
    for a, b, c3 in (("fold", "ease", "mf"), ("ridge1.0,0.01", "ease", "mf")):
        best = 0.0
        for m1, m2 in itertools.product((0.2, 0.33, 0.5), (0.2, 0.33, 0.5)):
            if m1 + m2 >= 1:
                continue
            zb = _zscore(m1 * comps[a] + m2 * comps[b] + (1 - m1 - m2) * comps[c3])
            best = max(best, max(score((1 - w) * p + w * zb) for w in ws))
        row[f"{a}|{b}|{c3}+prior"] = best
    per_k[k] = row
    print(k, json.dumps({n: round(v, 4) for n, v in row.items()}), flush=True)
res["per_k"] = per_k
out = Path(__file__).with_name(f"behaviour_probe_{seed}.json")
out.write_text(json.dumps(res, indent=1, default=str))
