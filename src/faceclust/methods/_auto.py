"""Method ``auto``: label-free, scale-adaptive clustering that works on any embedding model.

1. kNN graph (exact by default) with ``max(k, k_est)`` neighbours;
2. centring decided from the data (:func:`faceclust.adaptive.decide_centring`);
3. merge threshold estimated from the neighbour similarities
   (:func:`faceclust.adaptive.estimate_scale`);
4. **average linkage** restricted to the ``k``-NN edges whose cosine is at
   least the threshold: two clusters merge while the mean cosine over *all*
   their member pairs is >= the threshold. For unit vectors that mean is
   ``S_A . S_B / (|A| |B|)`` with ``S`` the sum of a cluster's vectors, so it
   is exact and costs O(D) per cluster pair. Merges run in parallel rounds of
   mutual best pairs (exact for a reducible linkage such as the average);
5. **joining** of the pieces of one person: a cluster whose members have a
   large part of their neighbours in another cluster, which holds most of
   their neighbours outside it and lists them back, merges with it by average
   linkage down to a floor ``join`` of the way between the two modes
   (:func:`faceclust.stages.join.join_clusters`): varied photos of one person
   (pose, age, lighting) split into clusters whose mean cosine is just under
   the threshold;
6. **attachment** of the faces left alone: one joins the cluster that holds
   at least 90 % of its ``k_est - 1`` nearest neighbours if its mean cosine to
   that cluster is at least ``attach`` of the way from the different-people
   mode to the same-person mode (:func:`faceclust.stages.cluster_ops.attach_by_majority`).

Why average linkage: connected components at one threshold chain different
people together through a single look-alike pair (on LFW dlib features a
0.01 lower threshold drops pairwise F from 0.93 to 0.74), while an average
over all pairs is robust to one bad edge; singletons whose best match is not
close enough stay singletons. Why step 6: in collections where most people
have many photos (MS-Celeb-1M-like), the poorest photos of a person have a mean
cosine to their own cluster below the threshold, yet nearly all their nearest
neighbours are that person's photos; a stranger's look-alikes rarely agree that
much, and when they do (a famous face with hundreds of photos) its mean cosine to
them stays at the different-people level. Measured on real LFW (7,605 photos): ArcFace
512-d pairwise/BCubed F 0.98/0.98, dlib 128-d 0.96/0.93, with no labels and no
flags (``benchmarks/real_data_eval.py``, ``docs/real-data.md``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import numpy as np

from ..adaptive import (
    MIN_N,
    SMALL_N,
    ScaleEstimate,
    centred_graph_sims,
    decide_centring,
    estimate_scale,
    estimate_scale_deep,
    set_attach,
    set_join,
    stranger_floor,
    strangers_only,
)
from ..embeddings import VERIFY_ALPHA, KnownEmbedding
from ..embeddings import known as known_embeddings
from ..embeddings import resolve as resolve_embedding
from ..errors import ParameterError
from ..graph import connected_components
from ..knn import KnnGraph, build_knn
from ..stages.cluster_ops import attach_moves
from ..stages.components import apply_moves, attach_inputs, link_threaded, threshold_edges
from ..stages.join import join_clusters
from ._base import IDENTICAL_TOL, BaseClusterer, Constraint, OneOf, Param, register


def _duplicates(x: np.ndarray) -> np.ndarray:
    """Labels of a handful of rows: exact duplicates (cosine >= 1 - IDENTICAL_TOL) together."""
    n = x.shape[0]
    nrm = np.linalg.norm(x, axis=1)
    cos = (x @ x.T) / np.outer(nrm, nrm)
    u, v = np.nonzero(np.triu(cos >= 1.0 - IDENTICAL_TOL, 1))
    return connected_components(u, v, n)


#: Constraints of the parameters ``auto`` shares with ``incremental`` (which passes them on).
LINKAGE_PARAMETERS: dict[str, Constraint] = {
    "k": Param(int, 2),
    "k_est": Param(int, 3),
    "alpha": Param((int, float), 0.0, 1.0),
    "threshold": Param((int, float), -1.0, 1.0, lo_open=True, optional=True),
    "attach": Param((int, float), 0.0, 1.0, optional=True),
    "attach_share": Param((int, float), 0.5, 1.0, lo_open=True),
    "join": Param((int, float), 0.0, 1.0, optional=True),
    "join_slots": Param((int, float), 0.0, 1.0),
    "join_share": Param((int, float), 0.0, 1.0),
    "join_back": Param((int, float), 0.0, 1.0),
    "join_touch": Param((int, float), 0.0, 1.0),
    "small_floor": Param((int, float), 0.0, 1.0, lo_open=True, optional=True),
    "stranger_check": Param(bool),
    "embedding": OneOf(("auto", None, *sorted(known_embeddings())),
                       text="'auto', None or a known model (" + ", ".join(
                           repr(m) for m in sorted(known_embeddings())) + ")"),
}


@register("auto")
class AutoClusterer(BaseClusterer):
    """Label-free default: estimates the embedding's similarity scale, then average linkage.

    Works out of the box on ArcFace-like (cos ~ 0 between people) and dlib-like
    (cos ~ 0.83) features: the merge threshold is estimated from the two modes
    of the kNN similarities (different people / same person), see
    :mod:`faceclust.adaptive`; ``explain_`` says what was chosen and why.

    Parameters
    ----------
    k : int
        Neighbours per point (self included) whose edges may join clusters.
    k_est : int
        Neighbours per point pooled for the scale estimate.
    alpha : float
        Threshold position between the different-people mode (0) and the
        same-person mode (1) of the neighbour similarities.
    threshold : float or None
        Fixed merge threshold (cosine); ``None`` estimates it (the default).
    attach : float or None
        Second step, for faces the linkage left alone: such a face joins the
        cluster holding at least ``attach_share`` of its ``k_est - 1`` nearest
        neighbours when its mean cosine to that cluster is at least
        ``impostor_mode + attach * (genuine_mode - impostor_mode)`` (a poor
        photo of a well-photographed person has most of its neighbours in that
        person's cluster; a stranger's look-alikes are scattered or too far).
        ``None`` keeps every such face a singleton.
    attach_share : float
        Fraction of the neighbours that must lie in that one cluster, in (0.5, 1].
    join : float or None
        Step between the linkage and the attachment, for people split into
        several clusters (varied photos: pose, age, lighting): two clusters
        merge by average linkage down to ``impostor_mode + join *
        (genuine_mode - impostor_mode)`` (the attachment's floor) if one of them
        is evidently a piece of the other (next four parameters, over the
        ``k_est - 1`` nearest neighbours of its members;
        :func:`faceclust.stages.join.evidenced_pairs`). ``None``: step off.
        Needs the features (skipped on a graph alone).
    join_slots : float
        Fraction of the piece's neighbour slots that must lie in the other cluster.
    join_share : float
        Fraction of the piece's neighbour slots outside itself that must lie there.
    join_back : float
        The other cluster's members must list the piece at least this many
        times as often as the piece lists them (not a hub everyone is near).
    join_touch : float
        Some neighbour pair between the two clusters must have a similarity at
        least this fraction of the way from the different-people mode to the
        same-person mode (they touch, as one person's pose groups do; two tight
        identities with a gap between them do not).
    small_floor : float or None
        Opt-in precision guard for collections under ``adaptive.SMALL_N`` faces of
        an embedding model faceclust does not know (see ``embedding``): merges need
        a cosine above the stranger floor (:func:`faceclust.adaptive.stranger_floor`),
        the level a pair of strangers in this collection reaches with chance
        ``small_floor`` (``1e-3``: an album of strangers stays apart), fitted to the
        angles between its faces. Off by default: it cannot tell an album of one
        person, nor one of a few people with many photos each, from an album of
        strangers, and keeps them apart too (measured in docs/degenerate.md,
        ``benchmarks/small_collections.py --real``).
    stranger_check : bool
        For collections of 5 to ``adaptive.SMALL_N`` faces of an embedding model
        faceclust does not know: when the pairs show no same-person mode
        (:func:`faceclust.adaptive.strangers_only`: no excess of close pairs over what
        strangers give, and one hump of pairs centred on orthogonality), everyone is
        their own cluster instead of the two-mode estimate, which invents a second mode
        in an album of strangers. Needs the features; off under ``small_floor``.
    embedding : {"auto", None} or str
        The embedding model, for collections under ``adaptive.SMALL_N`` faces: a
        known model (``faceclust.embeddings.known()``, e.g. ``"dlib128"``, the
        photo pipeline's) brings its verification cosine, calibrated once on one
        source and validated on others, which merges one person's photos and keeps
        strangers apart where the collection alone cannot tell them apart; that
        replaces the estimate and the stranger floor. ``"auto"`` recognises a model
        from its faces' mean direction where it has one (dlib's), ``None`` never
        uses one. Larger collections estimate their own scale either way.
    centre : {"auto", True, False}
        Subtract the mean embedding and re-normalise: decided from the data,
        always, or never. Needs the features (not possible from a graph alone).
    sample : int
        Graph rows read by the estimate (bounds its cost at any N).
    seed : int
        Seed of that row sample.

    Attributes
    ----------
    labels_ : ndarray
        Cluster per point (singletons keep their own label).
    estimate_ : ScaleEstimate
        The estimate (threshold, modes, centring decision, diagnostics).
    threshold_ : float
        The threshold used.
    explain_ : str
        Human-readable account of the choices.
    embedding_ : str or None
        The known embedding model used or checked (``embedding``), None if none.

    Examples
    --------
    >>> import numpy as np
    >>> from faceclust.synth import make_faces
    >>> X, y = make_faces(2000, 400, 128, seed=0)
    >>> model = AutoClusterer().fit(X)
    >>> print(model.explain_)  # doctest: +SKIP
    """

    _parameter_constraints: ClassVar[dict[str, Constraint]] = {
        **LINKAGE_PARAMETERS,
        "centre": OneOf(("auto", True, False)),
        "sample": Param(int, 10),
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
        centre: str | bool = "auto",
        sample: int = 20000,
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
        self.centre = centre
        self.sample = sample
        self.seed = seed

    def _fit(self, x: np.ndarray | None, knn: KnnGraph | None) -> np.ndarray:
        n = knn.n if knn is not None else x.shape[0]
        model = self._small_model(x, n)
        fixed = self.threshold if model is None else model.verify_cos(n)
        if n < MIN_N and fixed is None:
            self._set_trivial(n, f"only {n} face(s): too few to estimate a similarity scale, "
                                 "so each is its own cluster apart from exact duplicates "
                                 "(pass threshold= to merge, or embedding= a known model)")
            return _duplicates(x) if x is not None else np.arange(n, dtype=np.int64)
        if n <= 2:  # a fixed threshold on one pair
            self._set_trivial(n, f"{n} face(s), " + (
                "threshold fixed by the caller" if model is None
                else f"threshold {fixed:.4f}: the verification cosine of {model.name}"))
            self.threshold_ = float(fixed)
            if n == 2 and x is not None and float(x[0] @ x[1]) >= fixed:
                return np.zeros(2, dtype=np.int64)
            return np.arange(n, dtype=np.int64)
        # an executor (faceclust.distributed.fit_ray) runs the same stage functions on
        # Ray workers: the linkage per group of components, the attachment per block
        ex = self._executor
        x, graph, est = self._prepare(x, knn, ex.build_knn if ex else build_knn, model)
        with self._stage("select"):
            src, dst, w = self._select(graph, est)
        with self._stage("partition"):
            link = ex.link if ex else link_threaded
            labels = link(x, graph.n, src, dst, w, est.threshold)
        if est.join_threshold is not None:  # one pass: it reads the whole partition
            with self._stage("join"):
                labels = self._join(x, graph, est, labels)
        if est.attach_threshold is not None:
            with self._stage("attach"):
                nbr_ids, nbr_sims = attach_inputs(graph, est.attach_neighbours, x is not None)
                if ex:
                    labels = ex.attach(x, nbr_ids, nbr_sims, labels, est.attach_threshold,
                                       est.attach_share)
                else:
                    pts, targets = attach_moves(labels, nbr_ids, est.attach_threshold, x=x,
                                                nbr_sims=nbr_sims, share=est.attach_share)
                    labels = apply_moves(labels, pts, targets)
        return labels

    def _select(self, graph: KnnGraph, est: ScaleEstimate) -> tuple[np.ndarray, ...]:
        """Edges that may join clusters, ``(src, dst, cosine)``: the kNN edges at or above the
        threshold. A subclass hook: gcn-v's ``partition="linkage"`` passes its node -> peak
        edges instead (:func:`faceclust.methods._gcn.linkage_partition`)."""
        return threshold_edges(graph, self.k, est.threshold)

    def _small_model(self, x: np.ndarray | None, n: int) -> KnownEmbedding | None:
        """The known embedding model whose verification cosine a small collection uses
        (``embedding``), or None; sets ``embedding_``. A model named by the caller is
        checked against the features at any size."""
        self.embedding_ = None
        if x is None or (n >= SMALL_N and self.embedding in ("auto", None)):
            return None
        model = resolve_embedding(self.embedding, x)
        self.embedding_ = None if model is None else model.name
        return model if self.threshold is None and n < SMALL_N else None

    def _prepare(
        self, x: np.ndarray | None, knn: KnnGraph | None, knn_builder: Callable = build_knn,
        model: KnownEmbedding | None = None,
    ) -> tuple[np.ndarray | None, KnnGraph, ScaleEstimate]:
        """kNN graph, centring and the scale estimate: ``(x as used, graph, estimate)``.

        ``knn_builder(x, k=...)`` builds a graph when none is given (the Ray
        backend passes its distributed search). ``model``: a small collection's known
        embedding model, whose verification cosine (raw features) is the threshold.
        """
        n = knn.n if knn is not None else x.shape[0]
        # on the raw features: centring turns one person's photos into a hump facing away
        strangers = (strangers_only(x) if self.stranger_check and self.small_floor is None
                     and model is None and self.threshold is None and x is not None
                     and MIN_N <= n < SMALL_N else None)
        with self._stage("knn"):
            if knn is not None:
                if knn.k < min(self.k, n - 1):
                    raise ParameterError(
                        f"auto: needs k={self.k} neighbours but the given kNN graph has only "
                        f"k={knn.k}; rebuild it with a larger k or lower k"
                    )
                graph = knn
            else:
                graph = knn_builder(x, k=min(max(self.k, self.k_est), n - 1))
        centre, m2, sep_raw, sep_c = False, None, None, None
        if x is not None and self.centre is not False and n >= MIN_N and model is None:
            with self._stage("centre"):
                centre, m2, sep_raw, sep_c = decide_centring(
                    x, graph, k_est=self.k_est, sample=self.sample, seed=self.seed
                )
                if self.centre is True:
                    centre = True
                if centre:
                    mean = x.mean(axis=0, dtype=np.float64).astype(np.float32)
                    xc = x - mean
                    xc /= np.maximum(np.linalg.norm(xc, axis=1, keepdims=True), 1e-12)
                    if knn is None:
                        graph = knn_builder(xc, k=graph.k)
                    else:  # re-score the given pairs in the centred space
                        graph = KnnGraph.from_search(
                            graph.ids, centred_graph_sims(graph, x, mean), graph.meta
                        )
                    x = xc
        with self._stage("estimate"):
            if n < MIN_N:  # threshold given: nothing to estimate
                self._set_trivial(n, f"only {n} faces: no scale estimated")
                est = self.estimate_
            else:
                est = estimate_scale(
                    graph, k=min(self.k, graph.k), k_est=self.k_est, alpha=float(self.alpha),
                    sample=self.sample, seed=self.seed,
                )
            if n >= MIN_N and not est.bimodal and x is not None and graph.k < min(160, n - 1):
                deep = estimate_scale_deep(x, k=min(self.k, graph.k), alpha=float(self.alpha),
                                           seed=self.seed)
                if deep.bimodal:
                    est = deep
            est.centre = bool(centre)
            est.mean_norm2 = m2
            est.separation_raw = sep_raw
            est.separation_centred = sep_c
            if self.threshold is not None:
                est.notes.append(f"threshold fixed by the caller at {float(self.threshold):g}")
                est.threshold = float(self.threshold)
                est.threshold_from = "fixed by the caller"
            floor = -np.inf
            if model is not None:
                floor = model.verify_cos(n)
                est.notes.append(
                    f"small collection ({n} faces) of {model.name} features: merges need a "
                    f"cosine >= {floor:.4f}, which some pair of {n} strangers reaches with "
                    f"chance {VERIFY_ALPHA:g} for this model (calibrated on "
                    f"{model.calibrated_on})" + (
                        f"; the neighbour modes alone gave {est.threshold:.4f}"
                        if np.isfinite(est.threshold) else ""))
                est.threshold = floor
                est.threshold_from = f"the verification cosine of {model.name}, see the note"
            elif (self.small_floor is not None and self.threshold is None and n < SMALL_N
                    and x is not None):
                floor = stranger_floor(x, float(self.small_floor))
                if not floor <= est.threshold:
                    est.notes.append(
                        f"small collection ({n} faces): merges need a cosine >= {floor:.4f}, "
                        "the level a pair of strangers reaches with <= "
                        f"{float(self.small_floor):g} chance here "
                        f"(the neighbour modes alone gave {est.threshold:.4f})"
                    )
                    # exact duplicates are one face whatever the floor says
                    est.threshold = min(floor, 1.0 - IDENTICAL_TOL)
                    est.threshold_from = "the stranger floor of a small collection, see the note"
                    if not floor < 1.0:
                        est.notes.append("no pair stands out from the rest: everyone alone "
                                         "(exact duplicates aside)")
            elif strangers is not None and strangers[0]:
                est.notes.append(
                    f"small collection ({n} faces): no same-person mode ({strangers[1]}): "
                    f"everyone alone, exact duplicates aside (the neighbour modes alone gave "
                    f"{est.threshold:.4f}; name the model with embedding= or pass threshold=)")
                floor = est.threshold = 1.0 - IDENTICAL_TOL
                est.threshold_from = "no same-person mode in a small collection, see the note"
        set_attach(est, self.attach, self.attach_share, min(self.k_est, graph.k) - 1)
        if est.attach_threshold is not None and est.attach_threshold < floor:
            est.attach_threshold = float(floor) if np.isfinite(floor) else None
            if est.attach_threshold is None:
                est.attach_share = est.attach_neighbours = None
        # cluster joining is off under the stranger floor (small collections: precision first)
        join = self.join if x is not None and floor == -np.inf else None
        set_join(est, join, self.join_slots, self.join_share,
                 self.join_back, self.join_touch, min(self.k_est, graph.k) - 1)
        if self.join is not None and x is None:
            est.notes.append("cluster joining skipped: it needs the features, not only a kNN graph")
        self.estimate_ = est
        self.threshold_ = est.threshold
        self.explain_ = est.explain()
        return x, graph, est

    def _join(
        self, x: np.ndarray, graph: KnnGraph, est: ScaleEstimate, labels: np.ndarray
    ) -> np.ndarray:
        """Joining of the pieces of one person (:func:`faceclust.stages.join.join_clusters`)."""
        m = est.join_neighbours + 1
        return join_clusters(x, labels, graph.ids[:, 1:m], est.join_threshold,
                             slots=est.join_slots, share=est.join_share, back=est.join_back,
                             touch=est.join_touch, nbr_sims=graph.sims[:, 1:m])

    def _fit_identical(self, x: np.ndarray, knn: KnnGraph | None) -> np.ndarray:
        n = x.shape[0]
        self.embedding_ = None
        self._set_trivial(n, f"all {n} face(s) are the same embedding: one cluster"
                          if n > 1 else "one face: one cluster")
        return np.zeros(n, dtype=np.int64)

    def _set_trivial(self, n: int, note: str) -> None:
        est = ScaleEstimate(
            threshold=float("nan"), k=int(self.k), k_est=int(self.k_est), impostor_mode=float("nan"),
            genuine_mode=float("nan"), split=float("nan"), impostor_frac=float("nan"),
            separation=float("nan"), alpha=float(self.alpha), n_rows=n, bimodal=False,
            notes=[note],
        )
        self.estimate_ = est
        self.threshold_ = est.threshold
        self.explain_ = est.explain()
