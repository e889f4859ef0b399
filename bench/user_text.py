"""Users' own words through the hybrid's text path (issue 14, Deliver 3; issue 13's free text).

Dataset: amazon-instruments (1,429 users, 900 items, every rating with its review text; no
profile attributes, no KG). Protocol: ``kgrec.eval`` cold-user split per seed (20% of users held
out with all their interactions, half validation, half test), tasks ``cold-user@k`` for
k in {0, 1, 2, 4}: a held-out user's first k interactions (seeded reveal order) are known and
masked, the rest are the targets. Review text reaches the models from the split's training
interactions only (:meth:`kgrec.experiment.ModelContext.for_split`), so no held-out user's
words are in any item's text.

A new user's TEXT is the reviews they wrote of their k known items (what a user could type at
sign-up about things they own). Rows:

* ``pop``, ``mf`` (fold-in of the known items), ``ease``, ``textknn``: baselines from the ids.
* ``hybrid``: the hybrid's new-user path from the k known ids (choices on validation users).
* ``hybrid+text``: the same plus the text term (:mod:`kgrec.models.hybrid._user_text`: the
  reviews embedded as a new item's text is, by the hybrid's own text path, blended at a weight
  chosen on the split's held-out VALIDATION users, ``cold-user-valid@k``).
* ``hybrid-text-only``: the text alone on top of the hybrid's empty-history prior (popularity
  here: the dataset has no profile), the k items still masked: a user who gave words, no ids.

``--text-finetune top-layers`` trains the hybrid with the fine-tuned text tower; the users' text
is then encoded by that same tower (``model.text_encoder()``: up to 256 tokens per review, as the
frozen encoder; the tower trains on 64). Test users are never looked at for any choice; the
validation users' NDCG@20 at the chosen weight is in ``info`` (``valid_ndcg20``).

Usage (writes ``--out``, default ``bench/results/user_text.json``)::

    OMP_WAIT_POLICY=PASSIVE nice -n 5 python bench/user_text.py --seeds 3
    OMP_WAIT_POLICY=PASSIVE nice -n 5 python bench/user_text.py --seeds 1 --threads 1 \\
        --text-finetune top-layers --pair-frozen --out bench/results/user_text_tower.json

``--pair-frozen`` fits the frozen path beside the tower on the same split and seed (rows
labelled ``[frozen]``), so the table pairs tower and frozen per test user.
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

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DATA = (REPO / ".." / "shared" / "data" / "amazon-instruments-reviews").resolve()
KS = (0, 1, 2, 4)  # k = 0 (no words, no ids) fits the new-user path's prior
BASELINES = ("pop", "mf", "ease", "textknn")
#: label suffix of the frozen-path rows fitted beside a tower run (``--pair-frozen``)
FROZEN = "[frozen]"


def _user_texts(split: Any, task: Any, reviews: dict[tuple[str, str], str]) -> dict[int, list[str]]:
    """User index -> their reviews of the task's known (revealed) items, joined."""
    h = task.history.tocsr()
    out = {}
    for u in task.users:
        items = h.indices[h.indptr[u] : h.indptr[u + 1]]
        uid = split.users.id(int(u))
        texts = [reviews.get((uid, split.items.id(int(i))), "") for i in items]
        texts = [t for t in texts if t]
        if texts:
            out[int(u)] = texts
    return out


def _text_rows(model: Any, texts: dict[int, list[str]], encoder: Any) -> tuple[Any, dict]:
    """Text cosines of each user's reviews (mean of the review vectors, as user text is
    combined in :mod:`kgrec.text`) and the user -> row map."""
    from kgrec._numeric import normalize_rows
    from kgrec.models.hybrid._user_text import text_item_scores

    users = sorted(texts)
    strings = sorted({s for u in users for s in texts[u]})
    vec = np.asarray(encoder.encode(strings), np.float32)
    at = {s: i for i, s in enumerate(strings)}
    tv = np.stack([vec[[at[s] for s in texts[u]]].mean(0) for u in users])
    return text_item_scores(model, normalize_rows(tv)), {u: j for j, u in enumerate(users)}


def _rows(
    label: str, fn: Any, tasks: list, seed: int, metrics: list, frames: list[pd.DataFrame]
) -> None:
    from kgrec.eval import evaluate

    for t in tasks:
        r = evaluate(fn, t, metrics).per_user.copy()
        r.insert(0, "model", label)
        r.insert(0, "task", t.name)
        r.insert(0, "seed", seed)
        frames.append(r)


