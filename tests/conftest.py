"""Shared test fixtures: small seeded data sets, progress bars off."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("FACECLUST_PROGRESS", "0")

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def unit_rows(x: np.ndarray) -> np.ndarray:
    """L2-normalise rows (float32)."""
    x = np.asarray(x, dtype=np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture
def blobs() -> tuple[np.ndarray, np.ndarray]:
    """Five tight, well-separated clusters of 20 points on the 32-d sphere."""
    rng = np.random.default_rng(7)
    centres = unit_rows(rng.normal(size=(5, 32)))
    labels = np.repeat(np.arange(5), 20)
    x = centres[labels] + 0.03 * rng.normal(size=(100, 32)).astype(np.float32)
    return unit_rows(x), labels
