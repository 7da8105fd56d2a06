"""Verification scale of each known embedding model: calibrated on one source, validated on others.

A small collection (fewer than ``adaptive.SMALL_N`` faces) has too few pairs to show the
two modes (same person / different people) that ``auto`` reads its threshold from: an
album of strangers and an album of one person both give one hump. What separates them is
an absolute scale, which depends on the embedding model only. For each model whose
features are in the shared data, this script

* **calibrates** on LFW (one source): the cosine that a pair of different LFW people
  exceeds with chance ``far`` (all pairs, exact), for ``far`` from 1e-2 to 1e-6
  (``stranger_tail``; ``auto`` reads it at ``far = embeddings.VERIFY_ALPHA / pairs`` of
  the collection, so that an album of strangers gets a wrong merge with about that
  chance whatever its size), and ``verify_cos`` at ``--far`` for the tables;
* **validates** on every other source of the same model (celeba_wild, celeba, ORL):
  the chance there that a pair of strangers / a pair of one person's photos reaches
  ``verify_cos`` (FAR / TAR);
* records the model's **mean direction** when its embeddings share one (dlib's mean
  embedding has squared norm ~0.83: every face lies in one cone), with the lowest cosine
  between it and a face of each validation source (a bound for any album's mean), so
  that ``faceclust.embeddings.recognise`` can tell the model from even one of its faces.

and writes ``src/faceclust/data/embeddings.json`` (read by :mod:`faceclust.embeddings`).

    python benchmarks/calibrate_embeddings.py [--far 1e-4] [--data /work/shared/data]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from faceclust.fsutil import write_text

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "src" / "faceclust" / "data" / "embeddings.json"
MODELS = {
    "dlib128": "dlib's ResNet face descriptor (face-recognition-models 0.3.0; the photo "
               "pipeline's model), L2-normalised",
    "arcface512": "the ArcFace-like 512-d ONNX model of the shared data (faceplugin "
                  "fr_feature.onnx, 112x112 ArcFace alignment), L2-normalised; other "
                  "ArcFace models have their own scale",
}
CALIBRATION = "lfw"
#: Chances at which the strangers' upper tail is recorded (log-spaced, 1e-2 .. 1e-6).
TAIL = tuple(float(f"{10 ** -(e / 2):.1e}") for e in range(4, 13))
VALIDATION = ("celeba_wild", "celeba", "orl")
#: A model's mean direction is kept (for recognition) when its mean embedding has at least
#: this squared norm: below it the mean of a few faces points anywhere.
MIN_MEAN2 = 0.25


def pair_sims(x: np.ndarray, y: np.ndarray, block: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """Cosines of all same-identity and all different-identity pairs (i < j)."""
    same, diff = [], []
    n = len(y)
    for i in range(0, n, block):
        s = x[i:i + block] @ x.T
        upper = np.arange(n)[None, :] > np.arange(i, min(i + block, n))[:, None]
        eq = y[i:i + block, None] == y[None, :]
        same.append(s[upper & eq])
        diff.append(s[upper & ~eq])
    return np.concatenate(same), np.concatenate(diff)


def face_mean_cos_min(x: np.ndarray, mean: np.ndarray) -> float:
    """Lowest cosine between ``mean`` and a face of ``x``: a lower bound for the cosine
    between ``mean`` and the mean of any album of these faces (each term is >= it and the
    mean of unit rows has norm <= 1)."""
    return float((x @ (mean / np.linalg.norm(mean))).min())


def load(data: Path, source: str, model: str) -> tuple[np.ndarray, np.ndarray] | None:
    f = data / source / f"{model}_features.npy"
    if not f.is_file():
        return None
    x = np.load(f).astype(np.float32)
    return x, np.loadtxt(data / source / "labels.meta", dtype=np.int64)


def calibrate(data: Path, model: str, far: float) -> dict:
    x, y = load(data, CALIBRATION, model)
    same, diff = pair_sims(x, y)
    t = float(np.quantile(diff, 1.0 - far))
    mean = x.mean(axis=0, dtype=np.float64)
    keep_mean = float(mean @ mean) >= MIN_MEAN2
    out = {
        "dim": int(x.shape[1]), "description": MODELS[model], "verify_cos": round(t, 4),
        "far": far, "calibrated_on": f"{CALIBRATION} ({len(y)} faces, {len(diff)} stranger pairs)",
        "calibration_tar": round(float(np.mean(same >= t)), 4),
        "mean": [round(float(v), 6) for v in mean / np.linalg.norm(mean)] if keep_mean else None,
        "mean_norm2": round(float(mean @ mean), 4),
        "stranger_tail": [[f, round(float(np.quantile(diff, 1.0 - f)), 4)] for f in TAIL],
        "validation": {},
    }
    for source in VALIDATION:
        got = load(data, source, model)
        if got is None:
            continue
        xs, ys = got
        s_same, s_diff = pair_sims(xs, ys)
        v = {"far": float(f"{np.mean(s_diff >= t):.2e}"), "tar": round(float(np.mean(s_same >= t)), 4)}
        if keep_mean:
            v["face_mean_cos_min"] = round(face_mean_cos_min(xs, mean), 4)
        out["validation"][source] = v
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--far", type=float, default=1e-4,
                    help="chance that a pair of strangers of the calibration source passes")
    ap.add_argument("--data", type=Path, default=Path("/work/shared/data"))
    ap.add_argument("--out", type=Path, default=OUT)
    a = ap.parse_args()
    models = {m: calibrate(a.data, m, a.far) for m in MODELS}
    write_text(a.out, json.dumps(models, indent=1) + "\n")
    print("| model | verify cos | FAR / TAR on LFW (calibration) | "
          + " | ".join(f"FAR / TAR on {s}" for s in VALIDATION) + " | face to mean direction, lowest cos |")
    print("|---" * (4 + len(VALIDATION)) + "|")
    for m, c in models.items():
        val = [f"{c['validation'][s]['far']:.1e} / {c['validation'][s]['tar']:.3f}"
               if s in c["validation"] else "–" for s in VALIDATION]
        alb = [str(v.get("face_mean_cos_min")) for v in c["validation"].values()
               if "face_mean_cos_min" in v]
        print(f"| {m} | {c['verify_cos']:.4f} | {c['far']:.0e} / {c['calibration_tar']:.3f} | "
              + " | ".join(val) + f" | {', '.join(alb) or '– (no shared direction)'} |")
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
