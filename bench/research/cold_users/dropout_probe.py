# ruff: noqa: B023
"""Probe (issue 13, k = 3 / 5): a second hybrid trained with user-ID dropout as the source of
the new-user fold-in, the warm hybrid untouched. ml-100k cold-user split, held-out VALIDATION
users only (``cold-user-valid@k``); test users are never scored here.

    OMP_WAIT_POLICY=PASSIVE nice -n 5 python bench/research/cold_users/dropout_probe.py --seed 2020
writes ``dropout_probe_<seed>.json`` next to this file (models cached under --cache).
"""

import argparse
import itertools
import json
import logging
from pathlib import Path

import numpy as np
import torch

from kgrec.data import make_split
from kgrec.eval import parse_metric
from kgrec.eval._protocol import build_protocol, cold_users_tasks
from kgrec.experiment import ModelContext, validator
from kgrec.graph import load_spec
from kgrec.models import HybridConfig, HybridRecommender, Recommender
from kgrec.models._blend import zscore as _zscore
from kgrec.models.hybrid._new_user_model import NewUserConfig, ValidTask, _dense, ndcg20

ap = argparse.ArgumentParser()
ap.add_argument("--seed", type=int, default=2020)
ap.add_argument("--rates", default="0.25")
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
inputs = HybridRecommender.from_context(ctx).inputs


def cached(label: str, rate: float) -> HybridRecommender:
    p = cache / f"{label}_{seed}"
    if (p / "model.json").exists():
        m = Recommender.load(p)
    else:
        opts = HybridRecommender.default_options.replace(seed=seed)
        m = HybridRecommender.from_context(
            ctx, options=opts, config=HybridConfig(user_id_dropout=rate)
        )
        m.fit(train, validate=validate)
        m.save(p)
    m.inputs = inputs
    return m


valid = [
    ValidTask(int(t.name.split("@")[1]), t.users, t.history[t.users], t.targets[t.users])
    for t in cold_users_tasks(split, "valid")
]
by_k = {t.k: t for t in valid}
warm = cached("hybrid", 0.0)
warm.fit_new_users(valid, NewUserConfig(encoder="off"))
f_all, _ = warm._profile()
res: dict = {
    "seed": seed,
    "warm_choice": {k: v for k, v in warm.new_users_.choice_.items() if "curve" not in k},
}
models = {"warm": warm}
for r in args.rates.split(","):
    m = cached(f"hybrid-uid{r}", float(r))
    m.fit_new_users(valid, NewUserConfig(encoder="off"))
    models[f"uid{r}"] = m
    res[f"uid{r}_choice"] = {k: v for k, v in m.new_users_.choice_.items() if "curve" not in k}
    res[f"uid{r}_warm_valid"] = None if m.result_ is None else m.result_.best_metric
ws = (0.2, 0.35, 0.5, 0.65, 0.8, 1.0)
per_k: dict = {}
for k in KS[1:]:
    t = by_k[k]
    h = _dense(t.shown)
    tg = _dense(t.targets)
    mask = h > 0
    p = warm.new_users_._p(None if f_all is None else f_all[t.users], None, len(t.users))

    def score(s: torch.Tensor) -> float:
        return float(ndcg20(s, tg, mask).mean())

    row = {}
    comps = {}
    for name, m in models.items():
        row[f"{name}-path"] = score(
            m.new_users_.score(
                t.shown,
                None if f_all is None else f_all[t.users],
                behaviour=m.behaviour_scores,
                item_vectors=m.item_vecs_,
            )
        )
        V = torch.from_numpy(m.item_vecs_)
        comps[name] = _zscore((h @ V / h.sum(1, keepdim=True)) @ V.T)
    comps["ease"] = _zscore(h @ torch.from_numpy(warm.ease_))
    for name, c in comps.items():
        row[f"{name}+prior"] = max(score((1 - w) * p + w * c) for w in ws)
    names = [n for n in comps if n != "ease"]
    for a, b in itertools.combinations(names, 2):
        for mix in (0.25, 0.5, 0.75):
            zb = _zscore(mix * comps[a] + (1 - mix) * comps[b])
            row[f"{a}|{b}@{mix}+prior"] = max(score((1 - w) * p + w * zb) for w in ws)
            for me in (0.15, 0.3):
                zb = _zscore(
                    (1 - me) * (mix * comps[a] + (1 - mix) * comps[b]) + me * comps["ease"]
                )
                row[f"{a}|{b}@{mix}|ease{me}+prior"] = max(score((1 - w) * p + w * zb) for w in ws)
    per_k[k] = row
    top = sorted(row.items(), key=lambda x: -x[1])[:3]
    print(
        k,
        {n: round(v, 4) for n, v in row.items() if "path" in n or n.endswith("@0.5+prior")},
        [(a, round(b, 4)) for a, b in top],
        flush=True,
    )
res["per_k"] = per_k
mean = {n: float(np.mean([per_k[k][n] for k in KS[1:]])) for n in per_k[1]}
res["mean_k_ge_1"] = mean
print("mean", sorted(((round(v, 4), n) for n, v in mean.items()), reverse=True)[:8])
print("mean paths", {n: round(v, 4) for n, v in mean.items() if "path" in n})
Path(__file__).with_name(f"dropout_probe_{seed}.json").write_text(
    json.dumps(res, indent=1, default=str)
)
