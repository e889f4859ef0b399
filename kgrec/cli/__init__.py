"""The ``kgrec`` command line: a thin click group whose subcommands live one module each.

Subcommands are imported only when used, so ``kgrec --help`` stays fast and a command's heavy
dependencies (torch, transformers, faiss) load only for that command.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import sys
import time

import click

from kgrec.errors import KgrecError

#: wall-clock start of this command (``time.time()``): the process start where the OS says it
#: (Linux ``/proc``), else the moment ``main()``/the group ran. Totals printed by commands count
#: from here, so they include interpreter start-up, imports and report writing.
STARTED: float | None = None
_FROM_MAIN = False


def _process_start() -> float | None:
    try:
        with open("/proc/self/stat", encoding="ascii") as f:
            ticks = int(f.read().rpartition(")")[2].split()[19])
        with open("/proc/stat", encoding="ascii") as f:
            btime = next(int(ln.split()[1]) for ln in f if ln.startswith("btime"))
        import os

        return btime + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration, AttributeError):
        return None


def elapsed() -> float:
    """Seconds since this command started (see :data:`STARTED`)."""
    return time.time() - (STARTED if STARTED is not None else time.time())


#: command name -> (module, one-line help); the module's attribute of that name is the command.
#: Explicit: no string-built lookups.
COMMANDS: dict[str, tuple[str, str]] = {
    "data": ("kgrec.cli.data", "Fetch and describe datasets."),
    "graph": ("kgrec.cli.graph", "Build, inspect and export knowledge graphs from specs."),
    "text": ("kgrec.cli.text", "Encode item and user text with a transformer encoder."),
    "compare": ("kgrec.cli.compare", "Compare recommenders under one full-ranking protocol."),
    "train": ("kgrec.cli.train", "Train a model on a graph spec."),
    "models": ("kgrec.cli.models", "List the models and the side information each uses."),
    "index": ("kgrec.cli.index", "Build and inspect FAISS retrieval indexes."),
    "neighbors": ("kgrec.cli.retrieve", "Nearest items/users for a (cold) item."),
    "recommend": ("kgrec.cli.retrieve", "Top-k items for a user, a history or a text."),
    "serve": ("kgrec.cli.serve", "Serve recommendations over HTTP."),
}


def _available(name: str) -> bool:
    module = COMMANDS[name][0]
    return importlib.util.find_spec(module) is not None


class LazyGroup(click.Group):
    """A group that imports a subcommand's module only when that subcommand runs."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [n for n in COMMANDS if _available(n)]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS or not _available(cmd_name):
            return None
        return getattr(importlib.import_module(COMMANDS[cmd_name][0]), cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(n, COMMANDS[n][1]) for n in self.list_commands(ctx)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="kgrec")
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
def cli(verbose: int) -> None:
    """kgrec: knowledge-graph-augmented hybrid recommendation.

    Build user-item-entity graphs from catalogs, train a KG + text hybrid, compare it with CF
    baselines under full-ranking protocols, and retrieve neighbours for cold-start items and users.
    Data and models are cached under $KGREC_HOME (default ~/.cache/kgrec).
    """
    global STARTED
    if not _FROM_MAIN:  # run through click directly (tests), not through main()
        STARTED = time.time()
    level = logging.WARNING - 10 * verbose
    logging.basicConfig(
        level=max(level, logging.DEBUG), format="%(levelname)s %(name)s: %(message)s"
    )


def main(argv: list[str] | None = None) -> int:
    """Console entry point: kgrec errors print as one clear message with exit status 2."""
    global STARTED, _FROM_MAIN
    _FROM_MAIN = True
    now = time.time()
    start = _process_start()
    STARTED = start if start is not None and 0 <= now - start < 3600 else now
    try:
        cli.main(args=argv, standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 130
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except KgrecError as exc:
        click.echo(f"error: {exc}", err=True)
        return 2
    except OSError as exc:  # a full or read-only disk, a permission error: one message
        where = f" ({exc.filename})" if exc.filename else ""
        click.echo(f"error: {exc.strerror or exc}{where}", err=True)
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
