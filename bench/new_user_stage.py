"""Wall time of the hybrid's new-user stage (``NewUserModel.fit`` with the user encoder on) at
amazon-book size: the KGAT train split (70,679 users, 24,915 items), item vectors drawn at random
(dim 64; the stage's cost does not depend on their values, its early stopping does), no profile
attributes. Rows: the default ``max_steps_per_epoch`` (128) for a whole fit, and one uncapped epoch
(every training user) for the per-epoch cost the cap removes.

Usage::

    OMP_WAIT_POLICY=PASSIVE nice -n 5 .venv/bin/python bench/new_user_stage.py \\
        --data ../shared/data/amazon-book-kgat --threads 2
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shlex
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch

HERE = Path(__file__).resolve().parent
OUT = HERE / "results" / "new_user_stage.json"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True, help="amazon-book-kgat folder (train.txt, test.txt)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from kgrec._atomic import atomic_write_text
    from kgrec.data.sources.kgat import interactions_from_parts, kgat_files
    from kgrec.models._base import fold_in
    from kgrec.models.hybrid._new_user_model import NewUserConfig, NewUserModel
    from kgrec.models.hybrid._user_encoder import UserEncoder, UserEncoderConfig

    f = interactions_from_parts(kgat_files(Path(args.data))).frame
    tr = f[f["split"] == "train"]
    u = tr["user"].astype("category").cat.codes.to_numpy()
    i = tr["item"].astype("category").cat.codes.to_numpy()
    train = sp.csr_matrix((np.ones(len(u), np.float32), (u, i)))
    items = np.random.default_rng(0).standard_normal((train.shape[1], 64)).astype(np.float32)
    vt = torch.from_numpy(items)

    def behaviour(h: sp.csr_matrix) -> torch.Tensor:
        return fold_in(vt, h) @ vt.T

    rows = {}
    load0 = os.getloadavg()
    t = time.perf_counter()
    m = NewUserModel(NewUserConfig(attributes=False, social=False, encoder="on"), seed=0)
    m.fit(train, None, None, behaviour=behaviour, item_vectors=items)
    rows["default (max_steps_per_epoch=128), whole stage"] = {
        "wall_s": round(time.perf_counter() - t, 1),
        "encoder_epochs": len(m.encoder_.curve_) if m.encoder_ is not None else None,
        "loadavg_start": [round(x, 2) for x in load0],
        "loadavg_end": [round(x, 2) for x in os.getloadavg()],
    }
    nu = NewUserModel(NewUserConfig(attributes=False, social=False, encoder="off"), seed=0)
    fit_train, tasks = nu.carve_validation(train)
    load0 = os.getloadavg()
    t = time.perf_counter()
    UserEncoder(UserEncoderConfig(epochs=1, max_steps_per_epoch=0), seed=0).fit(
        fit_train, None, items, [x for x in tasks if x.k >= 1]
    )
    rows["uncapped, one epoch of the encoder"] = {
        "wall_s": round(time.perf_counter() - t, 1),
        "loadavg_start": [round(x, 2) for x in load0],
        "loadavg_end": [round(x, 2) for x in os.getloadavg()],
    }
    out = {
        "name": "new_user_stage",
        "command": "python " + " ".join(shlex.quote(a) for a in sys.argv),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "data": {"users": train.shape[0], "items": train.shape[1], "train": int(train.nnz)},
        "torch_threads": args.threads,
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "rows": rows,
        "note": "item vectors random: wall times only, no quality figure",
    }
    atomic_write_text(args.out, json.dumps(out, indent=1))
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
