"""Photos -> faces file: detect, align and embed every face of every photo in a folder.

Output format (``FACES.npz``, written atomically; ``FACES.npz.json`` beside it
repeats the metadata in readable form):

* ``embeddings`` float32 ``[N, D]`` L2-normalised;
* ``paths`` unicode ``[N]``: photo of each face, relative to ``meta["root"]``
  (POSIX separators) -- the face -> photo link;
* ``boxes`` float32 ``[N, 4]``: ``x0, y0, x1, y1`` in pixels of the photo as
  displayed (EXIF orientation applied);
* ``scores`` float32 ``[N]``: detection score (backend's own scale);
* ``faceclust_faces``: format version (marks the file, see :func:`is_faces_file`);
* ``meta``: JSON string with ``root``, the backend config, counts, and the
  images with no face or that could not be read.

Faces are ordered by photo path, then left to right. Work is checkpointed every
batch in ``FACES.npz.partial/`` (one atomically written part file per batch), so
an interrupted run resumes without recomputing finished images; the folder is
removed once the output is written.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import shutil
import time
import zipfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .._progress import progress
from ..errors import InputError, ParameterError
from ..fsutil import write_file
from .backend import FaceBackend, get_backend

FORMAT_VERSION = 1
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".webp"})
_MARKER = "faceclust_faces"


# ---------------------------------------------------------------------------- table + I/O


@dataclass
class FaceTable:
    """Faces found in a photo collection (one row per face).

    ``paths[i]`` is the photo of face ``i`` relative to ``root``; ``meta`` holds
    the backend config and the per-image report of the run that made it.
    """

    embeddings: np.ndarray
    paths: list[str]
    boxes: np.ndarray
    scores: np.ndarray
    root: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.embeddings = np.asarray(self.embeddings, dtype=np.float32)
        self.boxes = np.asarray(self.boxes, dtype=np.float32).reshape(-1, 4)
        self.scores = np.asarray(self.scores, dtype=np.float32).reshape(-1)
        self.paths = [str(p) for p in self.paths]
        n = len(self.paths)
        if self.embeddings.ndim != 2 or len(self.embeddings) != n:
            raise InputError(
                f"faces: {len(self.paths)} paths but embeddings of shape {self.embeddings.shape}"
            )
        if len(self.boxes) != n or len(self.scores) != n:
            raise InputError(
                f"faces: {n} paths, {len(self.boxes)} boxes and {len(self.scores)} scores differ"
            )

    def __len__(self) -> int:
        return len(self.paths)

    def photo_path(self, i: int, root: str | os.PathLike | None = None) -> Path:
        """Absolute path of the photo of face ``i`` (``root`` overrides the stored one)."""
        base = Path(root if root is not None else (self.root or "."))
        return base / self.paths[i]


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def write_faces(table: FaceTable, out: str | os.PathLike) -> Path:
    """Write ``table`` to ``out`` (npz, atomically) plus the readable ``out.json`` sidecar."""
    out = Path(out)
    meta = dict(table.meta)
    meta.update(
        format="faceclust-faces",
        version=FORMAT_VERSION,
        root=table.root,
        n_faces=len(table),
        n_photos_with_faces=len(set(table.paths)),
    )
    meta_json = json.dumps(meta, indent=1, sort_keys=True)
    arrays = {
        _MARKER: np.array(FORMAT_VERSION),
        "embeddings": table.embeddings,
        "paths": np.array(table.paths, dtype=np.str_).reshape(-1),
        "boxes": table.boxes,
        "scores": table.scores,
        "meta": np.array(meta_json),
    }
    write_file(out, lambda fh: np.savez(fh, **arrays))
    write_file(_sidecar(out), lambda fh: fh.write(meta_json.encode()))
    table.meta = meta
    return out


def is_faces_file(path: str | os.PathLike) -> bool:
    """True when ``path`` is a faces file written by :func:`write_faces` (cheap: reads the zip index)."""
    try:
        with zipfile.ZipFile(path) as zf:
            return f"{_MARKER}.npy" in zf.namelist()
    except (OSError, zipfile.BadZipFile, ValueError):
        return False


def read_faces(path: str | os.PathLike) -> FaceTable:
    """Load a faces file; raise :class:`InputError` naming ``path`` if it is not one."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such faces file")
    if not is_faces_file(path):
        raise InputError(f"{path}: not a faceclust faces file (make one with 'faceclust embed')")
    try:
        with np.load(path, allow_pickle=False) as z:
            version = int(z[_MARKER])
            if version > FORMAT_VERSION:
                raise InputError(f"{path}: faces file version {version} is newer than supported")
            meta = json.loads(str(z["meta"]))
            table = FaceTable(
                embeddings=z["embeddings"],
                paths=z["paths"].tolist(),
                boxes=z["boxes"],
                scores=z["scores"],
                root=meta.get("root"),
                meta=meta,
            )
    except (KeyError, ValueError, OSError, zipfile.BadZipFile) as exc:
        if "allow_pickle" in str(exc):
            raise InputError(f"{path}: damaged faces file (it holds pickled object arrays; "
                             "faceclust never unpickles files)") from None
        raise InputError(f"{path}: damaged faces file ({' '.join(str(exc).split())})") from exc
    return table


