"""Tests for faceclust.io: round trips, format detection, bad-input errors, atomic writes."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

import faceclust.io as fio
from faceclust.errors import InputError, ParameterError
from faceclust.io import (
    atomic_write,
    check_output_path,
    read_features,
    read_knn,
    read_labels,
    read_pairs,
    write_features,
    write_knn,
    write_labels,
    write_text,
)
from faceclust.knn import KnnGraph, _noncanonical_rows, build_knn

ORL = Path("/work/shared/data/orl")


def _unit(n: int = 30, d: int = 8, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _graph(n: int = 30, k: int = 5, seed: int = 0) -> tuple[np.ndarray, KnnGraph]:
    x = _unit(n, seed=seed)
    return x, build_knn(x, k, index="numpy")


# ------------------------------------------------------------------ features
def test_features_npy_roundtrip_and_normalises(tmp_path):
    x = _unit() * 3.0  # not unit length on disk
    p = tmp_path / "f.npy"
    write_features(p, x)
    assert sorted(os.listdir(tmp_path)) == ["f.npy"]  # no temp files, no extra suffix
    got = read_features(p)
    assert got.dtype == np.float32 and got.shape == (30, 8)
    np.testing.assert_allclose(got, x / 3.0, atol=1e-6)
    raw = read_features(p, normalize=False)
    np.testing.assert_allclose(raw, x, atol=1e-6)


def test_features_float16_and_float64_npy(tmp_path):
    x = _unit()
    np.save(tmp_path / "h.npy", x.astype(np.float16))
    np.save(tmp_path / "d.npy", x.astype(np.float64))
    h = read_features(tmp_path / "h.npy")
    d = read_features(tmp_path / "d.npy")
    assert h.dtype == np.float32 and d.dtype == np.float32
    np.testing.assert_allclose(h, x, atol=2e-3)
    np.testing.assert_allclose(np.linalg.norm(h, axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(d, x, atol=1e-6)


def test_features_bin_with_dim_and_with_meta(tmp_path):
    x = _unit(12, 6)
    p = tmp_path / "feat.bin"
    write_features(p, x)
    assert p.stat().st_size == 12 * 6 * 4
    # raw little-endian float32 row-major, exactly as learn-to-cluster's tofile
    np.testing.assert_array_equal(np.fromfile(p, dtype="<f4").reshape(12, 6), x)
    np.testing.assert_allclose(read_features(p, dim=6), x, atol=1e-6)
    with pytest.raises(InputError, match="carries no shape"):
        read_features(p)
    write_labels(tmp_path / "feat.meta", np.arange(12) % 3)
    got = read_features(p)  # N from feat.meta, D = size / (4 N)
    assert got.shape == (12, 6)
    np.testing.assert_allclose(got, x, atol=1e-6)
    # a dim inconsistent with the .meta row count is rejected
    with pytest.raises(InputError, match="feat.meta has 12 labels"):
        read_features(p, dim=3)


def test_features_bin_size_not_multiple(tmp_path):
    p = tmp_path / "bad.bin"
    np.arange(10, dtype="<f4").tofile(p)  # 40 bytes
    with pytest.raises(InputError, match=r"not a multiple of 4 x D = 12"):
        read_features(p, dim=3)
    (tmp_path / "bad.meta").write_text("1\n2\n3\n")  # N=3: 40 bytes / 12 not whole
    with pytest.raises(InputError, match="bad.bin.*not a multiple of 4 x 3 rows"):
        read_features(p)
    with pytest.raises(ParameterError, match="dim"):
        read_features(p, dim=0)


def test_features_npz_single_and_named(tmp_path):
    x = _unit()
    np.savez(tmp_path / "one.npz", whatever=x)
    np.savez(tmp_path / "named.npz", labels=np.arange(30), feats=x)
    np.savez(tmp_path / "amb.npz", a=x, b=x)
    np.testing.assert_allclose(read_features(tmp_path / "one.npz"), x, atol=1e-6)
    np.testing.assert_allclose(read_features(tmp_path / "named.npz"), x, atol=1e-6)
    with pytest.raises(InputError, match=r"amb\.npz.*keys: a, b"):
        read_features(tmp_path / "amb.npz")


def test_features_nan_and_zero_rows(tmp_path):
    x = _unit(10, 4)
    x[3, 1] = np.nan
    np.save(tmp_path / "nan.npy", x)
    with pytest.raises(InputError, match=r"nan\.npy: 1 row\(s\) contain NaN.*first rows: 3"):
        read_features(tmp_path / "nan.npy")
    y = _unit(10, 4)
    y[7] = 0.0
    np.save(tmp_path / "zero.npy", y)
    with pytest.raises(InputError, match=r"zero\.npy: 1 row\(s\) have zero norm.*first rows: 7"):
        read_features(tmp_path / "zero.npy")


def test_features_shape_errors(tmp_path):
    np.save(tmp_path / "v.npy", np.ones(5, np.float32))
    with pytest.raises(InputError, match=r"v\.npy: expected a 2-D"):
        read_features(tmp_path / "v.npy")
    with pytest.raises(InputError, match="2-D"):
        write_features(tmp_path / "o.npy", np.ones(5))


def test_features_truncated_and_corrupt_npy(tmp_path):
    p = tmp_path / "f.npy"
    write_features(p, _unit())
    data = p.read_bytes()
    (tmp_path / "trunc.npy").write_bytes(data[:-17])
    (tmp_path / "hdr.npy").write_bytes(data[:40])
    (tmp_path / "empty.npy").write_bytes(b"")
    (tmp_path / "junk.npy").write_bytes(b"not numpy at all" * 4)
    for name in ("trunc.npy", "hdr.npy", "empty.npy", "junk.npy"):
        expect = ": not a NumPy .npy file" if name == "junk.npy" else ": cannot read .npy"
        with pytest.raises(InputError, match=name.replace(".", r"\.") + expect) as ei:
            read_features(tmp_path / name)
        assert "\n" not in str(ei.value) and "allow_pickle" not in str(ei.value)
    (tmp_path / "bad.npz").write_bytes(b"PK\x03\x04garbage")
    with pytest.raises(InputError, match=r"bad\.npz: cannot read \.npz"):
        read_features(tmp_path / "bad.npz")


def test_features_wrong_extension_missing_and_directory(tmp_path):
    (tmp_path / "f.csv").write_text("1,2\n")
    with pytest.raises(InputError, match=r"f\.csv.*'\.csv'.*supported: \.npy, \.npz, \.bin"):
        read_features(tmp_path / "f.csv")
    with pytest.raises(InputError, match="no such file"):
        read_features(tmp_path / "nope.npy")
    with pytest.raises(InputError, match="is a directory"):
        read_features(tmp_path)
    with pytest.raises(InputError, match="unsupported feature output"):
        write_features(tmp_path / "o.txt", _unit())


# -------------------------------------------------------------------- labels
def test_labels_text_and_npy_roundtrip(tmp_path):
    lab = np.array([3, 3, -1, 0, 12, 7], dtype=np.int64)
    write_labels(tmp_path / "l.meta", lab)
    assert (tmp_path / "l.meta").read_text() == "3\n3\n-1\n0\n12\n7\n"
    write_labels(tmp_path / "l.npy", lab)
    write_labels(tmp_path / "l.txt", lab.astype(np.int32))
    for name in ("l.meta", "l.npy", "l.txt"):
        got = read_labels(tmp_path / name, n=6)
        assert got.dtype == np.int64
        np.testing.assert_array_equal(got, lab)


def test_labels_text_tolerates_trailing_blanks_and_crlf(tmp_path):
    p = tmp_path / "l.meta"
    p.write_bytes(b"1\r\n 2 \r\n3\n\n  \n")
    np.testing.assert_array_equal(read_labels(p), [1, 2, 3])


def test_labels_bad_line_and_count(tmp_path):
    p = tmp_path / "labels.meta"
    p.write_text("1\n2\nfoo\n4\n")
    with pytest.raises(InputError, match=r"labels\.meta: line 3 is not an integer label: 'foo'"):
        read_labels(p)
    p.write_text("1\n\n3\n")  # blank line in the middle is an error too
    with pytest.raises(InputError, match="line 2"):
        read_labels(p)
    p.write_text("1.5\n")
    with pytest.raises(InputError, match="line 1"):
        read_labels(p)
    p.write_text("".join(f"{i}\n" for i in range(9)))
    with pytest.raises(InputError, match=r"labels\.meta has 9 labels but features have 10 rows"):
        read_labels(p, n=10)
    (tmp_path / "x.csv").write_text("1\n")
    with pytest.raises(InputError, match="unsupported label"):
        read_labels(tmp_path / "x.csv")


def test_pairs_text_and_npy(tmp_path):
    p = tmp_path / "pairs.csv"
    p.write_bytes(b"\xef\xbb\xbf# i,j\r\n0,1\r\n 2 , 3 \n\n4\t5  # same photo\n6 7\n")
    got = read_pairs(p, n=8)
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, [[0, 1], [2, 3], [4, 5], [6, 7]])
    np.save(tmp_path / "pairs.npy", got.astype(np.uint16))
    np.testing.assert_array_equal(read_pairs(tmp_path / "pairs.npy", n=8), got)
    (tmp_path / "empty.txt").write_text("# nothing confirmed yet\n")
    assert read_pairs(tmp_path / "empty.txt").shape == (0, 2)
    np.save(tmp_path / "empty.npy", np.zeros((0, 2), dtype=np.int64))
    assert read_pairs(tmp_path / "empty.npy", n=3).shape == (0, 2)


def test_pairs_errors(tmp_path, monkeypatch):
    p = tmp_path / "pairs.txt"
    p.write_text("0 1\n1 x\n")
    with pytest.raises(InputError, match=r"pairs\.txt: line 2: face indices must be integers"):
        read_pairs(p)
    p.write_text("0 1\n1 9\n")
    read_pairs(p)  # no n: no range check
    with pytest.raises(InputError, match=r"line 2: face index 9 out of range \[0, 9\)"):
        read_pairs(p, n=9)
    np.save(tmp_path / "p.npy", np.zeros((2, 2, 2), dtype=int))
    with pytest.raises(InputError, match=r"shape \(P, 2\), got shape \(2, 2, 2\)"):
        read_pairs(tmp_path / "p.npy")
    with pytest.raises(InputError, match="no such file"):
        read_pairs(tmp_path / "missing.txt")

    def denied(self):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_bytes", denied)
    with pytest.raises(InputError, match=r"pairs\.txt: cannot read \(.*Permission denied"):
        read_pairs(p)


# ----------------------------------------------------------------------- kNN
def test_knn_ltc_roundtrip_and_layout(tmp_path):
    x, g = _graph()
    p = tmp_path / "faiss_k_5.npz"
    write_knn(p, g)
    with np.load(p) as z:
        assert z.files == ["data"]
        data = z["data"]
    assert data.shape == (30, 2, 5) and data.dtype == np.float32
    np.testing.assert_array_equal(data[:, 0, 0], np.arange(30))  # self first
    np.testing.assert_allclose(data[:, 1, 0], 0.0, atol=1e-6)  # self distance 0
    np.testing.assert_allclose(data[:, 1, :], 1.0 - g.sims, atol=1e-6)
    got = read_knn(p, n=30)
    np.testing.assert_array_equal(got.ids, g.ids)
    np.testing.assert_allclose(got.sims, g.sims, atol=1e-6)


def test_knn_own_npz_roundtrip_and_build_cache(tmp_path):
    x, g = _graph()
    write_knn(tmp_path / "g.npz", g, fmt="npz")
    with np.load(tmp_path / "g.npz") as z:
        assert sorted(z.files) == ["ids", "sims"]
    got = read_knn(tmp_path / "g.npz", features=x)
    np.testing.assert_array_equal(got.ids, g.ids)
    np.testing.assert_array_equal(got.sims, g.sims)
    # build_knn's cache files (ids, sims, params) are read too
    build_knn(x, 5, index="numpy", cache_dir=tmp_path / "cache")
    (cache,) = (tmp_path / "cache").iterdir()
    np.testing.assert_array_equal(read_knn(cache).ids, g.ids)


def test_knn_missing_neighbours_roundtrip(tmp_path):
    ids = np.array([[0, 1, -1], [1, 0, 2], [2, 1, -1]])
    sims = np.array([[1.0, 0.5, -np.inf], [1.0, 0.5, 0.25], [1.0, 0.25, -np.inf]], np.float32)
    g = KnnGraph(ids, sims)
    write_knn(tmp_path / "m.npz", g)
    with np.load(tmp_path / "m.npz") as z:
        assert z["data"][0, 1, 2] == 2.0 and z["data"][0, 0, 2] == -1
    for fmt in ("ltc", "npz"):
        write_knn(tmp_path / f"{fmt}.npz", g, fmt=fmt)
        got = read_knn(tmp_path / f"{fmt}.npz")
        np.testing.assert_array_equal(got.ids, ids)
        assert np.isneginf(got.sims[0, 2]) and np.isneginf(got.sims[2, 2])
        np.testing.assert_allclose(got.sims[1], [1.0, 0.5, 0.25])


def test_knn_ltc_float64_unsorted_rows(tmp_path):
    # numpy's promotion of (int32 ids, float32 dists) tuples: float64 (N, 2, k); columns unsorted
    ids = np.array([[1, 0, 2], [2, 1, 0], [0, 2, 1]], np.int32)
    dist = np.array([[0.2, 0.0, 0.6], [0.3, 0.0, 0.2], [0.6, 0.0, 0.3]], np.float32)
    data = np.array(list(zip(ids, dist, strict=True)))
    assert data.dtype == np.float64 and data.shape == (3, 2, 3)
    np.savez_compressed(tmp_path / "k.npz", data=data)
    got = read_knn(tmp_path / "k.npz")
    np.testing.assert_array_equal(got.ids, [[0, 1, 2], [1, 0, 2], [2, 1, 0]])
    expected = [[1.0, 0.8, 0.4], [1.0, 0.8, 0.7], [1.0, 0.7, 0.4]]
    np.testing.assert_allclose(got.sims, expected, atol=1e-6)


def test_knn_ltc_ragged_object_array_is_refused_without_unpickling(tmp_path):
    rows = [
        (np.array([0, 2, 1], np.int32), np.array([0.0, 0.1, 0.4], np.float32)),
        (np.array([1, 0], np.int32), np.array([0.0, 0.4], np.float32)),
        (np.array([2, 0, 1], np.int32), np.array([0.0, 0.1, 0.5], np.float32)),
    ]
    obj = np.empty(3, dtype=object)
    obj[:] = rows
    np.savez(tmp_path / "r.npz", data=obj)
    with pytest.raises(InputError, match=r"r\.npz: key 'data' is a pickled object array") as ei:
        read_knn(tmp_path / "r.npz", n=3)
    assert "never unpickles" in str(ei.value) and "pad every row" in str(ei.value)
    assert "\n" not in str(ei.value)
    # object arrays under any other key are refused the same way
    np.savez(tmp_path / "r3.npz", ids=obj, sims=obj)
    with pytest.raises(InputError, match=r"r3\.npz: array '(ids|sims)' is a pickled object"):
        read_knn(tmp_path / "r3.npz")


def test_knn_fc_eser_sims_and_dists_autodetect(tmp_path):
    x, g = _graph(40, 6, seed=3)
    # FC-ESER: the array called "dists" holds similarities (descending, self 1)
    np.savez(tmp_path / "fceser.npz", knns=g.ids.astype(np.int64), dists=g.sims)
    # LCE-style: real distances
    np.savez(tmp_path / "lce.npz", nbrs=g.ids, dists=1.0 - g.sims)
    for name in ("fceser.npz", "lce.npz"):
        got = read_knn(tmp_path / name, features=x)
        np.testing.assert_array_equal(got.ids, g.ids)
        np.testing.assert_allclose(got.sims, g.sims, atol=1e-6)
    # override: forcing the wrong kind visibly changes the similarities
    forced = read_knn(tmp_path / "fceser.npz", kind="dist")
    np.testing.assert_allclose(forced.sims[:, 0], 1.0 - g.sims[:, 0], atol=1e-6)
    # unnamed pair: one integer and one float array
    np.savez(tmp_path / "anon.npz", a=g.ids, b=g.sims)
    np.testing.assert_array_equal(read_knn(tmp_path / "anon.npz").ids, g.ids)
    with pytest.raises(ParameterError, match="kind"):
        read_knn(tmp_path / "anon.npz", kind="cos")


def test_knn_autodetect_without_self_uses_row_order():
    ids = np.array([[1, 2], [0, 2], [0, 1]])
    ascending = np.array([[0.3, 0.5], [0.3, 0.4], [0.4, 0.5]], np.float32)
    assert fio.knn._decide_kind(ids, ascending, "auto", "sim", Path("x")) == "dist"
    assert fio.knn._decide_kind(ids, 1 - ascending, "auto", "dist", Path("x")) == "sim"


def test_knn_ijbb_requires_features(tmp_path):
    x, g = _graph(25, 4, seed=5)
    p = tmp_path / "knn.graph.512.bf.npy"
    np.save(p, g.ids.astype(np.int64))
    with pytest.raises(InputError, match=r"knn\.graph\.512\.bf\.npy: .*features are needed"):
        read_knn(p)
    got = read_knn(p, features=x)
    np.testing.assert_array_equal(got.ids, g.ids)
    np.testing.assert_allclose(got.sims, g.sims, atol=1e-5)
    np.testing.assert_allclose(got.sims[:, 1], np.einsum("ij,ij->i", x, x[g.ids[:, 1]]), atol=1e-6)
    with pytest.raises(InputError, match="25 rows but features have 30"):
        read_knn(p, features=_unit(30))


def test_knn_bad_inputs(tmp_path):
    ids = np.array([[0, 1], [1, 5], [2, 0]])
    np.savez(tmp_path / "oob.npz", ids=ids, sims=np.ones((3, 2), np.float32))
    with pytest.raises(InputError, match=r"oob\.npz: 1 neighbour id\(s\) out of range \[0, 3\)"):
        read_knn(tmp_path / "oob.npz")
    _, g = _graph()
    write_knn(tmp_path / "g.npz", g)
    with pytest.raises(InputError, match=r"g\.npz: kNN graph has 30 rows but features have 31"):
        read_knn(tmp_path / "g.npz", n=31)
    data = (tmp_path / "g.npz").read_bytes()
    (tmp_path / "trunc.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match=r"trunc\.npz: cannot read"):
        read_knn(tmp_path / "trunc.npz")
    np.savez(tmp_path / "k0.npz", ids=np.zeros((3, 0), np.int64), sims=np.zeros((3, 0)))
    with pytest.raises(InputError, match=r"k0\.npz: empty kNN graph"):
        read_knn(tmp_path / "k0.npz")
    np.savez(tmp_path / "other.npz", foo=np.zeros(3))
    with pytest.raises(InputError, match=r"other\.npz: not a recognised kNN file \(keys: foo\)"):
        read_knn(tmp_path / "other.npz")
    np.savez(tmp_path / "frac.npz", data=np.full((2, 2, 2), 0.5))
    with pytest.raises(InputError, match="not whole numbers"):
        read_knn(tmp_path / "frac.npz")
    (tmp_path / "g.txt").write_text("0 1\n")
    with pytest.raises(InputError, match=r"g\.txt: unsupported kNN .*supported: \.npz, \.npy"):
        read_knn(tmp_path / "g.txt")
    with pytest.raises(InputError, match="kNN output"):
        write_knn(tmp_path / "g.bin", g)


# ------------------------------------------------------------ atomic writes
def test_atomic_write_failure_keeps_old_file(tmp_path, monkeypatch):
    p = tmp_path / "f.npy"
    old = _unit(5, 3)
    write_features(p, old)
    before = p.read_bytes()

    def boom(f, arr, **kw):
        f.write(b"half written garbage")
        raise OSError("disk full")

    monkeypatch.setattr(fio.features.np, "save", boom)
    with pytest.raises(OSError, match="disk full"):
        write_features(p, _unit(50, 3))
    assert p.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["f.npy"]  # temp file removed


def test_atomic_write_helper_replaces_and_cleans(tmp_path):
    p = tmp_path / "x.txt"
    with atomic_write(p) as f:
        f.write(b"one")
    assert p.read_bytes() == b"one"
    mask = os.umask(0o022)
    os.umask(mask)
    assert p.stat().st_mode & 0o777 == 0o666 & ~mask  # not mkstemp's private 0600
    with pytest.raises(RuntimeError), atomic_write(p) as f:
        f.write(b"two")
        raise RuntimeError("interrupted")
    assert p.read_bytes() == b"one"
    assert os.listdir(tmp_path) == ["x.txt"]


def test_refuse_to_overwrite_input(tmp_path):
    p = tmp_path / "feat.npy"
    write_features(p, _unit())
    before = p.read_bytes()
    with pytest.raises(InputError, match=r"refusing to overwrite input file .*feat\.npy"):
        write_features(p, _unit(5), protect=[p])
    # the same file through another spelling or a symlink
    (tmp_path / "sub").mkdir()
    with pytest.raises(InputError, match="refusing to overwrite"):
        check_output_path(tmp_path / "sub" / ".." / "feat.npy", [p])
    (tmp_path / "link.npy").symlink_to(p)
    with pytest.raises(InputError, match="refusing to overwrite"):
        write_labels(tmp_path / "link.npy", np.arange(3), protect=[p])
    with pytest.raises(InputError, match="refusing to overwrite"):
        write_knn(p.with_suffix(".npz"), _graph()[1], protect=[str(p.with_suffix(".npz"))])
    assert p.read_bytes() == before
    with pytest.raises(InputError, match="output directory .* does not exist"):
        write_labels(tmp_path / "missing" / "l.meta", np.arange(3))
    assert check_output_path(tmp_path / "new.npy", [p, None]) == tmp_path / "new.npy"


# --------------------------------------------------------------- real data
@pytest.mark.skipif(not (ORL / "dlib128_features.npy").exists(), reason="ORL data absent")
def test_real_orl_features_and_labels():
    x = read_features(ORL / "dlib128_features.npy")
    lab = read_labels(ORL / "labels.meta", n=x.shape[0])
    assert x.shape == (400, 128) and x.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-5)
    assert len(np.unique(lab)) == 40
    assert np.all(np.bincount(lab)[1:] == 10)


def test_knn_read_sorts_ties_and_missing_like_from_search(tmp_path):
    # rows: tie out of id order, missing entry not last, self not first, already canonical
    ids = np.array([[0, 2, 1], [1, -1, 0], [0, 2, 1], [3, 0, 2]])
    sims = np.array(
        [[1.0, 0.5, 0.5], [1.0, 0.0, 0.3], [0.4, 1.0, 0.2], [1.0, 0.6, 0.5]], np.float32
    )
    np.savez(tmp_path / "u.npz", ids=ids, sims=sims)
    got = read_knn(tmp_path / "u.npz", kind="sim")
    ref = KnnGraph.from_search(ids, sims)
    np.testing.assert_array_equal(got.ids, ref.ids)
    np.testing.assert_array_equal(got.sims, ref.sims)
    np.testing.assert_array_equal(got.ids, [[0, 1, 2], [1, 0, -1], [2, 0, 1], [3, 0, 2]])
    assert not _noncanonical_rows(ref.ids, ref.sims, 0).any()
    np.testing.assert_array_equal(np.flatnonzero(_noncanonical_rows(ids, sims, 0)), [0, 1, 2])


def test_knn_read_fixes_only_bad_blocks_equals_from_search(tmp_path):
    x = _unit(2500, 6, seed=7)
    g = build_knn(x, 4, index="numpy")
    ids, sims = g.ids.copy(), g.sims.copy()
    ids[2100, [1, 2]] = ids[2100, [2, 1]]  # out of order in the third 1024-row block
    sims[2100, [1, 2]] = sims[2100, [2, 1]]
    sims[5, 2] = sims[5, 1]  # a tie whose id order may be wrong
    ids[7, 0], ids[7, 1] = ids[7, 1], ids[7, 0]  # self not first
    sims[7, 0], sims[7, 1] = sims[7, 1], sims[7, 0]
    np.savez(tmp_path / "b.npz", ids=ids, sims=sims)
    got = read_knn(tmp_path / "b.npz", n=2500)
    ref = KnnGraph.from_search(ids, sims)
    np.testing.assert_array_equal(got.ids, ref.ids)
    np.testing.assert_array_equal(got.sims, ref.sims)
    np.testing.assert_array_equal(got.ids[2100], g.ids[2100])


def test_write_text_creates_parents_and_replaces(tmp_path):
    path = tmp_path / "a" / "b" / "r.json"
    assert write_text(path, "one\n") == path
    assert path.read_text() == "one\n"
    write_text(str(path), "two")
    assert path.read_text() == "two"
    assert sorted(p.name for p in path.parent.iterdir()) == ["r.json"]  # no temporary left


def test_large_npy_features_are_mapped_read_only_not_copied(tmp_path, monkeypatch):
    import faceclust.io.features as feats_mod
    from faceclust.methods import get_method
    from faceclust.synth import make_faces

    monkeypatch.setattr(feats_mod, "MMAP_MIN_BYTES", 0)  # every file counts as large
    x, _ = make_faces(1500, 30, 32, seed=4)
    path = tmp_path / "f.npy"
    np.save(path, x.astype(np.float32))
    got = feats_mod.read_features(path)
    # a read-only view of the mapped file, used in place (no copy owns the data)
    assert not got.flags.writeable and not got.flags.owndata
    np.testing.assert_array_equal(got, x.astype(np.float32))
    # a method runs on the mapped array and labels it as it labels an in-memory copy
    mapped = get_method("auto")().fit_predict(got)
    assert np.array_equal(mapped, get_method("auto")().fit_predict(np.array(x, dtype=np.float32)))
    # rows that need normalising give a normalised copy; the file is not touched
    np.save(path, 3.0 * x.astype(np.float32))
    got = feats_mod.read_features(path)
    assert got.flags.writeable and got.flags.owndata
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(np.load(path), 3.0 * x.astype(np.float32))


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="needs Linux /proc")
def test_validating_memory_mapped_features_leaves_them_out_of_resident_memory(tmp_path):
    """read_features memory-maps .npy files; the validation scan touches every page, and those
    pages are handed back (FC-ES on a cached graph never reads the features again)."""
    from faceclust._validation import check_features

    def rss() -> int:
        return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    x = np.random.default_rng(0).standard_normal((131_072, 128)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    np.save(tmp_path / "x.npy", x)
    del x
    before = rss()
    feats = fio.read_features(tmp_path / "x.npy")  # 64 MiB, mapped
    assert rss() - before < 24 * 2**20
    again = check_features(feats)
    assert rss() - before < 24 * 2**20  # not the 64 MiB the scans touched (scan buffers only)
    assert float(again[-1] @ again[-1]) == pytest.approx(1.0, abs=1e-5)  # still readable
