"""Tests for faceclust.stages.density (LCE connectivity, density, E_d / E_s) and stages.verify."""

from __future__ import annotations

import numpy as np
import pytest

from faceclust.errors import InputError
from faceclust.stages.density import (
    density_edges,
    lce_density,
    symmetric_connectivity,
    tau_s_top3,
)
from faceclust.stages.select import early_stop_edges
from faceclust.stages.verify import recall_candidates, stop_points, verify_edges

# Three nodes, k = 3, self first; node 1 lacks a third neighbour, node 2 lists 1 but 1 does not list 2.
IDS = np.array([[0, 1, 2], [1, 0, -1], [2, 0, 1]])
CONN = np.array([[1.0, 0.8, 0.6], [1.0, 0.4, 0.0], [1.0, 0.2, 0.9]], dtype=np.float32)
SIMS = np.array([[1.0, 0.9, 0.5], [1.0, 0.9, -np.inf], [1.0, 0.5, 0.7]], dtype=np.float32)


def test_symmetric_connectivity_by_hand():
    c = symmetric_connectivity(IDS, CONN)
    expected = np.array([
        [1.0, (0.8 + 0.4) / 2, (0.6 + 0.2) / 2],
        [1.0, (0.4 + 0.8) / 2, 0.0],            # missing slot -> 0
        [1.0, (0.2 + 0.6) / 2, 0.9 / 2],        # 1 does not list 2: reverse entry 0, halved
    ], dtype=np.float32)
    np.testing.assert_allclose(c, expected, rtol=1e-6)


def test_missing_reverse_entry_is_halved():
    ids = np.array([[0, 1], [1, 2], [2, 1]])  # 0 -> 1, but 1 does not list 0
    conn = np.array([[1.0, 0.7], [1.0, 0.5], [1.0, 0.3]], dtype=np.float32)
    c = symmetric_connectivity(ids, conn)
    assert c[0, 1] == pytest.approx(0.35)  # halved
    assert c[1, 1] == pytest.approx((0.5 + 0.3) / 2)  # reciprocal: averaged
    assert c[2, 1] == pytest.approx((0.3 + 0.5) / 2)


def test_density_and_edges_by_hand():
    c = symmetric_connectivity(IDS, CONN)
    rho = lce_density(IDS, SIMS, c)
    np.testing.assert_allclose(rho, [0.6 * 0.9 + 0.4 * 0.5, 0.6 * 0.9, 0.4 * 0.5 + 0.45 * 0.7],
                               rtol=1e-6)
    (d_src, d_dst, d_w), (s_src, s_dst, s_w) = density_edges(IDS, SIMS, c, rho, tau_s=0.2)
    # node 0 is the density peak: no E_d edge; 1 -> 0; 2 -> 1 (0.45*0.7 beats 0.4*0.5)
    assert list(zip(d_src.tolist(), d_dst.tolist(), strict=True)) == [(1, 0), (2, 1)]
    np.testing.assert_allclose(d_w, [0.54, 0.315], rtol=1e-5)
    # E_s: 2 -> 0 (score 0.2 >= tau_s, not 2's E_d choice), listed as the pair (0, 2)
    assert s_src.tolist() == [0] and s_dst.tolist() == [2]
    (_, _, _), (s_src, _, _) = density_edges(IDS, SIMS, c, rho, tau_s=0.2001)
    assert len(s_src) == 0  # just above the score: E_s empty


def test_equal_densities_give_no_edge():
    ids = np.array([[0, 1, 2], [1, 0, 2], [2, 1, 0]])
    sims = np.full((3, 3), 0.9, dtype=np.float32)
    c = np.ones((3, 3), dtype=np.float32)
    rho = np.full(3, 1.8, dtype=np.float32)  # every density equal: H is strict, never true
    (d_src, _, _), (s_src, _, _) = density_edges(ids, sims, c, rho, tau_s=0.0)
    assert len(d_src) == 0 and len(s_src) == 0


