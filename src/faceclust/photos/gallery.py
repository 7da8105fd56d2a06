"""Static HTML gallery of a face clustering: one row of face crops per cluster.

``build_gallery(faces, labels, out_dir)`` writes ``index.html`` (page 1),
``page-2.html`` ... and ``thumbs/``. Clusters are shown largest first, then the
unclustered faces (singletons, and negative labels) last, each with its count.
Pages hold at most ``clusters_per_page`` clusters and about ``faces_per_page``
faces, images use ``loading="lazy"``, so 10,000+ faces open quickly from disk
with no server. Each crop links to its photo. Thumbnails are named by a hash of
(photo, box, size) and written only when missing, so re-running after adding
faces only crops the new ones.
"""

from __future__ import annotations

import hashlib
import html
import multiprocessing as mp
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import numpy as np

from .._progress import progress
from .._validation import check_labels
from ..errors import InputError, ParameterError
from ..fsutil import write_file
from .embed import FaceTable, read_faces

_CSS = """
body{font-family:system-ui,sans-serif;margin:16px;background:#fafafa;color:#222}
header{margin-bottom:12px}nav a,nav span{margin-right:6px}
section{background:#fff;border:1px solid #ddd;border-radius:6px;margin:10px 0;padding:8px}
section h2{font-size:15px;margin:0 0 6px 0}
.row{display:flex;flex-wrap:wrap;gap:4px}
.row img{width:var(--t);height:var(--t);object-fit:cover;border-radius:3px;background:#eee}
.singletons h2{color:#666}
"""


@dataclass
class GalleryReport:
    """What :func:`build_gallery` wrote."""

    index: Path
    pages: int
    clusters: int
    singletons: int
    thumbs_written: int
    thumbs_reused: int
    thumbs_failed: int


def _thumb_name(path: str, box: np.ndarray, size: int) -> str:
    key = f"{path}|{','.join(f'{v:.1f}' for v in box)}|{size}".encode()
    h = hashlib.sha1(key).hexdigest()[:20]
    return f"{h[:2]}/{h}.jpg"


def crop_box(box: np.ndarray, w: int, h: int, margin: float) -> tuple[int, int, int, int]:
    """Square crop around ``box`` enlarged by ``margin`` on each side, kept inside the image."""
    x0, y0, x1, y1 = (float(v) for v in box)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    side = max(x1 - x0, y1 - y0) * (1 + 2 * margin)
    side = max(2.0, min(side, w, h))
    left = min(max(cx - side / 2, 0), w - side)
    top = min(max(cy - side / 2, 0), h - side)
    return round(left), round(top), round(left + side), round(top + side)


def _thumbs_of_photo(job: tuple[str, list, int, float]) -> tuple[int, int]:
    """Write the thumbnails of one photo: job = (photo, [(box, target), ...], size, margin).

    JPEGs are decoded at reduced resolution (DCT scaling) when every crop stays
    at least ``size`` pixels, which makes big camera photos several times faster.
    Returns (written, failed); never raises for a missing or unreadable photo.
    """
    from PIL import Image, ImageOps

    photo, items, size, margin = job
    try:
        with Image.open(photo) as im:
            full_w = im.size[0]
            sides = [max(b[2] - b[0], b[3] - b[1]) * (1 + 2 * margin) for b, _ in items]
            f = min(1.0, size / max(1.0, min(sides)))
            if f < 0.5 and im.format == "JPEG":
                im.draft("RGB", (int(im.size[0] * f) + 1, int(im.size[1] * f) + 1))
            ratio = im.size[0] / full_w
            im = ImageOps.exif_transpose(im).convert("RGB")
            for box, target in items:
                scaled = np.asarray(box, dtype=np.float64) * ratio
                crop = im.crop(crop_box(scaled, im.width, im.height, margin))
                crop = crop.resize((size, size), Image.Resampling.LANCZOS)
                target = Path(target)
                target.parent.mkdir(parents=True, exist_ok=True)
                tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
                crop.save(tmp, "JPEG", quality=85)
                os.replace(tmp, target)  # never a half-written thumbnail
    except OSError:
        return 0, len(items)  # photo moved or unreadable: the page shows a placeholder
    return len(items), 0


