"""Why new users' words help less through the text tower than through the frozen path (issue 14,
Deliver 3): the two paths' differences, each switched on and off, on VALIDATION users only.

Setting: ``bench/user_text.py``'s (amazon-instruments, cold-user split per seed, tasks
``cold-user-valid@k`` for k in {1, 2, 4}; a user's words are the reviews of their k known items,
mean of the review vectors, L2-normalised). For each seed one hybrid with the top-layers tower and
one frozen hybrid (``text_finetune="none"``) are fitted with their new-user paths; then the users'
text vectors are mapped into the item space by each variant below and the text weight is chosen
on those validation users exactly as the bench does (:func:`fit_text_blend`, one weight over all
k). Reported: the validation NDCG@20 at the chosen weight (``hybrid+text``) and the curve. No
test user is looked at.

How a user's words become a vector (before this study):

* frozen: ``TransformerEncoder`` (256 tokens per review) -> ``unit(ridge(x))`` blended with the
  kNN regression over the 50 most similar warm items' text (``cold_knn = 0.25``);
* tower: the tower's encoder (``FinetuneConfig.max_length = 64`` tokens per review) -> the head
  ``normalize(W t + b)`` (which starts at the same calibrated ridge map), no kNN blend.

Variants (``tower/...`` on the tower model, ``frozen/...`` on the frozen one):

* ``tower``: today's tower path; ``tower+knnB``: its head blended with a kNN regression over the
  warm items' TOWER text vectors (``unit((1 - B) head + B knn)``); ``tower@256``, ``tower@256+knnB``:
  the users' reviews encoded by the tower at 256 tokens instead of 64;
* ``frozen``: today's frozen path (kNN 0.25); ``frozen-knn0``: without the kNN blend;
  ``frozen@64``: the frozen encoder at the tower's 64 tokens.

Usage::

    OMP_WAIT_POLICY=PASSIVE python bench/research/user_text/tower_vs_frozen.py --seeds 1 \\
        --threads 1 --out bench/research/user_text/tower_vs_frozen.json
"""

from __future__ import annotations

import argparse
import dataclasses
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
REPO = HERE.parents[2]
sys.path.insert(0, str(REPO / "bench"))

import user_text as ut  # noqa: E402  (bench/user_text.py: the same split, texts and tasks)

KNN = (0.25, 0.5)


def _user_vectors(texts: dict[int, list[str]], encode: Any) -> tuple[np.ndarray, dict]:
    from kgrec._numeric import normalize_rows

    users = sorted(texts)
    strings = sorted({s for u in users for s in texts[u]})
    vec = np.asarray(encode(strings), np.float32)
    at = {s: i for i, s in enumerate(strings)}
    tv = np.stack([vec[[at[s] for s in texts[u]]].mean(0) for u in users])
    return normalize_rows(tv), {u: j for j, u in enumerate(users)}


def _cosines(model: Any, v: np.ndarray) -> torch.Tensor:
    from kgrec._numeric import normalize_rows

    v = normalize_rows(np.asarray(v, np.float32))
    items = normalize_rows(np.asarray(model.item_vectors().numpy(), np.float32))
    return torch.from_numpy(v @ items.T)


def _fit(ctx: Any, train: Any, validate: Any, valids: list, seed: int, mode: str) -> Any:
    from kgrec.models import HybridConfig, HybridRecommender
    from kgrec.models.hybrid._new_user_model import NewUserConfig, ValidTask

    opts = HybridRecommender.default_options.replace(seed=seed)
    model = HybridRecommender.from_context(
        ctx, options=opts, config=HybridConfig(text_finetune=mode)
    )
    model.fit(train, validate=validate)
    model.fit_new_users(
        [
            ValidTask(int(t.name.split("@")[1]), t.users, t.history[t.users], t.targets[t.users])
            for t in valids
        ],
        NewUserConfig(),
    )
    return model


