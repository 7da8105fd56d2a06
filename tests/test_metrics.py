"""Tests for faceclust.metrics: hand-computed cases, invariants, sklearn cross-checks, errors."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from sklearn.metrics import (
    fowlkes_mallows_score,
    normalized_mutual_info_score,
    pair_confusion_matrix,
)

from faceclust.errors import InputError
from faceclust.graph import relabel
from faceclust.metrics import bcubed, evaluate, nmi, pairwise

# Any numpy warning (0/0, log(0), ...) is a bug: degenerate cases must be defined.
pytestmark = pytest.mark.filterwarnings("error")

KEYS = {
    "pairwise_precision",
    "pairwise_recall",
    "pairwise_f",
    "bcubed_precision",
    "bcubed_recall",
    "bcubed_f",
    "nmi",
    "n_clusters",
    "n_samples",
}


def sk_nmi(gt, pred) -> float:
    """sklearn's NMI on normalised labels (negatives -> singletons), arithmetic mean."""
    return normalized_mutual_info_score(relabel(gt), relabel(pred), average_method="arithmetic")


def brute_force(gt, pred) -> dict[str, float]:
    """O(N^2) definitions straight from the text: ordered pairs and per-item BCubed."""
    g, p = relabel(np.asarray(gt)), relabel(np.asarray(pred))
    n = len(g)
    tp = pp = gp = 0
    for i in range(n):
        for j in range(n):
            if i == j:
                continue
            same_g, same_p = g[i] == g[j], p[i] == p[j]
            tp += same_g and same_p
            pp += same_p
            gp += same_g
    bp = br = 0.0
    for i in range(n):
        inter = np.sum((g == g[i]) & (p == p[i]))
        bp += inter / np.sum(p == p[i])
        br += inter / np.sum(g == g[i])
    return {
        "pairwise_precision": tp / pp if pp else 1.0,
        "pairwise_recall": tp / gp if gp else 1.0,
        "bcubed_precision": bp / n,
        "bcubed_recall": br / n,
    }


def harmonic(p: float, r: float) -> float:
    return 2 * p * r / (p + r)


# ----------------------------------------------------------------------------- hand-computed


def test_hand_example_with_noise_singleton():
    gt = [0, 0, 0, 1, 1, 2]  # classes {0,1,2} {3,4} {5}: sizes 3, 2, 1
    pred = [5, 5, 7, 7, 7, -1]  # clusters {0,1} {2,3,4} {5}: sizes 2, 3, 1 (-1 = singleton)
    # cells n_ij: (g0,p5)=2 (g0,p7)=1 (g1,p7)=2 (g2,single)=1; N = 6
    # TP = 4+1+4+1 - 6 = 4; pred pairs = 4+9+1 - 6 = 8; gt pairs = 9+4+1 - 6 = 8
    assert pairwise(gt, pred) == (0.5, 0.5, 0.5)
    # BCubed P = (2^2/2 + 1^2/3 + 2^2/3 + 1^2/1) / 6 = (2 + 1/3 + 4/3 + 1) / 6 = 7/9
    # BCubed R = (2^2/3 + 1^2/3 + 2^2/2 + 1^2/1) / 6 = (4/3 + 1/3 + 2 + 1) / 6 = 7/9
    p, r, f = bcubed(gt, pred)
    assert p == pytest.approx(7 / 9, abs=1e-15)
    assert r == pytest.approx(7 / 9, abs=1e-15)
    assert f == pytest.approx(7 / 9, abs=1e-15)
    assert nmi(gt, pred) == pytest.approx(sk_nmi(gt, pred), abs=1e-12)
    res = evaluate(gt, pred)
    assert res["n_clusters"] == 3 and res["n_samples"] == 6


