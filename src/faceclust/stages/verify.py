"""Verify stage: re-score or drop candidate edges with a pair model's probability.

* :func:`verify_edges` -- keep the edges whose same-identity probability passes a
  threshold (LCE-PCENet: ``p > 0.5`` on E_d; FC-ESER: ``p >= eta = 0.60`` on
  recall candidates), the weight becoming the probability.
* :func:`recall_candidates` -- FC-ESER's edge-recall candidates: the kNN slots
  from each node's early-stop point on (the neighbour that stopped the walk
  included) whose score (NEP) is still ``>= delta``.

The pair model itself lives in :mod:`faceclust.nn.pcenet`; these functions only
see arrays.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ..errors import InputError, ParameterError

__all__ = ["recall_candidates", "stop_points", "verify_edges"]


def verify_edges(
    src: np.ndarray, dst: np.ndarray, prob: np.ndarray, threshold: float, *, strict: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Edges with ``prob > threshold`` (``>=`` unless ``strict``), weighted by ``prob``.

    Returns ``(src, dst, prob)`` filtered (int64, int64, float32), order kept.
    NaN probabilities never pass.
    """
    src, dst = np.asarray(src, dtype=np.int64), np.asarray(dst, dtype=np.int64)
    prob = np.asarray(prob, dtype=np.float32)
    if not (src.shape == dst.shape == prob.shape) or src.ndim != 1:
        raise InputError("verify_edges: src, dst and prob must be 1-D arrays of one length")
    keep = prob > threshold if strict else prob >= threshold
    return src[keep], dst[keep], prob[keep]


def stop_points(
    ids: np.ndarray, scores: np.ndarray, theta: float, max_links: int | None = None
) -> np.ndarray:
    """Column of each row's early-stop point ``[N]`` int64 (``k`` when the walk never stops).

    The walk of :func:`~faceclust.stages.select.early_stop_edges`: columns in
    order, the self entry skipped, stop at the first missing neighbour, score
    ``< theta`` (or NaN), or after ``max_links`` links.
    """
    ids, scores = _check(ids, scores)
    cap = ids.shape[1] if max_links is None else int(max_links)
    return _stop_kernel(ids, scores, np.float32(theta), cap)


@njit(parallel=True, cache=True)
def _stop_kernel(ids, scores, theta, cap):  # pragma: no cover - compiled
    n, k = ids.shape
    out = np.full(n, k, dtype=np.int64)
    for i in prange(n):
        c = 0
        for a in range(k):
            u = ids[i, a]
            if u == i:
                continue
            if u < 0 or not scores[i, a] >= theta or c == cap:
                out[i] = a
                break
            c += 1
    return out


def recall_candidates(
    ids: np.ndarray, scores: np.ndarray, theta: float, delta: float,
    max_links: int | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """FC-ESER recall candidates ``(src, dst, col)`` in row-major order.

    For row i with stop point ``a0`` (:func:`stop_points`), every slot
    ``a >= a0`` holding a present neighbour ``u != i`` with ``score >= delta``.
    ``col`` is the slot's column (so ``scores[src, col]`` is its NEP).
    """
    ids, scores = _check(ids, scores)
    if not (isinstance(delta, int | float) and not isinstance(delta, bool)):
        raise ParameterError(f"delta must be a number, got {delta!r}")
    stop = stop_points(ids, scores, theta, max_links)
    k = ids.shape[1]
    parts = []
    step = 1 << 15
    cols = np.arange(k)
    for s in range(0, ids.shape[0], step):
        i, sc, st = ids[s : s + step], scores[s : s + step], stop[s : s + step]
        rows = np.arange(s, s + len(i))
        keep = (cols[None, :] >= st[:, None]) & (i >= 0) & (i != rows[:, None]) & (sc >= delta)
        r, c = np.nonzero(keep)
        parts.append(((r + s).astype(np.int64), i[r, c].astype(np.int64), c.astype(np.int64)))
    if not parts:
        z = np.zeros(0, np.int64)
        return z, z.copy(), z.copy()
    return tuple(np.concatenate([p[j] for p in parts]) for j in range(3))  # type: ignore[return-value]


def _check(ids: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ids = np.ascontiguousarray(ids)
    scores = np.ascontiguousarray(scores, dtype=np.float32)
    if ids.ndim != 2 or ids.shape != scores.shape or ids.dtype.kind not in "iu":
        raise InputError(
            f"verify stage: ids (integer) and scores must be 2-D of one shape, got "
            f"{ids.shape} {ids.dtype} and {scores.shape}"
        )
    return ids, scores
