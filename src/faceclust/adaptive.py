"""Label-free estimate of an embedding's similarity scale, from its kNN graph.

Every face-embedding model has its own cosine scale: ArcFace-like 512-d
features put different people near 0 and the same person near 0.7, dlib's
128-d features put different people near 0.83 and the same person near 0.97.
A fixed threshold therefore cannot work for both. The similarities of each
point to its nearest neighbours are, however, always a two-part mixture:

* **different-identity neighbours** -- every point whose identity has fewer
  photos than ``k_est`` has them in its list; they form the lower mode of the
  pooled kNN similarities ("impostor mode");
* **same-identity neighbours** -- the upper mode ("genuine mode").

:func:`estimate_scale` pools the similarities of ranks ``1 .. k_est-1`` of a
sample of graph rows, splits them into two classes with the minimum-error
(Kittler-Illingworth) criterion, takes the density mode of each class and
puts the merge threshold a fixed fraction ``alpha`` of the way from the
impostor mode to the genuine mode. Both modes move with the model's scale, so
the threshold does too; ``alpha`` is scale-free. ``alpha = 0.3`` was measured
best for average linkage (the partition of method ``auto``) on real LFW
(both embeddings, and on random halves of its identities), ORL and
synthetic data (the best alpha lay in 0.2 .. 0.4 everywhere).

Centring (subtract the mean embedding, re-normalise) is decided from the same
statistics: it is only considered when the mean embedding is long
(``|mean|^2 >= 0.1``: an uncentred model) and only chosen when it makes the two
modes better separated (Fisher ratio of the two classes). On dlib features it
is *not* chosen: centring mixes their norm information into the angle and
makes identities worse separated, even though their mean cosine is 0.83.

Everything here is O(sample * k_est) on top of the graph.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.ndimage import gaussian_filter1d
from scipy.special import stdtrit

from .errors import InputError, ParameterError
from .knn import KnnGraph

#: Bins of the histogram of pooled similarities (the range is the data's own 0.1 .. 99.95 %).
_BINS = 256
#: Gaussian smoothing of the log-histogram, in bins (scale-free: the bins follow the data range).
_SMOOTH = 3.0
#: Centring is considered only for features whose mean embedding has at least this squared norm.
CENTRE_MIN_MEAN2 = 0.1
#: ... and chosen only if it raises the separation of the two modes by this factor.
CENTRE_MIN_GAIN = 1.1
#: Collections with fewer faces than this also get the stranger floor (:func:`stranger_floor`):
#: their few neighbour lists cannot show two modes reliably (measured: random 5..30-face
#: subsets of LFW, CelebA and ORL merged different people at pairwise precision ~0).
SMALL_N = 50
#: Below this many faces no scale can be estimated at all: everyone stays alone.
MIN_N = 5
#: Family-wise chance that a small collection of strangers gets any merge from the floor.
FLOOR_ALPHA = 1e-3


@dataclass
class ScaleEstimate:
    """What :func:`estimate_scale` found: the chosen threshold and the numbers behind it.

    Attributes
    ----------
    threshold : float
        Cosine similarity at which clusters are merged (``impostor_mode +
        alpha * (genuine_mode - impostor_mode)``).
    k : int
        Neighbours per point (self included) of the graph the partition uses.
    k_est : int
        Neighbours per point (self included) pooled for the estimate.
    impostor_mode, genuine_mode : float
        Density modes of the lower (different people) and upper (same person)
        class of the pooled kNN similarities.
    split : float
        Minimum-error boundary between the two classes.
    impostor_frac : float
        Fraction of pooled similarities below ``split``.
    separation : float
        Fisher ratio ``(genuine_mode - impostor_mode) / pooled class std``.
    alpha : float
        Position of the threshold between the modes.
    n_rows : int
        Graph rows sampled.
    centre : bool
        Whether the features were centred before the graph was built.
    mean_norm2 : float or None
        Squared norm of the mean embedding (None when only a graph was given).
    separation_raw : float or None
        Separation of the raw (uncentred) features, when centring was evaluated.
    separation_centred : float or None
        Separation the centred features would have (None when not evaluated).
    bimodal : bool
        False when the similarities showed no clear second class (the
        threshold is then less reliable; see :meth:`explain`).
    attach_threshold, attach_share, attach_neighbours : float, float, int or None
        Second step of method ``auto``: a face left alone joins the cluster
        holding at least ``attach_share`` of its ``attach_neighbours`` nearest
        neighbours if its mean cosine to that cluster is at least
        ``attach_threshold`` (None: step off).
    join_threshold, join_slots, join_share, join_back, join_touch, join_neighbours : float, int or None
        Cluster joining of method ``auto`` (before the attachment): a cluster
        joins another that holds ``join_slots`` of its members' neighbours and
        ``join_share`` of those outside it, and lists it back (``join_back``),
        if some neighbour pair between them has similarity >= ``join_touch`` and
        their mean cosine is at least ``join_threshold``
        (:func:`faceclust.stages.join.evidenced_pairs`; None: step off).
    threshold_from : str or None
        Where ``threshold`` came from when not from the two modes (the caller, a
        small collection's stranger floor or its embedding model's verification
        cosine); None: from the modes.
    """

    threshold: float
    k: int
    k_est: int
    impostor_mode: float
    genuine_mode: float
    split: float
    impostor_frac: float
    separation: float
    alpha: float
    n_rows: int
    centre: bool = False
    mean_norm2: float | None = None
    separation_raw: float | None = None
    separation_centred: float | None = None
    bimodal: bool = True
    attach_threshold: float | None = None
    attach_share: float | None = None
    attach_neighbours: int | None = None
    join_threshold: float | None = None
    join_slots: float | None = None
    join_share: float | None = None
    join_back: float | None = None
    join_touch: float | None = None
    join_neighbours: int | None = None
    threshold_from: str | None = None
    notes: list[str] = field(default_factory=list)

    def explain(self) -> str:
        """A few lines saying what was chosen and why (for ``--explain`` and logs)."""
        lines = [
            f"similarity scale estimated from the {self.k_est - 1} nearest neighbours of "
            f"{self.n_rows} points (no labels used):",
            f"  different-people neighbours peak at cosine {self.impostor_mode:.3f} "
            f"({100 * self.impostor_frac:.0f}% of neighbour pairs), "
            f"same-person neighbours at {self.genuine_mode:.3f} "
            f"(separation {self.separation:.1f}, boundary {self.split:.3f})",
            (f"  merge threshold = {self.threshold:.4f} ({self.threshold_from}); "
             if self.threshold_from else
             f"  merge threshold = {self.impostor_mode:.3f} + {self.alpha:g} x "
             f"({self.genuine_mode:.3f} - {self.impostor_mode:.3f}) = {self.threshold:.4f}; ")
            + f"partition: average linkage over the {self.k - 1}-NN graph, clusters merge "
            f"while their mean cosine >= threshold",
        ]
        if self.join_threshold is not None and self.join_neighbours:
            lines.append(
                f"  then two clusters join if one holds >= {100 * (self.join_slots or 0):.0f}% of "
                f"its members' {self.join_neighbours} nearest neighbours in the other, and >= "
                f"{100 * (self.join_share or 0):.0f}% of those outside itself, the other lists it "
                f"back (>= {self.join_back or 0:g} x as often), the two touch (a neighbour pair "
                f">= {self.join_touch or 0:.4f}) and their mean cosine is >= "
                f"{self.join_threshold:.4f} (one person's varied photos split by pose or light, "
                f"not a look-alike)"
            )
        if self.attach_threshold is not None and self.attach_share and self.attach_neighbours:
            lines.append(
                f"  then a face left alone joins the cluster holding >= "
                f"{100 * self.attach_share:.0f}% of its {self.attach_neighbours} nearest neighbours if "
                f"its mean cosine to it is >= {self.attach_threshold:.4f} (a poor photo of a "
                f"well-photographed person, not a stranger)"
            )
        if self.mean_norm2 is None:
            lines.append("  centring: not evaluated (" + (
                "the threshold applies to the features as given)" if self.threshold_from
                else "no features given, only a kNN graph)"))
        elif self.mean_norm2 < CENTRE_MIN_MEAN2:
            lines.append(
                f"  centring: no (mean embedding |m|^2 = {self.mean_norm2:.3f} < "
                f"{CENTRE_MIN_MEAN2}: features are already centred)"
            )
        else:
            verdict = "yes" if self.centre else "no"
            sep_c = "n/a" if self.separation_centred is None else f"{self.separation_centred:.1f}"
            lines.append(
                f"  centring: {verdict} (mean embedding |m|^2 = {self.mean_norm2:.3f}; "
                f"separation raw vs centred: {self._sep_raw_text()} vs {sep_c}; "
                f"centre only if it gains x{CENTRE_MIN_GAIN})"
            )
        if not self.bimodal:
            lines.append(
                "  warning: the neighbour similarities show no clear second mode; the "
                "threshold may be off (pass threshold= / --threshold to override)"
            )
        lines.extend(f"  note: {n}" for n in self.notes)
        return "\n".join(lines)

    def _sep_raw_text(self) -> str:
        raw = self.separation_raw if self.separation_raw is not None else self.separation
        return f"{raw:.1f}"


# ------------------------------------------------------------------ helpers
def pooled_sims(graph: KnnGraph, k_est: int, sample: int, seed: int = 0) -> tuple[np.ndarray, int]:
    """Similarities of ranks ``1 .. k_est-1`` of up to ``sample`` random rows, flattened."""
    k_est = min(k_est, graph.k)
    if k_est < 2:
        raise ParameterError(f"estimate: the kNN graph needs k >= 2, got k={graph.k}")
    n = graph.n
    if n > sample:
        rows = np.sort(np.random.default_rng(seed).choice(n, size=sample, replace=False))
        block = graph.sims[rows, 1:k_est]
        valid = graph.ids[rows, 1:k_est] >= 0
        n_rows = sample
    else:
        block = graph.sims[:, 1:k_est]
        valid = graph.ids[:, 1:k_est] >= 0
        n_rows = n
    vals = block[valid].astype(np.float64)
    if len(vals) < 10:
        raise InputError(
            f"estimate: only {len(vals)} neighbour similarities in the kNN graph; "
            "too few points to estimate a similarity scale (pass a threshold)"
        )
    return vals, n_rows


def _histogram(vals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    lo, hi = np.quantile(vals, [0.001, 0.9995])
    if not hi > lo:
        hi = lo + 1e-6
    h, edges = np.histogram(vals, bins=_BINS, range=(lo, hi))
    return h.astype(np.float64), 0.5 * (edges[1:] + edges[:-1])


def min_error_split(vals: np.ndarray) -> tuple[float, bool]:
    """Kittler-Illingworth minimum-error threshold of a 1-D sample (two Gaussians).

    Returns ``(split, ok)``; ``ok`` is False when no split gives both classes
    at least 1 % of the mass (a unimodal sample).
    """
    h, c = _histogram(vals)
    p = h / h.sum()
    w1 = np.cumsum(p)
    m1 = np.cumsum(p * c)
    s1 = np.cumsum(p * c * c)
    w2 = 1.0 - w1
    m2 = m1[-1] - m1
    s2 = s1[-1] - s1
    ok = (w1 > 0.01) & (w2 > 0.01)
    with np.errstate(divide="ignore", invalid="ignore"):
        mu1, mu2 = m1 / w1, m2 / w2
        v1 = s1 / w1 - mu1**2
        v2 = s2 / w2 - mu2**2
        ok &= (v1 > 0) & (v2 > 0)
        j = w1 * np.log(np.sqrt(v1)) + w2 * np.log(np.sqrt(v2)) - w1 * np.log(w1) - w2 * np.log(w2)
    j = np.where(ok, j, np.inf)
    if not np.isfinite(j).any():
        return float(np.median(vals)), False
    i = int(np.argmin(j))
    return float(0.5 * (c[i] + c[min(i + 1, len(c) - 1)])), True


def two_modes(vals: np.ndarray) -> dict[str, float | bool]:
    """Split pooled similarities into two classes and describe each (modes, spread, weight).

    Similarities that are (nearly) all equal have no second class: both modes are
    their value and ``bimodal`` is False.
    """
    if len(vals) == 0 or float(vals.max() - vals.min()) < 1e-6:
        v = float(vals.mean()) if len(vals) else float("nan")
        return {"split": v, "impostor_mode": v, "genuine_mode": v, "separation": 0.0,
                "impostor_frac": 1.0, "bimodal": False}
    split, ok = min_error_split(vals)
    h, c = _histogram(vals)
    dens = gaussian_filter1d(np.log1p(h), _SMOOTH)
    low = c < split
    if not low.any() or low.all():
        ok = False
        low = c < np.median(vals)
    mi = float(c[low][np.argmax(dens[low])])
    mg = float(c[~low][np.argmax(dens[~low])])
    lo_v, hi_v = vals[vals < split], vals[vals >= split]
    sd = np.sqrt(0.5 * (lo_v.var() if len(lo_v) > 1 else 0.0) + 0.5 * (hi_v.var() if len(hi_v) > 1 else 0.0))
    sep = float((mg - mi) / sd) if sd > 0 else 0.0
    # a second class needs a real dip between the modes in the smoothed log-density
    i_lo, i_hi = sorted((int(np.searchsorted(c, mi)), int(np.searchsorted(c, mg))))
    dip = float(min(dens[i_lo], dens[min(i_hi, len(c) - 1)]) - dens[i_lo : i_hi + 1].min()) if i_hi > i_lo else 0.0
    return {
        "split": split, "impostor_mode": mi, "genuine_mode": mg, "separation": sep,
        "impostor_frac": float(len(lo_v) / len(vals)), "bimodal": bool(ok and mg > mi and dip > 0.1),
    }


# ------------------------------------------------------------------ API
def estimate_scale(
    graph: KnnGraph,
    *,
    k: int = 10,
    k_est: int = 20,
    alpha: float = 0.3,
    sample: int = 20000,
    seed: int = 0,
) -> ScaleEstimate:
    """Estimate the merge threshold of ``graph``'s embedding from its neighbour similarities.

    Parameters
    ----------
    graph : KnnGraph
        kNN graph (self first) with at least ``k_est`` columns for the full
        estimate (fewer are used if it has fewer).
    k : int
        Neighbours per point of the graph the partition will use (recorded).
    k_est : int
        Neighbours per point (self included) pooled for the estimate.
    alpha : float
        Threshold position between impostor mode (0) and genuine mode (1).
    sample : int
        At most this many graph rows are read (O(sample * k_est)).
    seed : int
        Seed of the row sample.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ParameterError(f"alpha must be in [0, 1], got {alpha!r}")
    if isinstance(k_est, bool) or not isinstance(k_est, int) or k_est < 3:
        raise ParameterError(f"k_est must be an integer >= 3, got {k_est!r}")
    if isinstance(sample, bool) or not isinstance(sample, int) or sample < 10:
        raise ParameterError(f"sample must be an integer >= 10, got {sample!r}")
    vals, n_rows = pooled_sims(graph, k_est, sample, seed)
    m = two_modes(vals)
    used_k = min(k_est, graph.k)
    notes: list[str] = []
    if not m["bimodal"] and graph.k > used_k:
        # identities larger than k_est fill the list with same-person neighbours: look deeper
        vals2, n_rows2 = pooled_sims(graph, graph.k, sample, seed)
        m2 = two_modes(vals2)
        if m2["bimodal"]:
            notes.append(f"no second mode within {used_k - 1} neighbours; used {graph.k - 1}")
            m, used_k, n_rows = m2, graph.k, n_rows2
    return _from_modes(m, k=k, k_est=used_k, alpha=alpha, n_rows=n_rows, notes=notes)