def _hybrid_rows(
    ctx: Any,
    split: Any,
    train: Any,
    validate: Any,
    tests: list,
    valids: list,
    reviews: dict[tuple[str, str], str],
    seed: int,
    mode: str,
    suffix: str,
    mean_ndcg: Any,
    metrics: list,
    frames: list[pd.DataFrame],
) -> dict[str, Any]:
    """Fit the hybrid with ``text_finetune=mode`` and add its rows (labels + ``suffix``):
    ids only, + the users' words, words without ids; returns its fit time and chosen weights."""
    from kgrec.models import HybridConfig, HybridRecommender
    from kgrec.models.hybrid._new_user_model import NewUserConfig, ValidTask
    from kgrec.models.hybrid._user_text import fit_text_blend
    from kgrec.text import CachedEncoder, TransformerEncoder

    t0 = time.perf_counter()
    opts = HybridRecommender.default_options.replace(seed=seed)
    model = HybridRecommender.from_context(
        ctx, options=opts, config=HybridConfig(text_finetune=mode)
    )
    model.fit(train, validate=validate)
    fit_s = time.perf_counter() - t0
    model.fit_new_users(
        [
            ValidTask(int(t.name.split("@")[1]), t.users, t.history[t.users], t.targets[t.users])
            for t in valids
        ],
        NewUserConfig(),
    )
    tower = model.text_encoder()
    enc = tower or CachedEncoder(TransformerEncoder())
    _rows("hybrid" + suffix, model.score, tests, seed, metrics, frames)

    def empty(users: np.ndarray, history: Any, model: Any = model) -> torch.Tensor:
        return model.score(users, sp.csr_matrix(history.shape, dtype=np.float32))

    info: dict[str, Any] = {
        "hybrid_fit_s": fit_s,
        "epochs": model.result_.epochs_run,
        "text_finetune": mode,
        "user_text_encoder": "tower" if tower is not None else "frozen",
    }
    if tower is not None:
        info["tower"] = {k: v for k, v in (model.tower_result_ or {}).items() if k != "history"}
    # k >= 1: the words are their k reviews (k = 0: no words; those rows equal hybrid / pop)
    valid_text = [(t, *_text_rows(model, _user_texts(split, t, reviews), enc)) for t in valids[1:]]
    test_text = [(t, *_text_rows(model, _user_texts(split, t, reviews), enc)) for t in tests[1:]]
    for label, score in (("hybrid+text", model.score), ("hybrid-text-only", empty)):
        # one weight over every k, chosen on the held-out validation users
        blend = fit_text_blend(score, valid_text, mean_ndcg)
        info[label] = {
            "weight": blend.weight,
            "valid_ndcg20": blend.curve[blend.weight],  # validation users, at the chosen weight
            "valid_curve": blend.curve,
        }
        for t, tx, rows in test_text:
            _rows(label + suffix, blend.score_fn(score, tx, rows), [t], seed, metrics, frames)
    return {suffix: info} if suffix else info


