"""Face index pairs (must-link / cannot-link constraints): text or ``.npy``."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..fsutil import PathLike
from .common import check_input_file, load_npy, one_line

_PAIR_SPLIT = re.compile(r"\s*,\s*|\s+")


def read_pairs(path: PathLike, n: int | None = None) -> np.ndarray:
    """Read face index pairs (must-link / cannot-link constraints) as int64 ``[P, 2]``.

    ``.npy``: an integer array of shape (P, 2). Any other extension is text: one
    pair a line, ``i,j`` or ``i j`` (comma and/or whitespace), ``#`` starts a
    comment, blank lines are ignored; an empty file gives no pairs. Indices are
    rows of the features, so with ``n`` each must be in ``[0, n)``. A pair naming
    one face twice is an error. Problems raise :class:`InputError` naming the file
    and the line (text) or row (``.npy``).
    """
    path = check_input_file(path)
    if path.suffix.lower() == ".npy":
        arr = load_npy(path)
        if arr.size == 0 and arr.ndim <= 2:
            arr = arr.reshape(0, 2)
        if arr.ndim != 2 or arr.shape[1] != 2:
            raise InputError(f"{path}: expected an array of index pairs of shape (P, 2), "
                             f"got shape {arr.shape}")
        if arr.dtype.kind not in "iu":
            raise InputError(f"{path}: face indices must be integers, got dtype {arr.dtype}")
        pairs, lines = arr.astype(np.int64), None
    else:
        pairs, lines = _parse_pair_text(path)

    def where(r: int) -> str:
        return f"row {r}" if lines is None else f"line {lines[r]}"

    if n is not None and len(pairs):
        bad = (pairs < 0) | (pairs >= n)
        if bad.any():
            r = int(np.flatnonzero(bad.any(axis=1))[0])
            v = int(pairs[r][bad[r]][0])
            raise InputError(f"{path}: {where(r)}: face index {v} out of range [0, {n}) "
                             f"({int(bad.any(axis=1).sum())} pair(s) out of range)")
    same = pairs[:, 0] == pairs[:, 1]
    if same.any():
        r = int(np.flatnonzero(same)[0])
        raise InputError(f"{path}: {where(r)}: pair ({pairs[r, 0]}, {pairs[r, 1]}) "
                         "names the same face twice")
    return pairs


def _parse_pair_text(path: Path) -> tuple[np.ndarray, list[int]]:
    """Pairs from a text file, and the line number each came from."""
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({one_line(exc)})") from exc
    except UnicodeDecodeError:
        raise InputError(f"{path}: not a text file of index pairs (and not .npy)") from None
    rows: list[tuple[int, int]] = []
    lines: list[int] = []
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        fields = _PAIR_SPLIT.split(line)
        shown = line[:40]
        if len(fields) != 2:
            raise InputError(f"{path}: line {lineno}: expected two face indices 'i,j', "
                             f"got {len(fields)} field(s): {shown!r}")
        try:
            i, j = (int(f) for f in fields)
        except ValueError:
            raise InputError(f"{path}: line {lineno}: face indices must be integers, "
                             f"got {shown!r}") from None
        rows.append((i, j))
        lines.append(lineno)
    try:
        pairs = np.array(rows, dtype=np.int64).reshape(-1, 2)
    except OverflowError:
        raise InputError(f"{path}: face indices do not fit in 64-bit integers") from None
    return pairs, lines
