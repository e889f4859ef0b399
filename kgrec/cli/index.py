"""``kgrec index``: build and inspect retrieval indexes over any embedding matrix."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click

from kgrec.cli._options import DIR, DIR_PATH, FILE
from kgrec.errors import DataError, KgrecError
from kgrec.index import FACTORY_FORMS, IndexConfig, VectorIndex


@click.group()
def index() -> None:
    """Build and inspect nearest-neighbour indexes (FAISS or torch exact search).

    An index maps external ids to vectors (e.g. item embeddings of a trained model) and
    answers top-k inner-product / cosine queries; it is saved as a directory holding a CPU
    copy of the index and JSON metadata (ids, model fingerprint, metric, factory, dim).
    """


def _read_vectors(path: Path):
    import numpy as np

    try:
        x = np.load(path, allow_pickle=False)
    except ValueError as exc:
        raise DataError(f"not a numeric .npy array: {exc}", path=path) from None
    except OSError as exc:
        raise DataError(f"cannot read as .npy: {exc}", path=path) from None
    if x.ndim != 2:
        raise DataError(f"expected a 2-D array (n, dim), got shape {x.shape}", path=path)
    return x


def _read_ids(path: Path, n: int) -> list[str]:
    """One id per line (or a JSON list when the file ends in .json)."""
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        try:
            ids = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataError(f"invalid JSON: {exc.msg}", path=path, line=exc.lineno) from None
        if not isinstance(ids, list):
            raise DataError("expected a JSON list of ids", path=path)
        ids = [str(i) for i in ids]
    else:
        ids = text.splitlines()
        for lineno, value in enumerate(ids, start=1):
            if not value.strip():
                raise DataError("empty id", path=path, line=lineno)
        ids = [i.strip() for i in ids]
    if len(ids) != n:
        raise DataError(f"{len(ids)} ids for {n} vectors", path=path)
    return ids


@index.command()
@click.argument("vectors", type=FILE)
@click.option(
    "-o",
    "--out",
    required=True,
    type=DIR_PATH,
    help="Directory to write the index to (atomically).",
)
@click.option(
    "--ids",
    "ids_path",
    type=FILE,
    help="Ids of the vectors' rows: one per line, or a .json list (default: 0..n-1).",
)
@click.option(
    "--factory",
    default="auto",
    show_default=True,
    help=f"Index type: {FACTORY_FORMS}. 'auto' picks exact below 20k vectors, HNSW32 below "
    "5M, IVF-PQ above (exact up to 5M on a GPU).",
)
@click.option(
    "--metric",
    type=click.Choice(["cosine", "ip"]),
    default="cosine",
    show_default=True,
    help="cosine normalises vectors and queries; ip is the raw inner product.",
)
@click.option(
    "--device",
    default="auto",
    show_default=True,
    help="auto (GPU when the faiss GPU build sees one), cpu, cuda or cuda:N.",
)
@click.option(
    "--exact-backend",
    type=click.Choice(["auto", "torch", "faiss"]),
    default="auto",
    show_default=True,
    help="Exact search by torch matmul+topk or faiss IndexFlat (auto on the CPU: faiss for "
    "1-2 queries, torch for larger batches, whichever measured faster; faiss on a GPU).",
)
@click.option("--nprobe", type=int, help="IVF lists visited per query (default nlist/16, >= 8).")
@click.option("--ef-search", type=int, help="HNSW search beam width (default 64).")
@click.option("--ef-construction", type=int, help="HNSW construction beam width (default 80).")
@click.option(
    "--fingerprint",
    help="Fingerprint of the model that made the vectors; loading can then refuse an index "
    "built for another model (default: a hash of vectors and ids).",
)
@click.option("--node-type", default="item", show_default=True, help="What the ids name.")
@click.option(
    "--tune",
    "target",
    type=float,
    help="Raise nprobe / efSearch until the self-check recall@10 reaches this, a recall in "
    "(0, 1] (e.g. 0.95).",
)
@click.option("--seed", type=int, default=0, show_default=True, help="k-means / probe seed.")
@click.option("--overwrite", is_flag=True, help="Replace an existing index directory.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def build(
    vectors: Path,
    out: Path,
    ids_path: Path | None,
    factory: str,
    metric: str,
    device: str,
    exact_backend: str,
    nprobe: int | None,
    ef_search: int | None,
    ef_construction: int | None,
    fingerprint: str | None,
    node_type: str,
    target: float | None,
    seed: int,
    overwrite: bool,
    as_json: bool,
) -> None:
    """Build an index from VECTORS (an .npy matrix, one row per item) and save it to --out."""
    from kgrec._atomic import check_out_dir

    if target is not None and not 0.0 < target <= 1.0:  # click's FloatRange lets NaN through
        raise click.BadParameter(f"a recall in (0, 1], got {target}", param_hint="--tune")
    try:
        check_out_dir(out, overwrite=overwrite)
    except KgrecError as exc:
        raise click.UsageError(str(exc)) from None
    x = _read_vectors(vectors)
    ids = _read_ids(ids_path, len(x)) if ids_path else None
    extra = {
        k: v
        for k, v in {"ef_search": ef_search, "ef_construction": ef_construction}.items()
        if v is not None
    }
    config = IndexConfig(
        metric=metric,  # type: ignore[arg-type]
        factory=factory,
        device=device,
        exact_backend=exact_backend,
        nprobe=nprobe,
        seed=seed,
        **extra,
    )
    t0 = time.perf_counter()
    idx = VectorIndex(config).build(x, ids, fingerprint=fingerprint, node_type=node_type)
    build_s = time.perf_counter() - t0
    check = idx.tune(target) if target is not None else idx.self_check()
    idx.save(out, overwrite=overwrite)
    summary = {
        "path": str(out),
        **idx.info().to_dict(),
        "build_s": round(build_s, 3),
        "self_check": check.to_dict(),
    }
    _print(summary, as_json)


@index.command()
@click.argument("directory", type=DIR)
@click.option(
    "--device", default="cpu", show_default=True, help="Where to load it: auto, cpu, cuda[:N]."
)
@click.option("--expect-fingerprint", help="Fail unless the index was built with this one.")
@click.option("-k", "k", type=int, default=10, show_default=True, help="Self-check recall@k.")
@click.option("--no-check", is_flag=True, help="Skip the recall self-check.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def info(
    directory: Path,
    device: str,
    expect_fingerprint: str | None,
    k: int,
    no_check: bool,
    as_json: bool,
) -> None:
    """Describe the index in DIRECTORY: type, size, dim, metric, fingerprint, device, and its
    recall@k against exact search on the probe queries stored with it."""
    idx = VectorIndex.load(directory, expected_fingerprint=expect_fingerprint, device=device)
    summary = {"path": str(directory), **idx.info().to_dict()}
    if not no_check:
        summary["self_check"] = idx.self_check(k).to_dict()
    _print(summary, as_json)


def _print(summary: dict, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(summary, indent=2))
        return
    check = summary.pop("self_check", None)
    for key, value in summary.items():
        if value is not None:
            click.echo(f"{key:<12} {value}")
    if check:
        click.echo(
            f"{'self-check':<12} recall@{check['k']} = {check['recall']:.4f} vs exact search "
            f"({check['n_queries']} probe queries, {check['seconds'] * 1e3:.1f} ms)"
        )