def _from_modes(m: dict, *, k: int, k_est: int, alpha: float, n_rows: int,
                notes: list[str]) -> ScaleEstimate:
    thr = m["impostor_mode"] + alpha * (m["genuine_mode"] - m["impostor_mode"])
    return ScaleEstimate(
        threshold=float(thr), k=int(k), k_est=int(k_est),
        impostor_mode=float(m["impostor_mode"]), genuine_mode=float(m["genuine_mode"]),
        split=float(m["split"]), impostor_frac=float(m["impostor_frac"]),
        separation=float(m["separation"]), alpha=float(alpha), n_rows=int(n_rows),
        bimodal=bool(m["bimodal"]), notes=notes,
    )


def stranger_floor(x: np.ndarray, alpha: float = FLOOR_ALPHA) -> float:
    """Lowest cosine at which two faces of a *small* collection may be called one person.

    The null model is "everyone is a stranger". It is fitted to the **angles**
    ``arccos(s)`` between the collection's ``M = N (N - 1) / 2`` pairs, not to the
    cosines: the different-people cosines of dlib-like models pile up below 1 (mean
    0.83) with a short upper tail, their angles are close to normal (on LFW, CelebA
    and ORL, dlib and ArcFace-like: the 1e-2 / 1e-3 / 1e-4 upper quantiles of the
    different-people angles lie 2.2-2.5 / 2.9-3.5 / 3.4-4.6 standard deviations from
    the mean, the normal's 2.33 / 3.09 / 3.72; in cosines dlib's lie at 2.0 / 2.5 /
    2.8 and a normal floor overshoots one person's photos). The strangers' angles are
    located and scaled from the largest quarter of all angles (``q75 - q90`` of
    ``-angle`` is 0.61 sigma for a normal sample; same-person pairs sit at smaller
    angles, so they barely move those quantiles while at least ~half the pairs are
    strangers; never below the scale the median absolute deviation of all angles
    gives, which is steadier when pairs are few). The floor angle is ``mu - z sigma``
    with ``z`` the ``1 - alpha / M`` quantile of Student's t with ``M - 1`` degrees of
    freedom (the normal one, widened for the few pairs ``mu`` and ``sigma`` come
    from): in a collection of strangers the chance that any pair comes closer is
    about ``alpha``. O(N^2 D); meant for N < :data:`SMALL_N`. Returns the floor's
    cosine, ``inf`` when no angle can be that small or the pairs have no spread.
    """
    fit = _stranger_angles(x)
    if fit is None:
        return float("inf")
    u, mu, sigma = fit
    z = float(stdtrit(len(u) - 1, 1.0 - alpha / len(u)))
    top = mu + z * sigma  # minus the floor angle
    return float(np.cos(-top)) if top < 0 else float("inf")


