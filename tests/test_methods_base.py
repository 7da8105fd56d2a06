"""Method contract: registry, parameters, precomputed kNN, the two kNN-graph baselines."""

from __future__ import annotations

import re

import numpy as np
import pytest

from faceclust.errors import InputError, ParameterError
from faceclust.knn import build_knn
from faceclust.methods import METHODS, KnnConnectedComponents, KnnInfomap, get_method, make_method


def test_registry_names_and_lookup():
    assert {"knn-cc", "infomap"} <= set(METHODS)
    assert get_method("knn-cc") is KnnConnectedComponents
    with pytest.raises(ParameterError, match="unknown method 'nope'; available:"):
        get_method("nope")


@pytest.mark.parametrize("cls", [KnnConnectedComponents, KnnInfomap])
def test_recovers_separated_clusters(blobs, cls):
    x, y = blobs
    est = cls(k=10)
    labels = est.fit_predict(x)
    assert est.labels_ is labels
    assert labels.tolist() == y.tolist()  # first-appearance numbering equals blob ids here
    assert set(est.stage_seconds_) >= {"knn", "partition"}


def test_precomputed_knn_gives_same_result(blobs):
    x, _ = blobs
    graph = build_knn(x, k=30)
    a = KnnInfomap(k=10).fit_predict(x)
    b = KnnInfomap(k=10).fit_predict(x, knn=graph)  # truncated to k=10 inside
    assert a.tolist() == b.tolist()


def test_precomputed_knn_checks(blobs):
    x, _ = blobs
    with pytest.raises(ParameterError, match="needs k=20 .* only k=10"):
        KnnInfomap(k=20).fit(x, knn=build_knn(x, k=10))
    with pytest.raises(InputError, match="kNN graph has 50 rows but X has 100"):
        KnnInfomap(k=5).fit(x, knn=build_knn(x[:50], k=10))


def test_threshold_controls_merging(blobs):
    x, _ = blobs
    # threshold above every non-self similarity: all singletons
    assert len(np.unique(KnnConnectedComponents(k=5, threshold=1.0).fit_predict(x))) == 100
    # threshold below every similarity: kNN edges link everything reachable
    assert len(np.unique(KnnConnectedComponents(k=30, threshold=-1.0).fit_predict(x))) == 1


@pytest.mark.parametrize(
    "params,msg",
    [({"k": 1}, "k must be >= 2"), ({"k": "10"}, "k must be an integer"),
     ({"threshold": 1.5}, "threshold must be <= 1.0"), ({"k": True}, "integer")],
)
def test_parameter_validation(blobs, params, msg):
    with pytest.raises(ParameterError, match=msg):
        KnnConnectedComponents(**params).fit(blobs[0])


def test_sklearn_params_round_trip():
    est = KnnInfomap(k=12, seed=5)
    assert est.get_params() == {"k": 12, "min_sim": 0.0, "seed": 5}
    est.set_params(k=7)
    assert est.k == 7


def test_bad_features_rejected():
    with pytest.raises(InputError, match="X: .*NaN"):
        KnnInfomap(k=3).fit(np.array([[1.0, 0], [np.nan, 1], [0, 1], [1, 1]]))


def test_parameter_constraints_name_real_parameters():
    # a typo in a constraint table would silently leave a parameter unchecked
    for name, cls in METHODS.items():
        unknown = set(cls._parameter_constraints) - set(cls().get_params())
        assert not unknown, f"{name}: constraints for unknown parameters {unknown}"


@pytest.mark.parametrize(
    "method,params,msg",
    [("auto", {"centre": "yes"}, "centre must be 'auto', True or False, got 'yes'"),
     ("auto", {"threshold": -1.0}, "threshold must be > -1.0, got -1.0"),
     ("incremental", {"reestimate": 1}, "reestimate must be True or False, got 1"),
     ("incremental", {"placement": "x"}, "placement must be 'average' or 'nearest', got 'x'"),
     ("fc-es", {"singletons": 5}, "singletons must be a string, got 5"),
     ("fc-es", {"singletons": "x"}, "singletons must be one of fc-es, keep-module, got 'x'"),
     ("fc-es", {"max_links": 0}, "max_links must be >= 1, got 0"),
     ("hac", {"linkage": "ward"}, "linkage must be 'single' or 'average', got 'ward'"),
     ("dbscan", {"min_samples": 90}, "min_samples=90 cannot exceed k=80"),
     ("kmeans", {}, "kmeans needs n_clusters")],
)
def test_constraint_table_messages(blobs, method, params, msg):
    with pytest.raises(ParameterError, match=re.escape(msg)):
        make_method(method, params).fit(blobs[0])


def test_optional_parameters_accept_none(blobs):
    # Param(..., optional=True): None passes, a value is range-checked
    make_method("fc-es", {"k": 5, "max_links": None})._validate_params()
    make_method("auto", {"threshold": None, "attach": None})._validate_params()