def run(args: argparse.Namespace) -> dict[str, Any]:
    from kgrec.data import make_split
    from kgrec.eval import evaluate, parse_metric
    from kgrec.eval._protocol import build_protocol, cold_users_tasks
    from kgrec.experiment import ModelContext, validator
    from kgrec.graph import load_spec
    from kgrec.models.hybrid import _cold_map as cm
    from kgrec.models.hybrid._user_text import fit_text_blend
    from kgrec.text import CachedEncoder, TransformerEncoder

    torch.set_num_threads(args.threads)
    spec = load_spec(REPO / "graphs" / "amazon-instruments.toml", data_path=Path(args.data))
    base = ModelContext.from_spec(spec)
    f = base.dataset.interactions.frame
    reviews = {
        (str(u), str(i)): str(r)
        for u, i, r in zip(f["user"], f["item"], f["review"], strict=True)
        if isinstance(r, str) and r.strip()
    }
    ndcg = parse_metric("NDCG@20")

    def mean_ndcg(fn: Any, task: Any) -> float:
        return float(evaluate(fn, task, [ndcg]).per_user[ndcg.label].mean())

    frozen256 = CachedEncoder(TransformerEncoder())
    frozen64 = CachedEncoder(TransformerEncoder(max_length=64))
    out: dict[str, Any] = {}
    for s in range(args.seeds):
        seed = 2020 + s
        split = make_split(base.positives, "cold-user", seed=seed, reveal_k=ut.KS)
        proto = build_protocol(split)
        ctx = base.for_split(split)
        train = split.train_matrix()
        validate = validator(proto.valid, ndcg)
        valids = list(cold_users_tasks(split, "valid"))
        texts = [(t, ut._user_texts(split, t, reviews)) for t in valids[1:]]  # k >= 1
        tower_m = _fit(ctx, train, validate, valids, seed, args.text_finetune)
        frozen_m = _fit(ctx, train, validate, valids, seed, "none")
        tower = tower_m.text_tower_
        warm = np.flatnonzero(np.diff(train.tocsc().indptr) > 0)
        known = sp.csr_matrix(cm.unit_rows(tower_m.tower_text_[warm]), dtype=np.float32)
        known_vecs = tower_m.item_vecs_[warm]

        def tower_at(n_tok: int, tower: Any = tower) -> Any:
            def encode(strings: list[str]) -> np.ndarray:
                was = tower.config
                tower.config = dataclasses.replace(was, max_length=n_tok)
                try:
                    return tower.encode(strings)
                finally:
                    tower.config = was

            return encode

        variants: dict[
            str, tuple[Any, Any, Any]
        ] = {}  # name -> (model, user vectors -> item space)
        for tok, enc in ((64, tower_at(64)), (256, tower_at(256))):
            name = "tower" if tok == 64 else "tower@256"
            variants[name] = (tower_m, enc, lambda v, m=tower_m: m.embed_items(text=v))
            for b in KNN:

                def knn_map(
                    v: np.ndarray,
                    b: float = b,
                    m: Any = tower_m,
                    known: Any = known,
                    known_vecs: np.ndarray = known_vecs,
                ) -> np.ndarray:
                    head = m.embed_items(text=v)
                    nn = cm.knn_vectors(v, known, known_vecs, k=m.config.cold_knn_k)
                    return cm.blend_unit(cm.unit_rows(head), nn, b)

                variants[f"{name}+knn{b}"] = (tower_m, enc, knn_map)

        def frozen_knn0(v: np.ndarray, m: Any = frozen_m) -> np.ndarray:
            was = m.config
            m.config = dataclasses.replace(was, cold_knn=0.0)
            try:
                return m.embed_items(text=v)
            finally:
                m.config = was

        variants["frozen"] = (
            frozen_m,
            frozen256.encode,
            lambda v, m=frozen_m: m.embed_items(text=v),
        )
        variants["frozen-knn0"] = (frozen_m, frozen256.encode, frozen_knn0)
        variants["frozen@64"] = (
            frozen_m,
            frozen64.encode,
            lambda v, m=frozen_m: m.embed_items(text=v),
        )
        rows: dict[str, Any] = {}
        for name, (model, enc, to_items) in variants.items():
            parts = []
            for t, tx in texts:
                v, row_of = _user_vectors(tx, enc)
                parts.append((t, _cosines(model, to_items(v)), row_of))
            blend = fit_text_blend(model.score, parts, mean_ndcg)
            rows[name] = {
                "weight": blend.weight,
                "valid_ndcg20": round(blend.curve[blend.weight], 5),
                "valid_ndcg20_no_text": round(blend.curve[0.0], 5),
                "curve": blend.curve,
            }
            print(
                f"seed {seed} {name}: {rows[name]['valid_ndcg20']} (w {blend.weight})", flush=True
            )
        out[str(seed)] = {
            "tower": {k: v for k, v in (tower_m.tower_result_ or {}).items() if k != "history"},
            "variants": rows,
        }
    names = list(out[str(2020)]["variants"])
    out["mean_valid_ndcg20"] = {
        n: round(float(np.mean([out[str(2020 + s)]["variants"][n]["valid_ndcg20"]
                                for s in range(args.seeds)])), 5)
        for n in names
    }  # fmt: skip
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=str(ut.DATA))
    ap.add_argument("--seeds", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--text-finetune", default="top-layers", choices=("lora", "top-layers", "full"))
    ap.add_argument("--out", default=str(HERE / "tower_vs_frozen.json"))
    args = ap.parse_args()
    t0 = time.perf_counter()
    res = run(args)
    res = {
        "name": "user_text tower vs frozen (validation users only)",
        "issue": 14,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "OMP_WAIT_POLICY=PASSIVE python bench/research/user_text/tower_vs_frozen.py "
        + " ".join(shlex.quote(a) for a in sys.argv[1:]),
        "protocol": __doc__,
        "metric": "mean NDCG@20 over cold-user-valid@k (k = 1, 2, 4) users at the text weight "
        "chosen on those users (fit_text_blend, the bench's rule); VALIDATION users only",
        "wall_s": round(time.perf_counter() - t0, 1),
        **res,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=1, default=str))
    print(json.dumps(res["mean_valid_ndcg20"], indent=1))


if __name__ == "__main__":
    main()
