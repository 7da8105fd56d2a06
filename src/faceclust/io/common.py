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


#: First bytes of a .npy file and of a zip archive (.npz).
_NPY_MAGIC = b"\x93NUMPY"
_ZIP_MAGIC = b"PK"
#: What every refusal of a pickled array says (faceclust never unpickles: a pickle can run code).
NO_PICKLE = "faceclust never unpickles files (a pickle can run code)"


def pickled_array_error(path: Path, key: str | None = None) -> InputError:
    """The one-line refusal for an object (pickled) array in a .npy/.npz file."""
    where = f"array {key!r}" if key is not None else "the array"
    return InputError(
        f"{path}: {where} is a pickled object array; {NO_PICKLE}: save it as a numeric array"
    )


def _head(path: Path, n: int = 8) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read(n)
    except OSError:
        return b""


def load_npy(path: Path, *, mmap: bool = False) -> np.ndarray:
    """``np.load`` of a ``.npy`` file without pickle; corrupt files become InputError.

    A file without the NumPy header (a text file renamed ``.npy``) is named as such
    instead of numpy's advice to enable pickle. With ``mmap`` the array is mapped
    read-only (``mmap_mode="r"``): pages are read as used and can be dropped by the
    kernel, so a 5 GB feature file is not a second copy in memory.
    """
    head = _head(path)
    if head and not head.startswith(_NPY_MAGIC) and not head.startswith(_ZIP_MAGIC):
        raise InputError(
            f"{path}: not a NumPy .npy file (no .npy header; a text or other file renamed .npy?)"
        )
    try:
        arr = np.load(path, allow_pickle=False, mmap_mode="r" if mmap else None)
    except ValueError as exc:
        if "allow_pickle" in str(exc):
            raise pickled_array_error(path) from None
        raise InputError(f"{path}: cannot read .npy file ({one_line(exc)})") from exc
    except (EOFError, OSError) as exc:
        raise InputError(f"{path}: cannot read .npy file ({one_line(exc)})") from exc
    if not isinstance(arr, np.ndarray):  # a .npz archive under a .npy name
        arr.close()
        raise InputError(f"{path}: is a .npz archive, not a .npy array file")
    return arr


def open_npz(path: Path):
    head = _head(path)
    if head and not head.startswith(_ZIP_MAGIC) and not head.startswith(_NPY_MAGIC):
        raise InputError(
            f"{path}: not a NumPy .npz archive (no zip header; a text or other file renamed .npz?)"
        )
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
    except ValueError as exc:
        if "allow_pickle" in str(exc):
            raise pickled_array_error(path, key) from None
        raise InputError(f"{path}: cannot read array {key!r} ({one_line(exc)})") from exc
    except (EOFError, OSError, zipfile.BadZipFile, KeyError) as exc:
        raise InputError(f"{path}: cannot read array {key!r} ({one_line(exc)})") from exc


def one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
