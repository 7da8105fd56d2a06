"""Base class and registry shared by every clustering method.

A method is a small scikit-learn style estimator: parameters are stored
unchanged in ``__init__``, validated in ``fit``; ``fit(X, knn=None)`` sets
``labels_`` (contiguous ints, singletons kept as their own cluster, ``-1``
only for methods that have a notion of noise) and ``stage_seconds_`` (wall
time per stage), and returns ``self``.

Graph-based methods accept a precomputed :class:`~faceclust.knn.KnnGraph`
through ``fit(X, knn=graph)``; otherwise they build an exact one with their
own ``k``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import ClassVar

import numpy as np
from sklearn.base import BaseEstimator, ClusterMixin

from .._validation import check_features
from ..errors import InputError, ParameterError
from ..knn import KnnGraph, build_knn

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


class BaseClusterer(ClusterMixin, BaseEstimator):
    """Common plumbing: input checks, kNN handling, per-stage timing."""

    method_name: ClassVar[str] = ""
    #: True for methods that consume a kNN graph (they accept ``knn=``).
    uses_knn: ClassVar[bool] = True

    labels_: np.ndarray
    stage_seconds_: dict[str, float]

    # ----------------------------------------------------------------- API
    def fit(self, X: np.ndarray, y: object = None, *, knn: KnnGraph | None = None):
        """Cluster the rows of ``X [N, D]`` (or the precomputed ``knn``); return ``self``."""
        self.stage_seconds_ = {}
        x = None if X is None else check_features(X, source="X")
        if x is None and (knn is None or not self.uses_knn):
            raise InputError(f"{self.method_name}: features X are required")
        if x is not None and knn is not None and knn.n != x.shape[0]:
            raise InputError(
                f"{self.method_name}: kNN graph has {knn.n} rows but X has {x.shape[0]} samples"
            )
        self._validate_params()
        labels = self._fit(x, knn)
        self.labels_ = np.asarray(labels, dtype=np.int64)
        if x is not None:
            self.n_features_in_ = x.shape[1]
        return self

    def fit_predict(self, X: np.ndarray, y: object = None, *, knn: KnnGraph | None = None):
        """``fit`` and return ``labels_``."""
        return self.fit(X, knn=knn).labels_

    # ----------------------------------------------------- for subclasses
    def _validate_params(self) -> None:
        """Raise ParameterError for out-of-range parameters (override)."""

    def _fit(self, x: np.ndarray | None, knn: KnnGraph | None) -> np.ndarray:
        raise NotImplementedError

    @contextmanager
    def _stage(self, name: str) -> Iterator[None]:
        """Time a stage into ``stage_seconds_[name]``."""
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.stage_seconds_[name] = self.stage_seconds_.get(name, 0.0) + (
                time.perf_counter() - t0
            )

    def _knn(self, x: np.ndarray | None, knn: KnnGraph | None, k: int) -> KnnGraph:
        """The kNN graph to use: ``knn`` truncated to ``k`` if given, else an exact build."""
        with self._stage("knn"):
            if knn is not None:
                if knn.k < k:
                    raise ParameterError(
                        f"{self.method_name}: needs k={k} neighbours but the given kNN graph "
                        f"has only k={knn.k}; rebuild it with a larger k or lower k"
                    )
                return knn.truncate(k)
            assert x is not None
            return build_knn(x, k=k)


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


def _kind_name(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    names = {int: "an integer", float: "a number", str: "a string", bool: "a boolean"}
    return " or ".join(names.get(k, k.__name__) for k in kinds)