def test_hand_example_refinement_nmi():
    gt = [0, 0, 1, 1]
    pred = [0, 0, 1, 2]  # splits class 1 in two
    # TP = 4+1+1 - 4 = 2; pred pairs = 4+1+1 - 4 = 2; gt pairs = 4+4 - 4 = 4
    # P = 1, R = 1/2, F = 2*(1/2)/(3/2) = 2/3
    p, r, f = pairwise(gt, pred)
    assert (p, r) == (1.0, 0.5)
    assert f == pytest.approx(2 / 3, abs=1e-15)
    # BCubed P = (4/2 + 1/1 + 1/1)/4 = 1; R = (4/2 + 1/2 + 1/2)/4 = 3/4; F = 6/7
    assert bcubed(gt, pred) == pytest.approx((1.0, 0.75, 6 / 7), abs=1e-15)
    # H(gt) = ln 2; H(pred) = -(1/2 ln 1/2 + 2 * 1/4 ln 1/4) = 1.5 ln 2;
    # pred refines gt so MI = H(gt) = ln 2; NMI = ln 2 / ((ln 2 + 1.5 ln 2)/2) = 0.8
    assert nmi(gt, pred) == pytest.approx(0.8, abs=1e-14)
    assert sk_nmi(gt, pred) == pytest.approx(0.8, abs=1e-14)


def test_doc_example():
    gt, pred = [0, 0, 1, 1], [0, 0, 0, 1]
    # TP = 4+1+1 - 4 = 2; pred pairs = 9+1 - 4 = 6; gt pairs = 4+4 - 4 = 4 -> P 1/3, R 1/2
    p, r, f = pairwise(gt, pred)
    assert p == pytest.approx(1 / 3) and r == 0.5 and f == pytest.approx(0.4)


def test_one_cluster_prediction():
    gt = [0, 0, 1, 1, 1, 2]  # sizes 2, 3, 1 -> gt pairs = 4+9+1 - 6 = 8
    pred = [4] * 6  # one cluster of 6 -> pred pairs = 36 - 6 = 30; TP = 4+9+1 - 6 = 8
    p, r, f = pairwise(gt, pred)
    assert p == pytest.approx(8 / 30, abs=1e-15) and r == 1.0
    assert f == pytest.approx(harmonic(8 / 30, 1.0), abs=1e-15)
    # BCubed P = (4 + 9 + 1)/6 / 6 = 7/18; R = (4/2 + 9/3 + 1/1)/6 = 1
    bp, br, _ = bcubed(gt, pred)
    assert bp == pytest.approx(7 / 18, abs=1e-15) and br == 1.0
    # pred has zero entropy, gt does not: sklearn's convention is NMI = 0
    assert nmi(gt, pred) == 0.0 == sk_nmi(gt, pred)
    assert nmi(pred, gt) == 0.0
    assert evaluate(gt, pred)["n_clusters"] == 1


@pytest.mark.parametrize("pred", [[-1] * 6, [10, 11, 12, 13, 14, 15], [-3, 0, -1, 1, -2, 2]])
def test_all_singleton_prediction(pred):
    gt = [0, 0, 1, 1, 1, 2]
    # no predicted pairs: P = 1 by definition; TP = 0 of 8 gt pairs: R = 0; F = 0
    assert pairwise(gt, pred) == (1.0, 0.0, 0.0)
    # BCubed P = 1 (every cluster pure); R = (2 * 1/2 + 3 * 1/3 + 1)/6 = 1/2; F = 2/3
    assert bcubed(gt, pred) == pytest.approx((1.0, 0.5, 2 / 3), abs=1e-15)
    assert nmi(gt, pred) == pytest.approx(sk_nmi(gt, pred), abs=1e-12)
    assert evaluate(gt, pred)["n_clusters"] == 6


def test_all_singletons_both_sides():
    gt = [-1, -1, -1, -1]  # four gt singletons: no gt pairs -> R = 1
    pred = [3, 2, 1, 0]
    assert pairwise(gt, pred) == (1.0, 1.0, 1.0)
    assert bcubed(gt, pred) == (1.0, 1.0, 1.0)
    assert nmi(gt, pred) == pytest.approx(1.0, abs=1e-15)
    assert sk_nmi(gt, pred) == pytest.approx(1.0, abs=1e-15)


