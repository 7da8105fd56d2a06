"""Base class and registry shared by every clustering method.

A method is a small scikit-learn style estimator: parameters are stored
unchanged in ``__init__``, validated in ``fit`` against the estimator's
``_parameter_constraints`` table (name -> :class:`Param` / :class:`OneOf`; the
role and name of scikit-learn's table, with faceclust's own constraint types and
messages); ``fit(X, knn=None)`` sets
``labels_`` (contiguous ints, singletons kept as their own cluster, ``-1``
only for methods that have a notion of noise) and ``stage_seconds_`` (wall
time per stage), and returns ``self``.

Graph-based methods accept a precomputed :class:`~faceclust.knn.KnnGraph`
through ``fit(X, knn=graph)``; otherwise they build one with their own ``k``
(:func:`~faceclust.knn.build_knn`, index auto: exact up to 100,000 points).
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.utils.validation import check_array

from .._resources import peak_rss_gb
from .._validation import check_features
from ..errors import InputError, ParameterError
from ..knn import KnnGraph, build_knn, locality_order

#: name -> estimator class, filled by :func:`register`.
METHODS: dict[str, type[BaseClusterer]] = {}


def register(name: str) -> Callable[[type[BaseClusterer]], type[BaseClusterer]]:
    """Class decorator adding a method to :data:`METHODS` under ``name`` (CLI ``--method``)."""

    def deco(cls: type[BaseClusterer]) -> type[BaseClusterer]:
        if name in METHODS:
            raise RuntimeError(f"method name {name!r} registered twice")
        cls.method_name = name
        METHODS[name] = cls
        return cls

    return deco


def get_method(name: str) -> type[BaseClusterer]:
    """The estimator class registered as ``name``, or a ParameterError listing the choices."""
    try:
        return METHODS[name]
    except KeyError:
        raise ParameterError(
            f"unknown method {name!r}; available: {', '.join(sorted(METHODS))}"
        ) from None


def make_method(name: str, params: dict[str, object] | None = None) -> BaseClusterer:
    """Instantiate method ``name`` with ``params``; unknown parameter names are an error."""
    cls = get_method(name)
    params = dict(params or {})
    valid = cls().get_params()
    unknown = sorted(set(params) - set(valid))
    if unknown:
        raise ParameterError(
            f"method {name!r} has no parameter {', '.join(unknown)}; "
            f"valid: {', '.join(sorted(valid)) or '(none)'}"
        )
    return cls(**params)


class BaseClusterer(ClusterMixin, BaseEstimator):
    """Common plumbing: input checks, kNN handling, per-stage timing."""

    method_name: ClassVar[str] = ""
    #: True for methods that consume a kNN graph (they accept ``knn=``).
    uses_knn: ClassVar[bool] = True
    #: True for supervised methods: they take ``model=DIR`` (made by :meth:`train`,
    #: ``faceclust train``) and implement :meth:`train`.
    needs_model: ClassVar[bool] = False

    #: Parameter name -> :class:`Param` or :class:`OneOf` (or a tuple of them, checked in
    #: turn), in the order :meth:`_validate_params` checks them at the start of ``fit``.
    _parameter_constraints: ClassVar[dict[str, Constraint]] = {}

    labels_: np.ndarray
    stage_seconds_: dict[str, float]
    stage_peak_gb_: dict[str, float]

    #: Set only inside :meth:`executing_on`: what runs the distributable stages.
    _executor: object | None = None

    # ----------------------------------------------------------------- API
    def fit(self, X: np.ndarray, y: object = None, *, knn: KnnGraph | None = None,
            constraints: object = None):
        """Cluster the rows of ``X [N, D]`` (or the precomputed ``knn``); return ``self``.

        ``knn``: a precomputed :class:`~faceclust.knn.KnnGraph` over the same rows
        (self in column 0); graph methods then skip their own kNN search.
        ``constraints``: must-link / cannot-link face pairs (``(must_link,
        cannot_link)`` index arrays ``[m, 2]``, a dict or
        :class:`~faceclust.stages.constraints.Constraints`), honoured by every
        method through the repair stage :func:`~faceclust.stages.constraints.apply_constraints`.
        """
        self.stage_seconds_ = {}
        self.stage_peak_gb_ = {}
        x = None if X is None else check_features(sklearn_check(X), source="X")
        if x is None and (knn is None or not self.uses_knn):
            raise InputError(f"{self.method_name}: features X are required")
        if x is not None and knn is not None and knn.n != x.shape[0]:
            raise InputError(
                f"{self.method_name}: kNN graph has {knn.n} rows but X has {x.shape[0]} samples"
            )
        self._validate_params()
        if x is not None and all_identical(x):
            labels = self._fit_identical(x, knn)
        else:
            labels = self._fit(x, knn)
        if constraints is not None:
            from ..stages.constraints import apply_constraints, as_constraints

            cons = as_constraints(constraints, len(labels))
            with self._stage("constraints"):
                thr = getattr(self, "threshold_", None)
                labels = apply_constraints(
                    labels, cons.must_link, cons.cannot_link, x,
                    threshold=float(thr) if thr is not None and np.isfinite(thr) else None,
                )
        self.labels_ = np.asarray(labels, dtype=np.int64)
        if x is not None:
            self.n_features_in_ = x.shape[1]
        return self

    def fit_predict(self, X: np.ndarray, y: object = None, *, knn: KnnGraph | None = None,
                    constraints: object = None):
        """``fit`` and return ``labels_``."""
        return self.fit(X, knn=knn, constraints=constraints).labels_

    def __sklearn_tags__(self):
        """scikit-learn tags: dense float input only, no labels needed (clusterer)."""
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = False
        tags.input_tags.allow_nan = False
        return tags

    @classmethod
    def train(cls, X: np.ndarray, labels: np.ndarray, out_dir: str, *, seed: int = 42,
              **params: object) -> dict:
        """Train what the method needs on ``X`` with identity ``labels``, save it in ``out_dir``.

        Supervised methods (``needs_model = True``) override this: training
        parameters are keyword arguments with defaults; safetensors + JSON are
        written atomically into ``out_dir`` (created); the return value is a
        JSON-able dict of what was used (params, losses, seconds).
        ``faceclust train`` calls it and adds ``out_dir/training.json``.
        """
        raise ParameterError(f"method {cls.method_name!r} is not trained (it needs no model)")

    @contextmanager
    def executing_on(self, executor: object) -> Iterator[BaseClusterer]:
        """Within the block, ``fit`` runs the method's distributable stages through ``executor``.

        :func:`faceclust.distributed.fit_ray` passes a Ray executor; the labels
        are those of a plain ``fit``. What an executor offers (each the same
        pure stage function, cut into pieces): ``build_knn(x, k=...)`` (every
        graph method); ``link(x, n, src, dst, w, threshold)`` and ``attach(x,
        nbr_ids, nbr_sims, labels, threshold, share)`` (``auto``:
        :func:`faceclust.stages.components.link_edges`,
        :func:`faceclust.stages.cluster_ops.attach_moves`); ``nep(graph, sigma)``
        (``fc-es``: :func:`faceclust.stages.refine.nep`).
        """
        self._executor = executor
        try:
            yield self
        finally:
            del self._executor

    # ----------------------------------------------------- for subclasses
    def _validate_params(self) -> None:
        """Raise ParameterError for a parameter outside its ``_parameter_constraints`` entry.

        Override (calling ``super()._validate_params()``) only for rules that relate
        two parameters or need a message of their own.
        """
        for name, constraint in self._parameter_constraints.items():
            for c in constraint if isinstance(constraint, tuple) else (constraint,):
                c.check(name, getattr(self, name))
        if self.needs_model:  # before any work: a missing model says how to train one
            from ._modeldir import model_dir

            model_dir(self.model, self.method_name)

    def _fit(self, x: np.ndarray | None, knn: KnnGraph | None) -> np.ndarray:
        raise NotImplementedError

    def _fit_identical(self, x: np.ndarray, knn: KnnGraph | None) -> np.ndarray:
        """Labels when every row of ``x`` is the same direction (also N = 1): one cluster.

        Identical embeddings are the same face; no method can split them by
        similarity, and kNN lists over exact ties are arbitrary (a tie-broken graph
        made fc-es, aro and dbscan return hundreds of clusters). Override to keep
        state a method needs (``incremental``) or to record an explanation (``auto``).
        """
        return np.zeros(x.shape[0], dtype=np.int64)

    @contextmanager
    def _stage(self, name: str) -> Iterator[None]:
        """Time a stage into ``stage_seconds_[name]``; the process's peak RSS so far into ``stage_peak_gb_``."""
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.stage_seconds_[name] = self.stage_seconds_.get(name, 0.0) + (
                time.perf_counter() - t0
            )
            if not hasattr(self, "stage_peak_gb_"):
                self.stage_peak_gb_ = {}
            self.stage_peak_gb_[name] = peak_rss_gb()

    def _knn(self, x: np.ndarray | None, knn: KnnGraph | None, k: int) -> KnnGraph:
        """The kNN graph to use: ``knn`` truncated to ``k`` if given, else ``build_knn(x, k)`` (exact up to 100K points, ivf-blas beyond).

        The method's *default* ``k`` (e.g. the published ``k=80``) is reduced to
        ``N - 1`` on a smaller collection (every other point is then a neighbour); a
        ``k >= N`` the caller chose is an error.
        """
        with self._stage("knn"):
            n = knn.n if knn is not None else (x.shape[0] if x is not None else 0)
            if n >= 2 and k >= n and k == _default_k(type(self)):
                k = n - 1
            if knn is not None:
                if knn.k < k:
                    raise ParameterError(
                        f"{self.method_name}: needs k={k} neighbours but the given kNN graph "
                        f"has only k={knn.k}; rebuild it with a larger k or lower k"
                    )
                return knn.truncate(k)
            assert x is not None
            if x.shape[0] < 2:
                raise InputError(
                    f"{self.method_name}: X has 1 sample; a kNN graph needs at least 2 samples"
                )
            ex = self._executor  # see executing_on
            return ex.build_knn(x, k=k) if ex is not None else build_knn(x, k=k)

    def _local(self, graph: KnnGraph) -> tuple[KnnGraph, np.ndarray]:
        """``graph`` renumbered for memory locality, and the order to undo it with.

        For the methods whose cost is random access over the graph (NEP,
        Infomap): see :func:`faceclust.knn.locality_order`.
        """
        with self._stage("reorder"):
            order = locality_order(graph)
            return graph.permute(order), order


