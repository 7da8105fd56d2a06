"""kNN graph files: learn-to-cluster, FC-ESER / LCE, faceclust cache and IJB-B layouts."""

from __future__ import annotations

import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

import numpy as np

from .._validation import check_features
from ..errors import InputError, ParameterError
from ..fsutil import PathLike, atomic_write, check_output_path
from ..knn import KnnGraph
from .common import (
    NO_PICKLE,
    check_ext,
    check_input_file,
    load_npy,
    npz_get,
    one_line,
    open_npz,
)

KNN_EXTENSIONS: tuple[str, ...] = (".npz", ".npy")
_KNN_ID_KEYS = ("ids", "knns", "nbrs")
_KNN_VALUE_KEYS = ("sims", "dists")
_CHUNK = 1 << 16  # rows per block for conversions of large arrays
_LTC_MISSING_DIST = 2.0  # distance written for missing neighbours (id -1)
_RAGGED_REFUSAL = (
    f"key 'data' is a pickled object array (a ragged learn-to-cluster graph); {NO_PICKLE}. "
    "To use a file you trust, convert it once in your own Python session: pad every row "
    "to k neighbours with id -1 and distance 2.0 and np.savez the dense float (N, 2, k) "
    "array as 'data'"
)


def read_knn(
    path: PathLike,
    n: int | None = None,
    *,
    features: np.ndarray | None = None,
    kind: Literal["auto", "sim", "dist"] = "auto",
) -> KnnGraph:
    """Read a kNN graph file (format auto-detected) as a :class:`KnnGraph` (self first).

    Formats
    -------
    * learn-to-cluster ``.npz`` key ``data``: (N, 2, k) float32/float64,
      ``[:, 0]`` neighbour ids (stored as floats), ``[:, 1]`` cosine distance.
      A ragged **object** array of N ``(ids, dists)`` pairs (written by some
      searches that returned fewer than k hits) is a pickle, and faceclust never
      unpickles (a pickle can run code): such a file is refused with a one-line
      error saying how to convert it (pad every row to k with id -1 and distance
      2.0 and save the dense (N, 2, k) float array as ``data``, in your own
      Python session, for a file you trust).
    * FC-ESER / LCE ``.npz`` with an id array (``knns``/``nbrs``/``ids``) and a
      value array (``sims``/``dists``), or any ``.npz`` with exactly one
      integer and one float array of the same (N, k) shape. This also reads
      the cache files of :func:`faceclust.knn.build_knn`.
    * IJB-B ``knn.graph.*.npy``: (N, K+1) integer ids, first column self, no
      similarities: ``features`` are required and similarities are recomputed
      as row dot products (in chunks).

    Whether values are similarities or distances: ``kind="sim"``/``"dist"``
    forces it; ``"auto"`` looks at column 0 (the point itself): mean ~1 means
    similarities, ~0 distances; if that is inconclusive, rows sorted descending
    mean similarities and ascending distances; failing that the key name
    decides (``data``/``dists`` -> distance, ``sims`` -> similarity).
    Distances are converted with ``sim = 1 - dist``.

    Parameters
    ----------
    n:
        Expected number of rows (e.g. the number of features); checked.
    features:
        (N, D) features; required for IJB-B id-only graphs, and their row
        count is checked against the graph.
    """
    if kind not in ("auto", "sim", "dist"):
        raise ParameterError(f"kind must be 'auto', 'sim' or 'dist', got {kind!r}")
    path = check_input_file(path)
    ext = check_ext(path, KNN_EXTENSIONS, "kNN")
    x = None
    if features is not None:
        x = check_features(features, source="features")
        if n is not None and x.shape[0] != n:
            raise InputError(f"features have {x.shape[0]} rows but n={n}")
        n = x.shape[0]

    if ext == ".npy":
        arr = load_npy(path)
        if arr.ndim == 3 and arr.shape[1] == 2:
            ids, sims = _ltc_dense(arr, path, kind)
        else:
            ids = _id_array(arr, path)
            _check_shape_and_range(ids, n, path)
            if x is None:
                raise InputError(
                    f"{path}: this kNN file holds neighbour ids only (IJB-B format); "
                    "the features are needed to compute similarities (pass features=/--features)"
                )
            sims = _row_dot_sims(x, ids)
    else:
        ids, sims = _read_knn_npz(path, kind)

    _check_shape_and_range(ids, n, path)
    try:
        return KnnGraph.from_search(ids, sims, {"source": str(path)})
    except InputError as exc:
        raise InputError(f"{path}: {exc}") from exc


