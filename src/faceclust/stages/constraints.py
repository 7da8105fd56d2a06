"""Post-partition repair stage: honour must-link and cannot-link constraints.

Photo libraries know things the embeddings do not: two faces detected in the
same photo are different people (**cannot-link**), and a user may confirm that
two faces are the same person (**must-link**) or different people. Any
partition can be repaired afterwards, so every method honours them the same way
(``fit(X, constraints=...)`` on every registered method calls this stage):

1. **must-link**: the clusters of every must-linked pair are merged (connected
   components over clusters);
2. **cannot-link**: a cluster holding a cannot-linked pair is split. The units
   that move are *must-link groups* (faces joined by must-link stay together).
   Units are visited most-typical first (highest cosine to the cluster's mean
   vector, when features are given); the first stays, each later unit stays
   unless it conflicts with what stayed, in which case it goes to the best
   allowed place: another part split off this cluster or -- with ``threshold``
   -- the existing cluster whose mean pairwise cosine to it is highest and at
   least ``threshold``; otherwise it opens a new cluster. Units without any
   conflict never move.

Work is proportional to the clusters touched by constraints (a Python loop
over violating clusters only; constraints are few), plus O(N) array passes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InputError, ParameterError
from ..graph import connected_components, group_sums

__all__ = ["Constraints", "apply_constraints", "as_constraints"]


@dataclass
class Constraints:
    """Pairs of face indices: ``must_link [m, 2]`` (same person), ``cannot_link [c, 2]``."""

    must_link: np.ndarray
    cannot_link: np.ndarray


def _pairs(p: object, n: int, name: str) -> np.ndarray:
    if p is None:
        return np.zeros((0, 2), dtype=np.int64)
    a = np.asarray(p)
    if a.size == 0:
        return np.zeros((0, 2), dtype=np.int64)
    if a.ndim != 2 or a.shape[1] != 2 or not np.issubdtype(a.dtype, np.integer):
        raise InputError(f"{name}: expected an integer array of index pairs [m, 2], got shape {a.shape}")
    a = a.astype(np.int64)
    if a.min() < 0 or a.max() >= n:
        raise InputError(f"{name}: face indices must be in [0, {n}), got {a.min()}..{a.max()}")
    return a


def as_constraints(obj: object, n: int) -> Constraints:
    """Validate ``obj`` (Constraints, ``(must_link, cannot_link)`` or a dict) for ``n`` faces."""
    if isinstance(obj, Constraints):
        ml, cl = obj.must_link, obj.cannot_link
    elif isinstance(obj, dict):
        unknown = set(obj) - {"must_link", "cannot_link"}
        if unknown:
            raise ParameterError(f"constraints: unknown keys {sorted(unknown)}")
        ml, cl = obj.get("must_link"), obj.get("cannot_link")
    elif isinstance(obj, (tuple, list)) and len(obj) == 2:
        ml, cl = obj
    else:
        raise ParameterError(
            "constraints must be Constraints, a (must_link, cannot_link) pair or a dict"
        )
    return Constraints(_pairs(ml, n, "must_link"), _pairs(cl, n, "cannot_link"))


def apply_constraints(
    labels: np.ndarray,
    must_link: object = None,
    cannot_link: object = None,
    features: np.ndarray | None = None,
    *,
    threshold: float | None = None,
) -> np.ndarray:
    """Labels that satisfy every must-link and cannot-link pair (see the module doc).

    Parameters
    ----------
    labels : ndarray [N]
        A partition (negative = unclustered; such a face is its own cluster here).
    must_link, cannot_link : array [m, 2] of face indices, or None
    features : ndarray [N, D] or None
        Unit rows; decide which member of a conflicting cluster stays (most typical)
        and where a moved one goes. Without them the larger must-link group stays.
    threshold : float or None
        A moved group may join an existing cluster whose mean pairwise cosine to it
        is at least this; ``None`` only splits (moved groups form new clusters).

    Returns
    -------
    ndarray of int64 [N]
        Existing label ids are kept (merged clusters take the smallest); split-off
        parts get fresh ids above the maximum.

    Raises
    ------
    ParameterError
        If a cannot-link pair is also joined by must-link (directly or through a chain).
    """
    y = np.asarray(labels, dtype=np.int64).copy()
    n = len(y)
    ml = _pairs(must_link, n, "must_link")
    cl = _pairs(cannot_link, n, "cannot_link")
    neg = y < 0
    if neg.any():  # unclustered faces become their own clusters
        y[neg] = (y.max(initial=-1) + 1) + np.arange(int(neg.sum()))
    # must-link groups of faces (units that never separate)
    unit = connected_components(ml[:, 0], ml[:, 1], n) if len(ml) else np.arange(n)
    bad = unit[cl[:, 0]] == unit[cl[:, 1]]
    if bad.any():
        i, j = cl[np.argmax(bad)]
        raise ParameterError(
            f"constraints contradict: faces {i} and {j} are cannot-linked but joined by must-link"
        )
    # 1. merge the clusters of must-linked faces
    if len(ml):
        ids, inv = np.unique(y, return_inverse=True)
        a, b = inv[ml[:, 0]], inv[ml[:, 1]]
        comp = connected_components(a, b, len(ids))
        smallest = np.full(comp.max() + 1, np.iinfo(np.int64).max)
        np.minimum.at(smallest, comp, ids)
        y = smallest[comp[inv]]
    if not len(cl):
        return y
    # 2. split clusters that hold a cannot-linked pair
    x = None if features is None else np.asarray(features, dtype=np.float32)
    nxt = int(y.max()) + 1
    viol = np.unique(y[cl[:, 0]][y[cl[:, 0]] == y[cl[:, 1]]])
    ids = sums = cnt = None
    if len(viol) and x is not None and threshold is not None:
        ids, inv = np.unique(y, return_inverse=True)
        sums = group_sums(x, inv, len(ids))
        cnt = np.bincount(inv, minlength=len(ids)).astype(np.float64)
    for c in viol.tolist():
        members = np.flatnonzero(y == c)
        u_ids, u_inv = np.unique(unit[members], return_inverse=True)
        conflict = _conflicts(cl, unit, set(u_ids.tolist()))
        order = _typical_order(members, u_inv, len(u_ids), x)
        parts: list[list[int]] = []  # units per part; part 0 keeps label c
        part_label: list[int] = []
        part_sum: list[np.ndarray | None] = []
        for uu in order.tolist():
            uid = int(u_ids[uu])
            mem = members[u_inv == uu]
            vec = None if x is None else x[mem].sum(axis=0, dtype=np.float64)
            if not parts:
                parts.append([uid]), part_label.append(c), part_sum.append(vec)
                continue
            allowed = [p for p, us in enumerate(parts) if not conflict.get(uid, set()) & set(us)]
            if 0 in allowed:
                choice = 0
            elif allowed and x is None:
                choice = allowed[0]
            elif allowed:
                sims = [float(vec @ part_sum[p]) for p in allowed]
                choice = allowed[int(np.argmax(sims))]
            else:
                choice = -1
            if choice == -1:
                target = _best_other(uid, mem, vec, y, c, cl, unit, threshold, x, ids, sums, cnt)
                if target is not None:
                    y[mem] = target
                    continue
                parts.append([uid]), part_label.append(nxt), part_sum.append(vec)
                nxt += 1
                choice = len(parts) - 1
            else:
                parts[choice].append(uid)
                if vec is not None:
                    part_sum[choice] = part_sum[choice] + vec
            y[mem] = part_label[choice]
    return y


def _conflicts(cl: np.ndarray, unit: np.ndarray, units: set[int]) -> dict[int, set[int]]:
    """unit -> units it is cannot-linked to (only among ``units``)."""
    ua, ub = unit[cl[:, 0]], unit[cl[:, 1]]
    out: dict[int, set[int]] = {}
    for a, b in zip(ua.tolist(), ub.tolist(), strict=True):
        if a in units and b in units:
            out.setdefault(a, set()).add(b)
            out.setdefault(b, set()).add(a)
    return out


def _typical_order(members: np.ndarray, u_inv: np.ndarray, n_units: int,
                   x: np.ndarray | None) -> np.ndarray:
    """Units of a cluster, most typical first (cosine to the cluster mean; else size)."""
    size = np.bincount(u_inv, minlength=n_units)
    if x is None:
        return np.lexsort((np.arange(n_units), -size))
    xm = x[members]
    mean = xm.sum(axis=0, dtype=np.float64)
    score = np.bincount(u_inv, weights=xm @ mean, minlength=n_units) / size
    return np.lexsort((np.arange(n_units), -score))


def _best_other(uid, mem, vec, y, c, cl, unit, threshold, x, ids, sums, cnt):
    """Existing cluster (not ``c``) with the highest mean cosine >= threshold, no conflict."""
    if x is None or threshold is None or ids is None:
        return None
    link = (sums @ vec) / (cnt * len(mem))
    link[np.searchsorted(ids, c)] = -np.inf
    mine = cl[(unit[cl[:, 0]] == uid) | (unit[cl[:, 1]] == uid)].ravel()
    forbidden = np.unique(y[mine])
    link[np.searchsorted(ids, forbidden[np.isin(forbidden, ids)])] = -np.inf
    best = int(np.argmax(link))
    return int(ids[best]) if link[best] >= threshold else None