def _default_k(cls: type) -> object:
    """The default of ``cls.__init__``'s ``k`` parameter (None if it has none)."""
    param = inspect.signature(cls.__init__).parameters.get("k")
    return None if param is None else param.default


#: Rows whose cosine to the first row is at least ``1 - IDENTICAL_TOL`` count as the same
#: direction (float32 dot products of equal unit vectors differ from 1 by ~1e-7).
IDENTICAL_TOL = 1e-5


def all_identical(x: np.ndarray, *, tol: float = IDENTICAL_TOL) -> bool:
    """True when every unit row of ``x`` points the same way (within ``tol`` in cosine).

    Cheap: the first 1,024 rows decide for nearly every real input; only a
    collection that starts with duplicates is scanned further (O(N D), in blocks).
    """
    n = x.shape[0]
    if n <= 1:
        return True
    ref = x[0] / np.linalg.norm(x[0])
    bounds = [0, min(n, 1024), *range(1024 + (1 << 16), n, 1 << 16), n]
    for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
        if hi <= lo:
            continue
        block = x[lo:hi]  # rows are unit to 1e-4 only (check_features' tolerance): divide
        cos = (block @ ref) / np.linalg.norm(block, axis=1)
        if float(cos.min()) < 1.0 - tol:
            return False
    return True


