"""Model directories of supervised methods: what a model was trained on, and input checks.

Every supervised method (class attribute ``needs_model = True``) trains with
``cls.train(X, labels, out_dir, *, seed, **params)``; the generic
``faceclust train`` then writes ``out_dir/training.json`` with
:func:`write_training_info`:

* ``data``: N, dimension, number of identities, class-size statistics,
  the embedding model's name when known, the input file names;
* ``similarity``: statistics of the cosine similarity of random pairs of
  distinct rows (mean, std, quantiles): the embedding's *similarity scale*
  (ArcFace-like: different people near 0; dlib: near 0.83), which every learned
  threshold depends on;
* ``method``, ``params``, ``seed``, ``command``, ``faceclust`` version,
  ``created`` (UTC) and ``result`` (the dict ``train`` returned).

At clustering time :func:`check_input` refuses features of another dimension
(one-line :class:`~faceclust.errors.InputError`) and returns warnings when
their similarity scale is far from training's. No torch here: this module is
imported by the CLI and the method registry.
"""

from __future__ import annotations

import inspect
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError, ParameterError

__all__ = [
    "TRAINING_FILE",
    "check_input",
    "class_size_stats",
    "model_dir",
    "read_training_info",
    "similarity_stats",
    "train_defaults",
    "training_info",
    "write_training_info",
]

TRAINING_FILE = "training.json"
FORMAT = "faceclust-training"
VERSION = 1
#: Random-pair cosine means further apart than this are "another similarity scale".
#: Measured random-pair means: ArcFace-like 512-d 0.00 (LFW) / 0.01 (CelebA),
#: dlib 128-d 0.83 (LFW) / 0.84 (CelebA): the same model on other people moves
#: it by ~0.01-0.05, another embedding model by ~0.8.
SCALE_TOLERANCE = 0.15


def similarity_stats(x: np.ndarray, *, pairs: int = 20000, seed: int = 0) -> dict[str, float]:
    """Cosine similarity of ``pairs`` random pairs of distinct rows: mean, std, 5/50/95 %.

    Rows are assumed L2-normalised (faceclust's inputs are). Cost O(pairs * D).
    """
    n = x.shape[0]
    if n < 2:
        return {"pairs": 0}
    rng = np.random.default_rng(seed)
    i = rng.integers(0, n, pairs)
    j = (i + rng.integers(1, n, pairs)) % n  # j != i
    s = np.einsum("ij,ij->i", x[i].astype(np.float32), x[j].astype(np.float32))
    q05, q50, q95 = np.quantile(s, [0.05, 0.5, 0.95])
    return {"pairs": int(pairs), "mean": round(float(s.mean()), 4), "std": round(float(s.std()), 4),
            "q05": round(float(q05), 4), "q50": round(float(q50), 4), "q95": round(float(q95), 4)}


def class_size_stats(labels: np.ndarray) -> dict[str, float]:
    """Identity count and photos-per-identity statistics (min, median, mean, p90, max, singletons)."""
    _, counts = np.unique(np.asarray(labels), return_counts=True)
    return {
        "identities": int(len(counts)),
        "min": int(counts.min()), "median": float(np.median(counts)),
        "mean": round(float(counts.mean()), 3), "p90": float(np.quantile(counts, 0.9)),
        "max": int(counts.max()), "singletons": int((counts == 1).sum()),
    }


def guess_embedding(path: str | os.PathLike | None) -> str | None:
    """The embedding model's name from a features file name (``lfw/arcface512_features.npy``
    -> ``arcface512``), or None when the name says nothing beyond "features"."""
    if path is None:
        return None
    stem = Path(path).name.split(".")[0]
    for suffix in ("_features", "-features", "_feats", "features"):
        if stem.endswith(suffix):
            stem = stem[: -len(suffix)]
    stem = stem.strip("_-")
    return stem or None


def train_defaults(cls: type) -> dict[str, Any]:
    """Training parameters of a supervised method: the keyword arguments of ``cls.train``."""
    sig = inspect.signature(cls.train)
    return {n: p.default for n, p in sig.parameters.items()
            if p.kind is inspect.Parameter.KEYWORD_ONLY and n != "seed"}


def check_train_params(cls: type, params: dict[str, Any]) -> None:
    """ParameterError naming unknown training parameters and listing the known ones."""
    known = train_defaults(cls)
    accepts_any = any(p.kind is inspect.Parameter.VAR_KEYWORD
                      for p in inspect.signature(cls.train).parameters.values())
    unknown = sorted(set(params) - set(known))
    if unknown and not accepts_any:
        raise ParameterError(
            f"train {cls.method_name}: unknown parameter(s) {', '.join(unknown)}; "
            f"known: {', '.join(sorted(known))}"
        )


