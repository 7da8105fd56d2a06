"""faceclust.fsutil.write_file: the callback form of the atomic write (photos, galleries)."""

from __future__ import annotations

import os

import pytest

from faceclust.fsutil import write_file


def test_write_file_creates_parents_and_replaces(tmp_path):
    path = tmp_path / "a" / "b" / "page.html"
    write_file(path, lambda fh: fh.write(b"one"))
    assert path.read_bytes() == b"one"
    write_file(path, lambda fh: fh.write(b"two"))
    assert path.read_bytes() == b"two"
    assert os.listdir(path.parent) == ["page.html"]


def test_write_file_failure_keeps_old_file_and_no_temp(tmp_path):
    path = tmp_path / "faces.npz"
    path.write_bytes(b"old")

    def half(fh):
        fh.write(b"half written")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_file(path, half)
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["faces.npz"]
