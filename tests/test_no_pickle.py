"""No faceclust reader ever unpickles: pickled payloads through every reader (API and CLI).

Each payload would create a marker file when unpickled; every reader must refuse it
with a one-line error (exit status 2 from the CLI) and the marker must never appear.
"""

from __future__ import annotations

import pickle
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from faceclust.cli import main
from faceclust.errors import FaceclustError
from faceclust.io import read_features, read_knn, read_labels, read_pairs

from .conftest import unit_rows


class _Payload:
    """Unpickling this calls ``open(marker, "w")``: the marker file proves code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _obj(marker: Path, shape=(4,)) -> np.ndarray:
    arr = np.empty(shape, dtype=object)
    arr.ravel()[:] = [_Payload(marker)] * arr.size
    return arr


def _payload_files(d: Path, marker: Path) -> dict[str, Path]:
    """One file per reader and layout, each holding a pickle that would touch ``marker``."""
    files: dict[str, Path] = {}

    def save(name: str, arr: np.ndarray) -> None:
        np.save(d / name, arr, allow_pickle=True)
        files[name] = d / name

    def savez(name: str, **arrays: np.ndarray) -> None:
        np.savez(d / name, **arrays)
        files[name] = d / name

    save("feat_obj.npy", _obj(marker, (4, 3)))
    savez("feat_obj.npz", features=_obj(marker, (4, 3)))
    savez("knn_ltc.npz", data=_obj(marker, (4,)))
    savez("knn_pair.npz", ids=_obj(marker, (4, 2)), sims=_obj(marker, (4, 2)))
    save("knn_ijbb.npy", _obj(marker, (4, 2)))
    save("labels_obj.npy", _obj(marker, (4,)))
    save("pairs_obj.npy", _obj(marker, (2, 2)))
    # a bare pickle stream under each extension (what a renamed pickle looks like)
    raw = pickle.dumps(_Payload(marker))
    for name in ("raw.npy", "raw.npz", "raw.meta", "raw.csv", "raw_knn.npz", "raw_faces.npz"):
        (d / name).write_bytes(raw)
        files[name] = d / name
    # a faces file (faceclust embed) whose arrays are pickles
    savez("faces_obj.npz", faceclust_faces=np.array(1), embeddings=_obj(marker, (4, 3)),
          paths=_obj(marker, (4,)), meta=_obj(marker, ()))
    return files


@pytest.fixture()
def payloads(tmp_path):
    marker = tmp_path / "PWNED"
    files = _payload_files(tmp_path, marker)
    yield files, marker
    assert not marker.exists(), "a pickle payload ran"


def _assert_one_line(exc: BaseException) -> None:
    text = str(exc)
    assert "\n" not in text and text.strip(), text
    assert "allow_pickle" not in text, text  # never advise enabling pickle


@pytest.mark.parametrize("reader,names", [
    (read_features, ["feat_obj.npy", "feat_obj.npz", "raw.npy", "raw.npz"]),
    (read_knn, ["knn_ltc.npz", "knn_pair.npz", "knn_ijbb.npy", "raw_knn.npz", "raw.npy"]),
    (read_labels, ["labels_obj.npy", "raw.npy", "raw.meta"]),
    (read_pairs, ["pairs_obj.npy", "raw.npy", "raw.csv"]),
])
def test_api_readers_refuse_pickles(payloads, reader, names):
    files, marker = payloads
    for name in names:
        kwargs = {"features": unit_rows(np.ones((4, 3)) + np.eye(4, 3))} if "ijbb" in name else {}
        with pytest.raises(FaceclustError) as ei:
            reader(files[name], **kwargs)
        _assert_one_line(ei.value)
        assert not marker.exists(), name


def test_faces_file_reader_refuses_pickles(payloads):
    photos = pytest.importorskip("faceclust.photos")
    files, marker = payloads
    for name in ("faces_obj.npz", "raw_faces.npz"):
        with pytest.raises(FaceclustError) as ei:
            photos.read_faces(files[name])
        _assert_one_line(ei.value)
    assert not marker.exists()


def test_cli_refuses_pickles_exit_2(payloads, tmp_path):
    files, marker = payloads
    good = tmp_path / "good.npy"
    np.save(good, unit_rows(np.random.default_rng(0).normal(size=(4, 3))))
    (tmp_path / "good.meta").write_text("0\n0\n1\n1\n")
    out = str(tmp_path / "out.meta")
    runs = [
        *(["cluster", str(files[f]), "--out", out] for f in
          ("feat_obj.npy", "feat_obj.npz", "raw.npy", "raw.npz", "faces_obj.npz")),
        *(["cluster", str(good), "--knn", str(files[f]), "--out", out] for f in
          ("knn_ltc.npz", "knn_pair.npz", "knn_ijbb.npy", "raw_knn.npz")),
        ["cluster", str(good), "--gt", str(files["labels_obj.npy"]), "--out", out],
        ["cluster", str(good), "--must-link", str(files["pairs_obj.npy"]), "--out", out],
        ["cluster", str(good), "--cannot-link", str(files["raw.csv"]), "--out", out],
        ["eval", "--pred", str(files["raw.meta"]), "--gt", str(tmp_path / "good.meta")],
        ["eval", "--pred", str(tmp_path / "good.meta"), "--gt", str(files["labels_obj.npy"])],
        ["knn", str(files["feat_obj.npy"]), "--k", "2", "--out", str(tmp_path / "k.npz")],
        ["bench", str(good), "--gt", str(files["raw.npy"]), "--out", str(tmp_path / "b")],
    ]
    for args in runs:
        res = CliRunner().invoke(main, args)
        assert res.exit_code == 2, (args, res.output)
        lines = res.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("faceclust: error:"), (args, res.output)
        assert "allow_pickle" not in res.output
        assert not marker.exists(), args
    assert not Path(out).exists()


def test_model_dir_with_pickled_weights_is_refused(tmp_path):
    """A checkpoint whose weights file is a torch pickle: refused, never loaded.

    Every model directory (gcn-v, gcn-ve, ada-nets) is read by nn.checkpoint.load_checkpoint:
    safetensors + JSON only."""
    torch = pytest.importorskip("torch")
    from faceclust.nn.checkpoint import load_checkpoint, save_checkpoint

    wpath, _ = save_checkpoint(tmp_path, "m", torch.nn.Linear(3, 2), kind="test", config={"d": 3})
    marker = tmp_path / "PWNED"
    torch.save({"w": _Payload(marker)}, wpath)  # a zip of pickles, as torch writes them
    with pytest.raises(FaceclustError) as ei:
        load_checkpoint(tmp_path, "m", kind="test")
    _assert_one_line(ei.value)
    wpath.write_bytes(pickle.dumps(_Payload(marker)))  # a bare pickle
    with pytest.raises(FaceclustError):
        load_checkpoint(tmp_path, "m", kind="test")
    assert not marker.exists()


def test_no_unpickling_call_in_the_source():
    """Belt and braces: no ``allow_pickle=True``, ``torch.load`` or ``pickle.load`` in src/."""
    src = Path(__file__).resolve().parents[1] / "src" / "faceclust"
    bad = re.compile(r"allow_pickle\s*=\s*True|torch\.load\(|pickle\.loads?\(|joblib\.load\(")
    hits = [f"{p}:{i}" for p in src.rglob("*.py")
            for i, line in enumerate(p.read_text().splitlines(), 1) if bad.search(line)]
    assert not hits, hits


def test_core_imports_do_not_load_torch_and_missing_torch_is_one_line():
    """`import faceclust`, its methods and the CLI work without the learn extra; without
    torch, the supervised code says which extra to install, in one line."""
    code = (
        "import sys, faceclust, faceclust.methods, faceclust.cli, faceclust.io\n"
        "assert 'torch' not in sys.modules and 'safetensors' not in sys.modules\n"
        "sys.modules['torch'] = None\n"
        "from faceclust.errors import MissingDependencyError\n"
        "try:\n    import faceclust.nn\nexcept MissingDependencyError as e:\n"
        "    assert 'faceclust[learn]' in str(e) and '\\n' not in str(e); print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert out.stdout.strip() == "ok"
