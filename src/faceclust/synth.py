"""Seeded synthetic face embeddings with identities, for tests, demos and scale runs.

Real face embeddings (ArcFace-like, dlib) are not a mixture of well separated
isotropic blobs. The generator mimics the properties that make clustering them
hard, each controlled by a field of :class:`SynthConfig`:

* **crowded identity space**: identity centres are drawn from an anisotropic
  Gaussian (exponentially decaying spectrum in a random basis), so two
  different people have cosine with a realistic spread (``center_cos_std``)
  instead of the tiny ``1/sqrt(dim)`` of uniform directions;
* **shared offset** (``mean_inter_cos``): every sample gets the same component
  along one fixed direction, which sets the mean cosine between different
  people (≈ 0.01 for ArcFace-like features, ≈ 0.83 for dlib);
* **long-tailed identity sizes**: ``1 + multinomial`` with lognormal weights
  (``size_sigma``), plus optional forced singletons (``singleton_frac``); the
  total is exactly ``n`` and every identity has at least one sample;
* **shared low-rank nuisance** (pose/light-like): ``nuisance_rank`` directions
  common to all identities, with per-sample Gaussian coefficients;
* **heteroscedastic noise**: isotropic noise whose scale varies per identity
  (``spread_sigma``) and per sample (``sample_spread_sigma``, image quality);
* **look-alikes**: a fraction of identities (``near_dup_frac``) get a centre at
  cosine ``near_dup_cos`` to another identity's centre;
* **outliers**: a fraction of samples (``outlier_frac``) are a random face
  (a fresh centre from the identity distribution) but keep their label.

Generation is split into fixed blocks of :data:`BLOCK` rows, each with its own
random stream derived from ``(seed, block index)``; :func:`make_faces` (in
memory) and :func:`write_faces` (streamed to disk, bounded memory) therefore
produce identical bytes for the same arguments, whatever the write chunk.
Memory is O(n_ids * dim + n) for the per-identity parameters and labels plus
O(BLOCK * dim) per block.

The defaults were calibrated against the ArcFace-like 512-d LFW features
(see ``benchmarks/calibrate_synth.py``): intra-/inter-identity cosine
distributions and kNN precision are in the same range as the real set.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from .errors import ParameterError

#: Rows per random-stream block (part of the generator's definition: changing it changes outputs).
BLOCK = 16384

#: Version of the generator's definition, mixed into every seed.
_VERSION = 1


@dataclass(frozen=True)
class SynthConfig:
    """Parameters of the synthetic face-embedding model (defaults: ArcFace-like).

    Attributes
    ----------
    mean_inter_cos : float
        Mean cosine between samples of different identities, set by a shared
        offset direction (0.01 ArcFace-like; ~0.83 mimics dlib). In [0, 1).
    center_cos_std : float
        Std of the cosine between two identity centres. Values below
        ``1/sqrt(dim)`` give uniform (isotropic) centres.
    size_sigma : float
        Sigma of the lognormal weights that share the ``n - n_ids`` samples
        beyond one per identity; larger means a longer tail and more singletons.
    singleton_frac : float
        Fraction of identities forced to exactly one sample (on top of those the
        lognormal draw produces).
    nuisance_rank : int
        Number of shared nuisance (pose/light-like) directions.
    nuisance_var : float
        Expected squared norm of the nuisance part of a sample (centre norm is 1).
    noise : float
        Median per-identity isotropic noise norm (relative to the centre norm 1).
    spread_sigma : float
        Lognormal sigma of the per-identity noise scale (tight vs loose people).
    sample_spread_sigma : float
        Lognormal sigma of the per-sample noise scale (image quality).
    near_dup_frac : float
        Fraction of identities whose centre is placed near another identity's.
    near_dup_cos : tuple[float, float]
        Range of the centre cosine of a look-alike pair (uniform).
    outlier_frac : float
        Fraction of samples replaced by a random face that keeps its label.
    shuffle : bool
        Shuffle rows (True) or store them grouped by identity (False).
    """

    mean_inter_cos: float = 0.01
    center_cos_std: float = 0.13
    size_sigma: float = 0.7
    singleton_frac: float = 0.0
    nuisance_rank: int = 12
    nuisance_var: float = 0.2
    noise: float = 0.5
    spread_sigma: float = 0.25
    sample_spread_sigma: float = 0.4
    near_dup_frac: float = 0.02
    near_dup_cos: tuple[float, float] = (0.6, 0.8)
    outlier_frac: float = 0.005
    shuffle: bool = True

    def __post_init__(self) -> None:
        def _in(name: str, lo: float, hi: float, lo_open: bool = False, hi_open: bool = False):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
                raise ParameterError(f"SynthConfig.{name} must be a finite number, got {v!r}")
            if (v < lo or (lo_open and v == lo)) or (v > hi or (hi_open and v == hi)):
                lb = "(" if lo_open else "["
                rb = ")" if hi_open else "]"
                raise ParameterError(f"SynthConfig.{name} must be in {lb}{lo}, {hi}{rb}, got {v}")

        _in("mean_inter_cos", 0.0, 1.0, hi_open=True)
        _in("center_cos_std", 0.0, 1.0)
        _in("size_sigma", 0.0, 10.0)
        _in("singleton_frac", 0.0, 1.0)
        _in("nuisance_var", 0.0, 100.0)
        _in("noise", 0.0, 100.0)
        _in("spread_sigma", 0.0, 5.0)
        _in("sample_spread_sigma", 0.0, 5.0)
        _in("near_dup_frac", 0.0, 1.0)
        _in("outlier_frac", 0.0, 1.0)
        r = self.nuisance_rank
        if isinstance(r, bool) or not isinstance(r, int) or r < 0:
            raise ParameterError(f"SynthConfig.nuisance_rank must be an integer >= 0, got {r!r}")
        lo, hi = self.near_dup_cos
        if not (-1.0 <= lo <= hi <= 1.0):
            raise ParameterError(
                f"SynthConfig.near_dup_cos must be (lo, hi) with -1 <= lo <= hi <= 1, got {self.near_dup_cos}"
            )


#: Named configurations: ``arcface`` (the defaults, calibrated on ArcFace-like 512-d LFW
#: features) and ``dlib`` (calibrated on dlib 128-d LFW features: different people at
#: cosine ~0.83, same person ~0.94); ``hard``: ArcFace-like scale with more look-alikes,
#: outliers and noise, for benchmarks where the LFW-calibrated defaults are too easy (a k=10
#: kNN-threshold baseline reaches pairwise F 0.905 instead of 0.992 at 60,000 x 256, 880 ids,
#: seed 0). Identity sizes use the default ``size_sigma`` in all of them.
PRESETS: dict[str, SynthConfig] = {
    "arcface": SynthConfig(),
    "dlib": SynthConfig(mean_inter_cos=0.82, center_cos_std=0.25, noise=0.5),
    "hard": SynthConfig(near_dup_frac=0.15, near_dup_cos=(0.7, 0.9), outlier_frac=0.02, noise=0.6),
}


@dataclass(frozen=True)
class _Model:
    """Per-identity parameters and labels shared by all blocks."""

    n: int
    dim: int
    seed: int
    cfg: SynthConfig
    labels: np.ndarray  # (n,) int64
    centers: np.ndarray  # (n_ids, dim) float32, unit norm, orthogonal to `offset`
    sigma: np.ndarray  # (n_ids,) float32 noise norm per identity
    nuisance: np.ndarray  # (rank, dim) float32, orthonormal rows
    offset: np.ndarray  # (dim,) float32 unit shared direction
    center_map: np.ndarray  # (dim, dim) float32: z @ center_map ~ centre distribution


def _check_int(name: str, value: object, lo: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ParameterError(f"{name} must be an integer, got {value!r}")
    if value < lo:
        raise ParameterError(f"{name} must be >= {lo}, got {value}")
    return int(value)


def _check_args(n: object, n_ids: object, dim: object, seed: object) -> tuple[int, int, int, int]:
    n = _check_int("n", n, 1)
    n_ids = _check_int("n_ids", n_ids, 1)
    dim = _check_int("dim", dim, 2)
    seed = _check_int("seed", seed, 0)
    if n_ids > n:
        raise ParameterError(f"n_ids={n_ids} must be <= n={n} (every identity needs a sample)")
    return n, n_ids, dim, seed


def _spectrum(dim: int, cos_std: float) -> np.ndarray:
    """Variances ``exp(-j/tau)`` whose participation ratio is ``1/cos_std**2`` (capped at dim)."""
    target = 1.0 / cos_std**2 if cos_std > 0 else math.inf
    j = np.arange(dim, dtype=np.float64)
    if target >= dim * 0.999:
        return np.ones(dim)

    def pr(tau: float) -> float:
        lam = np.exp(-j / tau)
        return float(lam.sum() ** 2 / (lam**2).sum())

    lo, hi = 1e-3, 1e6
    for _ in range(100):  # bisection in log space; pr(tau) is increasing
        mid = math.sqrt(lo * hi)
        if pr(mid) < target:
            lo = mid
        else:
            hi = mid
    return np.exp(-j / math.sqrt(lo * hi))


def _orthonormal(rng: np.random.Generator, dim: int, k: int) -> np.ndarray:
    """``k`` random orthonormal rows in R^dim (k <= dim)."""
    q, r = np.linalg.qr(rng.standard_normal((dim, k)))
    return (q * np.sign(np.diag(r))).T


def _sizes(rng: np.random.Generator, n: int, n_ids: int, cfg: SynthConfig) -> np.ndarray:
    """Long-tailed identity sizes: >= 1 each, summing exactly to n."""
    sizes = np.ones(n_ids, dtype=np.int64)
    w = rng.lognormal(0.0, cfg.size_sigma, n_ids)
    n_single = min(round(cfg.singleton_frac * n_ids), n_ids - 1)
    if n_single > 0:
        w[rng.choice(n_ids, n_single, replace=False)] = 0.0
    extra = n - n_ids
    if extra > 0:
        sizes += rng.multinomial(extra, w / w.sum())
    return sizes


def _build(n: int, n_ids: int, dim: int, seed: int, cfg: SynthConfig) -> _Model:
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(_VERSION, 0)))
    sizes = _sizes(rng, n, n_ids, cfg)
    labels = np.repeat(np.arange(n_ids, dtype=np.int64), sizes)
    if cfg.shuffle:
        rng.shuffle(labels)

    basis = _orthonormal(rng, dim, dim)  # rows: a random orthonormal basis
    offset = basis[0]
    rest = basis[1:]  # everything else lives orthogonal to the offset
    lam = _spectrum(dim - 1, cfg.center_cos_std)
    center_map = np.sqrt(lam / lam.sum())[:, None] * rest  # (dim-1, dim)

    centers = np.empty((n_ids, dim), dtype=np.float32)
    step = max(1, (1 << 22) // dim)
    for s in range(0, n_ids, step):
        z = rng.standard_normal((min(step, n_ids - s), dim - 1))
        centers[s : s + step] = z @ center_map
    centers /= np.linalg.norm(centers, axis=1, keepdims=True)

    n_dup = min(round(cfg.near_dup_frac * n_ids), n_ids // 2)
    if n_dup > 0:
        perm = rng.permutation(n_ids)
        src, dst = perm[:n_dup], perm[n_dup : 2 * n_dup]
        t = rng.uniform(*cfg.near_dup_cos, size=n_dup)[:, None]
        a = centers[src].astype(np.float64)
        w = centers[dst].astype(np.float64)
        w -= np.einsum("ij,ij->i", w, a)[:, None] * a
        w /= np.linalg.norm(w, axis=1, keepdims=True)
        centers[dst] = t * a + np.sqrt(1.0 - t**2) * w

    sigma = cfg.noise * np.exp(cfg.spread_sigma * rng.standard_normal(n_ids))
    rank = min(cfg.nuisance_rank, dim - 1)
    nuisance = _orthonormal(rng, dim, rank) if rank > 0 else np.zeros((0, dim))
    return _Model(
        n=n,
        dim=dim,
        seed=seed,
        cfg=cfg,
        labels=labels,
        centers=centers,
        sigma=sigma.astype(np.float32),
        nuisance=nuisance.astype(np.float32),
        offset=offset.astype(np.float32),
        center_map=center_map.astype(np.float32),
    )


def _block(model: _Model, b: int) -> np.ndarray:
    """Rows ``[b*BLOCK, (b+1)*BLOCK)`` of the feature matrix (float32, unit rows)."""
    cfg, dim = model.cfg, model.dim
    start = b * BLOCK
    lab = model.labels[start : start + BLOCK]
    m = len(lab)
    rng = np.random.default_rng(np.random.SeedSequence(model.seed, spawn_key=(_VERSION, 1, b)))
    is_out = rng.random(m) < cfg.outlier_frac
    scale = model.sigma[lab] / np.float32(math.sqrt(dim))
    if cfg.sample_spread_sigma > 0:
        scale *= np.exp(cfg.sample_spread_sigma * rng.standard_normal(m, dtype=np.float32))
    u = rng.standard_normal((m, dim), dtype=np.float32)
    u *= scale[:, None]
    u += model.centers[lab]
    rank = model.nuisance.shape[0]
    if rank > 0 and cfg.nuisance_var > 0:
        coef = rng.standard_normal((m, rank), dtype=np.float32)
        coef *= np.float32(math.sqrt(cfg.nuisance_var / rank))
        u += coef @ model.nuisance
    n_out = int(is_out.sum())
    if n_out:
        z = rng.standard_normal((n_out, dim - 1), dtype=np.float32) @ model.center_map
        z /= np.linalg.norm(z, axis=1, keepdims=True)
        u[is_out] += z - model.centers[lab[is_out]]
    # keep the part orthogonal to the shared offset, then add the offset exactly
    u -= (u @ model.offset)[:, None] * model.offset
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    a = cfg.mean_inter_cos
    if a > 0:
        u *= np.float32(math.sqrt(1.0 - a))
        u += np.float32(math.sqrt(a)) * model.offset
    return u


def _config(config: SynthConfig | None) -> SynthConfig:
    if config is None:
        return SynthConfig()
    if not isinstance(config, SynthConfig):
        raise ParameterError(f"config must be a SynthConfig, got {type(config).__name__}")
    return config


def make_faces(
    n: int,
    n_ids: int,
    dim: int = 256,
    *,
    seed: int = 0,
    config: SynthConfig | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Generate ``n`` synthetic face embeddings of ``n_ids`` identities in memory.

    Parameters
    ----------
    n, n_ids : int
        Number of samples and of identities (``1 <= n_ids <= n``); every
        identity gets at least one sample and sizes are long-tailed.
    dim : int
        Embedding dimension (>= 2).
    seed : int
        Non-negative seed; the same arguments always give the same bytes.
    config : SynthConfig, optional
        Model parameters (defaults: ArcFace-like, see :class:`SynthConfig`).

    Returns
    -------
    x : ndarray, float32 (n, dim)
        L2-normalised embeddings.
    labels : ndarray, int64 (n,)
        Identity of each row, in ``0 .. n_ids-1``.
    """
    n, n_ids, dim, seed = _check_args(n, n_ids, dim, seed)
    model = _build(n, n_ids, dim, seed, _config(config))
    x = np.empty((n, dim), dtype=np.float32)
    for b in range(-(-n // BLOCK)):
        x[b * BLOCK : (b + 1) * BLOCK] = _block(model, b)
    return x, model.labels


def write_faces(
    prefix: str | os.PathLike[str],
    n: int,
    n_ids: int,
    dim: int = 256,
    seed: int = 0,
    fmt: str = "npy",
    chunk: int = 4 * BLOCK,
    *,
    config: SynthConfig | None = None,
    progress: bool | None = None,
) -> tuple[Path, Path]:
    """Stream the same data as :func:`make_faces` to disk with bounded memory.

    Writes ``PREFIX.npy`` (``fmt="npy"``) or ``PREFIX.bin`` (``fmt="bin"``: raw
    little-endian float32 rows, no header, as learn-to-cluster) plus
    ``PREFIX.meta`` (one integer label per line). Each file is written to a
    temporary name beside its target and moved into place
    (:func:`faceclust.io.atomic_write`), so an interrupted run never leaves a
    half-written file under the final name. Rows are generated and written one
    block at a time; ``chunk`` (rows per write, rounded up to a multiple of
    :data:`BLOCK`) only affects memory use, never the output. Returns
    ``(features_path, labels_path)``.
    """
    from . import io
    from ._progress import progress as _bar

    n, n_ids, dim, seed = _check_args(n, n_ids, dim, seed)
    if fmt not in ("npy", "bin"):
        raise ParameterError(f"fmt must be 'npy' or 'bin', got {fmt!r}")
    chunk = _check_int("chunk", chunk, 1)
    cfg = _config(config)
    prefix = Path(prefix)
    out_dir = prefix.parent
    if not out_dir.is_dir():
        raise ParameterError(f"output directory {str(out_dir)!r} does not exist (prefix {str(prefix)!r})")
    feat_path = prefix.with_name(prefix.name + "." + fmt)
    meta_path = prefix.with_name(prefix.name + ".meta")
    for p in (feat_path, meta_path):
        if p.is_dir():
            raise ParameterError(f"output path {str(p)!r} is a directory")

    model = _build(n, n_ids, dim, seed, cfg)
    blocks_per_write = max(1, -(-chunk // BLOCK))
    n_blocks = -(-n // BLOCK)
    with io.atomic_write(feat_path) as fh, _bar(
        total=n, desc="synth", enabled=progress, unit="row"
    ) as bar:
        if fmt == "npy":
            header = {"descr": "<f4", "fortran_order": False, "shape": (n, dim)}
            np.lib.format.write_array_header_1_0(fh, header)
        buf = np.empty((min(n, blocks_per_write * BLOCK), dim), dtype="<f4")
        for b0 in range(0, n_blocks, blocks_per_write):
            filled = 0
            for b in range(b0, min(n_blocks, b0 + blocks_per_write)):
                rows = _block(model, b)
                buf[filled : filled + len(rows)] = rows
                filled += len(rows)
            fh.write(buf[:filled].data)
            bar.update(filled)
    io.write_labels(meta_path, model.labels)
    return feat_path, meta_path


def sample_paths() -> tuple[Path, Path]:
    """Paths of the bundled sample: ``(features.npy, labels.meta)`` (3000 x 128, 150 ids)."""
    root = resources.files("faceclust.data.sample")
    feat, meta = root / "features.npy", root / "labels.meta"
    return Path(str(feat)), Path(str(meta))


def config_summary(config: SynthConfig | None = None) -> str:
    """One-line ``key=value`` rendering of a config (for READMEs and logs)."""
    cfg = _config(config)
    return " ".join(f"{f.name}={getattr(cfg, f.name)}" for f in dataclasses.fields(cfg))


__all__ = ["BLOCK", "PRESETS", "SynthConfig", "make_faces", "write_faces", "sample_paths", "config_summary"]
