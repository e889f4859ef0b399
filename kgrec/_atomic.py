"""Atomic writes: write to a temporary sibling, fsync, then rename, so no reader sees half a file.

Directories written by :func:`atomic_dir` carry a marker file (:data:`MARKER`); replacing an
existing directory (``overwrite=True``) is refused unless kgrec wrote it (the marker, or a kgrec
metadata file of a directory written before markers existed). Temporary siblings are named
``.NAME.<pid>.<random>.tmp``: the next atomic write of the same ``NAME`` removes those whose
process is gone (a run killed with ``kill -9`` leaves no litter behind for long).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from kgrec.errors import DataError

log = logging.getLogger(__name__)

#: file inside every directory kgrec writes atomically (what ``--overwrite`` may replace)
MARKER = ".kgrec"
#: temporaries without a pid (written before pids were in their names) count as stale after this
_LEGACY_STALE_S = 3600.0


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_path(path: Path, *, directory: bool = False) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if directory else 0))
    except OSError:  # pragma: no cover - e.g. directories on platforms without O_DIRECTORY
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - some filesystems refuse fsync on directories
        pass
    finally:
        os.close(fd)


def _fsync_tree(root: Path) -> None:
    for dirpath, _dirs, files in os.walk(root):
        for f in files:
            p = Path(dirpath) / f
            if not p.is_symlink():
                _fsync_path(p)
        _fsync_path(Path(dirpath), directory=True)


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def clean_stale_temps(dest: str | Path) -> list[Path]:
    """Remove ``.NAME.<pid>.*.tmp`` siblings of ``dest`` left by killed runs; return them."""
    dest = Path(dest)
    removed = []
    if not dest.parent.is_dir():
        return removed
    for p in dest.parent.glob(f".{dest.name}.*.tmp"):
        middle = p.name[len(dest.name) + 2 : -len(".tmp")]
        pid_s, sep, _ = middle.partition(".")
        try:
            if sep and pid_s.isdigit():
                stale = not _pid_alive(int(pid_s))
            else:
                stale = time.time() - p.lstat().st_mtime > _LEGACY_STALE_S
        except OSError:
            continue
        if not stale:
            continue
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
        removed.append(p)
    if removed:
        log.info("removed %d temporary file(s) of killed runs next to %s", len(removed), dest)
    return removed


def _in_kgrec_home(path: Path) -> bool:
    """Whether ``path`` lies inside kgrec's own cache root (``$KGREC_HOME``), whose
    directories (fetched datasets, cached graphs) kgrec may always replace."""
    home = Path(os.environ.get("KGREC_HOME") or Path.home() / ".cache" / "kgrec").expanduser()
    try:
        return home.resolve() in path.resolve().parents
    except OSError:
        return False


def written_by_kgrec(path: str | Path) -> bool:
    """Whether directory ``path`` was written by kgrec: it holds :data:`MARKER`, or (written
    before markers) a top-level JSON metadata file whose ``format`` names kgrec."""
    path = Path(path)
    if not path.is_dir() or path.is_symlink():
        return False
    if (path / MARKER).is_file():
        return True
    for p in sorted(path.glob("*.json"))[:16]:
        try:
            if p.stat().st_size > 1 << 20:
                continue
            doc = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(doc, dict) and str(doc.get("format", "")).startswith("kgrec"):
            return True
    return False


def refuse_broad_dir(out: str | Path, *, what: str = "--out") -> Path:
    """Refuse the current directory, a directory above it, the home or the root directory as
    an output directory (a run writes, and may replace, what is there)."""
    out = Path(out)
    resolved = out.expanduser().resolve()
    cwd = Path.cwd().resolve()
    broad = {Path.home().resolve(), Path(resolved.anchor)}
    if resolved == cwd or resolved in cwd.parents or resolved in broad:
        kind = "the current directory" if resolved == cwd else "too broad a directory"
        raise DataError(
            f"{what} {str(out)!r} is {kind} (the current, a parent, home or root directory); "
            "give a new sub-directory such as out/run",
            path=out,
        )
    return out


def check_out_dir(out: str | Path, *, overwrite: bool, what: str = "--out") -> Path:
    """Refuse, before any work, an output directory that would be unsafe to write or replace:
    the current directory or one above it, the home or root directory, a file, an existing
    directory without ``overwrite``, or (with it) one kgrec did not write."""
    out = refuse_broad_dir(out, what=what)
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise DataError(f"{what} exists and is not a directory", path=out)
    if out.exists():
        if not overwrite:
            raise DataError(f"{what} already exists; pass --overwrite to replace it", path=out)
        if not written_by_kgrec(out):
            raise DataError(
                f"{what} exists and was not written by kgrec (no {MARKER} marker): refusing "
                "to replace it; give a new directory",
                path=out,
            )
    return out


def under_root(root: str | Path, *parts: str) -> Path:
    """``root / parts...``, refused unless it resolves to a path strictly inside ``root``
    (a name such as ``../x`` or ``/tmp/victim`` never reaches outside it)."""
    base = Path(root).expanduser().resolve()
    path = base.joinpath(*parts).resolve()
    if path == base or base not in path.parents:
        raise DataError(f"{'/'.join(parts)!r} would leave {str(base)!r}; refusing the path")
    return path


@contextlib.contextmanager
def atomic_path(dest: str | Path, *, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path next to ``dest``; on success fsync it and rename it over ``dest``.

    On any exception the temporary file is removed and ``dest`` is left untouched.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    clean_stale_temps(dest)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{dest.name}.{os.getpid()}.", suffix=suffix + ".tmp", dir=dest.parent
    )
    os.close(fd)
    tmp_path = Path(tmp)
    os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; give a normal file's mode
    try:
        yield tmp_path
        _fsync_path(tmp_path)
        os.replace(tmp_path, dest)
        _fsync_path(dest.parent, directory=True)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def atomic_write_bytes(dest: str | Path, data: bytes) -> None:
    """Write ``data`` to ``dest`` atomically."""
    with atomic_path(dest) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(dest: str | Path, text: str, encoding: str = "utf-8") -> None:
    """Write ``text`` to ``dest`` atomically."""
    atomic_write_bytes(dest, text.encode(encoding))


@contextlib.contextmanager
def atomic_dir(dest: str | Path, *, overwrite: bool = False, owned: bool = False) -> Iterator[Path]:
    """Yield a temporary directory next to ``dest``; on success fsync its files and rename it
    to ``dest`` (with the :data:`MARKER` file inside).

    A failed or interrupted build leaves no ``dest`` (and an existing ``dest`` is replaced only
    after the new one is complete, when ``overwrite`` is true and kgrec wrote it, or the
    caller ``owned`` the location, such as a dataset's cache directory).
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.exists() and not overwrite:
        raise FileExistsError(f"{dest} already exists (pass overwrite=True to replace it)")
    if dest.exists() and not (owned or written_by_kgrec(dest) or _in_kgrec_home(dest)):
        raise DataError(
            f"exists and was not written by kgrec (no {MARKER} marker): refusing to replace it",
            path=dest,
        )
    clean_stale_temps(dest)
    tmp = Path(
        tempfile.mkdtemp(prefix=f".{dest.name}.{os.getpid()}.", suffix=".tmp", dir=dest.parent)
    )
    os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700; give a normal directory's mode
    try:
        yield tmp
        (tmp / MARKER).write_text("written by kgrec; --overwrite may replace this directory\n")
        _fsync_tree(tmp)
        if dest.exists():
            old = dest.with_name(f".{dest.name}.{os.getpid()}.old.tmp")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(dest, old)
            os.replace(tmp, dest)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, dest)
        _fsync_path(dest.parent, directory=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