def test_non_positive_scores_give_no_ed_edge():
    ids = np.array([[0, 1], [1, 0]])
    sims = np.array([[1.0, -0.2], [1.0, -0.2]], dtype=np.float32)
    c = np.ones((2, 2), dtype=np.float32)
    rho = np.array([0.0, 1.0], dtype=np.float32)  # 0 sees a denser neighbour with score -0.2
    (d_src, _, _), _ = density_edges(ids, sims, c, rho, tau_s=-1.0)
    assert len(d_src) == 0  # argmax lands on column 0, as upstream


def test_tau_s_is_mean_of_top3_non_self():
    ids = np.array([[0, 1, 2, 3, 4], [1, 0, 2, 3, 4], [2, 0, -1, -1, -1]])
    sims = np.array([[1, 0.9, 0.8, 0.7, 0.1],
                     [1, 0.6, 0.5, 0.4, 0.3],
                     [1, 0.2, -np.inf, -np.inf, -np.inf]], dtype=np.float32)
    # row means of columns 1..3 (present only): 0.8, 0.5, 0.2; column 4 never counts
    assert tau_s_top3(ids, sims) == pytest.approx((0.8 + 0.5 + 0.2) / 3, rel=1e-6)


def test_shapes_checked():
    with pytest.raises(InputError):
        symmetric_connectivity(IDS, CONN[:, :2])
    with pytest.raises(InputError):
        density_edges(IDS, SIMS, CONN, np.zeros(2), 0.5)


# ------------------------------------------------------------------ verify stage
def test_verifier_threshold_is_strict_by_default():
    src, dst = np.array([0, 1, 2, 3]), np.array([1, 2, 3, 0])
    prob = np.array([0.5, 0.5001, 0.9, np.nan], dtype=np.float32)
    s, d, w = verify_edges(src, dst, prob, 0.5)
    assert s.tolist() == [1, 2] and d.tolist() == [2, 3]
    np.testing.assert_allclose(w, [0.5001, 0.9], rtol=1e-6)
    s, _, _ = verify_edges(src, dst, prob, 0.5, strict=False)  # FC-ESER: p >= eta
    assert s.tolist() == [0, 1, 2]


def test_recall_candidates_start_at_stop_point():
    ids = np.array([[0, 1, 2, 3, 4, 5],
                    [1, 0, 2, 3, 4, 5],
                    [2, 0, 1, 3, -1, -1]])
    nep = np.array([[1.0, 0.5, 0.3, 0.1, 0.25, 0.15],
                    [1.0, 0.05, 0.5, 0.13, 0.11, 0.9],
                    [1.0, 0.4, 0.3, 0.23, 0.0, 0.0]], dtype=np.float32)
    stop = stop_points(ids, nep, 0.22)
    assert stop.tolist() == [3, 1, 4]  # row 2 links all three, stops at the missing slot
    src, dst, col = recall_candidates(ids, nep, theta=0.22, delta=0.12)
    # row 0: links 1, 2; stops at column 3 (0.1 < theta, also < delta); recalls 4 (0.25) and 5
    # row 1: stops at once (column 1, 0.05); 2, 3, 5 pass delta; 4 (0.11) does not
    assert list(zip(src.tolist(), col.tolist(), strict=True)) == [
        (0, 4), (0, 5), (1, 2), (1, 3), (1, 5)]
    assert dst.tolist() == [4, 5, 2, 3, 5]
    # the stop point is where early_stop_edges stops linking
    e_src, _, _, _ = early_stop_edges(ids, nep, 0.22)
    assert np.bincount(e_src, minlength=3).tolist() == [2, 0, 3]


def test_recall_candidate_that_stopped_the_walk_counts():
    ids = np.array([[0, 1, 2], [1, 0, 2], [2, 1, 0]])
    nep = np.array([[1.0, 0.15, 0.3]] * 3, dtype=np.float32)
    src, _, col = recall_candidates(ids, nep, theta=0.22, delta=0.12)
    assert col.tolist() == [1, 2] * 3  # column 1 stopped the walk and is itself >= delta
