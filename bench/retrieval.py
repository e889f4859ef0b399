"""Retrieval benchmark: latency, QPS and recall@10 of kgrec.index over generated vectors.

For each size (default 100k and 1M, dim 64) it builds, through :class:`kgrec.index.VectorIndex`
(so validation, normalisation and id mapping are included in every timing):

* exact search by faiss ``IndexFlatIP``, by torch matmul + topk, and by kgrec's default CPU
  exact path (``faiss.knn`` for 1-2 queries, torch above),
* HNSW (an ``efSearch`` sweep), IVF-Flat and IVF-PQ (``nprobe`` sweeps),

and measures single-query latency (p50 / p99 over ``--single`` queries), batches of 32 and 1024
queries (p50 / p99 per batch, QPS), and recall@10 against exact search (torch, float32) over
``--queries`` held-out queries. Batch timings are taken at each approximate index's operating
point: the cheapest sweep setting with recall@10 >= 0.95 (the largest when none reaches it).

Data: a Gaussian mixture of ``n / 100`` components in ``dim`` dimensions (centres ~ N(0, I),
points = centre + spread * N(0, I), ``--spread`` 0.5 by default), L2-normalised; queries are
fresh draws from the same mixture (not stored points), normalised; metric cosine (= inner
product on the normalised vectors).

``--gpu`` runs exact (faiss GPU flat, and torch if it has CUDA), IVF-Flat and IVF-PQ on the GPU
and reports brute-force QPS against the memory-bandwidth limit ``batch * BW / (n * dim * 4)``
(each batch must read every stored vector once); BW is measured with a torch device copy when
torch has CUDA, else taken from ``--gpu-bandwidth-gbs``. HNSW has no faiss GPU version.

Example (the command behind bench/results/retrieval.json)::

    OMP_WAIT_POLICY=PASSIVE python bench/retrieval.py --sizes 100000,1000000
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from kgrec._atomic import atomic_write_text
from kgrec.index import IndexConfig, VectorIndex, recall_at_k

RESULTS = Path(__file__).resolve().parent / "results" / "retrieval.json"
K = 10
TARGET_RECALL = 0.95


def generate(
    n: int, dim: int, n_queries: int, seed: int, spread: float = 0.5
) -> tuple[np.ndarray, np.ndarray]:
    """Normalised Gaussian-mixture vectors and fresh queries from the same mixture."""
    rng = np.random.default_rng(seed)
    n_comp = max(1, n // 100)
    centres = rng.standard_normal((n_comp, dim), dtype=np.float32)

    def draw(m: int) -> np.ndarray:
        out = np.empty((m, dim), dtype=np.float32)
        for i in range(0, m, 262_144):  # bounded temporaries
            j = min(m, i + 262_144)
            comp = rng.integers(0, n_comp, j - i)
            out[i:j] = centres[comp] + spread * rng.standard_normal((j - i, dim), dtype=np.float32)
        out /= np.linalg.norm(out, axis=1, keepdims=True)
        return out

    return draw(n), draw(n_queries)


def percentiles(times: list[float]) -> dict[str, float]:
    arr = np.asarray(times) * 1e3
    return {
        "p50_ms": round(float(np.percentile(arr, 50)), 4),
        "p99_ms": round(float(np.percentile(arr, 99)), 4),
        "mean_ms": round(float(arr.mean()), 4),
        "n_timed": len(times),
    }


def time_single(index: VectorIndex, queries: np.ndarray, n: int) -> dict[str, float]:
    index.search(queries[0], K)  # warm-up
    times = []
    for q in queries[:n]:
        t = time.perf_counter()
        index.search(q, K)
        times.append(time.perf_counter() - t)
    out = percentiles(times)
    out["qps"] = round(1e3 / out["mean_ms"], 1)
    return out


def time_batch(index: VectorIndex, queries: np.ndarray, b: int, reps: int) -> dict[str, float]:
    times = []
    for r in range(reps):
        start = (r * b) % max(1, len(queries) - b + 1)
        batch = queries[start : start + b]
        t = time.perf_counter()
        index.search(batch, K)
        times.append(time.perf_counter() - t)
    out = percentiles(times)
    out["qps"] = round(b * 1e3 / out["mean_ms"], 1)
    return out


def batch_reps(b: int, n: int, exact: bool) -> int:
    """Timed repetitions per batch size: fewer where one batch is slow."""
    if b == 1:
        return 0
    if b <= 32:
        return 20 if not exact or n <= 200_000 else 5
    return 5 if not exact or n <= 200_000 else 2


def gpu_bandwidth(args: argparse.Namespace) -> tuple[float | None, str]:
    """Device memory bandwidth in GB/s: measured by torch when it has CUDA, else the flag."""
    try:
        import torch

        if torch.cuda.is_available():
            buf = torch.empty(1 << 28, dtype=torch.float32, device="cuda")  # 1 GiB
            dst = torch.empty_like(buf)
            dst.copy_(buf)
            torch.cuda.synchronize()
            t = time.perf_counter()
            for _ in range(10):
                dst.copy_(buf)
            torch.cuda.synchronize()
            secs = (time.perf_counter() - t) / 10
            return round(2 * buf.numel() * 4 / secs / 1e9, 1), "measured: torch device copy"
    except Exception as exc:  # pragma: no cover - GPU only
        print(f"bandwidth measurement failed: {exc}", file=sys.stderr)
    if args.gpu_bandwidth_gbs:
        return args.gpu_bandwidth_gbs, "given by --gpu-bandwidth-gbs"
    return None, "unknown (torch has no CUDA and --gpu-bandwidth-gbs not given)"


def methods(n: int, args: argparse.Namespace) -> list[dict[str, Any]]:
    """What to build at size n: name, config, sweep parameter and values."""
    device = "cuda" if args.gpu else "cpu"
    small = n <= 200_000
    m, efc = (32, 80) if small else (args.hnsw_m_large, args.ef_construction_large)
    nlist = args.nlist
    out: list[dict[str, Any]] = [
        {
            "name": "exact-faiss",
            "config": IndexConfig(factory="Flat", exact_backend="faiss", device=device),
        },
    ]
    torch_cuda = False
    if args.gpu:
        import torch

        torch_cuda = torch.cuda.is_available()
    if not args.gpu or torch_cuda:
        out.append(
            {
                "name": "exact-torch",
                "config": IndexConfig(factory="Flat", exact_backend="torch", device=device),
            }
        )
    if not args.gpu:
        out.append(
            {
                "name": "exact-auto (faiss.knn for <= 2 queries, torch above)",
                "config": IndexConfig(factory="Flat", exact_backend="auto", device="cpu"),
            }
        )
        out.append(
            {
                "name": f"hnsw (M={m}, efConstruction={efc})",
                "config": IndexConfig(factory=f"HNSW{m}", ef_construction=efc, device="cpu"),
                "sweep": ("ef_search", [16, 32, 64, 128, 256]),
            }
        )
    out += [
        {
            "name": f"ivf-flat (nlist={nlist})",
            "config": IndexConfig(factory=f"IVF{nlist},Flat", device=device),
            "sweep": ("nprobe", [4, 8, 16, 32, 64, 128]),
        },
        {
            "name": f"ivf-pq (nlist={nlist}, m={args.dim}, 8 bits)",
            "config": IndexConfig(factory=f"IVF{nlist},PQ{args.dim}x8", device=device),
            "sweep": ("nprobe", [4, 8, 16, 32, 64, 128]),
        },
    ]
    if args.pq_half:
        out.append(
            {
                "name": f"ivf-pq (nlist={nlist}, m={args.dim // 2}, 8 bits)",
                "config": IndexConfig(factory=f"IVF{nlist},PQ{args.dim // 2}x8", device=device),
                "sweep": ("nprobe", [16, 64]),
            }
        )
    return out


def run_size(n: int, args: argparse.Namespace, bw: float | None) -> dict[str, Any]:
    import faiss
    import torch

    t = time.perf_counter()
    x, queries = generate(n, args.dim, args.queries, args.seed, args.spread)
    gen_s = time.perf_counter() - t
    ids = np.arange(n).astype(str)
    print(f"[{n}] generated in {gen_s:.1f}s", file=sys.stderr, flush=True)

    # exact ground truth (torch float32, all queries)
    torch.set_num_threads(args.build_threads)
    exact = VectorIndex(IndexConfig(factory="Flat", exact_backend="torch", device="cpu"))
    exact.build(x, ids, fingerprint="bench")
    truth = exact.search(queries, K).ids
    del exact

    rows: list[dict[str, Any]] = []
    interleaved = exact_interleaved(x, ids, queries, n, args) if not args.gpu else None
    for spec in methods(n, args):
        name, cfg = spec["name"], spec["config"]
        faiss.omp_set_num_threads(args.build_threads)
        torch.set_num_threads(args.build_threads)
        t = time.perf_counter()
        index = VectorIndex(cfg).build(x, ids, fingerprint="bench")
        build_s = time.perf_counter() - t
        faiss.omp_set_num_threads(args.threads)
        torch.set_num_threads(args.threads)
        info = index.info()
        print(
            f"[{n}] {name}: built in {build_s:.1f}s on {info.device}", file=sys.stderr, flush=True
        )
        exact_method = "sweep" not in spec
        row: dict[str, Any] = {
            "method": name,
            "factory": info.factory,
            "backend": info.backend,
            "device": info.device,
            "n": n,
            "dim": args.dim,
            "build_s": round(build_s, 2),
        }
        settings = [(None, None)]
        if not exact_method:
            param, values = spec["sweep"]
            if param == "nprobe":
                values = [v for v in values if v <= int(info.factory.split(",")[0][3:])]
            settings = [(param, v) for v in values]
        sweep = []
        for param, value in settings:
            if param:
                index.set_search_params(**{param: value})
            got = index.search(queries, K).ids
            point = {
                "recall_at_10": round(recall_at_k(got, truth), 4),
                "single": time_single(
                    index,
                    queries,
                    args.single if not exact_method or n <= 200_000 else args.single_exact_large,
                ),
            }
            if param:
                point[param] = value
            sweep.append(point)
            print(f"[{n}] {name} {param}={value}: {point}", file=sys.stderr, flush=True)
        ok = [p for p in sweep if p["recall_at_10"] >= TARGET_RECALL]
        op = ok[0] if ok else sweep[-1]
        if len(sweep) > 1:
            row["sweep"] = sweep
            index.set_search_params(**{settings[0][0]: op[settings[0][0]]})
            row["operating_point"] = {settings[0][0]: op[settings[0][0]]}
        row["recall_at_10"] = op["recall_at_10"]
        row["batch_1"] = op["single"]
        for b in (32, 1024):
            row[f"batch_{b}"] = time_batch(index, queries, b, batch_reps(b, n, exact_method))
        if args.gpu and bw and exact_method:
            for b in (1, 32, 1024):
                limit = b * bw * 1e9 / (n * args.dim * 4)
                row[f"batch_{b}"]["bandwidth_limit_qps"] = round(limit, 1)
                row[f"batch_{b}"]["share_of_limit"] = round(row[f"batch_{b}"]["qps"] / limit, 3)
        print(f"[{n}] {name}: {json.dumps(row)}", file=sys.stderr, flush=True)
        rows.append(row)
        del index
    out = {"n": n, "generate_s": round(gen_s, 1), "results": rows}
    if interleaved:
        out["exact_interleaved"] = interleaved
    return out


def exact_interleaved(
    x: np.ndarray, ids: np.ndarray, queries: np.ndarray, n: int, args: argparse.Namespace
) -> dict[str, Any]:
    """Exact backends timed in alternation (same moment, same load) per batch size: the
    fair torch-vs-faiss comparison on a machine whose load changes from minute to minute."""
    import faiss
    import torch

    backends = ("faiss", "torch", "auto")
    indexes = {
        b: VectorIndex(IndexConfig(factory="Flat", exact_backend=b, device="cpu")).build(
            x, ids, fingerprint="bench"
        )
        for b in backends
    }
    faiss.omp_set_num_threads(args.threads)
    torch.set_num_threads(args.threads)
    reps = {1: 60, 2: 40, 4: 30, 8: 20, 32: 10} if n <= 200_000 else {1: 10, 32: 3}
    out: dict[str, Any] = {"reps": reps}
    for b, r in reps.items():
        times: dict[str, list[float]] = {name: [] for name in backends}
        for i in range(r):
            batch = queries[(i * b) % (len(queries) - b + 1) :][:b]
            for name in backends:
                t = time.perf_counter()
                indexes[name].search(batch, K)
                times[name].append(time.perf_counter() - t)
        out[f"batch_{b}_p50_ms"] = {
            name: round(float(np.median(ts)) * 1e3, 3) for name, ts in times.items()
        }
        print(f"[{n}] exact interleaved batch {b}: {out[f'batch_{b}_p50_ms']}", file=sys.stderr)
    return out


def machine() -> dict[str, Any]:
    from kgrec.experiment import cpu_name

    return {
        "cores": os.cpu_count(),
        "cpu": cpu_name(),
        "platform": platform.platform(),
        "load_average_start": os.getloadavg(),
    }


def versions() -> dict[str, str]:
    import faiss
    import torch

    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": torch.__version__,
        "faiss": faiss.__version__,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="100000,1000000", help="comma-separated item counts")
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--queries", type=int, default=1024, help="held-out queries (recall, batches)")
    p.add_argument("--single", type=int, default=300, help="timed single queries per setting")
    p.add_argument(
        "--single-exact-large",
        type=int,
        default=50,
        help="timed single queries for exact search above 200k items",
    )
    p.add_argument("--threads", type=int, default=1, help="faiss/torch threads while searching")
    p.add_argument(
        "--build-threads",
        type=int,
        default=1,
        help="faiss/torch threads for builds (1: OpenMP k-means thrashes on a loaded 2-core box)",
    )
    p.add_argument("--hnsw-m-large", type=int, default=16, help="HNSW M above 200k items")
    p.add_argument("--ef-construction-large", type=int, default=40, help="HNSW efC above 200k")
    p.add_argument("--nlist", type=int, default=1024, help="IVF lists (both sizes)")
    p.add_argument("--pq-half", action="store_true", help="also IVF-PQ with m = dim / 2")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--spread",
        type=float,
        default=0.5,
        help="std of points around their component centre (centres ~ N(0, I)); larger = harder",
    )
    p.add_argument("--gpu", action="store_true", help="run exact/IVF on the GPU (faiss GPU build)")
    p.add_argument("--gpu-bandwidth-gbs", type=float, default=None)
    p.add_argument("--out", type=Path, default=RESULTS)
    p.add_argument("--note", default="", help="free text recorded in the results' note")
    args = p.parse_args(argv)

    import faiss
    import torch

    bw, bw_source = None, None
    if args.gpu:
        if not (hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0):
            p.error("--gpu needs the faiss GPU build and a visible GPU")
        bw, bw_source = gpu_bandwidth(args)
    faiss.omp_set_num_threads(args.threads)
    torch.set_num_threads(args.threads)
    started = time.time()
    report: dict[str, Any] = {
        "benchmark": "retrieval",
        "command": " ".join(
            ["OMP_WAIT_POLICY=" + os.environ.get("OMP_WAIT_POLICY", ""), "python"]
            + [shlex.quote(a) for a in sys.argv]
        ),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "versions": versions(),
        "threads": {"search": args.threads, "build": args.build_threads},
        "mode": "gpu" if args.gpu else "cpu",
        "data": (
            f"Gaussian mixture, n/100 components, dim {args.dim}, centres ~ N(0, I), points = "
            f"centre + {args.spread} N(0, I), L2-normalised; queries = fresh draws from the mixture; "
            f"metric cosine; recall@{K} vs exact torch float32 search over {args.queries} queries"
        ),
        "k": K,
        "target": f"p50 <= 1 ms for a single query at recall@10 >= {TARGET_RECALL} over 100k",
        "note": (
            "timings taken on a shared 2-core machine under load from other jobs; "
            "see load_average_start/end"
        )
        + (f"; {args.note}" if args.note else ""),
    }
    if args.gpu:
        report["gpu"] = {"bandwidth_gbs": bw, "bandwidth_source": bw_source}
    report["sizes"] = [run_size(int(s), args, bw) for s in args.sizes.split(",")]
    report["machine"]["load_average_end"] = os.getloadavg()
    report["wall_s"] = round(time.time() - started, 1)
    first = report["sizes"][0]
    met = [
        r["method"]
        for r in first["results"]
        if r["recall_at_10"] >= TARGET_RECALL and r["batch_1"]["p50_ms"] <= 1.0
    ]
    report["target_met"] = {"n": first["n"], "methods": met, "met": bool(met)}
    atomic_write_text(args.out, json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
