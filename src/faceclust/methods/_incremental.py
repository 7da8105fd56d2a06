"""Method ``incremental``: grow a clustering batch by batch, the way a photo library does.

``fit(X)`` clusters a first collection with method ``auto`` (label-free scale
estimate + average linkage) and keeps its merge threshold. Each later
``partial_fit(X_batch)`` places the new faces by average linkage with the existing
clusters as fixed blocks -- a new face (or a group of new faces that agree) joins
the cluster whose mean cosine to it is highest and at least the threshold; a group
that joins nothing opens a new cluster; a lone stranger becomes a singleton (a
later photo of the same person can still join it) -- so the cost of a batch is one
nearest-neighbour search of the batch against the collection, never a
re-clustering (``placement="nearest"`` uses
:func:`faceclust.stages.placement.assign_new` instead). ``predict(X_new)`` gives the same
placement without storing anything (lone strangers are ``-1`` there).

``refine()`` repairs what greedy placement gets wrong, with work bounded by the
clusters touched since the last refine: those clusters and the clusters linked to
them are re-clustered from single faces with ``auto``'s exact average linkage
(mean pairwise cosine ``S_A . S_B / (|A| |B|)``) over their own kNN edges, then
merged with neighbouring clusters that reach the threshold. On LFW one final
``refine()`` after 10 batches lands within 0.4 point of ``auto`` on everything
(``docs/photo-library.md``).

Constraints (``constraints=``, a :class:`faceclust.stages.constraints.Constraints`
or a ``(must_link, cannot_link)`` pair of ``[m, 2]`` index arrays) are applied after
``fit`` and after every ``refine`` by :func:`faceclust.stages.constraints.apply_constraints`.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from .._validation import check_features
from ..adaptive import SMALL_N, estimate_scale, estimate_scale_deep, set_attach, set_join
from ..errors import InputError
from ..graph import group_sums
from ..knn import KnnGraph, build_knn, search_topk
from ..stages.cluster_ops import attach_by_majority
from ..stages.join import join_clusters
from ..stages.linkage import centroid_average_linkage, linked_clusters, merge_clusters
from ..stages.placement import assign_new, place_average
from ._auto import LINKAGE_PARAMETERS, AutoClusterer
from ._base import BaseClusterer, Constraint, OneOf, Param, register, sklearn_check

#: The threshold is re-estimated whenever the collection has grown by this factor.
_REESTIMATE_GROWTH = 1.25
#: A re-estimate that raises the threshold by more than this fraction of the gap
#: between the two similarity modes marks every cluster for the next refine.
_RETOUCH_RISE = 0.02
#: ... and at ``refine`` when it has grown by this factor.
_REFINE_GROWTH = 1.05


@register("incremental")
class IncrementalClusterer(BaseClusterer):
    """Incremental clustering: ``fit`` a first batch with ``auto``, then ``partial_fit`` batches.

    Parameters
    ----------
    k : int
        Neighbours per point (self included) for ``auto`` and for linking new faces.
    k_est : int
        Neighbours pooled by ``auto``'s scale estimate.
    alpha : float
        ``auto``'s threshold position between the two similarity modes.
    threshold : float or None
        Fixed merge/join threshold (cosine); ``None`` estimates it on the first batch.
    attach, attach_share : float or None, float
        ``auto``'s attachment of faces left alone (see :class:`AutoClusterer`);
        used by ``fit`` and by :meth:`refine`'s re-clustering.
    join, join_slots, join_share, join_back, join_touch : float or None, float, ...
        ``auto``'s joining of the pieces of one person (see :class:`AutoClusterer`);
        used by ``fit`` and by :meth:`refine`'s re-clustering.
    small_floor, stranger_check, embedding : float or None, bool, {"auto", None} or str
        ``auto``'s stranger floor, no-same-person-mode check and known-model verification cosine for
        collections under 50 faces (see :class:`AutoClusterer`); the threshold
        they give stays until the collection has 50 faces.
    placement : {"average", "nearest"}
        How a batch is placed. ``"average"`` (default): average linkage with the
        existing clusters as fixed blocks -- a new face or group of new faces joins
        the cluster whose mean pairwise cosine to it (exact, from cluster vector
        sums) is highest and >= threshold, as ``auto`` would have merged them.
        ``"nearest"``: :func:`faceclust.stages.placement.assign_new` (nearest face >=
        threshold, groups follow their majority): a nearest-face rule at an
        average-linkage threshold over-joins until the next :meth:`refine` (LFW
        ArcFace, 10 batches: pairwise F 0.835 before, 0.985 after one refine).
    reestimate : bool
        Re-estimate the threshold from a row sample's kNN similarities whenever the
        collection has grown by 25 % since the last estimate, and at
        :meth:`refine` after 5 % growth (a geometric schedule: amortised O(1) searches per face); a
        first batch of a few hundred faces alone underestimates it. A re-estimate
        that raises the threshold clearly (> 2 % of the gap between the two
        similarity modes) marks every cluster for the next :meth:`refine`.
    refine_every : int or None
        Call :meth:`refine` automatically after this many ``partial_fit`` batches.
    constraints : Constraints, tuple or None
        Must-link / cannot-link pairs (indices into the whole collection, in the
        order faces were added), honoured after ``fit`` and every ``refine``.
    seed : int
        Seed of ``auto``'s row sample.

    Attributes
    ----------
    labels_ : ndarray
        Cluster of every face added so far (singletons keep their own label).
    threshold_ : float
        The join/merge threshold (from the first batch's estimate).
    features_ : ndarray
        Unit rows of every face added so far (centred when ``auto`` chose to).
    n_at_estimate_ : int
        Collection size at the last threshold estimate (read-only; see :meth:`from_state`).
    touched_ : set of int
        Clusters changed since the last :meth:`refine`.
    batch_seconds_ : list of float
        Wall time of each ``partial_fit``.
    confidence_ : ndarray
        Per-face confidence in [0, 1] (computed on access).

    Examples
    --------
    >>> from faceclust.synth import make_faces
    >>> X, y = make_faces(1200, 60, 64, seed=0)
    >>> inc = IncrementalClusterer().fit(X[:600])
    >>> for start in range(600, 1200, 200):
    ...     _ = inc.partial_fit(X[start:start + 200])
    >>> inc.labels_.shape
    (1200,)
    >>> _ = inc.refine()
    """

    _parameter_constraints: ClassVar[dict[str, Constraint]] = {
        **LINKAGE_PARAMETERS,
        "placement": OneOf(("average", "nearest")),
        "reestimate": OneOf((True, False), same_type=True),
        "refine_every": Param(int, 1, optional=True),
        "seed": Param(int, 0),
    }

    def __init__(
        self,
        k: int = 10,
        k_est: int = 20,
        alpha: float = 0.3,
        threshold: float | None = None,
        attach: float | None = 0.05,
        attach_share: float = 0.9,
        join: float | None = 0.05,
        join_slots: float = 0.45,
        join_share: float = 0.5,
        join_back: float = 0.2,
        join_touch: float = 0.55,
        small_floor: float | None = None,
        stranger_check: bool = True,
        embedding: str | None = "auto",
        placement: str = "average",
        reestimate: bool = True,
        refine_every: int | None = None,
        constraints: object = None,
        seed: int = 0,
    ) -> None:
        self.k = k
        self.k_est = k_est
        self.alpha = alpha
        self.threshold = threshold
        self.attach = attach
        self.attach_share = attach_share
        self.join = join
        self.join_slots = join_slots
        self.join_share = join_share
        self.join_back = join_back
        self.join_touch = join_touch
        self.small_floor = small_floor
        self.stranger_check = stranger_check
        self.embedding = embedding
        self.placement = placement
        self.reestimate = reestimate
        self.refine_every = refine_every
        self.constraints = constraints
        self.seed = seed

    # ------------------------------------------------------------- fitting
    def _fit(self, x: np.ndarray | None, knn: KnnGraph | None) -> np.ndarray:
        if x is None:
            raise InputError("incremental: features X are required (it keeps them to add faces)")
        auto = AutoClusterer(
            k=self.k, k_est=self.k_est, alpha=self.alpha, threshold=self.threshold,
            attach=self.attach, attach_share=self.attach_share, join=self.join,
            join_slots=self.join_slots, join_share=self.join_share, join_back=self.join_back,
            join_touch=self.join_touch, small_floor=self.small_floor,
            stranger_check=self.stranger_check, embedding=self.embedding, seed=self.seed,
        )
        auto.fit(x, knn=knn)
        for name, sec in auto.stage_seconds_.items():
            self.stage_seconds_[name] = self.stage_seconds_.get(name, 0.0) + sec
        self.estimate_ = auto.estimate_
        self.explain_ = auto.explain_
        thr = auto.threshold_
        if not np.isfinite(thr):  # <= 2 points: no scale yet; join only near-duplicates
            thr = 0.99 if self.threshold is None else float(self.threshold)
        self.threshold_ = float(thr)
        self.centre_mean_ = None
        if getattr(auto.estimate_, "centre", False):
            self.centre_mean_ = x.mean(axis=0, dtype=np.float64).astype(np.float32)
        self.features_ = self._transform(x)
        self._n_at_estimate = len(x)
        self.batch_seconds_ = []
        self._batches_since_refine = 0
        labels = np.asarray(auto.labels_, dtype=np.int64)
        labels = self._constrain(labels)
        self.touched_ = set()
        return labels

    @classmethod
    def from_state(
        cls,
        X: np.ndarray,
        labels: np.ndarray,
        *,
        threshold: float,
        estimate: object = None,
        centre_mean: np.ndarray | None = None,
        n_at_estimate: int | None = None,
        **params: object,
    ) -> IncrementalClusterer:
        """A fitted estimator continuing a clustering kept elsewhere (e.g. a photo catalogue).

        ``X`` are the faces' raw rows in the order they were added, ``labels`` their
        clusters (>= 0), ``threshold``/``estimate``/``centre_mean`` what an earlier
        estimator had in ``threshold_``/``estimate_``/``centre_mean_`` and
        ``n_at_estimate`` the collection size at its last estimate (re-estimates then
        follow the same growth schedule). ``partial_fit`` and ``refine`` continue from
        here exactly as on the estimator that was saved.
        """
        self = cls(**params)
        self._validate_params()
        x = check_features(sklearn_check(X), source="X")
        y = np.asarray(labels, dtype=np.int64).reshape(-1)
        if len(y) != len(x) or (len(y) and y.min() < 0):
            raise InputError(f"from_state: need {len(x)} labels >= 0, got {len(y)}")
        self.stage_seconds_ = {}
        self.n_features_in_ = x.shape[1]
        self.centre_mean_ = None if centre_mean is None else np.asarray(centre_mean, np.float32)
        self.features_ = self._transform(x)
        self.labels_ = y.copy()
        self.threshold_ = float(threshold)
        self.estimate_ = estimate
        self.explain_ = estimate.explain() if hasattr(estimate, "explain") else ""
        self._n_at_estimate = int(n_at_estimate or len(x))
        self.batch_seconds_ = []
        self._batches_since_refine = 0
        self.touched_ = set()
        return self
    @property
    def n_at_estimate_(self) -> int:
        """Collection size at the last threshold estimate (read-only).

        Re-estimates follow a growth schedule from it; a catalogue that saves the
        clustering (``faceclust.library.people``) stores it to pass back to
        :meth:`from_state`.
        """
        return int(self._n_at_estimate)

    def _fit_identical(self, x: np.ndarray, knn: KnnGraph | None) -> np.ndarray:
        return self._fit(x, knn)  # ``auto`` gives one cluster; the state for partial_fit is kept

    def _transform(self, x: np.ndarray) -> np.ndarray:
        """Unit rows in the space the clustering lives in (centred if ``auto`` centred)."""
        if self.centre_mean_ is None:
            return np.ascontiguousarray(x, dtype=np.float32)
        xc = x - self.centre_mean_
        xc /= np.maximum(np.linalg.norm(xc, axis=1, keepdims=True), 1e-12)
        return xc.astype(np.float32)

    def _check_new(self, X: object, what: str) -> np.ndarray:
        if not hasattr(self, "labels_"):
            from sklearn.exceptions import NotFittedError

            raise NotFittedError(f"incremental: call fit before {what}")
        shape = getattr(X, "shape", None) or np.shape(X)
        if len(shape) == 2 and shape[1] != self.n_features_in_:
            raise InputError(
                f"X has {shape[1]} features, but IncrementalClusterer is expecting "
                f"{self.n_features_in_} features as input (new faces must come from the same model)"
            )
        x = check_features(sklearn_check(X), source="X")
        return self._transform(x)

    def _place(self, xn: np.ndarray) -> np.ndarray:
        """Labels of new unit rows ``xn``; old labels unchanged, fresh ids > max(labels_)."""
        if self.placement == "nearest":
            return assign_new(self.features_, self.labels_, xn, self.threshold_, k=self.k)
        return place_average(self.features_, self.labels_, xn, self.threshold_, self.k)

    def _maybe_reestimate(self, force: bool = False) -> None:
        """Re-estimate the threshold once the collection has grown by ``_REESTIMATE_GROWTH``
        (or on ``refine`` after ``_REFINE_GROWTH``); only when ``threshold`` is None.

        The estimate depends on the collection's size (more photos per person put more
        same-person pairs among the nearest neighbours: on LFW ArcFace it rises from
        0.380 at 1.5K faces to 0.442 at 7.6K), so a first batch's value is too low.
        Cost: one search of ``min(N, 20000)`` sample rows against the collection.
        """
        n = len(self.features_)
        if not self.reestimate or self.threshold is not None or n <= self._n_at_estimate:
            return
        if n < SMALL_N:  # too few faces to re-estimate (and keeps auto's stranger floor)
            return
        if n < (_REFINE_GROWTH if force else _REESTIMATE_GROWTH) * self._n_at_estimate:
            return
        k_est = min(self.k_est, n)
        rng = np.random.default_rng(self.seed)
        rows = np.sort(rng.choice(n, size=min(n, 20000), replace=False))
        s, _ = search_topk(self.features_, self.features_[rows], k_est)
        ids = np.zeros(s.shape, dtype=np.int64)  # only validity (>= 0) is read by the estimate
        ids[:, 0] = np.arange(len(rows))
        s[:, 0] = np.maximum(s[:, 0], s[:, 1:].max(axis=1, initial=-1.0))
        graph = KnnGraph(ids, np.ascontiguousarray(s, dtype=np.float32))
        est = estimate_scale(graph, k=self.k, k_est=k_est, alpha=float(self.alpha),
                             sample=len(rows), seed=self.seed)
        if not est.bimodal and n - 1 > k_est:  # as ``auto``: big identities fill the list
            deep = estimate_scale_deep(self.features_, k=self.k, alpha=float(self.alpha),
                                       seed=self.seed)
            if deep.bimodal:
                est = deep
        if np.isfinite(est.threshold) and est.bimodal:
            est.centre = self.centre_mean_ is not None
            set_attach(est, self.attach, self.attach_share, k_est - 1)
            set_join(est, self.join, self.join_slots, self.join_share, self.join_back,
                     self.join_touch, k_est - 1)
            gap = float(est.genuine_mode - est.impostor_mode)
            if est.threshold > self.threshold_ + _RETOUCH_RISE * max(gap, 1e-6):
                # clusters formed under a clearly lower threshold: let the next refine
                # revisit all of them (happens on a geometric schedule, so amortised)
                self.touched_ = set(np.unique(self.labels_).tolist())
            self.estimate_ = est
            self.threshold_ = float(est.threshold)
            self.explain_ = est.explain()
        self._n_at_estimate = n

    def partial_fit(self, X: np.ndarray, y: object = None):
        """Add a batch of faces: join existing clusters, open new ones; return ``self``.

        The first call on an unfitted estimator is ``fit``. Cost: one exact
        nearest-neighbour search of the batch against the collection
        (O(N M D)) plus a kNN among the batch.
        """
        import time

        if not hasattr(self, "labels_"):
            return self.fit(X)
        t0 = time.perf_counter()
        xn = self._check_new(X, "partial_fit")
        new = self._place(xn)
        self.features_ = np.concatenate([self.features_, xn])
        self.labels_ = np.concatenate([self.labels_, new])
        self.touched_.update(np.unique(new).tolist())
        self._batches_since_refine += 1
        self._maybe_reestimate()
        self.batch_seconds_.append(time.perf_counter() - t0)
        if self.refine_every is not None and self._batches_since_refine >= self.refine_every:
            self.refine()
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Labels new faces would get (nothing is stored).

        An existing cluster's label, a fresh label ``> labels_.max()`` for a group
        of new faces that agree, ``-1`` for a lone stranger.
        """
        xn = self._check_new(X, "predict")
        out = self._place(xn)
        base = int(self.labels_.max()) + 1
        fresh = out >= base
        if fresh.any():
            ids, cnt = np.unique(out[fresh], return_counts=True)
            lone = np.isin(out, ids[cnt == 1]) & fresh
            out[lone] = -1
            keep = fresh & ~lone
            if keep.any():
                _, inv = np.unique(out[keep], return_inverse=True)
                out[keep] = base + inv
        return out

    @property
    def confidence_(self) -> np.ndarray:
        """Per-face confidence in [0, 1] (:func:`faceclust.suggest.confidence`, scale from
        ``estimate_``); computed on access (one kNN search of the collection)."""
        if not hasattr(self, "labels_"):
            raise AttributeError("confidence_: call fit first")
        from ..suggest import confidence

        est = self.estimate_
        scale = float(est.genuine_mode - est.impostor_mode)
        if not np.isfinite(scale) or scale <= 0:
            scale = 1.0
        return confidence(self.features_, self.labels_, scale=scale, threshold=self.threshold_,
                          k=self.k)

    # -------------------------------------------------------------- refine
    def refine(self):
        """Re-cluster the neighbourhood of the clusters touched since the last refine.

        The *region* is the touched clusters plus the clusters linked to them (mean
        pairwise cosine >= ``threshold_``; candidates: each touched cluster's ``k``
        nearest cluster mean directions). Its faces are re-clustered from single
        faces with ``auto``'s exact average linkage over the region's own kNN edges
        (wrong joins split off, look-alikes regroup), label ids are kept where the
        new clusters overlap old ones, and region clusters then merge with
        neighbouring clusters whose mean pairwise cosine reaches the threshold.
        Work: a kNN search over the R region faces (exact, O(R^2 D), up to 100K
        of them; the ivf-blas join beyond), nothing outside the region
        revisited, plus O(T C D) for the candidates and the threshold
        re-estimate. Returns ``self``.
        """
        if not hasattr(self, "labels_"):
            from sklearn.exceptions import NotFittedError

            raise NotFittedError("incremental: call fit before refine")
        self._maybe_reestimate(force=True)
        touched = np.array(sorted(self.touched_), dtype=np.int64)
        self._batches_since_refine = 0
        if len(touched) == 0:
            return self
        labels = self.labels_.copy()
        x, t, k = self.features_, self.threshold_, self.k
        # 1. region: touched clusters + neighbouring clusters linked to them (mean cosine
        #    >= t), candidates from the k nearest cluster mean directions (O(T C D))
        ids, inv, sums, cnt = _cluster_table(x, labels)
        tpos = np.searchsorted(ids, touched[np.isin(touched, ids)])
        ca, cb, _ = linked_clusters(sums, cnt, tpos, k, t)
        region_c = np.zeros(len(ids), dtype=bool)
        region_c[tpos] = True
        region_c[cb] = True
        region = np.flatnonzero(region_c[inv])
        # 2. re-cluster the region from single faces, exactly as ``auto`` does (average
        #    linkage over the region's own kNN edges); old label ids are kept by overlap
        if len(region) >= 2:
            # build_knn: exact up to 100K region faces, the ivf-blas join beyond (a region
            # can be most of a big collection when new faces touched most clusters)
            g = build_knn(x[region], k=min(max(k, self.k_est), len(region) - 1),
                          progress_bar=False)
            src, dst, w = g.truncate(min(k, g.k)).edges()
            sub = centroid_average_linkage(x[region], src, dst, w, t, progress_bar=False)
            est = self.estimate_
            m = min(self.k_est, g.k)
            if getattr(est, "join_threshold", None) is not None:  # as ``auto``
                sub = join_clusters(x[region], sub, g.ids[:, 1:m], est.join_threshold,
                                    slots=est.join_slots, share=est.join_share,
                                    back=est.join_back, touch=est.join_touch,
                                    nbr_sims=g.sims[:, 1:m])
            if getattr(est, "attach_threshold", None) is not None:
                sub = attach_by_majority(sub, g.ids[:, 1:m], est.attach_threshold,
                                         x=x[region], share=est.attach_share)
            labels[region] = _keep_ids(labels[region], sub, int(labels.max()) + 1)
        # 3. merge: region clusters with any neighbouring cluster, exact mean pairwise cosine
        ids, inv, sums, cnt = _cluster_table(x, labels)
        rpos = np.unique(inv[region])
        ca, cb, ok = linked_clusters(sums, cnt, rpos, k, t)
        labels = merge_clusters(x, labels, ids[ca], ids[cb], t)
        self.touched_ = set()
        self.labels_ = self._constrain(labels)
        self.touched_ = set()
        return self

    def _constrain(self, labels: np.ndarray) -> np.ndarray:
        if self.constraints is None:
            return labels
        from ..stages.constraints import apply_constraints, as_constraints

        cons = as_constraints(self.constraints, len(labels))
        feats = self.features_ if hasattr(self, "features_") else None
        return apply_constraints(labels, cons.must_link, cons.cannot_link, feats)


def _cluster_table(x: np.ndarray, labels: np.ndarray):
    """``(ids, inv, sums, counts)`` of the clusters of ``labels`` (all >= 0)."""
    ids, inv = np.unique(labels, return_inverse=True)
    sums = group_sums(x, inv, len(ids))
    return ids, inv, sums, np.bincount(inv).astype(np.float64)


def _keep_ids(old: np.ndarray, sub: np.ndarray, fresh: int) -> np.ndarray:
    """Labels for new clusters ``sub``: each takes the old id it overlaps most (largest
    overlaps first, every old id used once); the rest get fresh ids from ``fresh``."""
    pairs, counts = np.unique(np.stack([sub, old], axis=1), axis=0, return_counts=True)
    order = np.argsort(-counts, kind="stable")
    out_id = np.full(int(sub.max()) + 1, -1, dtype=np.int64)
    used: set[int] = set()
    for (c, o) in pairs[order].tolist():
        if out_id[c] < 0 and o not in used:
            out_id[c] = o
            used.add(o)
    miss = out_id < 0
    out_id[miss] = fresh + np.arange(int(miss.sum()))
    return out_id[sub]