def _write_thumbs(
    table: FaceTable,
    names: list[str],
    thumb_dir: Path,
    photos_root: Path,
    size: int,
    margin: float,
    progress_bar: bool | None,
    workers: int,
) -> tuple[int, int, int]:
    """Crop every missing thumbnail, opening each photo once; returns (written, reused, failed).

    With ``workers`` > 1 and many thumbnails to make, photos are shared out to
    that many processes.
    """
    missing = [i for i, n in enumerate(names) if not (thumb_dir / n).exists()]
    reused = len(names) - len(missing)
    by_photo: dict[str, list] = {}
    for i in missing:
        by_photo.setdefault(table.paths[i], []).append(
            (tuple(float(v) for v in table.boxes[i]), str(thumb_dir / names[i]))
        )
    jobs = [(str(photos_root / rel), items, size, margin) for rel, items in by_photo.items()]
    written = failed = 0
    pool = None
    if workers > 1 and len(missing) >= 500 and len(jobs) > 1:
        pool = mp.get_context("spawn").Pool(min(workers, len(jobs)))
        results = pool.imap_unordered(_thumbs_of_photo, jobs, chunksize=4)
    else:
        results = map(_thumbs_of_photo, jobs)
    try:
        with progress(total=len(missing), desc="thumbnails", enabled=progress_bar,
                      unit="face") as bar:
            for w, f in results:
                written += w
                failed += f
                bar.update(w + f)
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()
    return written, reused, failed


