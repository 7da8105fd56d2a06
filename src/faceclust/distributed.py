"""Ray backend: embedding, kNN graph and clustering on a Ray cluster, same results as one machine.

Optional extra: ``pip install "faceclust[ray]"``. Nothing here imports Ray
until a function is called, so ``import faceclust`` never needs it.

Every stage runs the single-machine code on pieces (``docs/scale.md``):

* **embed** -- shards of ``batch_size`` photos go to Ray actors that load the
  face model once each; the driver checkpoints each finished shard, so a
  re-run skips them, and writes the one faces file
  (:func:`~faceclust.photos.embed_folder`, ``runner=``).
* **kNN** -- ``ivf-blas``: the quantiser is trained once on the driver, cells
  are assigned on workers (row blocks), groups of cells (their members and
  the points that probe them) are joined on workers with the same kernel as
  one machine (:func:`faceclust.knn.ivf_join_cells`) and the partial top-k
  lists merged per point on the driver. Exact (``flat``): database blocks on
  workers (faiss, as on one machine), merged the same way. The heaps keep the
  top k by (similarity, then smaller id), so the ids equal the one-machine
  graph's.
* **auto** -- linkage merges only along kNN edges at or above the threshold,
  so the connected components of those edges are independent: they are
  packed into groups (largest first, :func:`faceclust.stages.components.component_groups`)
  and each group is linked on a worker by the stage ``auto`` runs on one machine
  (:func:`~faceclust.stages.components.link_edges`); attachment, which reads
  neighbours in any component, then runs on blocks of singletons
  (:func:`~faceclust.stages.cluster_ops.attach_moves`) against the global
  labels. Label numbering depends only on the partition
  (:func:`faceclust.graph.relabel`), so the labels are the same.
* **fc-es** -- NEP on blocks of rows on workers; edge selection and Infomap
  on the driver.

Arrays go into Ray's object store once (``ray.put``) and tasks get
references; on a node, workers read them zero-copy from the store's shared
memory (a memory map), nothing is pickled per task.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._validation import check_features, check_k
from .errors import ParameterError
from .knn import (
    QUERY_CHUNK,
    KnnGraph,
    auto_index,
    build_knn,
    ivf_assign,
    ivf_blas_cells,
    ivf_blas_refine,
    ivf_group,
    ivf_join_cells,
    ivf_train,
    merge_partial_topk,
    new_topk,
    refine_knn,
    sort_topk,
)
from .stages.cluster_ops import attach_moves
from .stages.components import (
    apply_moves,
    combine_group_labels,
    component_groups,
    link_group,
)
from .stages.refine import nep_rows, transition_probabilities

BACKENDS: tuple[str, ...] = ("local", "ray")
RAY_INDEXES: tuple[str, ...] = ("auto", "flat", "ivf-blas", "numpy")
RAY_METHODS: tuple[str, ...] = ("auto", "fc-es")
_TASKS_PER_WORKER = 4  # pieces per worker: keeps every worker busy while the last ones finish
_FLAT_BLOCK_ALIGN = 1024  # faiss's database block: aligned blocks give bit-identical products
_ATTACH_BLOCK = 65536


def _import_ray():
    try:
        import ray
    except ImportError as exc:
        raise ParameterError(
            "the Ray backend needs the ray package: pip install 'faceclust[ray]'"
        ) from exc
    return ray


# ------------------------------------------------------------------ session
@dataclass
class RayPool:
    """A Ray connection: the ``workers`` (CPUs) it offers and what starting it cost."""

    workers: int
    address: str | None = None
    started: bool = False
    init_seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)
    _refs: dict[int, tuple[Any, Any]] = field(default_factory=dict, repr=False)

    def put(self, arr: Any) -> Any:
        """``ray.put(arr)`` once per object (kept while the pool lives)."""
        key = id(arr)
        if key not in self._refs:
            self._refs[key] = (arr, _import_ray().put(arr))
        return self._refs[key][1]

    def forget(self) -> None:
        """Release the stored objects."""
        self._refs.clear()

    def pieces(self, n_items: int, per_piece_min: int = 1) -> int:
        """How many pieces to cut ``n_items`` into: a few per worker, none tiny."""
        return max(1, min(_TASKS_PER_WORKER * self.workers, n_items // max(1, per_piece_min)))


@contextmanager
def ray_session(address: str | None = None, num_cpus: int | None = None) -> Iterator[RayPool]:
    """Connect to the Ray cluster at ``address``, or start a local Ray with ``num_cpus`` CPUs.

    A Ray already initialised in this process (e.g. by a test fixture) is used
    as it is and left running; one started here is shut down on exit. Local:
    all cores by default, no dashboard, quiet logs.
    """
    ray = _import_ray()
    t0 = time.perf_counter()
    started = False
    if not ray.is_initialized():
        quiet = {"logging_level": logging.ERROR, "log_to_driver": False}
        if address:
            ray.init(address=address, **quiet)
        else:
            ray.init(num_cpus=int(num_cpus or os.cpu_count() or 1), include_dashboard=False,
                     **quiet)
        started = True
    pool = RayPool(
        workers=max(1, int(ray.cluster_resources().get("CPU", 1))), address=address,
        started=started, init_seconds=time.perf_counter() - t0,
    )
    try:
        yield pool
    finally:
        pool.forget()
        if started:
            ray.shutdown()


def _remote(fn: Callable, **options) -> Any:
    """``ray.remote(fn)`` with one CPU per task unless told otherwise (wrapped lazily)."""
    ray = _import_ray()
    options.setdefault("num_cpus", 1)
    return ray.remote(**options)(fn)


def _task_threads() -> int:
    """CPUs Ray gave the current task: numba and faiss threads are capped to it."""
    try:
        import ray

        cpus = ray.get_runtime_context().get_assigned_resources().get("CPU", 1)
    except Exception:  # noqa: BLE001 - outside Ray
        cpus = 1
    n = max(1, int(cpus))
    import numba

    from .knn import set_threads

    set_threads(n)

    numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    return n


def _as_completed(refs: list) -> Iterator[Any]:
    """Results of ``refs`` in the order they finish (each fetched once).

    Takes the list over (it is emptied): once a result is consumed nothing
    refers to it, so Ray frees it from the object store while the others are
    still running (the partial top-k lists do not pile up in the store). The
    caller must keep no other reference to the refs for that.
    """
    ray = _import_ray()
    pending = refs
    while pending:
        done, rest = ray.wait(pending, num_returns=1)
        pending[:] = rest
        value = ray.get(done[0])
        del done
        yield value
        del value


def _split(n: int, parts: int, align: int = 1) -> list[tuple[int, int]]:
    """``parts`` contiguous ranges covering ``0..n`` with boundaries at multiples of ``align``."""
    units = math.ceil(n / align)
    parts = max(1, min(parts, units))
    edges = [min(n, align * (units * p // parts)) for p in range(parts + 1)]
    return [(a, b) for a, b in zip(edges[:-1], edges[1:], strict=True) if b > a]


# --------------------------------------------------------------------- kNN
def _flat_block_task(x: np.ndarray, lo: int, hi: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k of every point among the database rows ``lo..hi`` (faiss, global ids)."""
    import faiss

    faiss.omp_set_num_threads(_task_threads())
    n = x.shape[0]
    kk = min(k, hi - lo)
    sims, ids = new_topk(n, k, n)
    xb = x[lo:hi]
    for start in range(0, n, QUERY_CHUNK):
        s, i = faiss.knn(x[start : start + QUERY_CHUNK], xb, kk,
                         metric=faiss.METRIC_INNER_PRODUCT)
        ok = i >= 0
        sims[start : start + len(s), :kk] = np.where(ok, s, -np.inf)
        ids[start : start + len(s), :kk] = np.where(ok, i + lo, -1)
    return sims, ids


