"""Checks shared by the readers and writers of :mod:`faceclust.io`: extensions, input files,
``.npy``/``.npz`` loading without pickle, one-line error text."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..fsutil import PathLike


def check_ext(path: Path, allowed: tuple[str, ...], what: str) -> str:
    ext = path.suffix.lower()
    if ext not in allowed:
        raise InputError(
            f"{path}: unsupported {what} file extension {ext or '(none)'!r} "
            f"(supported: {', '.join(allowed)})"
        )
    return ext


def check_input_file(path: PathLike) -> Path:
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{path}: is a directory, expected a file")
    if not path.exists():
        raise InputError(f"{path}: no such file")
    return path


def load_npy(path: Path) -> np.ndarray:
    """``np.load`` of a ``.npy`` file without pickle; corrupt files become InputError."""
    try:
        arr = np.load(path, allow_pickle=False)
    except (ValueError, EOFError, OSError) as exc:
        raise InputError(f"{path}: cannot read .npy file ({one_line(exc)})") from exc
    if not isinstance(arr, np.ndarray):  # a .npz archive under a .npy name
        arr.close()
        raise InputError(f"{path}: is a .npz archive, not a .npy array file")
    return arr


def open_npz(path: Path):
    try:
        z = np.load(path, allow_pickle=False)
    except (ValueError, EOFError, OSError, zipfile.BadZipFile) as exc:
        raise InputError(f"{path}: cannot read .npz file ({one_line(exc)})") from exc
    if not isinstance(z, np.lib.npyio.NpzFile):
        raise InputError(f"{path}: is not a .npz archive (it holds a single .npy array)")
    return z


def npz_get(z, key: str, path: Path) -> np.ndarray:
    try:
        return z[key]
    except (ValueError, EOFError, OSError, zipfile.BadZipFile, KeyError) as exc:
        raise InputError(f"{path}: cannot read array {key!r} ({one_line(exc)})") from exc


def one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