# ---------------------------------------------------------------------------- images


def list_images(root: str | os.PathLike) -> list[str]:
    """Image files (jpg/jpeg/png/webp, any case) under ``root``, as sorted relative POSIX paths.

    Follows symlinks (to files and folders) but never visits a folder twice;
    hidden files and folders (name starting with ".") are skipped.
    """
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root}: not a folder of photos")
    found: list[str] = []
    seen: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen:
            dirnames[:] = []
            continue
        seen.add(real)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        rel_dir = Path(dirpath).relative_to(root)
        for name in filenames:
            if name.startswith(".") or Path(name).suffix.lower() not in IMAGE_EXTENSIONS:
                continue
            found.append((rel_dir / name).as_posix())
    return sorted(found)


def load_image(path: str | os.PathLike, max_side: int | None = None) -> tuple[np.ndarray, float]:
    """Decode a photo as RGB uint8 with EXIF orientation applied.

    Returns ``(image, scale)``: with ``max_side`` the image is shrunk so that its
    longer side is at most ``max_side`` and ``scale`` (>= 1) maps its pixel
    coordinates back to the full-size photo.
    """
    from PIL import Image, ImageOps

    with Image.open(path) as im:
        full = max(im.size)
        if max_side and full > max_side and im.format == "JPEG":
            # decode at reduced resolution straight from the DCT (much faster)
            f = max_side / full
            im.draft("RGB", (int(im.size[0] * f) + 1, int(im.size[1] * f) + 1))
        im = ImageOps.exif_transpose(im)
        im = im.convert("RGB")
        if max_side and max(im.size) > max_side:
            f = max_side / max(im.size)
            im = im.resize(
                (max(1, round(im.size[0] * f)), max(1, round(im.size[1] * f))),
                Image.Resampling.BILINEAR,
            )
        arr = np.asarray(im, dtype=np.uint8)
    return arr, full / max(arr.shape[:2])


# ---------------------------------------------------------------------------- workers

_WORKER: dict[str, Any] = {}


def _init_worker(backend_name: str, options: dict, max_side: int | None, root: str) -> None:
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"
    _WORKER.update(
        backend=get_backend(backend_name, **options), max_side=max_side, root=Path(root)
    )


def _process_one(rel: str) -> tuple[str, str, str, np.ndarray, np.ndarray, np.ndarray]:
    """(path, status, message, boxes, scores, embeddings) for one image; never raises."""
    backend: FaceBackend = _WORKER["backend"]
    empty = np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros((0, backend.dim), np.float32)
    try:
        image, scale = load_image(_WORKER["root"] / rel, _WORKER["max_side"])
    except Exception as exc:  # unreadable / corrupt / unsupported: report, keep going
        return rel, "error", f"{type(exc).__name__}: {' '.join(str(exc).split())}"[:300], *empty
    try:
        faces = backend.detect_and_embed(image)
    except Exception as exc:
        return rel, "error", f"{type(exc).__name__}: {' '.join(str(exc).split())}"[:300], *empty
    if not faces:
        return rel, "noface", "", *empty
    faces = sorted(faces, key=lambda f: (f.box[0], f.box[1]))
    h, w = image.shape[:2]
    boxes = np.array([f.box for f in faces], dtype=np.float32) * np.float32(scale)
    boxes[:, [0, 2]] = np.clip(boxes[:, [0, 2]], 0, round(w * scale))
    boxes[:, [1, 3]] = np.clip(boxes[:, [1, 3]], 0, round(h * scale))
    scores = np.array([f.score for f in faces], dtype=np.float32)
    emb = np.stack([f.embedding for f in faces]).astype(np.float32)
    return rel, "ok", "", boxes, scores, emb


def load_worker(backend_name: str, options: dict, max_side: int | None, root: str) -> None:
    """Load the face model into this process (a pool or Ray worker), once per worker."""
    _init_worker(backend_name, options, max_side, root)


