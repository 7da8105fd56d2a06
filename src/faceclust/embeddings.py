"""Known embedding models: a verification scale per model, and recognising a model from its faces.

A large collection tells ``auto`` its own similarity scale (two modes among the
neighbours: same person, different people). A small one cannot: an album of strangers
and an album of one person both give a single hump, so only an absolute scale, fixed by
the embedding model, tells them apart. ``data/embeddings.json`` holds one per model
whose features faceclust has seen with identities, calibrated on one source and
validated on others by ``benchmarks/calibrate_embeddings.py`` (numbers in
docs/degenerate.md). A model whose faces share a mean direction (dlib's: every face lies
in one narrow cone) is also recognised from a few of its faces; others are named by the
caller (``AutoClusterer(embedding="arcface512")``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import numpy as np

from .errors import InputError, ParameterError

#: A collection is recognised as a model's when the cosine between its mean embedding and
#: the model's mean direction is at least this. Measured for dlib128: every single face of
#: the three sources other than the calibration one is at >= 0.817 (the mean of an album
#: is never lower than its lowest face), while a random direction in 128 dimensions
#: reaches 0.75 with chance < 1e-15 ...
RECOGNISE_COS = 0.75
#: ... and its mean embedding has at least this share of the model's squared mean norm
#: (features without a common direction, e.g. centred ones, are never taken for the model).
RECOGNISE_MEAN2_SHARE = 0.5
#: Chance that a small collection of strangers gets any wrong merge from the verification
#: cosine (on the calibration source): each of its ``N (N - 1) / 2`` pairs may pass with
#: chance ``VERIFY_ALPHA / pairs``, so a large album gets a stricter cosine than a small one.
VERIFY_ALPHA = 0.05


@dataclass(frozen=True)
class KnownEmbedding:
    """One embedding model's verification scale (see ``data/embeddings.json``)."""

    name: str
    dim: int
    tail: tuple[tuple[float, float], ...]  # (chance, cosine a pair of strangers exceeds)
    calibrated_on: str
    description: str
    mean: np.ndarray | None  # unit mean direction, where the model's faces share one
    mean_norm2: float

    def stranger_cos(self, far: float) -> float:
        """Cosine a pair of strangers exceeds with chance ``far`` (log-interpolated in the
        calibrated tail, clipped to its ends)."""
        f = np.log10([c for c, _ in self.tail])
        s = [v for _, v in self.tail]
        order = np.argsort(f)
        return float(np.interp(np.log10(far), f[order], np.asarray(s)[order]))

    def verify_cos(self, n: int, alpha: float = VERIFY_ALPHA) -> float:
        """Merge threshold for a collection of ``n`` faces: an album of ``n`` strangers
        gets any pair above it with chance about ``alpha``."""
        return self.stranger_cos(alpha / max(1, n * (n - 1) // 2))


@lru_cache(maxsize=1)
def known() -> dict[str, KnownEmbedding]:
    """The known models, by name."""
    raw = json.loads(resources.files("faceclust.data").joinpath("embeddings.json").read_text())
    return {
        name: KnownEmbedding(
            name=name, dim=int(v["dim"]),
            tail=tuple((float(c), float(t)) for c, t in v["stranger_tail"]),
            calibrated_on=v["calibrated_on"], description=v["description"],
            mean=None if v["mean"] is None else np.asarray(v["mean"], dtype=np.float64),
            mean_norm2=float(v["mean_norm2"]),
        )
        for name, v in raw.items()
    }


def recognise(x: np.ndarray) -> KnownEmbedding | None:
    """The known model whose mean direction ``x``'s faces share, or None.

    Only models with a mean direction can be recognised (see the module docstring).
    """
    if x.ndim != 2 or len(x) == 0:
        return None
    mu = x.mean(axis=0, dtype=np.float64)
    m2 = float(mu @ mu)
    for model in known().values():
        if model.mean is None or x.shape[1] != model.dim:
            continue
        if m2 < RECOGNISE_MEAN2_SHARE * model.mean_norm2:
            continue
        if float(mu @ model.mean) / np.sqrt(m2) >= RECOGNISE_COS:
            return model
    return None


def resolve(embedding: str | None, x: np.ndarray | None) -> KnownEmbedding | None:
    """The model a method was told about: ``"auto"`` recognises it from ``x``, ``None``
    means unknown, a name must be a known model of ``x``'s dimension."""
    if embedding is None:
        return None
    if embedding == "auto":
        return None if x is None else recognise(x)
    models = known()
    if embedding not in models:
        raise ParameterError(
            f"embedding must be 'auto', None or a known model ({', '.join(sorted(models))}), "
            f"got {embedding!r}"
        )
    model = models[embedding]
    if x is not None and x.shape[1] != model.dim:
        raise InputError(f"embedding={embedding!r} has {model.dim} dimensions but the features "
                         f"have {x.shape[1]}")
    return model
