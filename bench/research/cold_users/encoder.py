"""Search for the new-user encoder's training settings (issue 13) on VALIDATION users only.

ml-100k cold-user split, seed 2020 (and more with ``--seeds``): the hybrid is trained once per
seed (cached under ``cache/``, saved with the library's npz format), then the new-user path is
refitted with each encoder variant on the split's held-out validation users; what is recorded
is the validation mean NDCG@20 over k >= 1 of the best (mix, kappa) with and without the encoder,
and the encoder's own early-stopping curve. Test users are never scored here.

    OMP_WAIT_POLICY=PASSIVE nice -n 5 python bench/research/cold_users/encoder.py
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
VARIANTS = {
    "default": {},
    "lr1e-3": {"lr": 1e-3},
    "no-residuals": {"residuals": False},
    "no-residuals-transform": {"residuals": False, "transform": True},
    "lr1e-3-wd1e-5": {"lr": 1e-3, "weight_decay": 1e-5},
    "tau0.05": {"tau": 0.05, "lr": 1e-3},
}


def _find(obj: object, key: str) -> dict:
    if isinstance(obj, dict):
        if key in obj:
            return obj[key]
        for v in obj.values():
            r = _find(v, key)
            if r:
                return r
    return {}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--seeds", type=int, default=1)
    p.add_argument("--variants", default=",".join(VARIANTS))
    args = p.parse_args()
    torch.set_num_threads(1)
    from kgrec.data import make_split
    from kgrec.eval import parse_metric
    from kgrec.eval._protocol import build_protocol, cold_users_tasks
    from kgrec.experiment import ModelContext, validator
    from kgrec.graph import load_spec
    from kgrec.models import HybridRecommender
    from kgrec.models.hybrid._new_user_model import NewUserConfig, NewUserModel, ValidTask
    from kgrec.models.hybrid._user_encoder import UserEncoderConfig

    spec = load_spec(HERE.parents[2] / "graphs" / "movielens-100k.toml")
    ctx = ModelContext.from_spec(spec)
    pos = ctx.positives
    out_path = HERE / "encoder_results.json"
    results = json.loads(out_path.read_text()) if out_path.exists() else {}
    for i in range(args.seeds):
        seed = 2020 + i
        split = make_split(pos, "cold-user", seed=seed, reveal_k=(0, 1, 3, 5, 10, 20))
        proto = build_protocol(split)
        train = split.train_matrix()
        cache = HERE / "cache" / f"hybrid_{seed}"
        if cache.exists():
            model = HybridRecommender.load(cache)
        else:
            opts = HybridRecommender.default_options.replace(seed=seed, epochs=40, patience=5)
            model = HybridRecommender.from_context(ctx, options=opts)
            model.fit(train, validate=validator(proto.valid, parse_metric("NDCG@20")))
            model.save(cache)
        valid = [
            ValidTask(int(t.name.split("@")[1]), t.users, t.history[t.users], t.targets[t.users])
            for t in cold_users_tasks(split, "valid")
        ]
        f, social = model._profile()
        # the plain hybrid's warm validation NDCG@20 (to compare with bench/cold_users.py's
        # hybrid-uid<rate> rows, which record theirs as warm_valid_best)
        results[f"{seed}/warm_valid_best"] = _find(
            json.loads((cache / "model.json").read_text()), "train_result"
        )["best_metric"]
        out_path.write_text(json.dumps(results, indent=1))
        for name in args.variants.split(","):
            key = f"{seed}/{name}"
            if key in results:
                continue
            nu = NewUserModel(
                NewUserConfig(), seed=seed, encoder_config=UserEncoderConfig(**VARIANTS[name])
            ).fit(
                model.train_,
                f,
                social,
                behaviour=model.behaviour_scores,
                valid=valid,
                item_vectors=model.item_vecs_,
            )
            curve = nu.choice_["kappa_curve"]
            enc = [v for k, v in curve.items() if k.endswith(",encoder")]
            fold = [v for k, v in curve.items() if not k.endswith(",encoder")]
            results[key] = {
                "config": VARIANTS[name],
                "valid_best_with_encoder": round(max(enc), 5) if enc else None,
                "valid_best_fold_in": round(max(fold), 5),
                "encoder_curve": nu.choice_["encoder_curve"],
            }
            print(key, results[key], flush=True)
            out_path.write_text(json.dumps(results, indent=1))
    print(" ".join(sys.argv))


if __name__ == "__main__":
    main()
