"""Benchmark: build a KnowledgeGraph from a generated catalog (1M items x 5 attribute columns,
10M interactions) and record wall time and peak memory (ru_maxrss) to bench/results.

The dataset is generated IN MEMORY (kgrec.data.Interactions / AttributeTable objects, string ids
as the loaders produce them); file parsing is not part of the measured build. Timed phases:
``build`` (build_graph: vocabularies, interactions, 5 column relations incl. a multi-valued
delimited column and two bucketed numeric columns, reverse relations, validation) and ``save``
(npz + JSON, atomic). Peak memory is the process high-water mark (ru_maxrss), so it includes the
generated dataset itself.

    OMP_WAIT_POLICY=PASSIVE python bench/graph_build.py            # full size
    python bench/graph_build.py --items 10000 --interactions 100000 --out /tmp/x.json  # smoke
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shlex
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from kgrec.data import AttributeTable, Dataset, Interactions
from kgrec.graph import GraphSpec, build_graph

RESULTS = Path(__file__).resolve().parent / "results" / "graph_build.json"


def peak_rss_gb() -> float:
    """Process peak resident set size (ru_maxrss is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def ids(prefix: str, values: np.ndarray) -> np.ndarray:
    return (prefix + pd.Series(values).astype(str)).to_numpy(dtype=object)


def generate(n_items: int, n_users: int, n_inter: int, seed: int) -> Dataset:
    rng = np.random.default_rng(seed)
    item_ids = ids("i", np.arange(n_items))
    # 5 attribute columns: a single-valued category, a multi-valued '|'-delimited genre list,
    # a year (bucketed to decades), a brand with many values, a price (bucketed by edges)
    genres = np.array([f"g{k}" for k in range(300)], dtype=object)
    ng = rng.integers(1, 5, size=n_items)
    gflat = genres[rng.integers(0, len(genres), size=int(ng.sum()))]
    split = np.cumsum(ng)[:-1]
    genre_col = ["|".join(x) for x in np.split(gflat, split)]
    frame = pd.DataFrame(
        {
            "id": item_ids,
            "category": ids("c", rng.integers(0, 1_000, size=n_items)),
            "genres": pd.Series(genre_col, dtype=object),
            "year": ids("", rng.integers(1920, 2025, size=n_items)),
            "brand": ids("b", rng.zipf(1.3, size=n_items) % 50_000),
            "price": np.round(rng.lognormal(3.0, 1.0, size=n_items), 2),
        }
    )
    items = AttributeTable(
        frame,
        node_type="item",
        attributes={
            "category": "token",
            "genres": "token",
            "year": "token",
            "brand": "token",
            "price": "float",
        },
    )
    # interactions: power-law item popularity, unique (user, item) pairs not enforced by the
    # builder, so duplicates are allowed here as in a raw log
    users = rng.integers(0, n_users, size=n_inter)
    pop = rng.zipf(1.2, size=n_inter) % n_items
    inter = pd.DataFrame(
        {
            "user": ids("u", users),
            "item": item_ids[pop],
            "rating": rng.integers(1, 6, size=n_inter).astype(np.float64),
            "timestamp": rng.integers(1_500_000_000, 1_700_000_000, size=n_inter).astype(
                np.float64
            ),
        }
    )
    return Dataset(name="generated", interactions=Interactions(inter), items=items)


SPEC = {
    "name": "bench-generated",
    "source": {"interactions": {"file": "generated-in-memory.csv"}},
    "interactions": {"min_rating": 4, "attributes": ["rating", "timestamp"]},
    "relations": [
        {"column": "category", "relation": "in_category", "node_type": "category"},
        {"column": "genres", "relation": "has_genre", "node_type": "genre", "delimiter": "|"},
        {
            "column": "year",
            "relation": "released_in_decade",
            "node_type": "decade",
            "bucket": {"width": 10, "label": "{lo}s"},
        },
        {"column": "brand", "relation": "made_by", "node_type": "brand"},
        {
            "column": "price",
            "relation": "in_price_band",
            "node_type": "price_band",
            "bucket": {"edges": [5, 10, 20, 50, 100, 200]},
        },
    ],
    "graph": {"reverse_relations": True},
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=1_000_000)
    ap.add_argument("--users", type=int, default=200_000)
    ap.add_argument("--interactions", type=int, default=10_000_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    ds = generate(args.items, args.users, args.interactions, args.seed)
    t_gen = time.perf_counter() - t0
    rss_gen = peak_rss_gb()
    print(f"generated in {t_gen:.1f}s, peak RSS {rss_gen:.2f} GB", flush=True)
    spec = GraphSpec.from_dict(SPEC)
    t1 = time.perf_counter()
    g = build_graph(
        spec, ds, progress=lambda m: print(f"  [{time.perf_counter() - t1:6.1f}s] {m}", flush=True)
    )
    t_build = time.perf_counter() - t1
    rss_build = peak_rss_gb()
    print(f"built in {t_build:.1f}s, peak RSS {rss_build:.2f} GB", flush=True)
    with tempfile.TemporaryDirectory(prefix="kgrec-bench-") as tmp:
        t2 = time.perf_counter()
        g.save(Path(tmp) / "graph")
        t_save = time.perf_counter() - t2
        size = sum(f.stat().st_size for f in (Path(tmp) / "graph").iterdir())
    rss_end = peak_rss_gb()
    st = g.stats()
    import kgrec
    from kgrec.experiment import cpu_name

    cpu = cpu_name()

    result = {
        "benchmark": "graph_build",
        "command": " ".join(
            ["OMP_WAIT_POLICY=" + os.environ.get("OMP_WAIT_POLICY", ""), "python"]
            + [shlex.quote(a) for a in sys.argv]
        ),
        "date_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cores": os.cpu_count(),
            "cpu": cpu,
            "python": platform.python_version(),
            "note": "shared machine: other jobs were running during the measurement",
            "load_average_at_end": os.getloadavg(),
        },
        "versions": {
            "kgrec": getattr(kgrec, "__version__", "0.1.0"),
            "numpy": np.__version__,
            "pandas": pd.__version__,
        },
        "data": {
            "how": "generated in memory (Dataset/Interactions/AttributeTable), not read from files",
            "items": args.items,
            "attribute_columns": 5,
            "users": args.users,
            "interactions": args.interactions,
            "seed": args.seed,
        },
        "graph": {
            "nodes": st.num_nodes,
            "edges": st.num_edges,
            "node_types": st.nodes,
            "relations": st.relations,
            "saved_bytes": size,
        },
        "seconds": {
            "generate": round(t_gen, 2),
            "build": round(t_build, 2),
            "save": round(t_save, 2),
            "build_plus_save": round(t_build + t_save, 2),
        },
        "peak_rss_gb": {
            "after_generate": round(rss_gen, 3),
            "after_build": round(rss_build, 3),
            "after_save": round(rss_end, 3),
            "how": "resource.getrusage(RUSAGE_SELF).ru_maxrss (process high-water mark, "
            "includes the generated dataset)",
        },
        "targets": {"seconds": 300, "peak_rss_gb": 8},
        "met": {"time": t_build + t_save <= 300, "memory": rss_end <= 8},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result["seconds"]), json.dumps(result["peak_rss_gb"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