def _read_knn_npz(path: Path, kind: str) -> tuple[np.ndarray, np.ndarray]:
    with open_npz(path) as z:
        keys = list(z.files)
        if "data" in keys:
            try:
                data = z["data"]
            except ValueError as exc:
                if "allow_pickle" in str(exc):
                    raise InputError(f"{path}: {_RAGGED_REFUSAL}") from None
                raise InputError(f"{path}: cannot read array 'data' ({one_line(exc)})") from exc
            except (EOFError, OSError, zipfile.BadZipFile) as exc:
                raise InputError(f"{path}: cannot read array 'data' ({one_line(exc)})") from exc
            if data.ndim != 3 or data.shape[1] != 2:
                raise InputError(
                    f"{path}: learn-to-cluster key 'data' must have shape (N, 2, k), got {data.shape}"
                )
            return _ltc_dense(data, path, kind)

        id_key = next((k for k in _KNN_ID_KEYS if k in keys), None)
        val_key = next((k for k in _KNN_VALUE_KEYS if k in keys), None)
        if id_key is None or val_key is None:
            if len(keys) == 2:
                a, b = (npz_get(z, k, path) for k in keys)
                if a.ndim == 2 and a.shape == b.shape:
                    if a.dtype.kind in "iu" and b.dtype.kind == "f":
                        id_key, val_key = keys
                    elif b.dtype.kind in "iu" and a.dtype.kind == "f":
                        val_key, id_key = keys
            if id_key is None or val_key is None:
                raise InputError(
                    f"{path}: not a recognised kNN file (keys: {', '.join(keys) or 'none'}); "
                    "expected 'data' (learn-to-cluster), or ids ('knns'/'nbrs'/'ids') "
                    "with 'sims' or 'dists'"
                )
        ids = npz_get(z, id_key, path)
        vals = npz_get(z, val_key, path)
    ids = _id_array(ids, path)
    if vals.shape != ids.shape or vals.dtype.kind not in "fiu":
        raise InputError(
            f"{path}: arrays {id_key!r} {ids.shape} and {val_key!r} {vals.shape} must be "
            "numeric of one (N, k) shape"
        )
    hint = "sim" if val_key == "sims" else "dist"
    vals = vals.astype(np.float32, copy=False)
    if _decide_kind(ids, vals, kind, hint, path) == "dist":
        vals = (1.0 - vals).astype(np.float32)
    return ids, vals


