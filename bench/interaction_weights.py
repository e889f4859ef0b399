"""Interaction weights (play counts; ``duplicates = "count"``) read by pop / itemknn / ease:
validation and test NDCG@20 and Recall@20 per weights mode, on the warm protocol.

The mode a user would pick is the one best on VALIDATION NDCG@20 (``chosen_on_valid``); test
figures are reported beside it, never used to choose. Writes
``bench/results/interaction_weights.json``.

    OMP_WAIT_POLICY=PASSIVE nice -n 5 python bench/interaction_weights.py \\
        --spec graphs/lastfm-hetrec.toml --data-path ../shared/data/lastfm-hetrec-kg \\
        --models pop,itemknn --seeds 1
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

HERE = Path(__file__).resolve().parent
MODES = ("none", "log", "count")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--spec", required=True)
    ap.add_argument("--data-path", default=None)
    ap.add_argument("--models", default="pop,itemknn")
    ap.add_argument("--seeds", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=str(HERE / "results" / "interaction_weights.json"))
    args = ap.parse_args()

    import torch

    from kgrec.data import make_split
    from kgrec.eval import build_protocol, default_metrics, evaluate, positives
    from kgrec.experiment import seeds_from
    from kgrec.graph import load_spec
    from kgrec.models import MODELS

    torch.set_num_threads(args.threads)
    spec = load_spec(args.spec, data_path=args.data_path)
    ds = spec.load_dataset()
    pos = positives(ds, min_rating=spec.interactions.min_rating)
    if pos.weight is None:
        raise SystemExit(f"{args.spec}: the data carry no interaction weights")
    metrics = default_metrics((20,))
    rows: list[dict] = []
    for seed in seeds_from(args.seeds):
        split = make_split(pos, "random", seed=int(seed))
        proto = build_protocol(split)
        for name in args.models.split(","):
            for mode in MODES:
                model = MODELS[name](weights=mode)
                t0 = time.perf_counter()
                model.fit(split.train_matrix(mode))
                fit_s = time.perf_counter() - t0
                row = {"seed": int(seed), "model": name, "weights": mode, "fit_s": round(fit_s, 2)}
                for task in (proto.valid, *proto.tests):
                    m = evaluate(model.score, task, metrics).mean()
                    row[task.name] = {k: round(float(m[k]), 4) for k in ("NDCG@20", "Recall@20")}
                rows.append(row)
                print(json.dumps(row), flush=True)
    chosen = {}
    for name in args.models.split(","):
        mine = [r for r in rows if r["model"] == name]
        by_mode = {
            mode: sum(r["valid"]["NDCG@20"] for r in mine if r["weights"] == mode) for mode in MODES
        }
        chosen[name] = max(MODES, key=lambda m: by_mode[m])
    out = {
        "name": "interaction_weights",
        "command": "python " + " ".join(shlex.quote(a) for a in sys.argv),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "spec": args.spec,
        "weights_in_data": f"{int((pos.weight != 1).sum()):,} of {len(pos):,} positives "
        f"have a weight other than 1 (max {float(pos.weight.max()):g})",
        "protocol": "warm: random per-user 8:1:1 split, full ranking, train (+ valid) masked",
        "selection": "weights mode chosen per model on validation NDCG@20 (sum over seeds)",
        "chosen_on_valid": chosen,
        "loadavg": os.getloadavg(),
        "rows": rows,
    }
    Path(args.out).write_text(json.dumps(out, indent=1))
    print(args.out)


if __name__ == "__main__":
    main()