def _stranger_angles(x: np.ndarray) -> tuple[np.ndarray, float, float] | None:
    """``(-angles of all pairs, mu, sigma)``: the pairs and the strangers' normal fitted to
    them as :func:`stranger_floor` describes; None when there are no pairs or no spread."""
    n = x.shape[0]
    if n < 2:
        return None
    s = (x @ x.T)[np.triu_indices(n, 1)].astype(np.float64)
    u = -np.arccos(np.clip(s, -1.0, 1.0))  # minus the angle: increasing with the cosine
    q10, q25, q50 = np.quantile(u, [0.10, 0.25, 0.50])
    sigma = (q25 - q10) / 0.6080  # Phi^-1(0.25) - Phi^-1(0.10)
    # two order statistics are a noisy scale when pairs are few: never below the MAD's
    sigma = max(sigma, 1.4826 * float(np.median(np.abs(u - q50))))
    if not sigma > 1e-6:
        sigma = float(u.std())
    if not sigma > 1e-6:
        return None
    return u, q25 + 0.6745 * sigma, sigma


#: :func:`strangers_only`: the per-pair chance that sets the "close pair" level, and the
#: chance below which that many close pairs are an excess over strangers.
STRANGER_PAIR_P, STRANGER_EXCESS_P = 1e-2, 1e-3
#: :func:`strangers_only`: share of pairs with a negative cosine above which one hump of
#: pairs is centred on orthogonality (strangers of a model with no common direction: 0.33-0.61
#: of their pairs on LFW, CelebA, celeba_wild; one person's photos: 0-0.02)
FACING_AWAY = 0.1


