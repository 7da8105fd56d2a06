"""A first user's bad input, walked through the CLI: every case ends in exit status 2 with
one line ``faceclust: error: ...`` (or a documented result), and no input file changes.

The cases are those of issue 13's "done when": NaN/inf/zero rows, empty, truncated,
renamed, 1-D and object files, N = 1..4, k <= 0 and k >= N, identical rows, wrong label
lengths, non-integer labels, output = input through a symlink or a hard link, missing
and unwritable output folders, mismatched or out-of-range kNN files, unknown methods and
parameters, bad parameter types, unicode paths.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from faceclust.cli import main
from faceclust.io import read_labels
from faceclust.synth import make_faces


@pytest.fixture(scope="module")
def d(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("bad")
    x, y = make_faces(60, 8, 16, seed=0)
    np.save(d / "x.npy", x)
    (d / "y.meta").write_text("\n".join(map(str, y)) + "\n")
    (d / "short.meta").write_text("0\n1\n")
    (d / "frac.npy").write_bytes(b"")
    np.save(d / "frac.npy", np.linspace(0, 1, 60))
    (d / "words.meta").write_text("0\n1\nbob\n" + "1\n" * 57)
    bad = x.copy()
    bad[3, 2] = np.nan
    np.save(d / "nan.npy", bad)
    bad = x.copy()
    bad[5, 0] = np.inf
    np.save(d / "inf.npy", bad)
    bad = x.copy()
    bad[7] = 0
    np.save(d / "zero.npy", bad)
    np.save(d / "empty.npy", np.zeros((0, 16), np.float32))
    (d / "zero_bytes.npy").write_bytes(b"")
    (d / "trunc.npy").write_bytes((d / "x.npy").read_bytes()[:-100])
    (d / "text.npy").write_text("0.1 0.2 0.3\n0.4 0.5 0.6\n")
    np.save(d / "oned.npy", x[:, 0])
    obj = np.empty((4, 2), dtype=object)
    obj[:] = 1.0
    np.save(d / "obj.npy", obj, allow_pickle=True)
    for n in (1, 2, 3, 4):
        np.save(d / f"n{n}.npy", x[:n])
    np.save(d / "same.npy", np.repeat(x[:1], 40, axis=0))
    make_faces(40, 8, 128, seed=1)[0].astype("<f4").tofile(d / "x.bin")
    # kNN files: the right one, one for other rows, one with ids out of range
    assert CliRunner().invoke(main, ["knn", str(d / "x.npy"), "--k", "10",
                                     "--out", str(d / "k.npz")]).exit_code == 0
    data = np.load(d / "k.npz")["data"]
    np.savez(d / "k_rows.npz", data=data[:50])
    wild = data.copy()
    wild[3, 0, 4] = 999
    np.savez(d / "k_range.npz", data=wild)
    (d / "link.npy").symlink_to(d / "x.npy")
    os.link(d / "x.npy", d / "hard.npy")
    (d / "données").mkdir()
    np.save(d / "données" / "фото.npy", x)
    return d


def _hashes(d: Path) -> dict[str, str]:
    return {str(p.relative_to(d)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(d.rglob("*")) if p.is_file() and not p.is_symlink()}


#: (args, text the one-line error contains). ``{d}`` is the data folder.
ERRORS = [
    (["cluster", "{d}/nan.npy", "--out", "{d}/o.meta"], "NaN"),
    (["cluster", "{d}/inf.npy", "--out", "{d}/o.meta"], "inf"),
    (["cluster", "{d}/zero.npy", "--out", "{d}/o.meta"], "zero norm"),
    (["cluster", "{d}/empty.npy", "--out", "{d}/o.meta"], "empty"),
    (["cluster", "{d}/zero_bytes.npy", "--out", "{d}/o.meta"], "zero_bytes.npy"),
    (["cluster", "{d}/trunc.npy", "--out", "{d}/o.meta"], "cannot read"),
    (["cluster", "{d}/text.npy", "--out", "{d}/o.meta"], "renamed"),
    (["cluster", "{d}/oned.npy", "--out", "{d}/o.meta"], "2-D"),
    (["cluster", "{d}/obj.npy", "--out", "{d}/o.meta"], "pickled"),
    (["cluster", "{d}/missing.npy", "--out", "{d}/o.meta"], "missing.npy"),
    (["cluster", "{d}", "--out", "{d}/o.meta"], "directory"),
    (["knn", "{d}/x.npy", "--k", "0", "--out", "{d}/o.npz"], "k must be >= 1"),
    (["knn", "{d}/x.npy", "--k", "-3", "--out", "{d}/o.npz"], "k must be >= 1"),
    (["knn", "{d}/x.npy", "--k", "60", "--out", "{d}/o.npz"], "smaller than the number"),
    (["knn", "{d}/x.npy", "--k", "5", "--out", "{d}/o.txt"], "must end in .npz"),
    (["knn", "{d}/x.npy", "--k", "5", "--out", "{d}/k.npz"], "--force"),
    (["knn", "{d}/n1.npy", "--k", "1", "--out", "{d}/o.npz"], "smaller than the number"),
    (["cluster", "{d}/x.npy", "--method", "knn-cc", "--set", "k=0", "--out", "{d}/o.meta"], "k"),
    (["cluster", "{d}/x.npy", "--method", "knn-cc", "--set", "k=60", "--out", "{d}/o.meta"],
     "smaller than the number"),
    (["cluster", "{d}/x.npy", "--gt", "{d}/short.meta", "--out", "{d}/o.meta"], "2 labels"),
    (["eval", "--pred", "{d}/short.meta", "--gt", "{d}/y.meta"], "--pred"),
    (["eval", "--pred", "{d}/y.meta", "--gt", "{d}/short.meta"], "--gt"),
    (["eval", "--pred", "{d}/words.meta", "--gt", "{d}/y.meta"], "line 3"),
    (["eval", "--pred", "{d}/frac.npy", "--gt", "{d}/y.meta"], "integers"),
    (["cluster", "{d}/x.npy", "--out", "{d}/link.npy"], "overwrite"),
    (["cluster", "{d}/x.npy", "--out", "{d}/hard.npy"], "overwrite"),
    (["cluster", "{d}/link.npy", "--out", "{d}/x.npy"], "overwrite"),
    (["cluster", "{d}/x.npy", "--out", "{d}/nowhere/o.meta"], "does not exist"),
    (["cluster", "{d}/x.npy", "--out", "{d}/o.csv"], "must end in"),
    (["cluster", "{d}/x.npy", "--knn", "{d}/k_rows.npz", "--out", "{d}/o.meta"], "rows"),
    (["cluster", "{d}/x.npy", "--knn", "{d}/k_range.npz", "--out", "{d}/o.meta"], "out of range"),
    (["cluster", "{d}/x.npy", "--method", "fc-es", "--knn", "{d}/k.npz", "--out", "{d}/o.meta"],
     "only k=10"),
    (["cluster", "{d}/x.npy", "--method", "nope", "--out", "{d}/o.meta"], "unknown method"),
    (["cluster", "{d}/x.npy", "--method", "", "--out", "{d}/o.meta"], "empty"),
    (["cluster", "{d}/x.npy", "--set", "bogus=1", "--out", "{d}/o.meta"], "no parameter bogus"),
    (["cluster", "{d}/x.npy", "--set", "k=abc", "--out", "{d}/o.meta"], "k must be"),
    (["cluster", "{d}/x.npy", "--set", "alpha=[1]", "--out", "{d}/o.meta"], "alpha must be"),
    (["cluster", "{d}/x.npy", "--set", "k=2.5", "--out", "{d}/o.meta"], "k must be"),
    (["cluster", "{d}/x.npy", "--set", "nokey", "--out", "{d}/o.meta"], "key=value"),
    (["cluster", "{d}/x.bin", "--dim", "64", "--out", "{d}/o.meta"], "wrong --dim"),
    (["cluster", "{d}/x.bin", "--dim", "256", "--out", "{d}/o.meta"], "wrong --dim"),
    (["cluster", "{d}/x.bin", "--out", "{d}/o.meta"], "--dim"),
    (["bench", "{d}/x.npy", "--gt", "{d}/y.meta", "--methods", "auto,nope", "--out", "{d}/b"],
     "unknown method"),
]


@pytest.mark.parametrize("args,text", ERRORS, ids=[" ".join(a[:2]) + f" {t}" for a, t in ERRORS])
def test_bad_input_is_one_line_exit_2_inputs_unchanged(d, args, text):
    before = _hashes(d)
    res = CliRunner().invoke(main, [a.format(d=d) for a in args])
    assert res.exit_code == 2, res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("faceclust: error: "), res.output
    assert text in lines[0], lines[0]
    assert "Traceback" not in res.output
    assert _hashes(d) == before
    assert not (d / "o.meta").exists() and not (d / "o.npz").exists()


def test_unwritable_output_folder_fails_before_work(d, tmp_path):
    """Nothing is computed when the output cannot be written; the user's path is named.

    Tests run as root here, for whom a read-only folder is writable: a path under a
    regular file is unwritable for everyone and is used instead (plus a chmod'ed
    folder when not root)."""
    targets = [d / "x.npy" / "o.meta"]
    if os.geteuid() != 0:
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        targets.append(ro / "o.meta")
    for out in targets:
        before = _hashes(d)
        res = CliRunner().invoke(main, ["cluster", str(d / "x.npy"), "--out", str(out)])
        assert res.exit_code == 2, res.output
        assert len(res.output.strip().splitlines()) == 1 and str(out.name) in res.output
        assert "auto:" not in res.output  # no clustering summary: it never ran
        assert _hashes(d) == before


@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_tiny_collections_have_a_result(d, tmp_path, n):
    """N = 1..4 (documented in docs/degenerate.md): every face is its own cluster."""
    out = tmp_path / f"o{n}.meta"
    res = CliRunner().invoke(main, ["cluster", str(d / f"n{n}.npy"), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert read_labels(out).tolist() == list(range(n))


def test_identical_rows_are_one_cluster(d, tmp_path):
    for method in ("auto", "fc-es", "aro", "dbscan"):
        out = tmp_path / f"{method}.meta"
        res = CliRunner().invoke(main, ["cluster", str(d / "same.npy"), "--method", method,
                                        "--out", str(out)])
        assert res.exit_code == 0, res.output
        assert set(read_labels(out).tolist()) == {0}


def test_unicode_paths(d, tmp_path):
    out = tmp_path / "résultats" / "étiquettes.meta"
    out.parent.mkdir()
    res = CliRunner().invoke(main, ["cluster", str(d / "données" / "фото.npy"), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert len(read_labels(out)) == 60


def test_bench_exits_nonzero_when_a_method_fails(d, tmp_path):
    res = CliRunner().invoke(main, ["bench", str(d / "x.npy"), "--gt", str(d / "y.meta"),
                                    "--knn", str(d / "k.npz"), "--methods", "knn-cc,fc-es",
                                    "--out", str(tmp_path / "b")])
    assert res.exit_code == 1, res.output
    assert "failed: fc-es" in res.output
    ok = CliRunner().invoke(main, ["bench", str(d / "x.npy"), "--gt", str(d / "y.meta"),
                                   "--methods", "knn-cc", "--out", str(tmp_path / "b2")])
    assert ok.exit_code == 0, ok.output


def test_knn_defaults_to_index_auto(d, tmp_path):
    res = CliRunner().invoke(main, ["knn", str(d / "x.npy"), "--k", "5",
                                    "--out", str(tmp_path / "a.npz")])
    assert res.exit_code == 0 and "kNN (numpy)" in res.output  # auto: exact numpy at N=60
    helptext = CliRunner().invoke(main, ["knn", "--help"]).output
    assert "[default: auto]" in helptext and "100,000" in helptext
    for opt in ("--k", "--index", "--hnsw-m", "--cache-dir", "--force"):  # every option says
        block = helptext.split(opt, 1)[1].split("\n  --", 1)[0]
        assert len(block.split()) > 2, opt


def test_write_error_names_the_users_path():
    """An OSError on the hidden temporary file is reported under the user's file name."""
    from faceclust.cli._app import _one_line

    msg = _one_line(OSError(28, "No space left on device", "/data/out/.labels.meta.k2j3h.tmp"))
    assert msg == "/data/out/labels.meta: No space left on device"


def test_disk_full_is_one_line(d, tmp_path, monkeypatch):
    """A write failing mid-way (disk full) is one line naming --out; nothing half-written."""
    import faceclust.io.labels as labels_mod

    def full(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(labels_mod.np, "save", full)
    out = tmp_path / "o.npy"
    res = CliRunner().invoke(main, ["cluster", str(d / "x.npy"), "--method", "knn-cc",
                                    "--out", str(out)])
    assert res.exit_code == 2, res.output
    line = res.output.strip().splitlines()[-1]
    assert line == f"faceclust: error: {out}: cannot write: No space left on device"
    assert not out.exists() and not list(tmp_path.glob(".o.npy.*"))


def test_free_space_is_checked_before_work(tmp_path, monkeypatch):
    from collections import namedtuple

    from faceclust.cli import _preflight

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(_preflight.shutil, "disk_usage", lambda p: usage(10, 9, 1))
    res = CliRunner().invoke(main, ["synth", "--n", "100", "--ids", "5", "--dim", "16",
                                    "--out", str(tmp_path / "s")])
    assert res.exit_code == 2 and "is free" in res.output, res.output
    assert not list(tmp_path.iterdir())
