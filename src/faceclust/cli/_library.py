"""``faceclust library scan|serve|export|status PHOTOS_DIR``: a people catalogue of a photo folder.

The catalogue is ``PHOTOS_DIR/.faceclust/catalogue.sqlite`` unless ``--db FILE``
puts it elsewhere (see :mod:`faceclust.library`, ``docs/library.md``).
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..errors import InputError
from ._app import main


def _db(photos_dir: str, db: str | None) -> Path:
    from ..library import default_db

    if not Path(photos_dir).is_dir():
        raise InputError(f"{photos_dir}: not a folder of photos")
    return Path(db) if db else default_db(photos_dir)


_db_option = click.option("--db", type=click.Path(dir_okay=False), default=None,
                          help="Catalogue file (default PHOTOS_DIR/.faceclust/catalogue.sqlite).")


@main.group("library")
def library() -> None:
    """A people catalogue of a growing photo folder: scan, serve, export, status."""


@library.command("scan")
@click.argument("photos_dir", type=click.Path(file_okay=False))
@_db_option
@click.option("--workers", type=click.IntRange(1, None), default=1, show_default=True,
              help="Processes that embed photos.")
@click.option("--batch-size", type=click.IntRange(1, None), default=16, show_default=True,
              help="Photos per committed transaction (at most this many are redone after Ctrl-C).")
@click.option("--max-side", type=click.IntRange(64, None), default=1600, show_default=True,
              help="Shrink larger photos to this longer side before detection (first scan only).")
@click.option("--detector", type=click.Choice(["hog", "cnn"]), default="hog", show_default=True,
              help="Face detector (first scan only; later scans must match).")
@click.option("--upsample", type=click.IntRange(0, 4), default=1, show_default=True,
              help="Double the image this many times before detection (first scan only).")
@click.option("--min-face-size", type=float, default=None,
              help="Quality floor: shorter face side in pixels (default 40).")
@click.option("--min-sharpness", type=float, default=None,
              help="Quality floor: Laplacian variance of the 64x64 face crop (default 40).")
@click.option("--min-detector-score", type=float, default=None,
              help="Quality floor: detector score (default 0.1; dlib HOG margin).")
def scan_cmd(photos_dir, db, workers, batch_size, max_side, detector, upsample, min_face_size,
             min_sharpness, min_detector_score):
    """Add new and changed photos to the catalogue, drop deleted ones, place new faces.

    Only files that are new or changed (by content hash) are embedded; moved files
    keep their faces and corrections. Faces are placed with the incremental
    clusterer onto the existing people, then every stored correction is applied.
    Ctrl-C keeps what was committed; the next scan resumes.
    """
    from ..library import scan

    path = _db(photos_dir, db)
    quality = {"min_size": min_face_size, "min_sharpness": min_sharpness,
               "min_score": min_detector_score}
    try:
        report = scan(photos_dir, path, backend_options={"detector": detector, "upsample": upsample},
                      max_side=max_side, workers=workers, batch_size=batch_size,
                      quality={k: v for k, v in quality.items() if v is not None})
    except KeyboardInterrupt:
        click.echo("faceclust: interrupted; what was committed is kept, run scan again to resume",
                   err=True)
        raise SystemExit(130) from None
    click.echo(report.summary(), err=True)
    for p, msg in report.failed[:10]:
        click.echo(f"  unreadable: {p}: {msg}", err=True)
    if len(report.failed) > 10:
        click.echo(f"  ... {len(report.failed) - 10} more (faceclust library status --json)", err=True)


@library.command("serve")
@click.argument("photos_dir", type=click.Path(file_okay=False))
@_db_option
@click.option("--port", type=click.IntRange(1, 65535), default=8765, show_default=True)
def serve_cmd(photos_dir, db, port):
    """Open the people app on http://127.0.0.1:PORT (name, merge, move, review)."""
    from ..library.app import serve

    path = _db(photos_dir, db)
    click.echo(f"faceclust library: http://127.0.0.1:{port}/  (Ctrl-C to stop)", err=True)
    serve(photos_dir, path, port=port)


@library.command("export")
@click.argument("photos_dir", type=click.Path(file_okay=False))
@_db_option
@click.option("--out", required=True, type=click.Path(file_okay=False),
              help="Folder to write (replaced only if it is an earlier export).")
@click.option("--min-faces", type=click.IntRange(1, None), default=2, show_default=True,
              help="Unnamed people with fewer faces get no folder.")
def export_cmd(photos_dir, db, out, min_faces):
    """Per-person folders of links to their photos, and photos.csv / photos.json."""
    from ..library.export import export

    rep = export(photos_dir, _db(photos_dir, db), out, min_faces=min_faces)
    click.echo(f"{rep.people} people folders, {rep.links} links, {rep.photos} photos -> {rep.out}",
               err=True)


@library.command("status")
@click.argument("photos_dir", type=click.Path(file_okay=False))
@_db_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def status_cmd(photos_dir, db, as_json):
    """Photos, faces, people, named people, unsure faces, last scan."""
    from ..library import connect, status

    conn = connect(_db(photos_dir, db))
    try:
        st = status(conn)
        st["failed"] = [dict(r) for r in conn.execute(
            "SELECT path, error FROM photos WHERE status = 'error' ORDER BY path")]
    finally:
        conn.close()
    if as_json:
        click.echo(json.dumps(st, indent=1))
        return
    last = st["last_scan"]
    click.echo(
        f"{st['photos']} photos ({st['photos_failed']} unreadable), {st['faces']} faces "
        f"({st['unsure_faces']} unsure, {st['hidden_faces']} hidden, {st['faces_unplaced']} waiting "
        f"for a scan); {st['people']} people ({st['named_people']} named), {st['single_faces']} "
        f"single faces; {st['corrections']} corrections; last scan: "
        + ("never" if last is None else f"{last['seconds']:.1f} s, {last['faces_new']} new faces")
    )