def _assign_task(x: np.ndarray, centroids: np.ndarray, nprobe: int, lo: int, hi: int) -> np.ndarray:
    import faiss

    faiss.omp_set_num_threads(_task_threads())
    return ivf_assign(x[lo:hi], centroids, nprobe)


def _join_task(
    x: np.ndarray, groups: tuple[np.ndarray, ...], cells: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Join ``cells`` (the one-machine kernel); partial top-k of the points they touch."""
    _task_threads()
    members, member_start, other, other_start, _ = groups
    touched = np.unique(np.concatenate(
        [members[member_start[c] : member_start[c + 1]] for c in cells]
        + [other[other_start[c] : other_start[c + 1]] for c in cells]
    ))
    top_s, top_i = new_topk(len(touched), k, x.shape[0])
    ivf_join_cells(x, groups, cells, top_s, top_i, local=touched)
    return touched, top_s, top_i


def _cell_groups(
    groups: tuple[np.ndarray, ...], centroids: np.ndarray | None, parts: int
) -> list[np.ndarray]:
    """Cells cut into ``parts`` groups of about equal join cost (members x (members + probers)).

    Cells are first put in a locality order (reverse Cuthill-McKee over each
    centroid's 8 nearest centroids), so that the cells a point probes, which
    are near each other, mostly fall in one group: fewer partial lists to
    ship and merge. The order does not change the result (heaps are
    order-free; each cell's products are the same).
    """
    member_start, other_start = groups[1], groups[3]
    nlist = len(member_start) - 1
    order = np.arange(nlist)
    if centroids is not None and nlist > 2:
        import faiss
        import scipy.sparse as sp
        from scipy.sparse.csgraph import reverse_cuthill_mckee

        m = min(9, nlist)
        _, nb = faiss.knn(centroids, centroids, m, metric=faiss.METRIC_INNER_PRODUCT)
        rows = np.repeat(np.arange(nlist), m)
        adj = sp.csr_matrix((np.ones(nlist * m, dtype=np.int8), (rows, nb.ravel())),
                            shape=(nlist, nlist))
        order = reverse_cuthill_mckee((adj + adj.T).tocsr(), symmetric_mode=True).astype(np.int64)
    mem = np.diff(member_start).astype(np.float64)[order]
    cost = np.cumsum(mem * (mem + np.diff(other_start)[order]))
    if cost[-1] <= 0:
        return [order]
    cuts = np.searchsorted(cost, cost[-1] * np.arange(1, parts) / parts, side="left") + 1
    edges = np.unique(np.concatenate([[0], np.minimum(cuts, nlist), [nlist]]))
    return [order[a:b] for a, b in zip(edges[:-1], edges[1:], strict=True) if b > a]


def build_knn_ray(
    features: np.ndarray,
    k: int = 80,
    *,
    pool: RayPool,
    index: str = "auto",
    nlist: int | None = None,
    nprobe: int | None = None,
    seed: int = 0,
    pieces: int | None = None,
    refine: int | None = None,
) -> KnnGraph:
    """:func:`faceclust.knn.build_knn` on Ray workers: the same graph (``flat``, ``ivf-blas``).

    ``index="auto"`` picks as one machine does (numpy up to 4096 points, run
    here; flat up to 100,000; ivf-blas beyond). ``pieces``: row blocks / cell
    groups per step (default four per worker). ``meta["steps"]`` has the
    seconds of each step, ``meta["ray"]`` the workers and pieces.
    """
    if index not in RAY_INDEXES:
        raise ParameterError(
            f"the Ray backend builds index {', '.join(RAY_INDEXES)}, got {index!r}"
        )
    x = np.ascontiguousarray(check_features(features))
    n, _ = x.shape
    k = check_k(k, n)
    if index == "auto":
        index = auto_index(n)
    if index == "numpy":  # tiny: nothing to distribute
        return build_knn(x, k=k, index="numpy", progress_bar=False)
    ray = _import_ray()
    steps: dict[str, float] = {}
    t_all = t0 = time.perf_counter()
    x_ref = pool.put(x)
    steps["put"] = time.perf_counter() - t0
    top_s, top_i = new_topk(n, k, n)
    params: dict[str, Any] = {"index": index, "k": k}
    if index == "flat":
        blocks = _split(n, pieces or pool.pieces(n, max(k, _FLAT_BLOCK_ALIGN)), _FLAT_BLOCK_ALIGN)
        t0 = time.perf_counter()
        task = _remote(_flat_block_task)
        rows = np.arange(n, dtype=np.int64)
        for s, i in _as_completed([task.remote(x_ref, lo, hi, k) for lo, hi in blocks]):
            merge_partial_topk(top_s, top_i, rows, s, i)
        steps["search+merge"] = time.perf_counter() - t0
        n_pieces = len(blocks)
    else:
        nlist, nprobe = ivf_blas_cells(n, nlist, nprobe, k)
        params.update(nlist=nlist, nprobe=nprobe, seed=seed, refine=ivf_blas_refine(k, refine))
        t0 = time.perf_counter()
        centroids = ivf_train(x, nlist, seed)
        steps["train"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        blocks = _split(n, pieces or pool.pieces(n, QUERY_CHUNK), QUERY_CHUNK)
        c_ref = ray.put(centroids)
        task = _remote(_assign_task)
        probe = np.concatenate(ray.get([task.remote(x_ref, c_ref, nprobe, lo, hi)
                                        for lo, hi in blocks]))
        steps["assign"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        groups = ivf_group(probe, nlist)
        del probe
        g_ref = ray.put(groups)
        cells = _cell_groups(groups, centroids, pieces or pool.pieces(nlist))
        steps["group"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        task = _remote(_join_task)
        partial_rows = 0
        for touched, s, i in _as_completed([task.remote(x_ref, g_ref, c, k) for c in cells]):
            merge_partial_topk(top_s, top_i, touched, s, i)
            partial_rows += len(touched)
        members = groups[0]
        del g_ref, groups
        steps["join+merge"] = time.perf_counter() - t0
        n_pieces = len(cells)
        params["partial_rows_per_point"] = round(partial_rows / n, 3)
    t0 = time.perf_counter()
    sort_topk(top_s, top_i)
    steps["sort"] = time.perf_counter() - t0
    if params.get("refine"):  # neighbours of neighbours, here as on one machine
        t0 = time.perf_counter()
        refine_knn(x, top_s, top_i, passes=params["refine"], order=members)
        steps["refine"] = time.perf_counter() - t0
    graph = KnnGraph.from_search(top_i, top_s)
    meta = {**params, "seconds": time.perf_counter() - t_all,
            "steps": {name: round(sec, 3) for name, sec in steps.items()},
            "ray": {"workers": pool.workers, "pieces": n_pieces}}
    return KnnGraph(graph.ids, graph.sims, meta)


# ----------------------------------------------------------------- cluster
def _link_task(x: np.ndarray | None, pts: np.ndarray, src: np.ndarray, dst: np.ndarray,
               w: np.ndarray, threshold: float) -> np.ndarray:
    """The linkage stage on one group of components (points ``pts``, edges in local ids)."""
    _task_threads()
    return link_group(x, pts, src, dst, w, threshold)


def _attach_task(x: np.ndarray | None, nbr_ids: np.ndarray, nbr_sims: np.ndarray | None,
                 labels: np.ndarray, rows: np.ndarray, threshold: float,
                 share: float) -> tuple[np.ndarray, np.ndarray]:
    """The attachment stage's moves for the singletons among ``rows``."""
    _task_threads()
    return attach_moves(labels, nbr_ids, threshold, x=x, nbr_sims=nbr_sims, share=share,
                        rows=rows)


def _nep_task(ids: np.ndarray, p: np.ndarray, lo: int, hi: int) -> np.ndarray:
    _task_threads()
    return nep_rows(ids, p, lo, hi)


@dataclass
class RayExecutor:
    """Runs a method's distributable stages on Ray (:meth:`~faceclust.methods.BaseClusterer.executing_on`)."""

    pool: RayPool
    index: str = "auto"
    pieces: int | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def build_knn(self, x: np.ndarray, k: int) -> KnnGraph:
        return build_knn_ray(x, k, pool=self.pool, index=self.index, pieces=self.pieces)

    # -- auto
    def link(self, x: np.ndarray | None, n: int, src: np.ndarray, dst: np.ndarray,
             w: np.ndarray, threshold: float) -> np.ndarray:
        """:func:`~faceclust.stages.components.link_edges` per group of connected components."""
        t0 = time.perf_counter()
        groups, info = component_groups(src, dst, n, self.pieces or self.pool.pieces(n))
        self.info.update(info)
        x_ref = None if x is None else self.pool.put(x)
        task = _remote(_link_task)
        refs = {task.remote(x_ref, g.points, g.src, g.dst, w[g.edges], threshold): g.points
                for g in groups}  # largest first
        self.info["link_tasks"] = len(refs)
        self.pool.timings["link_submit"] = time.perf_counter() - t0
        ray = _import_ray()

        def finished() -> Iterator[tuple[np.ndarray, np.ndarray]]:
            pending = list(refs)
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                yield refs.pop(done[0]), ray.get(done[0])

        return combine_group_labels(n, finished())

    def attach(self, x: np.ndarray | None, nbr_ids: np.ndarray, nbr_sims: np.ndarray | None,
               labels: np.ndarray, threshold: float, share: float) -> np.ndarray:
        """:func:`~faceclust.stages.cluster_ops.attach_moves` on blocks of singletons, applied together."""
        ray = _import_ray()
        labels = np.asarray(labels, dtype=np.int64)
        cnt = np.bincount(labels)
        single = np.flatnonzero(cnt[labels] == 1)
        if len(single) == 0:
            return apply_moves(labels, single, single)
        blocks = np.array_split(single, self.pieces or self.pool.pieces(len(single), 1024))
        x_ref = None if x is None else self.pool.put(x)
        ids_ref = ray.put(np.ascontiguousarray(nbr_ids))
        sims_ref = None if nbr_sims is None else ray.put(np.ascontiguousarray(nbr_sims))
        lab_ref = ray.put(labels)
        task = _remote(_attach_task)
        moves = list(_as_completed(
            [task.remote(x_ref, ids_ref, sims_ref, lab_ref, b, threshold, share) for b in blocks]
        ))
        pts = np.concatenate([p for p, _ in moves])
        return apply_moves(labels, pts, np.concatenate([t for _, t in moves]))

    # -- fc-es
    def nep(self, graph: KnnGraph, sigma: float) -> np.ndarray:
        """NEP (:func:`faceclust.stages.refine.nep`) of blocks of rows on workers."""
        ray = _import_ray()
        p = transition_probabilities(graph, sigma)
        ids_ref = ray.put(np.ascontiguousarray(graph.ids))
        p_ref = ray.put(p)
        blocks = _split(graph.n, self.pieces or self.pool.pieces(graph.n, 4096))
        task = _remote(_nep_task)
        parts = ray.get([task.remote(ids_ref, p_ref, lo, hi) for lo, hi in blocks])
        return np.concatenate(parts)


def fit_ray(
    estimator: Any,
    X: np.ndarray | None,
    *,
    pool: RayPool,
    knn: KnnGraph | None = None,
    index: str = "auto",
    constraints: object = None,
    pieces: int | None = None,
) -> Any:
    """``estimator.fit(X, knn=knn)`` with its distributable stages on Ray (``auto``, ``fc-es``).

    The labels equal those of ``estimator.fit`` on one machine (``auto``
    exactly; ``fc-es`` too, Infomap running on the driver). ``index`` is the
    kNN index built on Ray when no ``knn`` is given. Returns the estimator;
    ``estimator.ray_info_`` has the component and task counts.
    """
    name = getattr(estimator, "method_name", "")
    if name not in RAY_METHODS:
        raise ParameterError(
            f"the Ray backend runs methods {', '.join(RAY_METHODS)}; {name!r} runs on one "
            "machine (use --backend local)"
        )
    executor = RayExecutor(pool, index=index, pieces=pieces)
    with estimator.executing_on(executor):
        estimator.fit(X, knn=knn, constraints=constraints)
    estimator.ray_info_ = {"workers": pool.workers, **executor.info}
    return estimator


# ------------------------------------------------------------------- embed
class _EmbedActor:
    """Holds one loaded face model; embeds shards of photos (one machine's per-image code)."""

    def __init__(self, backend: str, options: dict, max_side: int | None, root: str) -> None:
        from .photos.embed import load_worker

        load_worker(backend, options, max_side, root)

    def run(self, shard: list[str]) -> list[tuple]:
        from .photos.embed import embed_images

        return embed_images(shard)


def ray_embed_runner(pool: RayPool) -> Callable[..., Iterator[tuple]]:
    """A ``runner`` for :func:`faceclust.photos.embed_folder`: shards of photos on Ray actors.

    One actor per worker loads the model once; shards of ``batch_size``
    photos are handed to whichever actor is free and yielded when done, so
    the driver checkpoints each finished shard. The actors are killed when
    the run ends or is interrupted. Workers must see the photos at the same
    path (one machine, or a shared file system).
    """

    def run(todo: list[str], *, backend: str, options: dict, max_side: int | None, root: str,
            batch_size: int) -> Iterator[tuple]:
        from ray.util import ActorPool

        ray = _import_ray()
        shards = [todo[i : i + batch_size] for i in range(0, len(todo), batch_size)]
        actor = _remote(_EmbedActor)
        actors = [actor.remote(backend, options, max_side, root)
                  for _ in range(min(pool.workers, len(shards)))]
        try:
            for results in ActorPool(actors).map_unordered(
                lambda a, shard: a.run.remote(shard), shards
            ):
                yield from results
        finally:  # actors hold their CPUs until killed
            for a in actors:
                ray.kill(a)

    return run
