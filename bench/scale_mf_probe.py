"""Cheap MF-BPR probes on amazon-book's given split, scored on a validation slice of train only.

Why MF underperforms the published figure is searched here, never on test: the given split's
train part loses a seeded 10% per-user validation slice (``--valid-share``), each configuration
trains on the rest for a few epochs, and ``--valid-users`` sampled validation users score it
after every epoch (NDCG@20, the selection metric, and Recall@20 at the end). The test part is not
loaded into any model decision: this script never evaluates on it.

Configurations are ``key=value`` lists: ``lr``, ``batch`` (batch size; the large-data scaling of
the defaults is turned off when given), ``reg`` (MF's L2 on the batch embeddings), ``dim``,
``epochs``, ``neg`` (negatives per positive), ``init`` (``xavier`` or a normal std), ``pairs``
(``TrainingOptions.pair_sampling``: ``interaction`` or ``user``) and ``patience``.

Usage: OMP_WAIT_POLICY=PASSIVE nice -n 5 python bench/scale_mf_probe.py \\
    --data ../shared/data/amazon-book-kgat --config "lr=5e-3,epochs=20" --config "..."
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

import torch

from kgrec._atomic import atomic_write_text
from kgrec.data import make_split
from kgrec.data.sources import kgat
from kgrec.eval import NDCG, Recall, build_protocol, evaluate, positives


def _parse(text: str) -> dict[str, str]:
    out = {}
    for part in [p for p in text.split(",") if p.strip()]:
        key, _, value = part.partition("=")
        out[key.strip()] = value.strip()
    return out


def _sample(task: Any, n: int, seed: int) -> Any:
    from kgrec.experiment import sample_users

    return sample_users(task, n, seed)


def probe(cfg: dict[str, str], train: Any, valid: Any, seed: int) -> dict[str, Any]:
    from torch import nn

    from kgrec.models.cf.mf_bpr import MFBPR, MFConfig

    class Probe(MFBPR):
        def _build_module(self, m: Any) -> nn.Module:
            mod = super()._build_module(m)
            init = cfg.get("init", "xavier")
            if init != "xavier":
                nn.init.normal_(mod.user.weight, std=float(init))
                nn.init.normal_(mod.item.weight, std=float(init))
            return mod

    opts = MFBPR.default_options.replace(seed=seed, epochs=int(cfg.get("epochs", 20)))
    if "batch" in cfg:
        opts = opts.replace(batch_size=int(cfg["batch"]), max_steps_per_epoch=None)
    if "lr" in cfg:
        opts = opts.replace(lr=float(cfg["lr"]))
        if "batch" not in cfg:  # keep the scaled batch, with this lr
            scaled = opts.scaled(train.nnz)
            opts = opts.replace(batch_size=scaled.batch_size, max_steps_per_epoch=None)
    if "patience" in cfg:
        opts = opts.replace(patience=int(cfg["patience"]))
    if "pairs" in cfg:
        opts = opts.replace(pair_sampling=cfg["pairs"])
    model = Probe(
        MFConfig(dim=int(cfg.get("dim", 64)), reg=float(cfg.get("reg", 0.0))), options=opts
    )
    if "neg" in cfg:
        import kgrec.models.cf._embedding as emb

        base = emb.BPRSampler

        def _sampler(*a: Any, **k: Any) -> Any:
            return base(*a, n_negatives=int(cfg["neg"]), **k)

        emb.BPRSampler = _sampler  # type: ignore[assignment,misc]
    ndcg = NDCG(20)
    curve: list[float] = []

    def validate(m: Any) -> float:
        r = evaluate(m.score, valid, [ndcg], tie_seed=None)
        v = float(r.per_user[ndcg.label].mean())
        curve.append(v)
        return v

    load0 = os.getloadavg()
    t0 = time.perf_counter()
    try:
        model.fit(train, validate=validate)
    finally:
        if "neg" in cfg:
            emb.BPRSampler = base  # type: ignore[misc]
    wall = time.perf_counter() - t0
    res = evaluate(model.score, valid, [Recall(20), NDCG(20)], tie_seed=None)
    used = model.fit_options_
    return {
        "config": cfg,
        "batch_size": used.batch_size,
        "lr": used.lr,
        "valid_ndcg20_curve": curve,
        "best_epoch": model.result_.best_epoch if model.result_ else None,
        "valid_best_weights": {k: float(v) for k, v in res.mean().items()},
        "fit_s": wall,
        "epoch_s": wall / max(1, len(curve)),
        "loadavg_start": load0,
        "loadavg_end": os.getloadavg(),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True, type=Path)
    ap.add_argument("--config", action="append", default=[])
    ap.add_argument("--out", type=Path, default=Path("bench/results/scale_mf_probe.json"))
    ap.add_argument("--seed", type=int, default=2020)
    ap.add_argument("--valid-share", type=float, default=0.1)
    ap.add_argument("--valid-users", type=int, default=5000)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    pos = positives(kgat.load(args.data))
    split = make_split(pos, "given", seed=args.seed, valid_share=args.valid_share)
    proto = build_protocol(split)
    train = split.train_matrix()
    valid = _sample(proto.valid, args.valid_users, args.seed)
    out = json.loads(args.out.read_text()) if args.out.is_file() else {"probes": []}
    command = "OMP_WAIT_POLICY=PASSIVE python " + " ".join(shlex.quote(a) for a in sys.argv)
    out["selection"] = (
        f"validation only: a {args.valid_share:.0%} per-user slice of train (seed {args.seed}), "
        f"{args.valid_users} sampled users; the test part is never scored"
    )
    for text in args.config:
        row = probe(_parse(text), train, valid, args.seed)
        row["command"] = command
        row["threads"] = args.threads
        row["date"] = datetime.now(UTC).isoformat()
        out["probes"].append(row)
        best = max(row["valid_ndcg20_curve"]) if row["valid_ndcg20_curve"] else None
        print(
            text,
            json.dumps(
                {
                    "best": best,
                    "at": row["best_epoch"],
                    "epoch_s": row["epoch_s"],
                    "valid": row["valid_best_weights"],
                }
            ),
            flush=True,
        )
        atomic_write_text(args.out, json.dumps(out, indent=1, default=float))


if __name__ == "__main__":
    main()
