"""Exact average linkage from cluster vector sums: hand-computed merges."""

from __future__ import annotations

import numpy as np

from faceclust.stages.linkage import centroid_average_linkage, merge_clusters


def test_centroid_average_linkage_uses_all_pairs():
    # a chain 0-1-2 where 0 and 2 are far apart: single linkage would join all three;
    # average linkage joins {0, 1} (cos 0.8) and then needs mean(cos(0,2), cos(1,2)) >= th
    ang = np.deg2rad([0.0, 36.87, 73.74])  # cos(0,1) = cos(1,2) = 0.8, cos(0,2) = 0.28
    x = np.stack([np.cos(ang), np.sin(ang)], axis=1).astype(np.float32)
    src, dst = np.array([0, 1]), np.array([1, 2])
    sim = np.array([0.8, 0.8])
    assert len(set(centroid_average_linkage(x, src, dst, sim, 0.75))) == 2
    assert len(set(centroid_average_linkage(x, src, dst, sim, 0.5))) == 1  # (0.28+0.8)/2=0.54
    assert len(set(centroid_average_linkage(x, src, dst, sim, 0.85))) == 3


def test_merge_clusters_exact_average_linkage():
    # two clusters of two unit vectors each; mean pairwise cosine decides the merge
    x = np.array([[1, 0], [1, 0], [0.6, 0.8], [0.6, 0.8]], dtype=np.float32)
    labels = np.array([0, 0, 1, 1])
    assert merge_clusters(x, labels, np.array([0]), np.array([1]), 0.61).tolist() == [0, 0, 1, 1]
    assert merge_clusters(x, labels, np.array([0]), np.array([1]), 0.59).tolist() == [0, 0, 0, 0]