def _id_array(arr: np.ndarray, path: Path) -> np.ndarray:
    """Validate an (N, k) id array (integers, or floats holding exact integers)."""
    if arr.ndim != 2:
        raise InputError(f"{path}: neighbour ids must be a 2-D (N, k) array, got shape {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise InputError(f"{path}: empty kNN graph of shape {arr.shape} (need N >= 1, k >= 1)")
    if arr.dtype.kind in "iu":
        return arr
    if arr.dtype.kind != "f":
        raise InputError(f"{path}: neighbour ids must be numeric, got dtype {arr.dtype}")
    if arr.dtype.itemsize < 8 and arr.shape[0] > 2**24:
        raise InputError(
            f"{path}: ids of {arr.shape[0]} points stored as {arr.dtype} are not exact "
            "beyond 2**24; store them as float64 or integers"
        )
    out = np.empty(arr.shape, dtype=np.int32 if arr.shape[0] < 2**31 - 1 else np.int64)
    for start in range(0, arr.shape[0], _CHUNK):
        block = arr[start : start + _CHUNK]
        if not np.isfinite(block).all() or not np.array_equal(block, np.round(block)):
            raise InputError(f"{path}: neighbour ids are not whole numbers")
        out[start : start + len(block)] = block
    return out


def _check_shape_and_range(ids: np.ndarray, n: int | None, path: Path) -> None:
    rows, k = ids.shape
    if k < 1 or rows < 1:
        raise InputError(f"{path}: empty kNN graph of shape {ids.shape} (need N >= 1, k >= 1)")
    if n is not None and rows != n:
        raise InputError(f"{path}: kNN graph has {rows} rows but features have {n} rows")
    lo, hi = int(ids.min()), int(ids.max())
    if lo < -1 or hi >= rows:
        bad = int(np.count_nonzero((ids < -1) | (ids >= rows)))
        raise InputError(
            f"{path}: {bad} neighbour id(s) out of range [0, {rows}) "
            f"(found range [{lo}, {hi}]; -1 marks a missing neighbour)"
        )


def _ltc_dense(data: np.ndarray, path: Path, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """Split a dense (N, 2, k) learn-to-cluster array into int ids and float32 sims."""
    if data.dtype.kind not in "fiu":
        raise InputError(f"{path}: key 'data' must be numeric, got dtype {data.dtype}")
    if data.shape[0] == 0 or data.shape[2] == 0:
        raise InputError(f"{path}: empty kNN graph of shape {data.shape}")
    ids = _id_array(data[:, 0, :], path)
    vals = np.empty(ids.shape, dtype=np.float32)
    for start in range(0, len(ids), _CHUNK):
        vals[start : start + _CHUNK] = data[start : start + _CHUNK, 1, :]
    if _decide_kind(ids, vals, kind, "dist", path) == "dist":
        np.subtract(1.0, vals, out=vals)
    return ids, vals


def _decide_kind(ids: np.ndarray, vals: np.ndarray, kind: str, hint: str, path: Path) -> str:
    """Similarity or distance? Column 0 (self) first, then row order, then the key name."""
    if kind != "auto":
        return kind
    valid0 = ids[:, 0] >= 0
    col0 = vals[valid0, 0].astype(np.float64)
    col0 = col0[np.isfinite(col0)]
    if col0.size:
        m = float(col0.mean())
        if abs(m - 1.0) < 0.05:
            return "sim"
        if abs(m) < 0.05:
            return "dist"
    if vals.shape[1] > 1:
        sample = vals[: min(len(vals), 10000)].astype(np.float64)
        ok = (ids[: len(sample), 1:] >= 0) & (ids[: len(sample), :-1] >= 0)
        diff = np.diff(sample, axis=1)[ok]
        diff = diff[np.isfinite(diff)]
        if diff.size:
            if np.all(diff <= 1e-6):
                return "sim"
            if np.all(diff >= -1e-6):
                return "dist"
    return hint


def _row_dot_sims(x: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """``sims[i, j] = x[i] . x[ids[i, j]]`` in bounded chunks; -inf where ids is -1."""
    n, k = ids.shape
    sims = np.empty((n, k), dtype=np.float32)
    step = max(1, (1 << 24) // max(1, k * x.shape[1]))
    for start in range(0, n, step):
        blk = ids[start : start + step]
        safe = np.where(blk < 0, 0, blk)
        s = np.einsum("id,ikd->ik", x[start : start + len(blk)], x[safe])
        s[blk < 0] = -np.inf
        sims[start : start + len(blk)] = s
    return sims


def write_knn(
    path: PathLike,
    graph: KnnGraph,
    *,
    fmt: Literal["ltc", "npz"] = "ltc",
    protect: Iterable[PathLike] = (),
) -> None:
    """Write a kNN graph as an uncompressed ``.npz``.

    ``fmt="ltc"``: learn-to-cluster layout, key ``data`` of shape (N, 2, k):
    ids then cosine distance ``1 - sim``, self first; float32 when N < 2**24
    (ids exact) else float64; missing neighbours are id -1 with distance 2.0.
    ``fmt="npz"``: keys ``ids`` (int) and ``sims`` (float32, -inf if missing).
    """
    path = Path(path)
    if fmt not in ("ltc", "npz"):
        raise ParameterError(f"fmt must be 'ltc' or 'npz', got {fmt!r}")
    check_ext(path, (".npz",), "kNN output")
    check_output_path(path, protect)
    if not isinstance(graph, KnnGraph):
        raise ParameterError(f"write_knn needs a KnnGraph, got {type(graph).__name__}")
    if fmt == "npz":
        with atomic_write(path) as f:
            np.savez(f, ids=graph.ids, sims=graph.sims)
        return
    n, k = graph.ids.shape
    dtype = np.float32 if n < 2**24 else np.float64
    data = np.empty((n, 2, k), dtype=dtype)
    for start in range(0, n, _CHUNK):
        ids = graph.ids[start : start + _CHUNK]
        sims = graph.sims[start : start + _CHUNK]
        data[start : start + len(ids), 0, :] = ids
        dist = np.where(ids < 0, _LTC_MISSING_DIST, 1.0 - sims.astype(np.float64))
        data[start : start + len(ids), 1, :] = dist
    with atomic_write(path) as f:
        np.savez(f, data=data)
