"""Photo commands: ``embed`` (photos -> faces file), ``gallery`` (HTML), ``add`` (incremental).

* ``faceclust embed PHOTOS_DIR --out FACES.npz``
* ``faceclust gallery FACES LABELS --out DIR``
* ``faceclust add FACES_OLD LABELS_OLD NEW_PHOTOS_DIR|FACES_NEW --out FACES.npz --labels-out LABELS``
"""

from __future__ import annotations

import os
from pathlib import Path

import click
import numpy as np

from ..errors import InputError
from ._app import main
from ._core import backend_options, ray_session_for

_BACKEND_KEYS = ("detector", "upsample", "min_score", "jitter", "chip_size", "padding")


def _echo_report(report) -> None:
    click.echo(report.summary(), err=True)
    for path, msg in report.failed[:10]:
        click.echo(f"  unreadable: {path}: {msg}", err=True)
    if len(report.failed) > 10:
        click.echo(f"  ... {len(report.failed) - 10} more unreadable (listed in {report.out}.json)", err=True)
    if report.no_face:
        shown = ", ".join(report.no_face[:5]) + (", ..." if len(report.no_face) > 5 else "")
        click.echo(f"  no face found in {len(report.no_face)}: {shown}", err=True)


def _embed_options(f):
    """Shared options of ``embed`` and ``add`` (when NEW is a folder)."""
    opts = [
        click.option("--detector", type=click.Choice(["hog", "cnn"]), default=None,
                     help="Face detector: hog (fast, default) or cnn (finds more, slow on CPU)."),
        click.option("--upsample", type=click.IntRange(0, 4), default=None,
                     help="Double the image this many times before detection (default 1)."),
        click.option("--min-score", type=float, default=None,
                     help="Detection threshold (default 0; negative finds more, less sure faces)."),
        click.option("--jitter", type=click.IntRange(0, 100), default=None,
                     help="Average each embedding over N jittered copies (default 0)."),
        click.option("--max-side", type=click.IntRange(64, None), default=None,
                     help="Shrink larger photos to this longer side before detection (default 1600)."),
        click.option("--workers", type=click.IntRange(1, None), default=None,
                     help="Processes (default: all cores)."),
        click.option("--batch-size", type=click.IntRange(1, None), default=32, show_default=True,
                     help="Images per checkpoint (at most this many are redone after a crash)."),
        click.option("--restart", is_flag=True,
                     help="Ignore a checkpoint of an interrupted run and start over."),
    ]
    for opt in reversed(opts):
        f = opt(f)
    return f


def _backend_options(detector, upsample, min_score, jitter, base: dict | None = None) -> dict:
    options = {k: v for k, v in (base or {}).items() if k in _BACKEND_KEYS}
    given = {"detector": detector, "upsample": upsample, "min_score": min_score, "jitter": jitter}
    options.update({k: v for k, v in given.items() if v is not None})
    return options


def _check_faces_out(out: str) -> Path:
    from ._preflight import check_out_file

    return check_out_file(out, exts=(".npz",), what="faces output")


@main.command("embed")
@click.argument("photos_dir", type=click.Path(file_okay=False))
@click.option("--out", required=True, type=click.Path(dir_okay=False),
              help="Faces file to write (.npz; a readable .npz.json sidecar is written beside it).")
@_embed_options
@backend_options
def embed_cmd(photos_dir, out, detector, upsample, min_score, jitter, max_side, workers,
              batch_size, restart, backend, address, ray_cpus):
    """Detect, align and embed every face in the photos under PHOTOS_DIR.

    Walks the folder (jpg, png, webp; EXIF orientation applied), records for
    each face its photo, box, detection score and L2-normalised embedding.
    Unreadable and face-less photos are reported and skipped. An interrupted
    run resumes from its checkpoint (OUT.partial/) unless --restart is given.
    """
    from ..photos import embed_folder

    if not Path(photos_dir).is_dir():
        raise InputError(f"{photos_dir}: not a folder of photos")
    out_path = _check_faces_out(out)
    with ray_session_for(backend, address, ray_cpus) as pool:
        runner = None
        if pool is not None:
            from ..distributed import ray_embed_runner

            runner = ray_embed_runner(pool)
        report = embed_folder(
            photos_dir,
            out_path,
            backend_options=_backend_options(detector, upsample, min_score, jitter),
            workers=workers,
            batch_size=batch_size,
            max_side=1600 if max_side is None else max_side,
            resume=not restart,
            runner=runner,
        )
    _echo_report(report)


@main.command("gallery")
@click.argument("faces", type=click.Path(dir_okay=False))
@click.argument("labels", type=click.Path(dir_okay=False))
@click.option("--out", required=True, type=click.Path(file_okay=False),
              help="Folder for index.html, further pages and thumbs/.")
@click.option("--photos", "photos_root", type=click.Path(file_okay=False), default=None,
              help="Where the photos are, if moved since `faceclust embed`.")
@click.option("--per-page", type=click.IntRange(1, None), default=50, show_default=True,
              help="Clusters per page.")
@click.option("--thumb-size", type=click.IntRange(16, 512), default=112, show_default=True,
              help="Thumbnail side in pixels.")