def _group(labels: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """Clusters of 2+ faces (largest first, ties by smallest label) and the unclustered faces."""
    n = len(labels)
    clustered = labels >= 0
    uniq, inv, counts = np.unique(labels[clustered], return_inverse=True, return_counts=True)
    idx = np.flatnonzero(clustered)
    order = np.argsort(inv, kind="stable")
    members = np.split(idx[order], np.cumsum(counts)[:-1]) if len(uniq) else []
    big = [c for c in np.argsort(-counts, kind="stable") if counts[c] >= 2]
    clusters = [members[c] for c in big]
    single = np.ones(n, dtype=bool)
    single[idx[counts[inv] >= 2]] = False
    return clusters, np.flatnonzero(single)


def build_gallery(
    faces: FaceTable | str | os.PathLike,
    labels: np.ndarray,
    out_dir: str | os.PathLike,
    *,
    photos_root: str | os.PathLike | None = None,
    clusters_per_page: int = 50,
    faces_per_page: int = 2000,
    thumb_size: int = 112,
    margin: float = 0.25,
    title: str = "faceclust gallery",
    workers: int | None = None,
    progress_bar: bool | None = None,
) -> GalleryReport:
    """Write the HTML gallery of ``labels`` over ``faces`` into ``out_dir``.

    Parameters
    ----------
    faces:
        A :class:`FaceTable` or the path of a faces file.
    labels:
        ``[N]`` cluster label per face (negative = unclustered).
    photos_root:
        Where the photos are now, if not at the root stored in the faces file.
    clusters_per_page, faces_per_page:
        Page limits (a cluster is never split; a page holds at least one).
    thumb_size, margin:
        Thumbnail side in pixels; margin added around the face box (fraction of its size).
    workers:
        Processes cropping thumbnails (default: all cores; used from 500 new thumbnails).
    """
    table = read_faces(faces) if not isinstance(faces, FaceTable) else faces
    labels = check_labels(labels, len(table), source="labels")
    if clusters_per_page < 1 or faces_per_page < 1:
        raise ParameterError("clusters_per_page and faces_per_page must be >= 1")
    if not 16 <= thumb_size <= 512:
        raise ParameterError(f"thumb_size must be in [16, 512], got {thumb_size}")
    root = Path(photos_root) if photos_root is not None else Path(table.root or ".")
    if len(table) and not root.is_dir():
        raise InputError(f"{root}: photos folder not found (pass --photos to say where they are)")
    out = Path(out_dir)
    thumb_dir = out / "thumbs"
    thumb_dir.mkdir(parents=True, exist_ok=True)
    names = [_thumb_name(p, b, thumb_size) for p, b in zip(table.paths, table.boxes, strict=True)]
    written, reused, failed = _write_thumbs(
        table, names, thumb_dir, root, thumb_size, margin, progress_bar,
        (os.cpu_count() or 1) if workers is None else workers,
    )

    have = [(thumb_dir / n).exists() for n in names]
    clusters, singles = _group(labels)
    # pages: lists of ("cluster", rank, members) / ("single", first, members)
    blocks: list[tuple[str, int, np.ndarray]] = [("cluster", r, m) for r, m in enumerate(clusters)]
    for start in range(0, len(singles), faces_per_page):
        blocks.append(("single", start, singles[start : start + faces_per_page]))
    pages: list[list[tuple[str, int, np.ndarray]]] = []
    cur: list = []
    n_cl = n_faces = 0
    for blk in blocks:
        if cur and (n_cl >= clusters_per_page or n_faces + len(blk[2]) > faces_per_page):
            pages.append(cur)
            cur, n_cl, n_faces = [], 0, 0
        cur.append(blk)
        n_cl += blk[0] == "cluster"
        n_faces += len(blk[2])
    if cur or not pages:
        pages.append(cur)

    page_names = ["index.html"] + [f"page-{p}.html" for p in range(2, len(pages) + 1)]
    photo_href = _photo_hrefs(table, root, out)
    summary = (
        f"{_n(len(table), 'face')} in {_n(len(set(table.paths)), 'photo')}: "
        f"{_n(len(clusters), 'cluster')} of 2+ faces, {len(singles)} unclustered"
    )
    for p, page in enumerate(pages):
        body = [_nav(page_names, p)]
        for kind, rank, members in page:
            if kind == "cluster":
                label = int(labels[members[0]])
                head = f"Cluster #{rank + 1} (label {label}) &middot; {len(members)} faces"
                cls = "cluster"
            else:
                end = rank + len(members)
                head = f"Unclustered faces {rank + 1}&ndash;{end} of {len(singles)}"
                cls = "singletons"
            imgs = "".join(
                f'<a href="{photo_href[i]}">'
                + (
                    f'<img loading="lazy" src="thumbs/{names[i]}" '
                    if have[i]
                    else '<img src="data:image/gif;base64,R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7" '  # photo missing
                )
                + f'width="{thumb_size}" height="{thumb_size}" alt="face {i}" '
                f'title="{html.escape(table.paths[i])} (face {i}, score {table.scores[i]:.2f})"></a>'
                for i in members
            )
            body.append(
                f'<section class="{cls}" data-size="{len(members)}"><h2>{head}</h2>'
                f'<div class="row">{imgs}</div></section>'
            )
        body.append(_nav(page_names, p))
        doc = (
            '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            f"<title>{html.escape(title)} &middot; page {p + 1}/{len(pages)}</title>"
            '<link rel="icon" href="data:,">'
            f"<style>:root{{--t:{thumb_size}px}}{_CSS}</style></head><body>"
            f"<header><h1>{html.escape(title)}</h1><p>{summary}</p></header>"
            + "\n".join(body)
            + "</body></html>\n"
        )
        write_file(out / page_names[p], lambda fh, d=doc: fh.write(d.encode()))
    for stale in out.glob("page-*.html"):  # pages left from a larger earlier gallery
        if stale.name not in page_names:
            stale.unlink()
    return GalleryReport(
        index=out / "index.html",
        pages=len(pages),
        clusters=len(clusters),
        singletons=len(singles),
        thumbs_written=written,
        thumbs_reused=reused,
        thumbs_failed=failed,
    )


def _photo_hrefs(table: FaceTable, root: Path, out: Path) -> list[str]:
    """Relative link from the gallery folder to each face's photo (works from disk)."""
    cache: dict[str, str] = {}
    rel_root = os.path.relpath(root.resolve(), out.resolve())
    for p in table.paths:
        if p not in cache:
            cache[p] = quote(Path(rel_root, p).as_posix())
    return [cache[p] for p in table.paths]


def _n(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _nav(page_names: list[str], current: int) -> str:
    if len(page_names) == 1:
        return ""
    parts = []
    if current > 0:
        parts.append(f'<a href="{page_names[current - 1]}" rel="prev">&larr; prev</a>')
    for i, name in enumerate(page_names):
        parts.append(f"<span>{i + 1}</span>" if i == current else f'<a href="{name}">{i + 1}</a>')
    if current < len(page_names) - 1:
        parts.append(f'<a href="{page_names[current + 1]}" rel="next">next &rarr;</a>')
    return f"<nav>{' '.join(parts)}</nav>"
