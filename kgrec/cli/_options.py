"""Option types and option groups that several ``kgrec`` commands share.

One definition each, so that ``--text-finetune`` (say) reads the same in ``kgrec train`` and
``kgrec compare``, and a path option's checks are named rather than spelled out per command.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import click

F = TypeVar("F", bound=Callable[..., object])

#: an existing file
FILE = click.Path(exists=True, dir_okay=False, path_type=Path)
#: an existing directory
DIR = click.Path(exists=True, file_okay=False, path_type=Path)
#: a directory path (need not exist: the command makes or replaces it)
DIR_PATH = click.Path(file_okay=False, path_type=Path)
#: a file path (need not exist)
FILE_PATH = click.Path(dir_okay=False, path_type=Path)

#: the graph spec's own --data-path help (graph build, graph check)
SPEC_DATA_PATH_HELP = "Your copy of the dataset's files; overrides [source] path of the spec."


def positive_int(name: str, default: int, help: str) -> Callable[[F], F]:
    """``--NAME N`` (N >= 1) with a shown default."""
    return click.option(
        name, type=click.IntRange(min=1), default=default, show_default=True, help=help
    )


def text_tower_options(f: F) -> F:
    """``--text-finetune`` and ``--init-text-from``: how the hybrid's text tower trains."""
    f = click.option(
        "--init-text-from",
        type=click.Path(exists=True, file_okay=False),
        default=None,
        help="hybrid: start the text tower from a saved one (DIR/model/text_tower of another run).",
    )(f)
    return click.option(
        "--text-finetune",
        type=click.Choice(["none", "lora", "top-layers", "full"]),
        default="none",
        show_default=True,
        help="hybrid: fine-tune the text encoder for cold items (top-layers: the top layer trains "
        "on cached lower-layer outputs, the affordable mode on CPU; lora: peft adapters; full: "
        "all weights). Progress per epoch with items/s.",
    )(f)