def embed_images(rels: Sequence[str]) -> list[tuple]:
    """Results of :func:`_process_one` for each image, in this (loaded) worker."""
    return [_process_one(rel) for rel in rels]


# ---------------------------------------------------------------------------- checkpoint


def _write_part(part_dir: Path, results: list[tuple]) -> None:
    """One batch of per-image results -> ``part-<n>.npz`` (atomic)."""
    counts = np.array([len(r[4]) for r in results], dtype=np.int64)
    dim = results[0][5].shape[1]
    arrays = {
        "img_paths": np.array([r[0] for r in results], dtype=np.str_),
        "img_status": np.array([r[1] for r in results], dtype=np.str_),
        "img_msg": np.array([r[2] for r in results], dtype=np.str_),
        "face_img": np.repeat(np.arange(len(results)), counts).astype(np.int64),
        "boxes": np.concatenate([r[3] for r in results]).reshape(-1, 4),
        "scores": np.concatenate([r[4] for r in results]),
        "embeddings": np.concatenate([r[5] for r in results]).reshape(-1, dim),
    }
    existing = [int(p.stem.split("-")[1]) for p in part_dir.glob("part-*.npz")]
    name = part_dir / f"part-{(max(existing) + 1) if existing else 0:06d}.npz"
    write_file(name, lambda fh: np.savez(fh, **arrays))


def _read_parts(part_dir: Path) -> list[dict[str, np.ndarray]]:
    parts = []
    for p in sorted(part_dir.glob("part-*.npz")):
        try:
            with np.load(p, allow_pickle=False) as z:
                parts.append({k: z[k] for k in z.files})
        except (OSError, ValueError, zipfile.BadZipFile):
            p.unlink(missing_ok=True)  # unreadable part: its images are simply redone
    return parts


@dataclass
class EmbedReport:
    """What :func:`embed_folder` did."""

    out: Path
    n_images: int
    n_faces: int
    no_face: list[str]
    failed: list[tuple[str, str]]
    resumed_images: int
    seconds: float

    def summary(self) -> str:
        return (
            f"{self.n_images} images, {self.n_faces} faces, {len(self.no_face)} without a face, "
            f"{len(self.failed)} unreadable, {self.resumed_images} taken from the checkpoint "
            f"({self.seconds:.1f} s) -> {self.out}"
        )


