"""``faceclust cluster --must-link/--cannot-link``: pairs files honoured, bad files are one-line errors."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from faceclust.cli import main
from faceclust.io import read_labels

from .conftest import unit_rows


@pytest.fixture
def three_blobs(tmp_path):
    """Three tight, well-separated groups of 10 faces: rows 0-9, 10-19, 20-29."""
    rng = np.random.default_rng(3)
    centres = unit_rows(np.eye(3, 16) + 0.01 * rng.normal(size=(3, 16)))
    x = centres[np.repeat(np.arange(3), 10)] + 0.02 * rng.normal(size=(30, 16))
    np.save(tmp_path / "x.npy", unit_rows(x))
    return tmp_path


def cluster(d, *extra: str):
    out = d / "pred.meta"
    res = CliRunner().invoke(
        main, ["cluster", str(d / "x.npy"), "--method", "knn-cc", "--set", "k=5",
               "--set", "threshold=0.8", *extra, "--out", str(out)],
        catch_exceptions=False,
    )
    return res, out


def test_must_link_joins_and_cannot_link_splits(three_blobs):
    d = three_blobs
    res, out = cluster(d)
    assert res.exit_code == 0, res.output
    free = read_labels(out)
    assert len(np.unique(free)) == 3 and free[0] != free[10] and free[20] == free[21]

    (d / "ml.csv").write_text("# confirmed by the user\n0,10\n\n")
    np.save(d / "cl.npy", np.array([[20, 21]], dtype=np.int32))
    res, out = cluster(d, "--must-link", str(d / "ml.csv"), "--cannot-link", str(d / "cl.npy"))
    assert res.exit_code == 0, res.output
    y = read_labels(out)
    assert (y[:20] == y[0]).all()                      # groups 0 and 1 merged
    assert y[20] != y[21]                               # group 2 split
    assert not np.isin(y[20:], y[:20]).any()            # ... without joining the merged one
    assert len(np.unique(y)) == 3


def test_whitespace_pairs_and_same_photo_cannot_links(three_blobs):
    d = three_blobs
    (d / "photo.txt").write_text("20 21\n20\t22   # one photo, three faces\n21 22\n")
    res, out = cluster(d, "--cannot-link", str(d / "photo.txt"))
    assert res.exit_code == 0, res.output
    y = read_labels(out)
    assert len({y[20], y[21], y[22]}) == 3


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("range.txt", "0,1\n5,30\n", "line 2: face index 30 out of range [0, 30)"),
        ("neg.txt", "-1 4\n", "line 1: face index -1 out of range [0, 30)"),
        ("three.csv", "1,2,3\n", "line 1: expected two face indices 'i,j', got 3 field(s)"),
        ("garbage.txt", "hello world\n", "line 1: face indices must be integers"),
        ("float.txt", "1.5,2\n", "line 1: face indices must be integers"),
        ("self.txt", "4,4\n", "line 1: pair (4, 4) names the same face twice"),
        ("binary.txt", b"\xff\xfe\x00\x81garbage", "not a text file of index pairs"),
        ("shape.npy", np.arange(6).reshape(2, 3), "expected an array of index pairs of shape "
                                                  "(P, 2), got shape (2, 3)"),
        ("flat.npy", np.arange(4), "got shape (4,)"),
        ("floats.npy", np.zeros((2, 2)), "face indices must be integers, got dtype float64"),
        ("range.npy", np.array([[0, 1], [2, 99]]), "row 1: face index 99 out of range [0, 30)"),
        ("corrupt.npy", b"not an npy file", "not a NumPy .npy file"),
    ],
)
@pytest.mark.parametrize("option", ["--must-link", "--cannot-link"])
def test_bad_pairs_file_is_one_line_error(three_blobs, option, name, content, expected):
    d = three_blobs
    path = d / name
    if isinstance(content, np.ndarray):
        np.save(path, content)
    elif isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    res, out = cluster(d, option, str(path))
    assert res.exit_code == 2
    lines = res.output.strip().splitlines()
    assert len(lines) == 1, res.output
    assert lines[0].startswith(f"faceclust: error: {path}: ")
    assert expected in lines[0]
    assert not out.exists()


def test_missing_pairs_file_and_contradiction(three_blobs):
    d = three_blobs
    res, _ = cluster(d, "--must-link", str(d / "nope.txt"))
    assert res.exit_code == 2 and "nope.txt: no such file" in res.output
    (d / "ml.txt").write_text("0 10\n10 11\n")
    (d / "cl.txt").write_text("0 11\n")
    res, _ = cluster(d, "--must-link", str(d / "ml.txt"), "--cannot-link", str(d / "cl.txt"))
    assert res.exit_code == 2
    assert res.output.strip() == ("faceclust: error: constraints contradict: faces 0 and 11 "
                                  "are cannot-linked but joined by must-link")
