"""``faceclust library scan``: bring the catalogue up to date with the photos folder.

1. List the images (as :func:`faceclust.photos.list_images`: hidden folders such as
   ``.faceclust`` are skipped). A file whose size and mtime match its catalogue row
   is unchanged and not even read; otherwise its sha256 decides: same content ->
   only the row is updated; a new path with the content of a vanished file is a
   *move* (its faces, people and corrections are kept); anything else is embedded.
2. Photos gone from the folder are deleted with their faces (and the corrections on
   those faces).
3. New or changed photos are decoded, their faces detected and embedded
   (:mod:`faceclust.photos.backend`), and each face gets its quality numbers:
   detector score, size and sharpness. Faces below the quality floor are kept but
   marked ``unsure`` (not clustered). Every ``batch_size`` photos are committed in
   one transaction, so Ctrl-C or a crash loses at most the batch in flight and the
   next scan resumes. A photo that fails to decode is recorded with its error and
   listed, never fatal.
4. The unplaced faces are placed with ``IncrementalClusterer.partial_fit`` onto the
   stored clustering (the first scan fits), refined by its rule (``refine_every=1``:
   each scan is one batch, then one bounded ``refine``), and the user's corrections
   are applied (:func:`faceclust.library.people.recluster`), in one transaction.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .._progress import progress
from ..errors import InputError, ParameterError
from ..photos.backend import FaceBackend, get_backend
from ..photos.embed import list_images, load_image
from .catalogue import connect, default_db, get_meta, set_meta, write_tx
from .people import recluster

#: Quality floor: faces with a smaller size (px, shorter box side as detected), a lower
#: sharpness (variance of the Laplacian of the 64x64 grey crop) or a lower detector score
#: are "unsure" -- kept, not clustered. Chosen on the shared real photos (docs/library.md).
DEFAULT_QUALITY = {"min_size": 40.0, "min_sharpness": 40.0, "min_score": 0.1}


@dataclass
class ScanReport:
    """What :func:`scan` did."""

    db: Path
    photos: int = 0
    new: int = 0
    changed: int = 0
    moved: int = 0
    removed: int = 0
    unchanged: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    no_face: int = 0
    faces_new: int = 0
    unsure_new: int = 0
    placed: int = 0
    seconds: float = 0.0
    embed_seconds: float = 0.0
    cluster_seconds: float = 0.0

    def summary(self) -> str:
        return (
            f"{self.photos} photos: {self.new} new, {self.changed} changed, {self.moved} moved, "
            f"{self.removed} removed, {self.unchanged} unchanged, {len(self.failed)} unreadable; "
            f"{self.faces_new} new faces ({self.unsure_new} unsure), {self.placed} placed "
            f"({self.seconds:.1f} s: embed {self.embed_seconds:.1f} s, "
            f"cluster {self.cluster_seconds:.1f} s) -> {self.db}"
        )


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def sharpness(gray: np.ndarray) -> float:
    """Variance of the 4-neighbour Laplacian of a grey image (blur lowers it)."""
    g = np.asarray(gray, dtype=np.float32)
    if g.shape[0] < 3 or g.shape[1] < 3:
        return 0.0
    lap = (g[:-2, 1:-1] + g[2:, 1:-1] + g[1:-1, :-2] + g[1:-1, 2:]) - 4 * g[1:-1, 1:-1]
    return float(lap.var())


def face_quality(image: np.ndarray, box: Sequence[float]) -> tuple[float, float]:
    """``(size, sharpness)`` of the face at ``box`` (pixels of ``image``)."""
    from PIL import Image

    x0, y0, x1, y1 = (float(v) for v in box)
    size = max(0.0, min(x1 - x0, y1 - y0))
    h, w = image.shape[:2]
    a, b = max(0, int(x0)), max(0, int(y0))
    c, d = min(w, int(np.ceil(x1))), min(h, int(np.ceil(y1)))
    if c - a < 3 or d - b < 3:
        return size, 0.0
    crop = Image.fromarray(image[b:d, a:c]).convert("L").resize((64, 64), Image.Resampling.BILINEAR)
    return size, sharpness(np.asarray(crop))


def process_photo(root: Path, rel: str, backend: FaceBackend, max_side: int | None) -> dict[str, Any]:
    """Decode, detect, embed and rate one photo; never raises for a bad image."""
    out: dict[str, Any] = {"path": rel, "status": "ok", "error": None, "faces": [],
                           "width": None, "height": None}
    try:
        image, scale = load_image(root / rel, max_side)
        faces = backend.detect_and_embed(image)
    except Exception as exc:  # unreadable / corrupt / unsupported: record, keep going
        out.update(status="error", error=f"{type(exc).__name__}: {' '.join(str(exc).split())}"[:300])
        return out
    h, w = image.shape[:2]
    out["width"], out["height"] = round(w * scale), round(h * scale)
    for f in sorted(faces, key=lambda f: (f.box[0], f.box[1])):
        size, sharp = face_quality(image, f.box)
        box = [float(v) * scale for v in f.box]
        emb = np.asarray(f.embedding, dtype=np.float32).reshape(-1)
        out["faces"].append({"box": box, "score": float(f.score), "size": size,
                             "sharpness": sharp, "embedding": emb})
    if not out["faces"]:
        out["status"] = "noface"
    return out


_WORKER: dict[str, Any] = {}


def _init_worker(backend_name: str, options: dict, max_side: int | None, root: str) -> None:
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"
    _WORKER.update(backend=get_backend(backend_name, **options), max_side=max_side, root=Path(root))


def _work(rel: str) -> dict[str, Any]:
    return process_photo(_WORKER["root"], rel, _WORKER["backend"], _WORKER["max_side"])


def is_unsure(size: float, sharp: float, score: float, quality: dict[str, float]) -> bool:
    return bool(size < quality["min_size"] or sharp < quality["min_sharpness"]
                or score < quality["min_score"])


def scan(
    photos_dir: str | os.PathLike,
    db: str | os.PathLike | None = None,
    *,
    backend: str | FaceBackend = "dlib",
    backend_options: dict[str, Any] | None = None,
    max_side: int | None = 1600,
    workers: int = 1,
    batch_size: int = 16,
    quality: dict[str, float] | None = None,
    params: dict[str, Any] | None = None,
    progress_bar: bool | None = None,
) -> ScanReport:
    """Update the catalogue ``db`` (default ``PHOTOS_DIR/.faceclust/catalogue.sqlite``).

    ``backend`` may be a backend instance (used in-process; the test hook for
    precomputed embeddings). ``quality`` overrides parts of :data:`DEFAULT_QUALITY`
    (stored; changing it re-marks every face). ``params`` go to
    :class:`~faceclust.methods.IncrementalClusterer`.
    """
    t0 = time.perf_counter()
    root = Path(photos_dir).resolve()
    if not root.is_dir():
        raise InputError(f"{photos_dir}: not a folder of photos")
    if batch_size < 1:
        raise ParameterError(f"batch_size must be >= 1, got {batch_size}")
    if workers < 1:
        raise ParameterError(f"workers must be >= 1, got {workers}")
    db = Path(db) if db is not None else default_db(root)
    conn = connect(db, create=True)
    report = ScanReport(db=db)
    try:
        model, backend_name, options = _backend(conn, backend, backend_options, max_side)
        qual, requalified = _quality(conn, quality)
        images = list_images(root)
        report.photos = len(images)
        todo = _reconcile(conn, root, images, report)
        t_embed = time.perf_counter()
        if todo:
            _embed(conn, root, todo, model, backend_name, options, max_side, workers, batch_size,
                   qual, report, progress_bar)
        report.embed_seconds = time.perf_counter() - t_embed
        t_cl = time.perf_counter()
        waiting = conn.execute("SELECT COUNT(*) FROM faces WHERE placed = 0 AND hidden = 0 "
                               "AND unsure = 0").fetchone()[0]
        if waiting or report.removed or report.changed or requalified:  # else nothing to do
            info = recluster(conn, place_new=True, params=params)
            report.placed = info["placed"]
        report.cluster_seconds = time.perf_counter() - t_cl
        report.seconds = time.perf_counter() - t0
        with write_tx(conn):
            conn.execute(
                "INSERT INTO scans(started_at, finished_at, photos_new, photos_changed, "
                "photos_removed, photos_moved, photos_failed, faces_new, seconds, state) "
                "VALUES (?,?,?,?,?,?,?,?,?,?)",
                (time.time() - report.seconds, time.time(), report.new, report.changed,
                 report.removed, report.moved, len(report.failed), report.faces_new,
                 report.seconds, "done"),
            )
        report.failed = [(r["path"], r["error"]) for r in conn.execute(
            "SELECT path, error FROM photos WHERE status = 'error' ORDER BY path")]
    finally:
        conn.close()
    return report


def _backend(conn, backend, options, max_side):
    """The face model; its config is stored on the first scan and must match later."""
    if isinstance(backend, str):
        name, opts = backend, dict(options or {})
        model = get_backend(name, **opts)
    else:
        model, name, opts = backend, None, {}
    config = {"backend": model.config(), "max_side": max_side}
    with write_tx(conn):
        stored = get_meta(conn, "embedder")
        if stored is None:
            set_meta(conn, "embedder", config)
            set_meta(conn, "dim", int(model.dim))
        elif stored != config:
            raise ParameterError(
                f"this catalogue was made with {stored}; scanning with {config} would mix "
                "embeddings that are not comparable (use the same options, or another --db)"
            )
    return model, name, opts


def _quality(conn, quality: dict[str, float] | None) -> tuple[dict[str, float], bool]:
    """The quality floor (stored); True when it changed and every face was re-marked."""
    changed = False
    with write_tx(conn):
        stored = get_meta(conn, "quality") or dict(DEFAULT_QUALITY)
        q = {**stored, **{k: float(v) for k, v in (quality or {}).items() if v is not None}}
        unknown = set(q) - set(DEFAULT_QUALITY)
        if unknown:
            raise ParameterError(f"quality: unknown keys {sorted(unknown)}")
        if q != get_meta(conn, "quality"):
            changed = get_meta(conn, "quality") is not None
            set_meta(conn, "quality", q)
            # re-mark every face; newly sure faces wait to be placed
            conn.execute(
                "UPDATE faces SET unsure = (size < ? OR sharpness < ? OR score < ?)",
                (q["min_size"], q["min_sharpness"], q["min_score"]),
            )
            conn.execute("UPDATE faces SET placed = 0 WHERE unsure = 0 AND cluster IS NULL")
    return q, changed


def _reconcile(conn, root: Path, images: list[str], report: ScanReport) -> list[tuple[str, str, int, int]]:
    """Compare the folder with the catalogue; delete vanished photos; return what to embed."""
    known = {r["path"]: r for r in conn.execute("SELECT id, path, sha256, size, mtime_ns, status FROM photos")}
    listed = set(images)
    gone = {p: r for p, r in known.items() if p not in listed}
    gone_by_hash = {r["sha256"]: r for r in gone.values() if r["sha256"]}
    todo: list[tuple[str, str, int, int]] = []
    updates, moves, replaced = [], [], []
    for rel in images:
        try:
            st = (root / rel).stat()
        except OSError:
            continue
        row = known.get(rel)
        if row is not None and row["size"] == st.st_size and row["mtime_ns"] == st.st_mtime_ns:
            report.unchanged += 1
            continue
        try:
            digest = sha256_file(root / rel)
        except OSError as exc:
            report.failed.append((rel, f"{type(exc).__name__}: {exc}"))
            continue
        if row is not None and row["sha256"] == digest:
            updates.append((st.st_size, st.st_mtime_ns, row["id"]))
            report.unchanged += 1
        elif row is None and digest in gone_by_hash:
            old = gone_by_hash.pop(digest)
            del gone[old["path"]]
            moves.append((rel, st.st_size, st.st_mtime_ns, old["id"]))
            report.moved += 1
        else:
            if row is not None:
                replaced.append(row["id"])
                report.changed += 1
            else:
                report.new += 1
            todo.append((rel, digest, st.st_size, st.st_mtime_ns))
    with write_tx(conn):
        conn.executemany("UPDATE photos SET size = ?, mtime_ns = ? WHERE id = ?", updates)
        conn.executemany("UPDATE photos SET path = ?, size = ?, mtime_ns = ? WHERE id = ?", moves)
        ids = [(r["id"],) for r in gone.values()] + [(i,) for i in replaced]
        conn.executemany("DELETE FROM photos WHERE id = ?", ids)  # faces cascade
        report.removed = len(gone)
        if ids:
            from .people import drop_empty_people

            drop_empty_people(conn)
    return todo


def _embed(conn, root, todo, model, backend_name, options, max_side, workers, batch_size,
           qual, report, progress_bar) -> None:
    import multiprocessing as mp

    info = {rel: (digest, size, mtime) for rel, digest, size, mtime in todo}
    rels = [t[0] for t in todo]
    pool = None
    if workers == 1 or backend_name is None or len(rels) == 1:
        model.detect_and_embed(np.zeros((32, 32, 3), np.uint8))  # fail early if the model cannot load
        results = (process_photo(root, rel, model, max_side) for rel in rels)
    else:
        pool = mp.get_context("spawn").Pool(
            min(workers, len(rels)), initializer=_init_worker,
            initargs=(backend_name, options, max_side, str(root)),
        )
        results = pool.imap_unordered(_work, rels, chunksize=1)
    batch: list[dict[str, Any]] = []
    try:
        with progress(total=len(rels), desc="scan", enabled=progress_bar, unit="photo") as bar:
            for res in results:
                batch.append(res)
                bar.update(1)
                if len(batch) >= batch_size:
                    _commit(conn, batch, info, qual, report)
                    batch = []
            if batch:
                _commit(conn, batch, info, qual, report)
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()


def _commit(conn, batch, info, qual, report) -> None:
    """One transaction: the photos of ``batch`` and their faces (unplaced)."""
    now = time.time()
    with write_tx(conn):
        for res in batch:
            digest, size, mtime = info[res["path"]]
            cur = conn.execute(
                "INSERT INTO photos(path, sha256, size, mtime_ns, status, error, width, height, "
                "scanned_at) VALUES (?,?,?,?,?,?,?,?,?)",
                (res["path"], digest, size, mtime, res["status"], res["error"], res["width"],
                 res["height"], now),
            )
            pid = cur.lastrowid
            if res["status"] == "error":
                report.failed.append((res["path"], res["error"]))
            elif res["status"] == "noface":
                report.no_face += 1
            for f in res["faces"]:
                unsure = is_unsure(f["size"], f["sharpness"], f["score"], qual)
                conn.execute(
                    "INSERT INTO faces(photo_id, x0, y0, x1, y1, score, size, sharpness, unsure, "
                    "embedding) VALUES (?,?,?,?,?,?,?,?,?,?)",
                    (pid, *f["box"], f["score"], f["size"], f["sharpness"], int(unsure),
                     f["embedding"].astype(np.float32).tobytes()),
                )
                report.faces_new += 1
                report.unsure_new += int(unsure)
