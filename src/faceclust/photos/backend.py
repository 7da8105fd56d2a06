"""Face backends: find every face in an RGB image, align it and embed it.

A backend is anything with a ``name``, a ``config()`` dict and a
``detect_and_embed(image) -> list[Face]`` method (:class:`FaceBackend`), so a
different model (for example an ONNX detector + ArcFace embedder) can be added
beside the default :class:`DlibBackend` and chosen with :func:`get_backend`.

The dlib backend uses the models shipped by the ``face-recognition-models``
package on the prebuilt ``dlib-bin`` wheel: HOG (or CNN/MMOD) detector, 5-point
landmarks, ``get_face_chip`` alignment (150 px, padding 0.25) and the ResNet
128-d descriptor. dlib is imported lazily, so the core package works without it.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ..errors import FaceclustError, ParameterError


class BackendUnavailable(FaceclustError):
    """The backend's libraries or model files are not installed."""


@dataclass(frozen=True)
class Face:
    """One detected face.

    Attributes
    ----------
    box : (x0, y0, x1, y1) in pixels of the (EXIF-rotated) image, clipped to it.
    score : detection score on the backend's own scale (dlib HOG: SVM margin;
        dlib CNN: MMOD confidence). Only comparable within one backend.
    embedding : float32 ``[D]`` unit-length identity embedding.
    """

    box: tuple[float, float, float, float]
    score: float
    embedding: np.ndarray


@runtime_checkable
class FaceBackend(Protocol):
    """What :mod:`faceclust.photos.embed` needs from a face model."""

    name: str
    dim: int

    def config(self) -> dict[str, Any]:
        """Settings that change the embeddings (saved with the output; must be JSON-able)."""
        ...

    def detect_and_embed(self, image: np.ndarray) -> list[Face]:
        """All faces of an RGB uint8 image ``[H, W, 3]``, each aligned and embedded."""
        ...


