"""Cheap alternatives to the hybrid's ridge cold map (issue 14), ml-100k cold-item protocol.

On the graph model that ``bench/text_finetune.py`` trained and saved per seed
(``bench/results/text_finetune_parts/graph_<seed>``), cold items (cold-valid and cold-test) get
vectors from variants of the cold map; every variant's settings are chosen on the cold
VALIDATION items (``cold-valid`` Recall@20), the cold test figure is reported for the chosen one:

* ``ridge``: today's map (unit-length vectors; the cold task ranks cold items only, so the
  global length ``cold_scale`` does not matter there);
* ``norm^p``: keep the mapped vectors' relative lengths, ``|v|^p`` (p = 0: today);
* ``pop``: length ``exp(gamma * z)``, ``z`` a ridge prediction (from the same content features)
  of the standardised log training popularity of warm items;
* ``lam``: the ridge's L2;
* ``knn``: vector = softmax-weighted mean of the warm vectors of the k most text+KG-similar warm
  items, blended with the ridge vector (weight on cold-valid).

    OMP_WAIT_POLICY=PASSIVE nice -n 5 .venv/bin/python bench/research/text_finetune/cold_map_variants.py --seeds 2020

writes ``cold_map_variants.json`` next to this file.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
PARTS = REPO / "bench" / "results" / "text_finetune_parts"


def run_seed(seed: int, pos: Any, inp: Any, metrics: Any) -> dict[str, Any]:
    from kgrec.data import COLD_TEST, COLD_VALID, TRAIN
    from kgrec.eval import build_protocol, cold_items_task, evaluate, make_split
    from kgrec.models import Recommender
    from kgrec.models.hybrid import _cold_map as cm

    split = make_split(pos, "cold-item", seed=seed)
    proto = build_protocol(split)
    train = split.matrix(TRAIN)
    tasks = {
        "cold-valid": cold_items_task(split, "valid"),
        "cold": next(t for t in proto.tests if t.name == "cold"),
    }
    model = Recommender.load(PARTS / f"graph_{seed}")
    model.inputs = inp
    x = model._cold_features()
    warm = np.asarray(train.sum(0)).ravel() > 0
    cold = np.flatnonzero(~warm)
    base = model.item_vecs_.copy()
    y = base[warm].astype(np.float64)

    def score(vecs: np.ndarray) -> dict[str, float]:
        model.item_vecs_ = base.copy()
        model.item_vecs_[cold] = vecs.astype(np.float32)
        return {
            k: float(evaluate(model.score, t, metrics).per_user["Recall@20"].mean())
            for k, t in tasks.items()
        }

    res: dict[str, Any] = {}

    def run(name: str, vecs: np.ndarray) -> None:
        res[name] = score(vecs)
        print(seed, name, {k: round(v, 4) for k, v in res[name].items()}, flush=True)

    cmap = cm.RidgeColdMap(10.0, True, seed).fit(x[warm], y)
    raw = x[cold] @ cmap.w.astype(np.float64)
    unit = cm.unit_rows(raw)
    run("ridge", unit)
    nr = np.linalg.norm(raw, axis=1)
    nr = nr / nr.mean()
    for pw in (0.5, 1.0, 2.0, 4.0):
        run(f"norm^{pw}", unit * nr[:, None] ** pw)
    logpop = np.log1p(np.asarray(train.sum(0)).ravel()[warm])
    mu, sd = logpop.mean(), logpop.std()
    wp = cm.ridge(x[warm], (logpop - mu) / sd, 10.0)
    z = x[cold] @ wp
    z_oof = cm.out_of_fold(x[warm], ((logpop - mu) / sd)[:, None], 10.0, seed=seed)[:, 0]
    res["pop_oof_corr"] = float(np.corrcoef(z_oof, logpop)[0, 1])
    for g in (0.05, 0.1, 0.2, 0.3, 0.5, 1.0):
        run(f"pop{g}", unit * np.exp(g * z)[:, None])
    for lam in (1.0, 3.0, 30.0, 100.0):
        m2 = cm.RidgeColdMap(lam, True, seed).fit(x[warm], y)
        run(f"lam{lam}", m2.map(x[cold]))
    m3 = cm.RidgeColdMap(10.0, False, seed).fit(x[warm], y)
    run("uncalibrated", m3.map(x[cold]))
    d_text = inp.item_text.shape[1]
    for tag, feats, grid in (
        ("", x[:, :-1], ((10, (0.25, 0.5, 1.0)), (50, (0.125, 0.25, 0.375, 0.5, 1.0)))),
        ("_text", x[:, :d_text], ((50, (0.125, 0.25, 0.375)),)),
    ):
        xn = cm.unit_rows(feats)
        sim = xn[cold] @ xn[warm].T
        for k, blends in grid:
            top = np.argsort(-sim, axis=1)[:, :k]
            s = np.take_along_axis(sim, top, 1) / 0.05
            wts = np.exp(s - s.max(1, keepdims=True))
            wts /= wts.sum(1, keepdims=True)
            knn = cm.unit_rows(np.einsum("ck,ckd->cd", wts, y[top]))
            for b in blends:
                run(f"knn{k}{tag}_b{b}", cm.unit_rows((1 - b) * unit + b * knn))
    chosen = max((k for k in res if isinstance(res[k], dict)), key=lambda k: res[k]["cold-valid"])
    res["chosen_on_cold_valid"] = chosen
    res["n_cold_valid_items"] = int((split.item_role == COLD_VALID).sum())
    res["n_cold_test_items"] = int((split.item_role == COLD_TEST).sum())
    return res


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--seeds", default="2020")
    args = p.parse_args()
    torch.set_num_threads(1)
    from kgrec.eval import default_metrics, positives
    from kgrec.experiment import ModelContext
    from kgrec.graph import load_spec

    spec = load_spec(REPO / "graphs" / "movielens-100k.toml")
    ds = spec.load_dataset()
    pos = positives(ds, min_rating=spec.interactions.min_rating)
    ctx = ModelContext(dataset=ds, positives=pos, spec=spec)
    inp = ctx.hybrid_inputs()
    metrics = default_metrics((20,))
    out: dict[str, Any] = {"seeds": {}}
    for seed in [int(s) for s in args.seeds.split(",")]:
        out["seeds"][str(seed)] = run_seed(seed, pos, inp, metrics)
    out["loadavg"] = os.getloadavg()
    out["date"] = datetime.now(UTC).isoformat(timespec="seconds")
    out["command"] = "python " + " ".join(shlex.quote(a) for a in sys.argv)
    path = HERE / "cold_map_variants.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(out, indent=1))
    os.replace(tmp, path)


if __name__ == "__main__":
    main()