def run(args: argparse.Namespace) -> dict[str, Any]:
    from kgrec.data import make_split
    from kgrec.eval import evaluate, parse_metric
    from kgrec.eval._protocol import build_protocol, cold_users_tasks
    from kgrec.experiment import CompareOptions, ModelContext, make_model, validator
    from kgrec.graph import load_spec

    torch.set_num_threads(args.threads)
    spec = load_spec(REPO / "graphs" / "amazon-instruments.toml", data_path=Path(args.data))
    base = ModelContext.from_spec(spec)
    f = base.dataset.interactions.frame
    reviews = {
        (str(u), str(i)): str(r)
        for u, i, r in zip(f["user"], f["item"], f["review"], strict=True)
        if isinstance(r, str) and r.strip()
    }
    ndcg, recall = parse_metric("NDCG@20"), parse_metric("Recall@20")

    def mean_ndcg(fn: Any, task: Any) -> float:
        return float(evaluate(fn, task, [ndcg]).per_user[ndcg.label].mean())

    frames: list[pd.DataFrame] = []
    info: dict[str, Any] = {}
    for s in range(args.seeds):
        seed = 2020 + s
        split = make_split(base.positives, "cold-user", seed=seed, reveal_k=KS)
        proto = build_protocol(split)
        ctx = base.for_split(split)  # review text from this split's training rows only
        train = split.train_matrix()
        validate = validator(proto.valid, ndcg)
        tests = [t for t in proto.tests if t.name.startswith("cold-user")]
        valids = list(cold_users_tasks(split, "valid"))
        for name in BASELINES:
            m = make_model(name, seed, CompareOptions(models=(name,)), context=ctx)
            m.fit(train, validate=validate)
            _rows(name, m.score, tests, seed, [ndcg, recall], frames)
        variants = [("", args.text_finetune)]
        if args.pair_frozen and args.text_finetune != "none":
            variants.append((FROZEN, "none"))  # same split and seed: rows pair up per user
        seed_info: dict[str, Any] = {}
        for suffix, mode in variants:
            seed_info.update(
                _hybrid_rows(
                    ctx,
                    split,
                    train,
                    validate,
                    tests,
                    valids,
                    reviews,
                    seed,
                    mode,
                    suffix,
                    mean_ndcg,
                    [ndcg, recall],
                    frames,
                )
            )
        info[str(seed)] = seed_info
        print(f"seed {seed}: {json.dumps(seed_info)}", flush=True)
    df = pd.concat(frames, ignore_index=True)
    return {"info": info, "table": _summary(df)}


def _summary(df: pd.DataFrame) -> dict[str, Any]:
    from kgrec.eval import bootstrap_ci, paired_test

    out: dict[str, Any] = {}
    for task, g in df.groupby("task"):
        rows: dict[str, Any] = {}
        wide = g.pivot_table(index=["seed", "user"], columns="model", values="NDCG@20")
        for m in wide.columns:
            ci = bootstrap_ci(wide[m].to_numpy())
            rows[m] = {"NDCG@20": round(ci.mean, 4), "ci": [round(ci.low, 4), round(ci.high, 4)]}
        pairs = [
            ("hybrid+text", "hybrid"),
            ("hybrid+text", "mf"),
            ("hybrid-text-only", "pop"),
            ("hybrid", "pop"),
            (f"hybrid+text{FROZEN}", f"hybrid{FROZEN}"),
        ]
        # the tower run against the frozen path, same seed and users
        pairs += [(m, m + FROZEN) for m in ("hybrid", "hybrid+text", "hybrid-text-only")]
        for a, b in pairs:
            if a not in wide.columns or b not in wide.columns:
                continue  # k = 0: no words
            pt = paired_test(wide[a].to_numpy(), wide[b].to_numpy())
            rows[f"{a} vs {b}"] = {
                "ratio": round(float(wide[a].mean() / wide[b].mean()), 4),
                "t_pvalue": float(pt.t_pvalue),
            }
        rows["users"] = len(wide)
        out[str(task)] = rows
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=str(DATA), help="the amazon-instruments-reviews folder")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument(
        "--text-finetune", default="none", choices=("none", "lora", "top-layers", "full")
    )
    ap.add_argument(
        "--pair-frozen",
        action="store_true",
        help="with --text-finetune other than none: also fit the frozen path (text_finetune "
        f"none) on the same splits, rows labelled '{FROZEN}', paired with the tower's",
    )
    ap.add_argument("--out", default=str(HERE / "results" / "user_text.json"))
    args = ap.parse_args()
    if not Path(args.data).is_dir():
        sys.exit(f"{args.data} is absent: the benchmark needs the amazon-instruments reviews")
    t0 = time.perf_counter()
    load0 = os.getloadavg()
    res = run(args)
    res.update(
        name="user_text",
        issue=[14, 13],
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        command="OMP_WAIT_POLICY=PASSIVE python bench/user_text.py "
        + " ".join(shlex.quote(a) for a in sys.argv[1:]),
        protocol=__doc__,
        metric="NDCG@20, mean over (seed, test user) rows, 95% bootstrap CI; paired t-test",
        text_finetune=args.text_finetune,
        pair_frozen=bool(args.pair_frozen and args.text_finetune != "none"),
        threads=args.threads,
        wall_s=round(time.perf_counter() - t0, 1),
        loadavg_start=load0,
        loadavg_end=os.getloadavg(),
    )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    with tmp.open("w") as fh:
        json.dump(res, fh, indent=1, default=str)
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(out)
    print(json.dumps(res["table"], indent=1))


if __name__ == "__main__":
    main()