def strangers_only(x: np.ndarray) -> tuple[bool, str]:
    """Whether a small collection of an unknown embedding model looks like strangers only
    (no same-person mode), and why.

    Two checks on all ``M = N (N - 1) / 2`` pairs, both needed:
    (1) **no excess of close pairs**: with the strangers' angles fitted as in
    :func:`stranger_floor`, the pairs closer than the level a pair of strangers reaches with
    chance :data:`STRANGER_PAIR_P` are no more than Binomial(M, that chance) gives with
    probability :data:`STRANGER_EXCESS_P` (a household or a few people with several photos
    each has far more; one hump of pairs, strangers or one person, has not);
    (2) **one hump centred on orthogonality**: at least :data:`FACING_AWAY` of the pairs face
    away from each other (negative cosine), which one person's photos never do in a model
    that can cluster them. A model whose faces share one direction (dlib-like cones: no
    negative pairs) fails (2): one person and strangers look alike there without the model's
    scale, so the two-mode estimate stands (``embedding=`` names the model).
    """
    from scipy.stats import binom, norm

    fit = _stranger_angles(x)
    if fit is None:
        return False, "no spread between the faces"
    u, mu, sigma = fit
    m = len(u)
    close = int((u > mu + float(norm.isf(STRANGER_PAIR_P)) * sigma).sum())
    p_excess = float(binom.sf(close - 1, m, STRANGER_PAIR_P)) if close else 1.0
    away = float((u < -np.pi / 2).mean())
    ok = p_excess >= STRANGER_EXCESS_P and away >= FACING_AWAY
    return ok, (f"{close} of {m} pairs closer than strangers' 1-in-{1 / STRANGER_PAIR_P:g} level "
                f"(chance {p_excess:.2g} among strangers), {away:.0%} of pairs facing away")


