"""Option types and option groups that several ``kgrec`` commands share.

One definition each, so that ``--text-finetune`` (say) reads the same in ``kgrec train`` and
``kgrec compare``, and a path option's checks are named rather than spelled out per command.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

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


@dataclass(frozen=True)
class RunSettings:
    """What ``kgrec train`` and ``kgrec compare`` share from their command line: where a local
    dataset lives (``--path``), the training device, the hybrid's text tower and progress lines."""

    data_path: str | None
    device: str
    text_finetune: str
    init_text_from: str | None
    progress: bool

    def option_fields(self) -> dict[str, Any]:
        """The :class:`~kgrec.experiment.CompareOptions` fields these settings fill."""
        return {
            "device": self.device,
            "text_finetune": self.text_finetune,
            "init_text_from": self.init_text_from,
        }


def run_options(progress_help: str) -> Callable[[F], F]:
    """``--path``, ``--device``, the text-tower options and ``--progress/--no-progress``, handed
    to the command as one ``run: RunSettings`` argument."""

    def decorate(f: F) -> F:
        @functools.wraps(f)
        def command(
            *args: Any,
            data_path: str | None,
            device: str,
            text_finetune: str,
            init_text_from: str | None,
            progress: bool,
            **kwargs: Any,
        ) -> Any:
            run = RunSettings(data_path, device, text_finetune, init_text_from, progress)
            return f(*args, run=run, **kwargs)

        g: Any = click.option("--progress/--no-progress", default=True, help=progress_help)(command)
        g = text_tower_options(g)
        g = click.option(
            "--device", default="cpu", show_default=True, help="Training device (cpu, cuda)."
        )(g)
        return click.option(
            "--path", "data_path", default=None, help="Dataset directory for local datasets."
        )(g)

    return decorate