def training_info(
    method: str, x: np.ndarray, labels: np.ndarray, *, params: dict[str, Any], seed: int,
    result: dict[str, Any] | None = None, command: list[str] | None = None,
    embedding: str | None = None, features_path: str | None = None,
    labels_path: str | None = None, seconds: float | None = None,
    peak_rss_mib: float | None = None,
) -> dict[str, Any]:
    """The ``training.json`` document (see the module docstring)."""
    from .. import __version__

    return {
        "format": FORMAT, "version": VERSION, "method": method,
        "faceclust": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": command,
        "seed": seed,
        "params": params,
        "data": {
            "n": int(x.shape[0]), "dim": int(x.shape[1]), "embedding": embedding,
            "features": None if features_path is None else os.path.basename(features_path),
            "labels": None if labels_path is None else os.path.basename(labels_path),
            "class_sizes": class_size_stats(labels),
        },
        "similarity": similarity_stats(x),
        "seconds": None if seconds is None else round(seconds, 2),
        "peak_rss_mib": None if peak_rss_mib is None else round(peak_rss_mib, 1),
        "result": result or {},
    }


def write_training_info(out_dir: str | os.PathLike, info: dict[str, Any]) -> Path:
    """Write ``info`` to ``out_dir/training.json`` atomically (directory created)."""
    from .. import io

    text = json.dumps(info, indent=2, sort_keys=True, default=_jsonable)
    return io.write_text(Path(out_dir) / TRAINING_FILE, text + "\n")


def _jsonable(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, os.PathLike):
        return os.fspath(v)
    return str(v)


def read_training_info(model_dir: str | os.PathLike) -> dict[str, Any] | None:
    """``model_dir/training.json`` as a dict; None when absent (models trained from Python)."""
    path = Path(model_dir) / TRAINING_FILE
    if not Path(model_dir).is_dir():
        raise InputError(f"{model_dir}: model directory not found")
    if not path.is_file():
        return None
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: unreadable ({' '.join(str(exc).split())})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise InputError(f"{path}: not a faceclust training record")
    return doc


def check_input(model_dir: str | os.PathLike, x: np.ndarray) -> list[str]:
    """Check features ``x`` against what the model in ``model_dir`` was trained on.

    Raises InputError when the dimension differs; returns warnings (strings) when the similarity scale
    (random-pair cosine mean) is more than :data:`SCALE_TOLERANCE` from
    training's. Without ``training.json`` there is nothing to check: ``[]``.
    """
    info = read_training_info(model_dir)
    if info is None:
        return []
    data = info.get("data", {})
    dim = data.get("dim")
    if dim is not None and x.shape[1] != dim:
        emb = f" ({data['embedding']})" if data.get("embedding") else ""
        raise InputError(
            f"{model_dir}: model trained on {dim}-d features{emb}, input has dimension "
            f"{x.shape[1]}; use features from the same embedding model or retrain"
        )
    warnings: list[str] = []
    sim = info.get("similarity", {})
    if "mean" in sim and x.shape[0] >= 2:
        now = similarity_stats(x, pairs=min(20000, 10 * x.shape[0]))
        if abs(now["mean"] - sim["mean"]) > SCALE_TOLERANCE:
            warnings.append(
                f"similarity scale differs from training: random-pair cosine mean "
                f"{now['mean']:.2f} here vs {sim['mean']:.2f} in training "
                f"({data.get('embedding') or 'unknown embedding'}); thresholds learned "
                "there may not fit (other embedding model?)"
            )
    return warnings


def model_dir(model: object, method: str) -> str:
    """The model directory ``model`` of supervised ``method``, or a one-line error.

    Checked in ``fit`` before any work: missing (``None``: how to train one), not a
    path, or not an existing directory.
    """
    if model is None:
        raise ParameterError(
            f"{method}: needs a trained model directory: pass model=DIR "
            f"(train one with `faceclust train --method {method} FEATURES LABELS --out DIR`)"
        )
    if not isinstance(model, str | os.PathLike):
        raise ParameterError(f"model must be a directory path, got {model!r}")
    if not os.path.isdir(model):
        raise InputError(f"{model}: model directory not found")
    return os.fspath(model)
