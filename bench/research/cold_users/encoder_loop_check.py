"""Before/after check of the user encoder's move onto the shared training loop (kgrec.train).

Run once with ``--phase before`` on the encoder's own loop and once with ``--phase after`` on the
shared one; each phase records, per case, the encoder's early-stopping curve (validation mean
NDCG@20 per epoch), the epoch it chose, the epochs it ran, and SHA-256 digests of its trained
weights and of its scores for the validation users. The ``after`` phase compares every field with
``before`` (``identical``: bit for bit).

Cases:

* synthetic: a generated catalog (users in 6 taste groups, a one-hot group profile plus a noise
  column, random item vectors with a group component), 240 training users, 60 validation users as
  tasks with 0 and 3 known items; four encoder settings (default; no residuals + transform; no
  profile; a 2-batch epoch cap at batch 16).
* ml-100k: the cold-user split, seed 2020, the path of ``bench/research/cold_users/encoder.py``:
  the hybrid trained once (seed 2020, 40 epochs, patience 5, early-stopped on warm validation
  NDCG@20; cached under ``cache/``), then its new-user path refitted with the default encoder on
  the split's held-out validation users. Test users are never scored.

    OMP_WAIT_POLICY=PASSIVE nice -n 5 python bench/research/cold_users/encoder_loop_check.py \\
        --phase before
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shlex
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

HERE = Path(__file__).resolve().parent
OUT = HERE / "encoder_loop_check.json"
SYNTHETIC = {
    "default": ({}, True),
    "no-residuals-transform": ({"residuals": False, "transform": True}, True),
    "no-profile": ({}, False),
    "cap2-batch16": ({"max_steps_per_epoch": 2, "batch_size": 16}, True),
}


def _digest(arrays: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for k in sorted(arrays):
        h.update(k.encode())
        h.update(np.ascontiguousarray(arrays[k]).tobytes())
    return h.hexdigest()


def _record(enc: Any, valid: list, features: sp.csr_matrix | None, items: np.ndarray) -> dict:
    from kgrec.models.hybrid._new_user_tasks import ndcg20

    scores, vals = {}, []
    for t in valid:
        s = enc.score(t.shown, None if features is None else features[t.users], items)
        scores[f"k{t.k}"] = s.numpy()
        shown = torch.from_numpy(t.shown.toarray()) > 0
        vals.append(float(ndcg20(s, torch.from_numpy(t.targets.toarray()), shown).mean()))
    return {
        "curve": enc.curve_,
        "best_epoch": enc.best_epoch_,
        "epochs_run": len(enc.curve_),
        "valid_ndcg20_best_weights": round(float(np.mean(vals)), 6),
        "weights_sha256": _digest(enc.state("")),
        "scores_sha256": _digest(scores),
    }


def synthetic() -> dict[str, Any]:
    from kgrec.models.hybrid._new_user_tasks import ValidTask
    from kgrec.models.hybrid._user_encoder import UserEncoder, UserEncoderConfig

    rng = np.random.default_rng(0)
    n_users, n_items, n_groups, dim = 300, 120, 6, 16
    group = np.arange(n_users) % n_groups
    rows, cols = [], []
    for u in range(n_users):
        own = np.flatnonzero(np.arange(n_items) % n_groups == group[u])
        n = int(rng.integers(5, 16))
        picks = np.where(rng.random(n) < 0.8, rng.choice(own, n), rng.integers(0, n_items, n))
        for i in np.unique(picks):
            rows.append(u)
            cols.append(int(i))
    r = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(n_users, n_items))
    prof = np.zeros((n_users, n_groups + 1), np.float32)
    prof[np.arange(n_users), group] = 1.0
    prof[:, -1] = rng.random(n_users)
    features = sp.csr_matrix(prof)
    items = rng.normal(size=(n_items, dim)).astype(np.float32)
    items[np.arange(n_items), np.arange(n_items) % n_groups] += 1.5
    items /= np.linalg.norm(items, axis=1, keepdims=True)
    train = r.copy()
    train[240:] = 0
    train.eliminate_zeros()
    val = np.arange(240, n_users)
    valid = []
    for k in (0, 3):
        shown = sp.lil_matrix((len(val), n_items), dtype=np.float32)
        for j, u in enumerate(val):
            have = r[u].indices
            for i in rng.choice(have, min(k, len(have) - 1), replace=False):
                shown[j, i] = 1.0
        shown = shown.tocsr()
        targets = (r[val] - shown).tocsr()
        targets.eliminate_zeros()
        valid.append(ValidTask(k, val, shown, targets))
    out = {}
    for name, (cfg, use_profile) in SYNTHETIC.items():
        f = features if use_profile else None
        t = time.perf_counter()
        enc = UserEncoder(UserEncoderConfig(**cfg), seed=7).fit(train, f, items, valid)
        out[name] = {"config": cfg, "profile": use_profile, **_record(enc, valid, f, items)}
        out[name]["fit_s"] = round(time.perf_counter() - t, 3)
        print("synthetic", name, {k: out[name][k] for k in ("curve", "best_epoch")}, flush=True)
    return out


def ml100k() -> dict[str, Any]:
    from kgrec.data import make_split
    from kgrec.eval import parse_metric
    from kgrec.eval._protocol import build_protocol, cold_users_tasks
    from kgrec.experiment import ModelContext, validator
    from kgrec.graph import load_spec
    from kgrec.models import HybridRecommender
    from kgrec.models.hybrid._new_user_model import NewUserConfig, NewUserModel, ValidTask
    from kgrec.models.hybrid._user_encoder import UserEncoderConfig

    seed = 2020
    ctx = ModelContext.from_spec(load_spec(HERE.parents[2] / "graphs" / "movielens-100k.toml"))
    split = make_split(ctx.positives, "cold-user", seed=seed, reveal_k=(0, 1, 3, 5, 10, 20))
    proto = build_protocol(split)
    cache = HERE / "cache" / f"hybrid_{seed}"
    if cache.exists():
        model = HybridRecommender.load(cache)
    else:
        opts = HybridRecommender.default_options.replace(seed=seed, epochs=40, patience=5)
        model = HybridRecommender.from_context(ctx, options=opts)
        model.fit(split.train_matrix(), validate=validator(proto.valid, parse_metric("NDCG@20")))
        model.save(cache)
    valid = [
        ValidTask(int(t.name.split("@")[1]), t.users, t.history[t.users], t.targets[t.users])
        for t in cold_users_tasks(split, "valid")
    ]
    f, social = model._profile()
    t = time.perf_counter()
    nu = NewUserModel(NewUserConfig(), seed=seed, encoder_config=UserEncoderConfig()).fit(
        model.train_,
        f,
        social,
        behaviour=model.behaviour_scores,
        valid=valid,
        item_vectors=model.item_vecs_,
    )
    fit_s = time.perf_counter() - t
    enc = nu.encoder_
    curve = nu.choice_["kappa_curve"]
    with_enc = [v for k, v in curve.items() if k.endswith(",encoder")]
    row = {
        "split": "ml-100k cold-user, seed 2020, reveal_k 0,1,3,5,10,20; validation users only",
        "new_user_fit_s": round(fit_s, 2),
        "valid_best_with_encoder": round(max(with_enc), 5) if with_enc else None,
        "encoder_chosen": bool(nu.use_encoder_),
    }
    if enc is not None:
        row.update(_record(enc, [v for v in valid if v.k >= 1], f, model.item_vecs_))
    print("ml-100k", row, flush=True)
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--phase", choices=("before", "after"), required=True)
    p.add_argument("--skip-ml100k", action="store_true")
    p.add_argument("--out", default=str(OUT))
    args = p.parse_args()
    torch.set_num_threads(1)
    out_path = Path(args.out)
    results = json.loads(out_path.read_text()) if out_path.exists() else {}
    import subprocess

    commit = subprocess.run(
        ["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=HERE
    ).stdout.strip()
    dirty = bool(
        subprocess.run(
            ["git", "status", "--porcelain", "kgrec"], capture_output=True, text=True, cwd=HERE
        ).stdout.strip()
    )
    row: dict[str, Any] = {
        "command": "OMP_WAIT_POLICY=PASSIVE python " + " ".join(shlex.quote(a) for a in sys.argv),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": commit,
        "kgrec_uncommitted_changes": dirty,
        "threads": 1,
        "synthetic": synthetic(),
    }
    if not args.skip_ml100k:
        row["ml100k"] = ml100k()
    results[args.phase] = row
    if args.phase == "after" and "before" in results:
        before = results["before"]
        cmp: dict[str, Any] = {}
        keys = ("curve", "best_epoch", "epochs_run", "weights_sha256", "scores_sha256")
        cases = [("synthetic/" + k, before["synthetic"][k], v) for k, v in row["synthetic"].items()]
        if "ml100k" in row and "ml100k" in before:
            cases.append(("ml100k", before["ml100k"], row["ml100k"]))
        for name, b, a in cases:
            same = {k: b.get(k) == a.get(k) for k in keys}
            cmp[name] = {**same, "identical": all(same.values())}
        results["comparison"] = cmp
        print(json.dumps(cmp, indent=1))
    from kgrec._atomic import atomic_write_text

    atomic_write_text(out_path, json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
