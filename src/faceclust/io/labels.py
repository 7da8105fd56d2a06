"""Label files: one integer per row as ``.meta``/``.txt`` text or ``.npy``."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

from .._validation import check_labels
from ..errors import InputError
from ..fsutil import PathLike, atomic_write, check_output_path
from .common import check_ext, check_input_file, load_npy, one_line

LABEL_EXTENSIONS: tuple[str, ...] = (".meta", ".txt", ".npy")


def read_labels(path: PathLike, n: int | None = None) -> np.ndarray:
    """Read one integer label per row from ``.meta``/``.txt`` text or ``.npy``; int64.

    Trailing blank lines are ignored; any other blank or non-integer line is an
    error naming its line number. With ``n`` the count must match the feature rows.
    """
    path = check_input_file(path)
    ext = check_ext(path, LABEL_EXTENSIONS, "label")
    if ext == ".npy":
        arr = load_npy(path)
    else:
        arr = _parse_label_text(path)
    count = arr.size if (arr.ndim == 2 and 1 in arr.shape) or arr.ndim == 0 else len(arr)
    if n is not None and count != n:
        raise InputError(f"{path} has {count} labels but features have {n} rows")
    return check_labels(arr, n, source=str(path))


def _parse_label_text(path: Path) -> np.ndarray:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({one_line(exc)})") from exc
    lines = data.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        return np.zeros(0, dtype=np.int64)
    try:
        return np.array(lines).astype(np.int64)
    except (ValueError, OverflowError):
        for i, line in enumerate(lines, start=1):
            try:
                int(line)
            except ValueError:
                shown = line.decode(errors="replace").strip()[:40]
                raise InputError(f"{path}: line {i} is not an integer label: {shown!r}") from None
        raise InputError(f"{path}: labels do not fit in 64-bit integers") from None


def write_labels(path: PathLike, labels: np.ndarray, *, protect: Iterable[PathLike] = ()) -> None:
    """Write labels as text (``.meta``/``.txt``, one integer a line) or int64 ``.npy``."""
    path = Path(path)
    ext = check_ext(path, LABEL_EXTENSIONS, "label output")
    check_output_path(path, protect)
    arr = check_labels(labels, source=f"labels for {path}")
    with atomic_write(path) as f:
        if ext == ".npy":
            np.save(f, arr, allow_pickle=False)
        else:
            for start in range(0, len(arr), 1 << 20):
                block = arr[start : start + (1 << 20)].tolist()
                f.write(("\n".join(map(str, block)) + "\n").encode())
