"""``kgrec serve``: the cold-start retrieval HTTP service (FastAPI + uvicorn)."""

from __future__ import annotations

from pathlib import Path

import click

from kgrec.cli._options import DIR_PATH, FILE
from kgrec.cli.retrieve import MODEL_HELP


@click.command()
@click.argument("spec", type=FILE)
@click.option("--model", default="content", show_default=True, help=MODEL_HELP)
@click.option(
    "--index-dir",
    type=DIR_PATH,
    help="Load the retriever from this directory when it matches the model, else build and "
    "save it there. Items and user events added over HTTP are journaled in INDEX_DIR/journal "
    "(unless --journal-dir says elsewhere) and replayed at start-up.",
)
@click.option(
    "--journal-dir",
    type=DIR_PATH,
    help="Durable journal of items and user events added over HTTP (fsynced per request, "
    "snapshotted every --snapshot-every records, replayed at start-up). Default: "
    "INDEX_DIR/journal with --index-dir, else none (additions are kept in memory only).",
)
@click.option(
    "--snapshot-every", type=click.IntRange(1), default=1000, show_default=True,
    help="Fold the journal into an atomic snapshot after this many records.",
)  # fmt: skip
@click.option(
    "--api-key-file",
    type=FILE,
    help="File holding the API key that write endpoints (POST /items, POST /users/{id}/events) "
    "require (header X-API-Key or Authorization: Bearer). Reads stay open.",
)
@click.option(
    "--allow-anonymous-writes", is_flag=True,
    help="Accept writes without an API key (by default writes are refused without one).",
)  # fmt: skip
@click.option(
    "--host", default="127.0.0.1", show_default=True,
    help="Interface to bind. The default is loopback only; bind 0.0.0.0 deliberately.",
)  # fmt: skip
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True)
@click.option(
    "--log-level",
    type=click.Choice(["critical", "error", "warning", "info", "debug"]),
    default="warning",
    show_default=True,
    help="uvicorn log level (access logs at info).",
)
@click.option(
    "--batch/--no-batch", default=True, show_default=True,
    help="Run the index searches of concurrent queries by known ids together (one matrix "
    "product per index instead of one pass per query).",
)  # fmt: skip
def serve(
    spec: Path,
    model: str,
    index_dir: Path | None,
    journal_dir: Path | None,
    snapshot_every: int,
    api_key_file: Path | None,
    allow_anonymous_writes: bool,
    host: str,
    port: int,
    log_level: str,
    batch: bool,
) -> None:
    """Serve SPEC's items over HTTP: POST /recommend, POST /neighbors, POST /items (adds cold
    items live), GET /items/{id}, POST /users/{id}/events, GET /health; OpenAPI schema at /openapi.json, docs at /docs.
    """
    try:
        import uvicorn
    except ImportError:  # pragma: no cover - depends on the environment
        raise click.ClickException(
            "kgrec serve needs fastapi and uvicorn: pip install 'fastapi' 'uvicorn'"
        ) from None
    from kgrec.serve import load_retriever
    from kgrec.serve._app import create_app
    from kgrec.serve._journal import Journal

    retriever = load_retriever(spec, model, index_dir=index_dir)
    if journal_dir is None and index_dir is not None:
        journal_dir = index_dir / "journal"
    if journal_dir is not None:
        retriever.attach_journal(
            Journal(
                journal_dir, fingerprint=retriever.model.fingerprint, snapshot_every=snapshot_every
            )
        )
    api_key = None
    if api_key_file is not None:
        api_key = api_key_file.read_text(encoding="utf-8").strip()
        if len(api_key) < 16:
            raise click.BadParameter(
                "the API key must be at least 16 characters", param_hint="--api-key-file"
            )
    app = create_app(
        retriever, api_key=api_key, allow_anonymous_writes=allow_anonymous_writes, batch=batch
    )
    info = retriever.info()
    click.echo(
        f"serving {info['items']} items, {info['users']} users ({info['model']} "
        f"{info['fingerprint']}) on http://{host}:{port} (docs: /docs)",
        err=True,
    )
    import gc

    # The model, indexes and framework are ~200k long-lived objects that a full collection
    # would walk (130 ms here) in the middle of some request: move them out of the collector's
    # view, so its pauses cost only what requests allocate.
    gc.collect()
    gc.freeze()
    uvicorn.run(
        app, host=host, port=port, log_level=log_level, access_log=log_level in ("info", "debug")
    )
