import os
import stat

import pytest

from kgrec._atomic import atomic_dir, atomic_write_text


def test_atomic_file_replaces_only_on_success(tmp_path):
    dest = tmp_path / "a.txt"
    atomic_write_text(dest, "one")
    with pytest.raises(RuntimeError), atomic_dir(tmp_path / "d"):
        raise RuntimeError("killed mid-build")
    assert not (tmp_path / "d").exists()
    assert dest.read_text() == "one"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]  # no temp files left behind
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(dest.stat().st_mode) == 0o666 & ~mask


def test_atomic_dir_overwrite(tmp_path):
    with atomic_dir(tmp_path / "g") as d:
        (d / "x").write_text("1")
    with pytest.raises(FileExistsError), atomic_dir(tmp_path / "g"):
        pass
    with atomic_dir(tmp_path / "g", overwrite=True) as d:
        (d / "y").write_text("2")
    assert sorted(p.name for p in (tmp_path / "g").iterdir()) == [".kgrec", "y"]  # the marker