def test_gt_without_pairs_and_merging_prediction():
    gt = [0, 1, 2]  # no gt pairs -> R = 1; pred pairs = 9 - 3 = 6, TP = 0 -> P = 0
    pred = [0, 0, 0]
    p, r, f = pairwise(gt, pred)
    assert (p, r) == (0.0, 1.0) and f == 0.0
    assert nmi(gt, pred) == 0.0 == sk_nmi(gt, pred)


def test_zero_precision_and_recall_gives_zero_f():
    gt = [0, 0, 1, 1]
    pred = [0, 1, 0, 1]  # every cell n_ij = 1: TP = 4 - 4 = 0, pred pairs = gt pairs = 4
    with np.errstate(all="raise"):
        assert pairwise(gt, pred) == (0.0, 0.0, 0.0)
        # MI = sum 1/4 ln(4*1/(2*2)) = 0 exactly -> NMI 0 (sklearn: mi == 0 -> 0)
        assert nmi(gt, pred) == 0.0 == sk_nmi(gt, pred)
        # BCubed P = 4 * (1/2) / 4 = 1/2, R = 1/2
        assert bcubed(gt, pred) == (0.5, 0.5, 0.5)


def test_single_item():
    res = evaluate([7], [-1])
    assert res == {
        "pairwise_precision": 1.0,
        "pairwise_recall": 1.0,
        "pairwise_f": 1.0,
        "bcubed_precision": 1.0,
        "bcubed_recall": 1.0,
        "bcubed_f": 1.0,
        "nmi": 1.0,  # both labelings are one cluster: sklearn returns 1.0
        "n_clusters": 1,
        "n_samples": 1,
    }
    assert sk_nmi([7], [-1]) == 1.0


def test_both_single_cluster():
    # gt pairs = pred pairs = TP = 9 - 3 = 6
    assert pairwise([1, 1, 1], [0, 0, 0]) == (1.0, 1.0, 1.0)
    assert nmi([1, 1, 1], [0, 0, 0]) == 1.0 == sk_nmi([1, 1, 1], [0, 0, 0])


def test_gt_single_cluster_pred_split():
    gt, pred = [0, 0, 0, 0], [0, 0, 1, 1]
    assert nmi(gt, pred) == 0.0 == sk_nmi(gt, pred)
    # TP = 4+4 - 4 = 4; pred pairs = 4; gt pairs = 16 - 4 = 12
    assert pairwise(gt, pred)[:2] == (1.0, 4 / 12)


# ----------------------------------------------------------------------------- invariants


def random_labels(rng, n, k, noise=0.0):
    lab = rng.integers(0, k, size=n)
    if noise:
        lab[rng.random(n) < noise] = -1
    return lab


def test_identical_labelings_score_one():
    rng = np.random.default_rng(0)
    gt = random_labels(rng, 500, 40, noise=0.1)
    res = evaluate(gt, gt)
    for key in KEYS - {"n_clusters", "n_samples"}:
        assert res[key] == pytest.approx(1.0, abs=1e-12), key
    assert res["n_clusters"] == int(relabel(gt).max()) + 1


def test_permutation_of_label_ids_and_items():
    rng = np.random.default_rng(1)
    gt = random_labels(rng, 400, 30, noise=0.05)
    pred = random_labels(rng, 400, 25, noise=0.1)
    base = evaluate(gt, pred)
    # rename ids by a random bijection (negatives stay negative), shift, change dtype
    perm_g = rng.permutation(60)
    perm_p = rng.permutation(60) + 1000
    gt2 = np.where(gt < 0, -5, perm_g[gt])
    pred2 = np.where(pred < 0, -1, perm_p[pred]).astype(np.int32)
    assert evaluate(gt2, pred2) == pytest.approx(base, abs=1e-12)
    # shuffle items
    order = rng.permutation(400)
    assert evaluate(gt[order], pred[order]) == pytest.approx(base, abs=1e-12)
    # sparse, hash-like ids take the sort-based path: same numbers
    gt3 = np.where(gt < 0, -1, gt * 1_000_000_007 + 3)
    pred3 = np.where(pred < 0, -7, pred * 9_999_999_967)
    assert evaluate(gt3, pred3) == pytest.approx(base, abs=1e-12)


