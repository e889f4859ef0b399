"""``--nproc N``: run the current ``kgrec`` command again under torchrun with N processes."""

from __future__ import annotations

import subprocess
import sys

import click


def relaunch(command: tuple[str, ...], nproc: int) -> None:
    """Run ``kgrec <command> ...`` (this process's own arguments, ``--nproc`` dropped) under
    ``torch.distributed.run --standalone --nproc-per-node nproc``; exit with its status."""
    n = len(command)
    args = list(sys.argv[1:])
    if tuple(args[:n]) == command:
        args = args[n:]
    keep: list[str] = []
    skip = False
    for a in args:
        if skip:
            skip = False
            continue
        if a == "--nproc":
            skip = True
            continue
        if a.startswith("--nproc="):
            continue
        keep.append(a)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    cmd += [f"--nproc-per-node={nproc}", "-m", "kgrec.cli", *command, *keep]
    click.echo("launching: " + " ".join(cmd), err=True)
    rc = subprocess.call(cmd)
    if rc:
        raise SystemExit(rc)
