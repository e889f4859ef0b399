"""Why the hybrid's ridge cold map is calibrated: one ml-100k cold-item split, one trained hybrid,
the ridge map with and without the out-of-fold calibration (the library's ``cold_calibrate``).

For each: Recall@20 on the cold validation items (what chose it) and on the cold test items, the
share of content-only items (no training interaction) among the 10 nearest items of each
held-out item, and the nearest known items of four held-out films, by title. The cold-map length
is left at 1 (no validation callback), so the numbers show the map alone.

    OMP_WAIT_POLICY=PASSIVE python bench/research/hybrid_ml100k/cold_map_calibration.py

writes ``cold_map_calibration.json`` next to this file.
"""

from __future__ import annotations

import dataclasses
import json
import shlex
import sys
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
EXAMPLES = ("258", "79", "168", "423")  # Contact, The Fugitive, Monty Python..., E.T.


def main(seed: int = 2020) -> None:
    from kgrec.data import TRAIN
    from kgrec.eval import (
        build_protocol,
        cold_items_task,
        evaluate,
        make_split,
        parse_metric,
        positives,
    )
    from kgrec.experiment import ModelContext, validator
    from kgrec.graph import load_spec
    from kgrec.models import HybridConfig, HybridRecommender
    from kgrec.serve._item_text import title_map

    torch.set_num_threads(2)
    spec = load_spec(REPO / "graphs" / "movielens-100k.toml")
    ds = spec.load_dataset()
    pos = positives(ds, min_rating=spec.interactions.min_rating)
    split = make_split(pos, "cold-item", seed=seed)
    proto = build_protocol(split)
    train = split.matrix(TRAIN)
    opts = HybridRecommender.default_options.replace(seed=seed)
    model = HybridRecommender.from_context(
        ModelContext(dataset=ds, positives=pos, spec=spec),
        options=opts,
        config=HybridConfig(cold_map="content", cf_blend="none"),
    )
    model.fit(train, validate=validator(proto.valid, parse_metric("NDCG@20")))
    learned = model.item_vecs_.copy()
    tasks = [cold_items_task(split, "valid"), cold_items_task(split, "test")]
    recall = parse_metric("Recall@20")
    titles = title_map(ds)
    ids = [str(i) for i in pos.items.ids]
    content_only = train.getnnz(axis=0) == 0
    held = np.flatnonzero(split.item_role != 0)
    out: dict = {
        "command": "OMP_WAIT_POLICY=PASSIVE python "
        + " ".join(shlex.quote(a) for a in [str(Path(sys.argv[0])), *sys.argv[1:]]),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "seed": seed,
        "train": model.result_.to_dict(),
        "variants": {},
    }
    for calibrate in (False, True):
        model.config = dataclasses.replace(model.config, cold_calibrate=calibrate)
        model.item_vecs_ = learned.copy()
        model.fit_cold_map(train)  # no callback: length 1
        row = {
            t.name + " Recall@20": round(float(evaluate(model.score, t, [recall]).mean()[recall.label]), 4)
            for t in tasks
        }  # fmt: skip
        v = model.item_vecs_ / np.linalg.norm(model.item_vecs_, axis=1, keepdims=True)
        sims = v[held] @ v.T
        sims[np.arange(len(held)), held] = -np.inf
        top = np.argsort(-sims, axis=1)[:, :10]
        row["content-only share of held-out items' 10 nearest"] = round(
            float(content_only[top].mean()), 3
        )
        nbrs = {}
        for iid in EXAMPLES:
            c = ids.index(iid)
            s = v @ v[c]
            s[content_only] = -np.inf  # known items only, as the notebook shows them
            nbrs[titles[iid]] = [titles[ids[j]] for j in np.argsort(-s)[:5]]
        row["nearest known items"] = nbrs
        out["variants"]["calibrated" if calibrate else "uncalibrated"] = row
        print(json.dumps(row, indent=1), flush=True)
    path = HERE / "cold_map_calibration.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(out, indent=1))
    tmp.replace(path)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