@click.option("--title", default="faceclust gallery", help="Page title.")
def gallery_cmd(faces, labels, out, photos_root, per_page, thumb_size, title):
    """Write a static HTML gallery: one row of face crops per cluster, largest first."""
    from .. import io
    from ..photos import read_faces
    from ..photos.gallery import build_gallery
    from ._preflight import check_out_dir

    check_out_dir(out)  # before any thumbnail is made
    table = read_faces(faces)
    lab = io.read_labels(labels, n=len(table))
    report = build_gallery(table, lab, out, photos_root=photos_root, clusters_per_page=per_page,
                           thumb_size=thumb_size, title=title)
    click.echo(
        f"{report.clusters} clusters, {report.singletons} unclustered faces on {report.pages} "
        f"page(s); thumbnails: {report.thumbs_written} new, {report.thumbs_reused} reused"
        + (f", {report.thumbs_failed} photos missing" if report.thumbs_failed else "")
        + f" -> {report.index}",
        err=True,
    )


def _merge(old, new):
    """Old faces then new faces in one table; paths re-rooted at the common folder."""
    from ..photos import FaceTable

    roots = [os.path.abspath(t.root or ".") for t in (old, new)]
    common = os.path.commonpath(roots)
    paths = []
    for t, r in zip((old, new), roots, strict=True):
        prefix = os.path.relpath(r, common)
        paths += [p if prefix == "." else Path(prefix, p).as_posix() for p in t.paths]
    meta = {k: v for k, v in old.meta.items() if k in ("config", "max_side")}
    meta["merged_from"] = [old.meta.get("root"), new.meta.get("root")]
    return FaceTable(
        embeddings=np.concatenate([old.embeddings, new.embeddings]),
        paths=paths,
        boxes=np.concatenate([old.boxes, new.boxes]),
        scores=np.concatenate([old.scores, new.scores]),
        root=common,
        meta=meta,
    )


@main.command("add")
@click.argument("faces_old", type=click.Path(dir_okay=False))
@click.argument("labels_old", type=click.Path(dir_okay=False))
@click.argument("new", type=click.Path())
@click.option("--out", required=True, type=click.Path(dir_okay=False),
              help="Faces file of old + new faces (.npz).")
@click.option("--labels-out", required=True, type=click.Path(dir_okay=False),
              help="Labels of old + new faces (.meta/.txt or .npy); old labels unchanged.")
@click.option("--threshold", type=click.FloatRange(-1, 1), default=None,
              help="Cosine similarity to join a cluster (default: derived from the old clusters).")
@_embed_options
def add_cmd(faces_old, labels_old, new, out, labels_out, threshold, detector, upsample,
            min_score, jitter, max_side, workers, batch_size, restart):
    """Add NEW faces (a photos folder or a faces file) to an existing clustering.

    New faces join the cluster of their nearest old face when similar enough;
    the others form new clusters where they agree with each other, or new
    singletons. Old labels are kept. A folder is embedded with the settings
    stored in FACES_OLD, so the embeddings are comparable.
    """
    from .. import io
    from ..photos import embed_folder, is_faces_file, read_faces, write_faces
    from ..stages.placement import assign_new, derive_threshold

    out_path = _check_faces_out(out)
    inputs = [faces_old, labels_old, new]
    io.check_output_path(out_path, inputs)
    from ._preflight import check_out_file

    check_out_file(labels_out, [*inputs, out], exts=io.LABEL_EXTENSIONS, what="labels output")
    old = read_faces(faces_old)
    old_labels = io.read_labels(labels_old, n=len(old))
    config = old.meta.get("config", {})
    tmp_new = None
    if Path(new).is_dir():
        tmp_new = out_path.with_name(out_path.name + ".new.npz")
        report = embed_folder(
            new,
            tmp_new,
            backend=config.get("backend", "dlib"),
            backend_options=_backend_options(detector, upsample, min_score, jitter, config),
            workers=workers,
            batch_size=batch_size,
            max_side=max_side or old.meta.get("max_side", 1600),
            resume=not restart,
        )
        _echo_report(report)
        new_table = read_faces(tmp_new)
    elif is_faces_file(new):
        new_table = read_faces(new)
    else:
        raise InputError(f"{new}: neither a folder of photos nor a faces file")
    new_cfg = new_table.meta.get("config", {})
    for key in ("backend", "model", "dim"):
        if key in config and key in new_cfg and config[key] != new_cfg[key]:
            raise InputError(
                f"{new}: embedded with {key}={new_cfg[key]!r} but {faces_old} with "
                f"{config[key]!r}; the embeddings are not comparable"
            )
    if len(new_table) == 0:
        new_labels = np.zeros(0, dtype=np.int64)
        t = float("nan") if threshold is None else threshold
    else:
        t = derive_threshold(old.embeddings, old_labels) if threshold is None else threshold
        new_labels = assign_new(old.embeddings, old_labels, new_table.embeddings, t)
    write_faces(_merge(old, new_table), out_path)
    io.write_labels(labels_out, np.concatenate([old_labels, new_labels]), protect=inputs)
    if tmp_new is not None:
        tmp_new.unlink(missing_ok=True)
        tmp_new.with_name(tmp_new.name + ".json").unlink(missing_ok=True)
    old_set = set(np.unique(old_labels).tolist())
    joined = int(np.isin(new_labels, list(old_set)).sum())
    fresh = new_labels[~np.isin(new_labels, list(old_set))]
    _, counts = np.unique(fresh, return_counts=True)
    click.echo(
        f"{len(new_labels)} new faces: {joined} joined existing clusters, "
        f"{int(counts[counts >= 2].sum())} in {int((counts >= 2).sum())} new clusters, "
        f"{int((counts == 1).sum())} new singletons (threshold {t:.4f}"
        f"{', derived from the old clusters' if threshold is None else ''}) -> {out}, {labels_out}",
        err=True,
    )