def deep_row_sims(x: np.ndarray, k: int, rows: int = 500, seed: int = 0) -> np.ndarray:
    """Top-``k`` similarities (self excluded) of ``rows`` random points against all points.

    Exact blocked matmul, O(rows * N * D): used when the graph is too shallow to
    show the different-people mode (identities with more photos than its k).
    """
    n = x.shape[0]
    k = min(k, n - 1)
    pick = np.sort(np.random.default_rng(seed).choice(n, size=min(rows, n), replace=False))
    out = np.empty((len(pick), k), dtype=np.float32)
    for start in range(0, len(pick), 64):
        r = pick[start : start + 64]
        s = x[r] @ x.T
        s[np.arange(len(r)), r] = -np.inf
        part = np.partition(s, s.shape[1] - k, axis=1)[:, -k:]
        out[start : start + len(r)] = -np.sort(-part, axis=1)
    return out


def estimate_scale_deep(
    x: np.ndarray, *, k: int = 10, k_deep: int = 160, alpha: float = 0.3, rows: int = 500,
    seed: int = 0,
) -> ScaleEstimate:
    """:func:`estimate_scale` from the ``k_deep`` nearest neighbours of a row sample of ``x``."""
    sims = deep_row_sims(x, k_deep, rows, seed)
    m = two_modes(sims[np.isfinite(sims)].astype(np.float64))
    return _from_modes(m, k=k, k_est=sims.shape[1] + 1, alpha=alpha, n_rows=sims.shape[0],
                       notes=[f"graph too shallow for a second mode; used the {sims.shape[1]} "
                              f"nearest neighbours of {sims.shape[0]} sampled points"])