def test_negative_labels_are_singletons_like_relabel():
    rng = np.random.default_rng(2)
    gt = random_labels(rng, 300, 20, noise=0.2)
    pred = random_labels(rng, 300, 15, noise=0.3)
    res = evaluate(gt, pred)
    assert res == pytest.approx(evaluate(relabel(gt), relabel(pred)), abs=1e-12)
    assert res["n_clusters"] == int(relabel(pred).max()) + 1
    # -1 is not one big cluster: giving each noise item a fresh id changes nothing
    fresh = pred.copy()
    fresh[pred < 0] = 100 + np.arange(int((pred < 0).sum()))
    assert evaluate(gt, fresh) == pytest.approx(res, abs=1e-12)


def test_inputs_not_modified():
    gt = np.array([-1, 3, 3, -1, 5])
    pred = np.array([2, -1, 2, 2, -1])
    g0, p0 = gt.copy(), pred.copy()
    evaluate(gt, pred)
    np.testing.assert_array_equal(gt, g0)
    np.testing.assert_array_equal(pred, p0)


@pytest.mark.parametrize("seed", range(5))
def test_symmetries(seed):
    rng = np.random.default_rng(seed)
    gt = random_labels(rng, 300, 12, noise=0.1)
    pred = random_labels(rng, 300, 20, noise=0.1)
    p, r, f = pairwise(gt, pred)
    p2, r2, f2 = pairwise(pred, gt)
    assert p == r2 and r == p2 and f == pytest.approx(f2, abs=1e-15)
    bp, br, _ = bcubed(gt, pred)
    bp2, br2, _ = bcubed(pred, gt)
    assert bp == pytest.approx(br2, abs=1e-15) and br == pytest.approx(bp2, abs=1e-15)
    assert nmi(gt, pred) == pytest.approx(nmi(pred, gt), abs=1e-14)


@pytest.mark.parametrize("seed", range(6))
def test_against_brute_force(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 70))
    gt = random_labels(rng, n, int(rng.integers(1, 10)), noise=0.15)
    pred = random_labels(rng, n, int(rng.integers(1, 15)), noise=0.15)
    ref = brute_force(gt, pred)
    res = evaluate(gt, pred)
    for key, val in ref.items():
        assert res[key] == pytest.approx(val, abs=1e-12), key
    assert res["bcubed_f"] == pytest.approx(
        harmonic(ref["bcubed_precision"], ref["bcubed_recall"]), abs=1e-12
    )


# ----------------------------------------------------------------------------- sklearn


@pytest.mark.parametrize("seed", range(8))
def test_pairwise_against_sklearn(seed):
    rng = np.random.default_rng(100 + seed)
    n = int(rng.integers(2, 2000))
    gt = random_labels(rng, n, int(rng.integers(1, 50)))
    pred = random_labels(rng, n, int(rng.integers(1, 80)))
    p, r, _ = pairwise(gt, pred)
    # sklearn counts ordered pairs too: C[1,1] = sum n_ij^2 - N (true positives),
    # C[0,1] predicted-together-but-gt-apart, C[1,0] gt-together-but-predicted-apart.
    c = pair_confusion_matrix(gt, pred)
    tp, fp, fn = int(c[1, 1]), int(c[0, 1]), int(c[1, 0])
    assert p == (tp / (tp + fp) if tp + fp else 1.0)
    assert r == (tp / (tp + fn) if tp + fn else 1.0)
    # FMI = TP / sqrt(pred pairs * gt pairs) = sqrt(P * R)
    assert math.sqrt(p * r) == pytest.approx(fowlkes_mallows_score(gt, pred), abs=1e-12)


