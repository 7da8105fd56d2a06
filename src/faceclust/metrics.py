"""Clustering metrics of the face-clustering benchmarks: pairwise, BCubed and NMI.

The definitions follow learn-to-cluster's ``evaluation/metrics.py`` (copied
unchanged by Ada-NETS, LCE-PCENet, FC-ESER and others), so numbers are
comparable with published tables:

* **Pairwise P/R/F** counts *ordered* pairs of distinct items (the factor 2
  cancels). With the contingency table ``n_ij`` (gt class i x predicted
  cluster j), gt class sizes ``a_i`` and predicted cluster sizes ``b_j``::

      TP         = sum n_ij**2 - N
      pred pairs = sum b_j**2  - N
      gt pairs   = sum a_i**2  - N
      P = TP / pred pairs,  R = TP / gt pairs,  F = 2PR / (P + R)

  Singletons contribute 0 to every term.
* **BCubed P/R/F** averages item-wise precision ``|C(x) & L(x)| / |C(x)|`` and
  recall ``|C(x) & L(x)| / |L(x)|`` over **all** N items (singletons
  included), i.e. ``sum n_ij**2 / b_j / N`` and ``sum n_ij**2 / a_i / N``.
* **NMI** is scikit-learn's ``normalized_mutual_info_score`` with
  ``average_method="arithmetic"`` pinned (sklearn's default since 0.22; the
  published numbers do not record which normalisation was used). It is
  computed here from the same sparse contingency table, with sklearn's
  formula and conventions, so it agrees with sklearn to ~1e-15.

Label conventions: labels are integers; every **negative** label (noise,
"unclustered", e.g. -1) marks an item that is its own singleton cluster, in
``gt`` and in ``pred`` alike (as :func:`faceclust.graph.relabel` and
learn-to-cluster's ``write_meta`` do). Label ids are arbitrary: every metric is
invariant to renaming them.

Degenerate cases are defined, never NaN and never a numpy warning:

* no predicted pairs (all-singleton prediction, or N = 1): pairwise P = 1.0
  (no predicted pair can be false);
* no gt pairs (every gt class a singleton): pairwise R = 1.0 (no gt pair can be
  missed); so an all-singleton prediction has R = 0.0 when gt has pairs, and
  R = 1.0 when it has none;
* F = 0.0 whenever P + R = 0 (pairwise and BCubed);
* NMI follows sklearn: 1.0 when both labelings are a single cluster (this
  includes N = 1); 0.0 when exactly one of them is a single cluster, and 0.0
  whenever the mutual information is exactly 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import log

import numpy as np
import scipy.sparse as sp

from ._validation import check_labels
from .errors import InputError

__all__ = ["bcubed", "evaluate", "nmi", "pairwise"]

# Labels whose (shifted) range is at most this many times N are compacted with
# bincount, O(N + range); wider ranges fall back to np.unique (a sort).
_DENSE_RANGE_FACTOR = 4


@dataclass(frozen=True)
class _Table:
    """Sparse contingency table of two labelings (nonzero cells only).

    ``rows[k], cols[k], counts[k]`` is one nonzero cell n_ij; ``gt_sizes`` and
    ``pred_sizes`` are the marginals a_i and b_j (all > 0).
    """

    n: int
    rows: np.ndarray
    cols: np.ndarray
    counts: np.ndarray
    gt_sizes: np.ndarray
    pred_sizes: np.ndarray


def _check_pair(gt: object, pred: object) -> tuple[np.ndarray, np.ndarray]:
    """Validate both labelings (integer-valued, finite, 1-D, same non-zero length)."""
    g = _check_one(gt, "gt")
    p = _check_one(pred, "pred")
    if len(g) != len(p):
        raise InputError(f"gt has {len(g)} labels but pred has {len(p)}")
    if len(g) == 0:
        raise InputError("gt and pred are empty: there is nothing to evaluate")
    return g, p


def _check_one(labels: object, source: str) -> np.ndarray:
    arr = np.asarray(labels)
    if arr.dtype == np.uint64 and arr.size and int(arr.max()) > np.iinfo(np.int64).max:
        raise InputError(f"{source}: label values exceed the int64 range")
    if arr.dtype.kind == "f" and arr.size:
        with np.errstate(invalid="ignore"):
            big = np.isfinite(arr) & (np.abs(arr) >= 2.0**62)
        if big.any():
            raise InputError(f"{source}: label values exceed the int64 range")
    return check_labels(arr, source=source)


def _codes(labels: np.ndarray) -> tuple[np.ndarray, int]:
    """Non-negative int64 codes and a bound ``m`` (codes < m) for one labeling.

    Same partition as :func:`faceclust.graph.relabel` (negatives become fresh
    singletons) but without relabel's sort when the label range is small:
    codes need not be contiguous, so absent ids simply have size 0 later.
    """
    n = len(labels)
    neg = labels < 0
    n_neg = int(np.count_nonzero(neg))
    if n_neg == n:
        return np.arange(n, dtype=np.int64), n
    lo = int(labels[~neg].min()) if n_neg else int(labels.min())
    hi = int(labels.max())
    width = hi - lo + 1
    if width + n_neg <= _DENSE_RANGE_FACTOR * n + 1024:
        work = labels - lo if lo else (labels.copy() if n_neg else labels)
        if n_neg:
            work[neg] = width + np.arange(n_neg, dtype=np.int64)
        return work, width + n_neg
    # Sparse ids (e.g. hashes): factorise by sorting, then add the singletons.
    uniq, inv = np.unique(labels[~neg] if n_neg else labels, return_inverse=True)
    k = len(uniq)
    if not n_neg:
        return inv.reshape(-1).astype(np.int64, copy=False), k
    work = np.empty(n, dtype=np.int64)
    work[~neg] = inv.reshape(-1)
    work[neg] = k + np.arange(n_neg, dtype=np.int64)
    return work, k + n_neg


def _table(gt: object, pred: object) -> _Table:
    """Validate, normalise and build the sparse contingency table in O(N)."""
    g, p = _check_pair(gt, pred)
    n = len(g)
    gc, mg = _codes(g)
    pc, mp = _codes(p)
    # coo -> csr is a counting sort by row plus small per-row sorts, and sums
    # duplicate (i, j) entries: that is exactly the table of counts n_ij.
    ones = np.ones(n, dtype=np.int64)
    csr = sp.csr_matrix((ones, (gc, pc)), shape=(mg, mp))
    csr.sum_duplicates()
    counts = csr.data.astype(np.int64, copy=False)
    row_nnz = np.diff(csr.indptr)
    rows = np.repeat(np.arange(mg, dtype=np.int64), row_nnz)
    cols = csr.indices.astype(np.int64, copy=False)
    gt_sizes = np.bincount(gc, minlength=mg)
    pred_sizes = np.bincount(pc, minlength=mp)
    # Compact the marginals to present ids so rows/cols index them directly.
    g_present = gt_sizes > 0
    p_present = pred_sizes > 0
    g_map = np.cumsum(g_present) - 1
    p_map = np.cumsum(p_present) - 1
    return _Table(
        n=n,
        rows=g_map[rows],
        cols=p_map[cols],
        counts=counts,
        gt_sizes=gt_sizes[g_present].astype(np.int64, copy=False),
        pred_sizes=pred_sizes[p_present].astype(np.int64, copy=False),
    )


def _f(p: float, r: float) -> float:
    """Harmonic mean, defined as 0.0 when p + r == 0."""
    return 0.0 if p + r == 0 else 2.0 * p * r / (p + r)


def _pairwise(t: _Table) -> tuple[float, float, float]:
    n = t.n
    tp = int(np.dot(t.counts, t.counts)) - n
    pred_pairs = int(np.dot(t.pred_sizes, t.pred_sizes)) - n
    gt_pairs = int(np.dot(t.gt_sizes, t.gt_sizes)) - n
    precision = tp / pred_pairs if pred_pairs > 0 else 1.0
    recall = tp / gt_pairs if gt_pairs > 0 else 1.0
    return float(precision), float(recall), _f(precision, recall)


def _bcubed(t: _Table) -> tuple[float, float, float]:
    sq = t.counts.astype(np.float64) ** 2
    precision = float(np.sum(sq / t.pred_sizes[t.cols]) / t.n)
    recall = float(np.sum(sq / t.gt_sizes[t.rows]) / t.n)
    return precision, recall, _f(precision, recall)


def _entropy(sizes: np.ndarray) -> float:
    """Natural-log entropy of a labeling from its cluster sizes (sklearn's formula)."""
    if sizes.size == 1:
        return 0.0
    pi = sizes.astype(np.float64)
    total = float(pi.sum())
    return float(-np.sum((pi / total) * (np.log(pi) - log(total))))


def _nmi(t: _Table) -> float:
    n_gt, n_pred = t.gt_sizes.size, t.pred_sizes.size
    if n_gt == n_pred == 1:
        return 1.0  # no split on either side: a perfect match (sklearn)
    if n_gt == 1 or n_pred == 1:
        return 0.0  # one side has zero entropy, so MI = 0 (sklearn)
    total = float(t.n)
    nz = t.counts.astype(np.float64)
    frac = nz / total
    outer = t.gt_sizes[t.rows] * t.pred_sizes[t.cols]  # int64, <= N**2
    log_outer = -np.log(outer) + 2.0 * log(total)
    terms = frac * (np.log(nz) - log(total)) + frac * log_outer
    terms[np.abs(terms) < np.finfo(np.float64).eps] = 0.0
    mi = max(float(terms.sum()), 0.0)
    if mi == 0.0:
        return 0.0  # not a perfect match (handled above), so NMI is 0 (sklearn)
    normalizer = (_entropy(t.gt_sizes) + _entropy(t.pred_sizes)) / 2.0
    return float(mi / normalizer)


def pairwise(gt: object, pred: object) -> tuple[float, float, float]:
    """Pairwise precision, recall and F-score over ordered pairs of distinct items.

    Parameters
    ----------
    gt, pred : array-like of int, shape (N,)
        Ground-truth and predicted labels; negative labels are singletons.

    Returns
    -------
    (precision, recall, f) : tuple of float
        ``P = (sum n_ij**2 - N) / (sum b_j**2 - N)``,
        ``R = (sum n_ij**2 - N) / (sum a_i**2 - N)``, ``F = 2PR / (P + R)``.
        P = 1.0 when there are no predicted pairs (all-singleton prediction),
        R = 1.0 when there are no gt pairs, F = 0.0 when P + R = 0.

    Raises
    ------
    InputError
        Non-integer, NaN/inf, non-1-D, empty or different-length labels.

    Examples
    --------
    >>> pairwise([0, 0, 1, 1], [0, 0, 0, 1])  # TP=2, pred pairs=6, gt pairs=4
    (0.3333333333333333, 0.5, 0.4)
    """
    return _pairwise(_table(gt, pred))


def bcubed(gt: object, pred: object) -> tuple[float, float, float]:
    """BCubed precision, recall and F-score, averaged over all N items.

    ``P = sum n_ij**2 / |P_j| / N`` and ``R = sum n_ij**2 / |G_i| / N`` (a
    predicted singleton has item precision 1); F = 0.0 when P + R = 0 (which
    cannot happen for N >= 1, since every item's precision is > 0).

    Parameters and errors as :func:`pairwise`.

    Examples
    --------
    >>> bcubed([0, 0, 1, 1], [0, 0, 0, 1])  # P=(4/3+1/3+1)/4, R=(4/2+1/2+1/2)/4
    (0.6666666666666666, 0.75, 0.7058823529411765)
    """
    return _bcubed(_table(gt, pred))


def nmi(gt: object, pred: object) -> float:
    """Normalised mutual information, sklearn semantics with arithmetic averaging.

    Equals ``sklearn.metrics.normalized_mutual_info_score(gt, pred,
    average_method="arithmetic")`` on the normalised labels (negatives turned
    into singletons first), including its conventions: 1.0 when both
    labelings are one cluster (also N = 1), 0.0 when exactly one is, and 0.0
    when the mutual information is 0. Symmetric in ``gt`` and ``pred``.

    Parameters and errors as :func:`pairwise`.

    Examples
    --------
    >>> nmi([0, 0, 1, 1], [1, 1, 0, 0])
    1.0
    """
    return _nmi(_table(gt, pred))


def evaluate(gt: object, pred: object) -> dict[str, float | int]:
    """All metrics at once from one contingency table (about 0.5 s at N = 5.2M).

    Returns
    -------
    dict
        Plain Python (JSON-serialisable) values under exactly the keys
        ``pairwise_precision, pairwise_recall, pairwise_f, bcubed_precision,
        bcubed_recall, bcubed_f, nmi`` (floats) and ``n_clusters`` (number of
        predicted clusters, each negative label counted as its own singleton)
        and ``n_samples`` (ints).

    Raises
    ------
    InputError
        As :func:`pairwise`.
    """
    t = _table(gt, pred)
    pp, pr, pf = _pairwise(t)
    bp, br, bf = _bcubed(t)
    return {
        "pairwise_precision": pp,
        "pairwise_recall": pr,
        "pairwise_f": pf,
        "bcubed_precision": bp,
        "bcubed_recall": br,
        "bcubed_f": bf,
        "nmi": _nmi(t),
        "n_clusters": int(t.pred_sizes.size),
        "n_samples": int(t.n),
    }