def centred_graph_sims(
    graph: KnnGraph, x: np.ndarray, mean: np.ndarray, rows: np.ndarray | None = None
) -> np.ndarray:
    """Cosine of the graph's pairs after centring: ``(x_i - m).(x_j - m) / norms``, O(N k).

    Uses ``(x_i - m).(x_j - m) = s_ij - x_i.m - x_j.m + |m|^2`` so no feature
    pair is recomputed; missing neighbours stay -inf.
    """
    xm = (x @ mean).astype(np.float64)
    m2 = float(mean @ mean)
    norm = np.sqrt(np.maximum(1.0 - 2.0 * xm + m2, 1e-12))
    rows = np.arange(graph.n) if rows is None else np.asarray(rows)
    valid = graph.ids[rows] >= 0
    ids = np.where(valid, graph.ids[rows], 0)
    r = rows[:, None]
    s = (graph.sims[rows] - xm[r] - xm[ids] + m2) / (norm[r] * norm[ids])
    return np.where(valid, s, -np.inf).astype(np.float32)


def decide_centring(
    x: np.ndarray, graph: KnnGraph, *, k_est: int = 20, sample: int = 20000, seed: int = 0
) -> tuple[bool, float, float, float | None]:
    """Whether centring the features separates identities better, judged without labels.

    Returns ``(centre, mean_norm2, separation_raw, separation_centred)``.
    Centring is considered only when ``|mean|^2 >= CENTRE_MIN_MEAN2`` and chosen
    only if it raises the two-mode separation by ``CENTRE_MIN_GAIN``; the
    centred similarities of the graph's own pairs are used (O(N k)).
    """
    mean = x.mean(axis=0, dtype=np.float64)
    m2 = float(mean @ mean)
    vals, _ = pooled_sims(graph, k_est, sample, seed)
    sep_raw = float(two_modes(vals)["separation"])
    if m2 < CENTRE_MIN_MEAN2:
        return False, m2, sep_raw, None
    n = graph.n
    rows = (
        np.sort(np.random.default_rng(seed).choice(n, size=sample, replace=False))
        if n > sample else np.arange(n)
    )
    cs = centred_graph_sims(graph, x, mean.astype(np.float32), rows=rows)[:, 1:]
    cs = -np.sort(-cs, axis=1)[:, : max(1, min(k_est, graph.k) - 1)]
    cvals = cs[np.isfinite(cs)].astype(np.float64)
    sep_c = float(two_modes(cvals)["separation"]) if len(cvals) >= 10 else 0.0
    return bool(sep_c > CENTRE_MIN_GAIN * sep_raw), m2, sep_raw, sep_c


