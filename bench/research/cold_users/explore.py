# ruff: noqa: E402, B023, F841
"""Exploration (seed 2020, ml-100k, cold-VALIDATION users only): priors and blends for new users."""

import sys
import time

import numpy as np
import scipy.sparse as sp
import torch

torch.set_num_threads(1)
from kgrec.data import COLD_VALID, VALID, make_split
from kgrec.eval import RankingTask, evaluate, parse_metric, positives
from kgrec.graph import load_or_build, load_spec
from kgrec.models.hybrid._inputs import links_from_graph

spec = load_spec(sys.argv[1] if len(sys.argv) > 1 else "graphs/movielens-100k.toml")
ds = spec.load_dataset()
pos = positives(ds, min_rating=spec.interactions.min_rating)
kg = load_or_build(spec)
ul = links_from_graph(kg, "user", pos.users, min_degree=1, exclude_types=("item",))
print(ul.relations, len(ul.entities))
F = sp.csr_matrix(sum(ul.matrices))
F.data[:] = 1
ks = (0, 1, 3, 5, 10, 20)
split = make_split(pos, "cold-user", seed=2020, reveal_k=ks)
R = split.train_matrix().tocsr()
R.data[:] = 1
rows = (split.part == VALID) & (split.user_role[split.user] == COLD_VALID)
nper = np.bincount(split.user[rows], minlength=split.n_users)
users = np.flatnonzero((split.user_role == COLD_VALID) & (nper > 20))
tasks = {}
for k in ks:
    h = split.matrix(VALID, rows=rows & (split.reveal < k))
    t = split.matrix(VALID, rows=rows & (split.reveal >= k))
    tasks[k] = RankingTask(f"v@{k}", users, t, h, h)
ndcg = parse_metric("NDCG@20")


def ev(fn, k):
    return evaluate(fn, tasks[k], [ndcg], tie_seed=0).per_user["NDCG@20"].to_numpy()


pop = np.asarray(R.sum(0)).ravel().astype(np.float32)


def z(s):
    return (s - s.mean(1, keepdims=True)) / (s.std(1, keepdims=True) + 1e-9)


# attribute prior: ridge from one-hots to rows
warm = np.asarray(R.sum(1)).ravel() > 0


def ridge_prior(lam):
    X = F[warm].toarray().astype(np.float64)
    Y = R[warm].toarray().astype(np.float64)
    mx, my = X.mean(0), Y.mean(0)
    W = np.linalg.solve((X - mx).T @ (X - mx) + lam * np.eye(X.shape[1]), (X - mx).T @ (Y - my))
    return lambda u: ((F[u].toarray() - mx) @ W + my).astype(np.float32)


def nb_prior(alpha=1.0, sm=20.0):  # smoothed conditional pop per relation, log-linear
    out = []
    base = np.log(pop / warm.sum() + 1e-6)
    mats = []
    for m in ul.matrices:
        Mw = m[warm]
        cnt = (Mw.T @ R[warm]).toarray()
        nv = np.asarray(Mw.sum(0)).ravel()[:, None]
        p = (cnt + sm * pop / warm.sum()) / (nv + sm)
        mats.append((m, np.log(p + 1e-6) - base))

    def f(u):
        s = np.tile(base, (len(u), 1))
        for m, d in mats:
            s = s + alpha * (m[u].toarray() @ d)
        return s.astype(np.float32)

    return f


res = {}
res["pop"] = {k: ev(lambda u, h: torch.from_numpy(np.tile(pop, (len(u), 1))), k).mean() for k in ks}
print("pop", res["pop"])
for lam in (1, 10, 100):
    p = ridge_prior(lam)
    print("ridge", lam, ev(lambda u, h: torch.from_numpy(p(u)), 0).mean())
for sm in (5, 20, 100):
    for a in (0.5, 1.0):
        p = nb_prior(a, sm)
        print("nb", sm, a, ev(lambda u, h: torch.from_numpy(p(u)), 0).mean())
# EASE
G = (R.T @ R).toarray().astype(np.float64)


def ease(lam):
    g = G.copy()
    g[np.diag_indices_from(g)] += lam
    P = np.linalg.inv(g)
    B = P / (-np.diag(P))
    np.fill_diagonal(B, 0)
    return B.astype(np.float32)


B = ease(250.0)
prior = ridge_prior(10)
for k in ks[1:]:
    e = ev(lambda u, h: torch.from_numpy(h.toarray().astype(np.float32) @ B), k).mean()
    line = [f"k={k} ease {e:.4f}"]
    for w in (0.2, 0.35, 0.5, 0.65, 0.8):

        def f(u, h, w=w):
            return torch.from_numpy(
                (1 - w) * z(prior(u)) + w * z(h.toarray().astype(np.float32) @ B)
            )

        line.append(f"w{w}:{ev(f, k).mean():.4f}")
    print(" ".join(line), flush=True)
# ---- marginalised history-dropout linear model with attributes (trained user side)
Rw = R[warm]
Fw = F[warm].astype(np.float64)
n = Rw.shape[0]
cR = np.asarray(Rw.sum(0)).ravel()
cF = np.asarray(Fw.sum(0)).ravel()
RF = (Rw.T @ Fw).toarray()
FF = (Fw.T @ Fw).toarray()


def dlae(q, lam, lam_f=1.0, use_attr=True):
    ni, nf = G.shape[0], (F.shape[1] if use_attr else 0)
    d = ni + nf + 1
    A = np.zeros((d, d))
    T = np.zeros((d, ni))
    A[:ni, :ni] = q * q * G
    A[np.arange(ni), np.arange(ni)] += q * (1 - q) * np.diag(G) + lam
    A[:ni, -1] = A[-1, :ni] = q * cR
    A[-1, -1] = n
    T[:ni] = q * G
    T[-1] = cR
    if use_attr:
        A[:ni, ni : ni + nf] = q * RF
        A[ni : ni + nf, :ni] = q * RF.T
        A[ni : ni + nf, ni : ni + nf] = FF + lam_f * np.eye(nf)
        A[ni : ni + nf, -1] = A[-1, ni : ni + nf] = cF
        T[ni : ni + nf] = RF.T
    Bq = np.linalg.solve(A, T).astype(np.float32)

    def f(u, h):
        x = [h.toarray().astype(np.float32)]
        if use_attr:
            x.append(F[u].toarray().astype(np.float32))
        x.append(np.ones((len(u), 1), np.float32))
        return torch.from_numpy(np.concatenate(x, 1) @ Bq)

    return f


t0 = time.time()
for q in (0.02, 0.05, 0.1, 0.2, 0.4):
    for lam in (10.0, 100.0):
        f = dlae(q, lam)
        print(
            f"dlae q={q} lam={lam}",
            " ".join(f"{k}:{ev(f, k).mean():.4f}" for k in ks),
            f"{time.time() - t0:.0f}s",
            flush=True,
        )
f = dlae(0.1, 100.0, use_attr=False)
print("dlae no-attr q=0.1", " ".join(f"{k}:{ev(f, k).mean():.4f}" for k in ks))
from kgrec.eval import build_protocol
from kgrec.experiment import validator
from kgrec.models import MFBPR

proto = build_protocol(split)
t0 = time.time()
mf = MFBPR(options=MFBPR.default_options.replace(seed=2020)).fit(
    R, validate=validator(proto.valid, ndcg)
)
print("mf fit", time.time() - t0, mf.result_.best_epoch)
print("mf", " ".join(f"{k}:{ev(mf.score, k).mean():.4f}" for k in ks))