def sklearn_check(X: object) -> np.ndarray:
    """scikit-learn's input checks (sparse, complex, object, empty, 1 feature) as InputError.

    Messages keep scikit-learn's wording (``"1 feature(s)"``, ``"Complex data not
    supported"``) so sklearn-aware callers recognise them; NaN/inf and zero rows are
    left to :func:`~faceclust._validation.check_features`. One feature is rejected:
    L2-normalised 1-D vectors are only +1 or -1, so there is no direction to cluster.
    """
    try:
        return check_array(
            X, accept_sparse=False, dtype="numeric", ensure_all_finite=False,
            ensure_min_samples=1, ensure_min_features=2, input_name="X",
        )
    except (TypeError, ValueError) as exc:
        msg = " ".join(str(exc).split())
        msg = msg if msg.startswith("X") else f"X: {msg}"
        raise (_InputTypeError if isinstance(exc, TypeError) else InputError)(msg) from None


class _InputTypeError(InputError, TypeError):
    """Bad input of the wrong type (e.g. a dict inside an object array): an InputError
    that is also a TypeError, as scikit-learn callers expect."""


def check_param(name: str, value: object, kind: type | tuple[type, ...], lo=None, hi=None,
                *, lo_open: bool = False, hi_open: bool = False) -> None:
    """Raise ParameterError unless ``value`` is of ``kind`` and inside [lo, hi] (or open ends)."""
    if isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
        raise ParameterError(f"{name} must be {_kind_name(kind)}, got {value!r}")
    if not isinstance(value, kind):
        raise ParameterError(f"{name} must be {_kind_name(kind)}, got {value!r}")
    if lo is not None and (value <= lo if lo_open else value < lo):
        raise ParameterError(f"{name} must be {'>' if lo_open else '>='} {lo}, got {value!r}")
    if hi is not None and (value >= hi if hi_open else value > hi):
        raise ParameterError(f"{name} must be {'<' if hi_open else '<='} {hi}, got {value!r}")