def _models_dir() -> Path:
    """Folder of the ``face-recognition-models`` data files, found without importing it.

    (Importing that package needs ``pkg_resources``, which recent setuptools no
    longer ships; the files themselves are all we need.)
    """
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise BackendUnavailable(
            "dlib backend: the face-recognition-models package is not installed "
            "(pip install 'faceclust[photos]')"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "models"


def _import_dlib():
    try:
        import dlib
    except ImportError as exc:
        raise BackendUnavailable(
            "dlib backend: dlib is not installed (pip install dlib-bin, or 'faceclust[photos]')"
        ) from exc
    return dlib


class DlibBackend:
    """dlib HOG/CNN detection, 5-point alignment and ResNet 128-d embedding.

    Parameters
    ----------
    detector : "hog" or "cnn"
        HOG is fast on a CPU; the CNN (MMOD) detector finds more non-frontal
        and small faces but is ~10-50x slower without a GPU.
    upsample : int
        Times the image is doubled before detection (finds faces down to ~40 px
        at 1, ~20 px at 2; each step costs ~4x time).
    min_score : float
        Detection threshold passed to the HOG detector (0 = dlib's default;
        negative finds more, less certain faces). For CNN, faces with a lower
        confidence are dropped.
    jitter : int
        dlib's ``num_jitters``: average the embedding over this many random
        perturbations of the chip (0 = none; 10 is ~10x slower, slightly better).
    chip_size, padding : int, float
        Size and margin of the aligned chip given to the ResNet (150 and 0.25,
        the model's training setting).
    """

    name = "dlib"
    dim = 128

    def __init__(
        self,
        detector: str = "hog",
        upsample: int = 1,
        min_score: float = 0.0,
        jitter: int = 0,
        chip_size: int = 150,
        padding: float = 0.25,
    ) -> None:
        if detector not in ("hog", "cnn"):
            raise ParameterError(f"detector must be 'hog' or 'cnn', got {detector!r}")
        if not isinstance(upsample, int) or not 0 <= upsample <= 4:
            raise ParameterError(f"upsample must be an integer in [0, 4], got {upsample!r}")
        if not isinstance(jitter, int) or jitter < 0:
            raise ParameterError(f"jitter must be a non-negative integer, got {jitter!r}")
        self.detector = detector
        self.upsample = upsample
        self.min_score = float(min_score)
        self.jitter = jitter
        self.chip_size = int(chip_size)
        self.padding = float(padding)
        self._models: tuple | None = None

    def config(self) -> dict[str, Any]:
        return {
            "backend": self.name,
            "model": "dlib_face_recognition_resnet_model_v1",
            "dim": self.dim,
            "detector": self.detector,
            "upsample": self.upsample,
            "min_score": self.min_score,
            "jitter": self.jitter,
            "chip_size": self.chip_size,
            "padding": self.padding,
        }

    def _load(self) -> tuple:
        if self._models is None:
            dlib = _import_dlib()
            models = _models_dir()
            files = {
                "shape": models / "shape_predictor_5_face_landmarks.dat",
                "rec": models / "dlib_face_recognition_resnet_model_v1.dat",
                "cnn": models / "mmod_human_face_detector.dat",
            }
            for f in files.values():
                if not f.is_file():
                    raise BackendUnavailable(f"dlib backend: model file {f} is missing")
            if self.detector == "hog":
                det = dlib.get_frontal_face_detector()
            else:
                det = dlib.cnn_face_detection_model_v1(str(files["cnn"]))
            self._models = (
                dlib,
                det,
                dlib.shape_predictor(str(files["shape"])),
                dlib.face_recognition_model_v1(str(files["rec"])),
            )
        return self._models

    def _detect(self, image: np.ndarray) -> list[tuple[Any, float]]:
        dlib, det, _, _ = self._load()
        if self.detector == "hog":
            rects, scores, _ = det.run(image, self.upsample, self.min_score)
            return list(zip(rects, (float(s) for s in scores), strict=True))
        found = det(image, self.upsample)
        return [(d.rect, float(d.confidence)) for d in found if d.confidence >= self.min_score]

    def detect_and_embed(self, image: np.ndarray) -> list[Face]:
        dlib, _, shape_pred, rec = self._load()
        image = np.ascontiguousarray(image, dtype=np.uint8)
        if image.ndim != 3 or image.shape[2] != 3:
            raise ParameterError(f"image must be RGB [H, W, 3], got shape {image.shape}")
        h, w = image.shape[:2]
        found = self._detect(image)
        if not found:
            return []
        chips = []
        for rect, _ in found:
            shape = shape_pred(image, rect)
            chips.append(dlib.get_face_chip(image, shape, size=self.chip_size, padding=self.padding))
        if self.jitter:
            descs = [rec.compute_face_descriptor(c, self.jitter) for c in chips]
        else:
            descs = rec.compute_face_descriptor(chips)
        emb = np.asarray([np.asarray(d, dtype=np.float32) for d in descs], dtype=np.float32)
        emb /= np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
        faces = []
        for (rect, score), e in zip(found, emb, strict=True):
            box = (
                float(max(0, rect.left())),
                float(max(0, rect.top())),
                float(min(w, rect.right() + 1)),
                float(min(h, rect.bottom() + 1)),
            )
            faces.append(Face(box=box, score=score, embedding=e))
        return faces


#: name -> factory(**options); add an ONNX (or other) backend here.
BACKENDS: dict[str, Callable[..., FaceBackend]] = {"dlib": DlibBackend}


def get_backend(name: str = "dlib", **options: Any) -> FaceBackend:
    """Instantiate the backend registered as ``name`` with ``options``."""
    if name not in BACKENDS:
        raise ParameterError(f"backend must be one of {', '.join(sorted(BACKENDS))}, got {name!r}")
    try:
        return BACKENDS[name](**options)
    except TypeError as exc:
        raise ParameterError(f"backend {name!r}: {exc}") from exc