def embed_folder(
    photos_dir: str | os.PathLike,
    out: str | os.PathLike,
    *,
    backend: str = "dlib",
    backend_options: dict[str, Any] | None = None,
    workers: int | None = None,
    batch_size: int = 32,
    max_side: int | None = 1600,
    resume: bool = True,
    images: Sequence[str] | None = None,
    progress_bar: bool | None = None,
    runner: Callable[..., Iterable[tuple]] | None = None,
) -> EmbedReport:
    """Detect, align and embed every face under ``photos_dir``; write the faces file ``out``.

    Parameters
    ----------
    backend, backend_options:
        Face model (:func:`~faceclust.photos.backend.get_backend`).
    workers:
        Processes, one image at a time each (default: all cores). 1 runs in-process.
    batch_size:
        Images per checkpoint part; at most this many are redone after a crash.
    max_side:
        Shrink photos whose longer side exceeds this before detection (speed;
        boxes are reported in full-size pixels). ``None`` keeps full size.
    resume:
        Re-use a checkpoint left by an interrupted run with the same settings;
        ``False`` discards it.
    images:
        Relative paths to process instead of every image in the folder.
    runner:
        Where the images are processed: ``runner(todo, backend=, options=,
        max_side=, root=, batch_size=)`` yields one result per image (any order),
        e.g. Ray workers (:func:`faceclust.distributed.ray_embed_runner`); the
        checkpointing, merging and output stay here, so the faces file is the same.
    """
    t0 = time.perf_counter()
    root = Path(photos_dir).resolve()
    out = Path(out)
    if batch_size < 1:
        raise ParameterError(f"batch_size must be >= 1, got {batch_size}")
    if max_side is not None and max_side < 64:
        raise ParameterError(f"max_side must be >= 64 pixels, got {max_side}")
    workers = (os.cpu_count() or 1) if workers is None else workers
    if workers < 1:
        raise ParameterError(f"workers must be >= 1, got {workers}")
    options = dict(backend_options or {})
    model = get_backend(backend, **options)
    all_images = list(images) if images is not None else list_images(root)
    if not all_images:
        raise InputError(f"{photos_dir}: no .jpg, .jpeg, .png or .webp images in this folder")

    run_config = {"root": str(root), "max_side": max_side, "backend": model.config()}
    part_dir = out.with_name(out.name + ".partial")
    if part_dir.exists() and not resume:
        shutil.rmtree(part_dir)
    if part_dir.exists():
        try:
            old_config = json.loads((part_dir / "run.json").read_text())
        except (OSError, ValueError):
            old_config = None
        if old_config != run_config:
            raise ParameterError(
                f"{part_dir}: checkpoint of a run with other settings or photos folder; "
                f"remove it or run again with --restart"
            )
    else:
        part_dir.mkdir(parents=True)
        write_file(part_dir / "run.json", lambda fh: fh.write(json.dumps(run_config).encode()))

    done = set()
    for part in _read_parts(part_dir):
        done.update(part["img_paths"].tolist())
    wanted = set(all_images)
    todo = [p for p in all_images if p not in done]
    resumed = len(wanted & done)

    if todo:
        # fail early (one clear line) if the model itself cannot load
        model.detect_and_embed(np.zeros((32, 32, 3), np.uint8))
        batch: list[tuple] = []
        with progress(total=len(todo), desc="embed", enabled=progress_bar, unit="img") as bar:
            if runner is not None:
                results = runner(todo, backend=backend, options=options, max_side=max_side,
                                 root=str(root), batch_size=batch_size)
                pool = None
            elif workers == 1:
                _init_worker(backend, options, max_side, str(root))
                _WORKER["backend"] = model
                results = map(_process_one, todo)
                pool = None
            else:
                pool = mp.get_context("spawn").Pool(
                    min(workers, len(todo)),
                    initializer=_init_worker,
                    initargs=(backend, options, max_side, str(root)),
                )
                results = pool.imap_unordered(_process_one, todo, chunksize=1)
            try:
                for res in results:
                    batch.append(res)
                    bar.update(1)
                    if len(batch) >= batch_size:
                        _write_part(part_dir, batch)
                        batch = []
                if batch:
                    _write_part(part_dir, batch)
            finally:
                if pool is not None:
                    pool.terminate()
                    pool.join()
                close = getattr(results, "close", None)  # a runner's generator: stop its workers
                if close is not None:
                    close()

    table, no_face, failed = _merge_parts(_read_parts(part_dir), wanted, model.dim)
    table.root = str(root)
    table.meta = {
        "config": model.config(),
        "max_side": max_side,
        "n_images": len(wanted),
        "images_without_faces": no_face,
        "unreadable_images": [{"path": p, "error": m} for p, m in failed],
    }
    write_faces(table, out)
    shutil.rmtree(part_dir, ignore_errors=True)
    return EmbedReport(
        out=out,
        n_images=len(wanted),
        n_faces=len(table),
        no_face=no_face,
        failed=failed,
        resumed_images=resumed,
        seconds=time.perf_counter() - t0,
    )


def _merge_parts(
    parts: list[dict[str, np.ndarray]], wanted: set[str], dim: int
) -> tuple[FaceTable, list[str], list[tuple[str, str]]]:
    """Concatenate checkpoint parts into a table ordered by photo path (left to right within)."""
    paths, boxes, scores, embs = [], [], [], []
    no_face: list[str] = []
    failed: list[tuple[str, str]] = []
    for part in parts:
        img = part["img_paths"]
        keep_img = np.array([p in wanted for p in img.tolist()], dtype=bool)
        for p, s, m, k in zip(img.tolist(), part["img_status"].tolist(), part["img_msg"].tolist(), keep_img, strict=True):
            if k and s == "noface":
                no_face.append(p)
            elif k and s == "error":
                failed.append((p, m))
        keep = keep_img[part["face_img"]] if len(part["face_img"]) else np.zeros(0, bool)
        paths.append(img[part["face_img"][keep]])
        boxes.append(part["boxes"][keep])
        scores.append(part["scores"][keep])
        embs.append(part["embeddings"][keep])
    if paths:
        p = np.concatenate(paths)
        b = np.concatenate(boxes).reshape(-1, 4)
        s = np.concatenate(scores)
        e = np.concatenate(embs).reshape(-1, dim)
    else:
        p, b, s, e = np.zeros(0, np.str_), np.zeros((0, 4)), np.zeros(0), np.zeros((0, dim))
    order = np.lexsort((b[:, 1], b[:, 0], p)) if len(p) else np.zeros(0, np.int64)
    table = FaceTable(embeddings=e[order], paths=p[order].tolist(), boxes=b[order], scores=s[order])
    return table, sorted(no_face), sorted(failed)