@dataclass(frozen=True)
class Param:
    """Constraint: a value of ``kind`` inside ``[lo, hi]`` (ends open on request);
    ``None`` is also accepted when ``optional``. Checked by :func:`check_param`."""

    kind: type | tuple[type, ...]
    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False
    optional: bool = False

    def check(self, name: str, value: object) -> None:
        """Raise ParameterError naming ``name`` unless ``value`` satisfies the constraint."""
        if value is None and self.optional:
            return
        check_param(name, value, self.kind, self.lo, self.hi,
                    lo_open=self.lo_open, hi_open=self.hi_open)


@dataclass(frozen=True)
class OneOf:
    """Constraint: one of ``values`` (``==``; with ``same_type`` also of one of their types).

    The error reads ``"{name} must be {text}, got {value!r}"``; ``text`` defaults to the
    choices as ``'a', 'b' or 'c'``.
    """

    values: tuple
    text: str | None = None
    same_type: bool = False

    def check(self, name: str, value: object) -> None:
        """Raise ParameterError naming ``name`` unless ``value`` is one of the choices."""
        ok = value in self.values
        if ok and self.same_type:
            ok = type(value) in {type(v) for v in self.values}
        if not ok:
            text = self.text or " or ".join(
                filter(None, (", ".join(map(repr, self.values[:-1])), repr(self.values[-1])))
            )
            raise ParameterError(f"{name} must be {text}, got {value!r}")


#: One parameter's entry in ``_parameter_constraints``.
Constraint = Param | OneOf | tuple[Param | OneOf, ...]


def _kind_name(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    names = {int: "an integer", float: "a number", str: "a string", bool: "a boolean"}
    return " or ".join(names.get(k, k.__name__) for k in kinds)