@pytest.mark.parametrize("seed", range(25))
def test_nmi_against_sklearn(seed):
    rng = np.random.default_rng(200 + seed)
    n = int(rng.integers(1, 3000))
    gt = random_labels(rng, n, int(rng.integers(1, 60)), noise=0.05 * (seed % 3))
    pred = random_labels(rng, n, int(rng.integers(1, 300)), noise=0.1 * (seed % 2))
    if seed % 4 == 0:  # correlated prediction: gt with some items moved
        pred = gt.copy()
        moved = rng.random(n) < 0.2
        pred[moved] = rng.integers(0, 10, size=int(moved.sum()))
    assert nmi(gt, pred) == pytest.approx(sk_nmi(gt, pred), abs=1e-10)
    assert evaluate(gt, pred)["nmi"] == nmi(gt, pred)


def test_nmi_matches_sklearn_degenerate_cases():
    cases = [
        ([0], [0]),
        ([0, 0], [1, 1]),
        ([0, 0], [0, 1]),
        ([0, 1], [0, 0]),
        ([0, 1], [1, 0]),
        ([0, 0, 1, 1], [0, 1, 0, 1]),
        ([0, 1, 2, 3], [-1, -1, -1, -1]),
    ]
    for gt, pred in cases:
        assert nmi(gt, pred) == pytest.approx(sk_nmi(gt, pred), abs=1e-12), (gt, pred)


# ----------------------------------------------------------------------------- evaluate


def test_evaluate_keys_and_plain_types():
    rng = np.random.default_rng(3)
    gt = random_labels(rng, 200, 10).astype(np.int32)
    pred = random_labels(rng, 200, 12, noise=0.1).astype(np.int16)
    res = evaluate(gt, pred)
    assert set(res) == KEYS
    for key, val in res.items():
        expected = int if key in {"n_clusters", "n_samples"} else float
        assert type(val) is expected, key
    assert json.loads(json.dumps(res)) == res
    assert res["n_samples"] == 200
    p, r, f = pairwise(gt, pred)
    assert (res["pairwise_precision"], res["pairwise_recall"], res["pairwise_f"]) == (p, r, f)
    assert (res["bcubed_precision"], res["bcubed_recall"], res["bcubed_f"]) == bcubed(gt, pred)


def test_accepts_lists_bools_and_integral_floats():
    assert evaluate([0.0, 0.0, 1.0], [1, 1, 0]) == evaluate([0, 0, 1], [1, 1, 0])
    assert evaluate(np.array([True, True, False]), [1, 1, 0])["pairwise_f"] == 1.0
    assert evaluate(np.array([[0], [0], [1]]), [1, 1, 0])["n_samples"] == 3  # column vector


# ----------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("gt", "pred", "match"),
    [
        (list(range(10)), list(range(9)), "gt has 10 labels but pred has 9"),
        ([], [], "empty"),
        ([0, 1.5], [0, 1], "gt: labels must be integers, found fractional"),
        ([0, 1], [0, 0.5], "pred: labels must be integers, found fractional"),
        ([0, np.nan], [0, 1], "gt: labels contain NaN"),
        ([0, 1], [np.inf, 1], "pred: labels contain NaN or inf"),
        (["a", "b"], [0, 1], "gt: labels must be integers, got dtype"),
        ([0, 1], np.array([None, 1], dtype=object), "pred: labels must be integers"),
        (np.zeros((2, 3), dtype=int), np.zeros(6, dtype=int), "gt: expected a 1-D"),
        (5, [0], "gt: expected a 1-D"),
        (np.array([2**64 - 1, 0], dtype=np.uint64), [0, 1], "gt: label values exceed"),
        ([0.0, 1e30], [0, 1], "gt: label values exceed"),
    ],
)
def test_bad_input(gt, pred, match):
    for fn in (pairwise, bcubed, nmi, evaluate):
        with pytest.raises(InputError, match=match):
            fn(gt, pred)