def set_attach(est: ScaleEstimate, attach: float | None, share: float, neighbours: int) -> None:
    """Fill ``est``'s attachment step: floor ``attach`` of the way between its two modes."""
    if attach is None or not (np.isfinite(est.threshold) and np.isfinite(est.impostor_mode)):
        est.attach_threshold = est.attach_share = est.attach_neighbours = None
        return
    est.attach_threshold = float(est.impostor_mode + attach * (est.genuine_mode - est.impostor_mode))
    est.attach_share = float(share)
    est.attach_neighbours = int(neighbours)


def set_join(est: ScaleEstimate, join: float | None, slots: float, share: float, back: float,
             touch: float, neighbours: int) -> None:
    """Fill ``est``'s cluster-joining step: floor ``join`` and touch ``touch`` of the way
    between its two modes (``join=None``: step off)."""
    if join is None or not (np.isfinite(est.threshold) and np.isfinite(est.impostor_mode)):
        est.join_threshold = est.join_slots = est.join_share = est.join_back = None
        est.join_touch = est.join_neighbours = None
        return
    gap = est.genuine_mode - est.impostor_mode
    est.join_threshold = float(est.impostor_mode + join * gap)
    est.join_slots, est.join_share, est.join_back = float(slots), float(share), float(back)
    est.join_touch = float(est.impostor_mode + touch * gap)
    est.join_neighbours = int(neighbours)
