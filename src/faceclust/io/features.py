"""Feature matrices: ``.npy``, ``.npz`` and learn-to-cluster ``.bin``."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

from .._validation import check_features
from ..errors import InputError, ParameterError
from ..fsutil import PathLike, atomic_write, check_output_path
from .common import check_ext, check_input_file, load_npy, npz_get, open_npz
from .labels import read_labels

FEATURE_EXTENSIONS: tuple[str, ...] = (".npy", ".npz", ".bin")
_FEATURE_KEYS = ("features", "feats", "embeddings")


MMAP_MIN_BYTES = 64 << 20  # .npy files from this size on are mapped, not read


def read_features(path: PathLike, *, dim: int | None = None, normalize: bool = True) -> np.ndarray:
    """Read an (N, D) embedding matrix; return validated float32 rows (L2-normalised).

    Parameters
    ----------
    path:
        ``.npy``, ``.npz`` (one 2-D array or key ``features``/``feats``/
        ``embeddings``) or learn-to-cluster ``.bin`` (raw little-endian
        float32, row-major).
    dim:
        D for ``.bin`` files. Without it D is inferred from ``foo.meta`` beside
        ``foo.bin`` (N = number of label lines, D = size / (4 N)). When a
        ``.meta`` gives N the file must hold exactly N*D floats.
    normalize:
        Rescale rows to unit length (rows with NaN/inf or zero norm are always
        rejected, naming the first offending rows).
    """
    path = check_input_file(path)
    ext = check_ext(path, FEATURE_EXTENSIONS, "feature")
    if ext == ".npy":
        # large files are memory-mapped: float32 unit rows are used in place (read-only)
        # and are never a second copy in memory; pages are read as the kNN needs them
        x = load_npy(path, mmap=path.stat().st_size >= MMAP_MIN_BYTES)
    elif ext == ".npz":
        x = _read_features_npz(path)
    else:
        x = _read_features_bin(path, dim)
    if x.ndim != 2:
        raise InputError(f"{path}: expected a 2-D feature array (N, D), got shape {x.shape}")
    return check_features(x, source=str(path), normalize=normalize)


def _read_features_npz(path: Path) -> np.ndarray:
    with open_npz(path) as z:
        keys = list(z.files)
        if len(keys) == 1:
            return npz_get(z, keys[0], path)
        for key in _FEATURE_KEYS:
            if key in keys:
                return npz_get(z, key, path)
    raise InputError(
        f"{path}: cannot tell which array holds the features (keys: {', '.join(keys) or 'none'}); "
        f"store one array or name it one of {', '.join(_FEATURE_KEYS)}"
    )


def _read_features_bin(path: Path, dim: int | None) -> np.ndarray:
    size = path.stat().st_size
    meta = path.with_suffix(".meta")
    n = len(read_labels(meta)) if meta.is_file() else None
    if dim is not None:
        if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or dim < 1:
            raise ParameterError(f"dim must be a positive integer, got {dim!r}")
        d = int(dim)
    elif n is None:
        raise InputError(
            f"{path}: a raw .bin file carries no shape; pass the dimension (dim=/--dim) "
            f"or put the labels beside it as {meta.name}"
        )
    else:
        if n == 0 or size % (4 * n):
            raise InputError(
                f"{path}: size {size} bytes is not a multiple of 4 x {n} rows "
                f"(N from {meta.name}); cannot infer the dimension"
            )
        d = size // (4 * n)
    if size % (4 * d):
        raise InputError(
            f"{path}: size {size} bytes is not a multiple of 4 x D = {4 * d} "
            f"(float32 rows of dimension {d}); wrong dim or truncated file"
        )
    rows = size // (4 * d)
    if n is not None and rows != n:
        raise InputError(
            f"{path}: holds {rows} rows of dimension {d} but {meta.name} has {n} labels "
            f"(expected {4 * n * d} bytes, found {size})"
        )
    if dim is not None and n is None:
        _check_bin_dim(path, d, size)
    x = np.fromfile(path, dtype="<f4", count=rows * d)
    return x.reshape(rows, d).astype(np.float32, copy=False)


#: Embedding widths tried when a ``--dim`` looks wrong (the common model outputs).
_COMMON_DIMS = (64, 96, 128, 192, 256, 384, 512, 768, 1024, 2048)


def _check_bin_dim(path: Path, d: int, size: int, rows: int = 64) -> None:
    """InputError when ``d`` cuts a ``.bin`` of unit rows at the wrong places.

    With no ``.meta`` beside it, a wrong ``dim`` that divides the file size would
    silently re-shape the data. Published ``.bin`` features are L2-normalised, so
    when the first rows are not unit length at ``d`` but are at another common
    width, ``d`` is wrong (raw, unnormalised files are not judged).
    """
    head = np.fromfile(path, dtype="<f4", count=min(size // 4, rows * 2048)).astype(np.float64)

    def unit(width: int) -> bool:
        m = min(rows, len(head) // width)
        if m < 2:
            return False
        norms = np.linalg.norm(head[: m * width].reshape(m, width), axis=1)
        return bool(np.all(np.abs(norms - 1.0) < 1e-3))

    if unit(d):
        return
    fits = [w for w in _COMMON_DIMS if w != d and size % (4 * w) == 0 and unit(w)]
    if fits:
        raise InputError(
            f"{path}: with --dim {d} the rows are not unit length, but with dim {fits[0]} "
            f"they are: wrong --dim? (pass --dim {fits[0]} or put the labels beside it as "
            f"{path.with_suffix('.meta').name})"
        )


def write_features(path: PathLike, x: np.ndarray, *, protect: Iterable[PathLike] = ()) -> None:
    """Write an (N, D) matrix as float32 ``.npy`` or raw learn-to-cluster ``.bin``."""
    path = Path(path)
    ext = check_ext(path, (".npy", ".bin"), "feature output")
    check_output_path(path, protect)
    arr = np.asarray(x)
    if arr.ndim != 2 or arr.dtype.kind not in "fiub":
        raise InputError(
            f"{path}: features to write must be a numeric 2-D array, got "
            f"shape {arr.shape} dtype {arr.dtype}"
        )
    arr = np.ascontiguousarray(arr, dtype="<f4")
    with atomic_write(path) as f:
        if ext == ".npy":
            np.save(f, arr, allow_pickle=False)
        else:
            arr.tofile(f)
