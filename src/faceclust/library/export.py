"""``faceclust library export``: per-person folders of links, and photo -> people as CSV and JSON.

``OUT/`` gets one folder per person (its name, or ``Person ID``) holding a symbolic
link to every photo the person is in, plus ``photos.csv`` (one row per face:
photo, person id, person name, box, confidence) and ``photos.json`` (photo ->
sorted names of the people in it). The export is built in a temporary folder
beside ``OUT`` and renamed into place; an existing ``OUT`` is replaced only when
it is an earlier export (it holds the marker file ``.faceclust-export``).
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError
from .catalogue import connect

MARKER = ".faceclust-export"


@dataclass
class ExportReport:
    out: Path
    people: int
    links: int
    photos: int


def _folder_name(name: str | None, pid: int, used: set[str]) -> str:
    base = name if name else f"Person {pid}"
    base = re.sub(r"[\x00-\x1f/\\:]+", "_", base).strip(" .") or f"Person {pid}"
    out = base if base.lower() not in used else f"{base} ({pid})"
    used.add(out.lower())
    return out


def export(photos_dir: str | os.PathLike, db: str | os.PathLike, out: str | os.PathLike,
           *, min_faces: int = 2) -> ExportReport:
    """Write the export of catalogue ``db`` into ``out`` (see the module doc).

    People with fewer than ``min_faces`` faces get a folder only when named; every
    face of a person is in the CSV/JSON.
    """
    root = Path(photos_dir).resolve()
    out = Path(out)
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / MARKER).exists())):
        raise InputError(f"{out}: exists and is not an earlier export; choose an empty or new folder")
    conn = connect(db)
    try:
        rows = conn.execute(
            "SELECT p.path, f.person_id, pe.name, f.x0, f.y0, f.x1, f.y1, f.confidence, f.pinned "
            "FROM faces f JOIN photos p ON p.id = f.photo_id LEFT JOIN people pe ON pe.id = f.person_id "
            "WHERE f.hidden = 0 AND f.person_id IS NOT NULL ORDER BY p.path, f.x0"
        ).fetchall()
    finally:
        conn.close()
    count: dict[int, int] = {}
    for r in rows:
        count[r["person_id"]] = count.get(r["person_id"], 0) + 1
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        used: set[str] = set()
        folders: dict[int, Path] = {}
        links = 0
        by_photo: dict[str, set[str]] = {}
        with open(tmp / "photos.csv", "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(["photo", "person_id", "person", "x0", "y0", "x1", "y1", "confidence", "confirmed"])
            for r in rows:
                pid, name = r["person_id"], r["name"]
                label = name or f"Person {pid}"
                w.writerow([r["path"], pid, label, f"{r['x0']:.0f}", f"{r['y0']:.0f}", f"{r['x1']:.0f}",
                            f"{r['y1']:.0f}", "" if r["confidence"] is None else f"{r['confidence']:.3f}",
                            int(r["pinned"] == pid)])
                by_photo.setdefault(r["path"], set()).add(label)
                if count[pid] < min_faces and not name:
                    continue
                if pid not in folders:
                    folders[pid] = tmp / _folder_name(name, pid, used)
                    folders[pid].mkdir()
                link = folders[pid] / r["path"].replace("/", "__")
                if not link.exists() and not link.is_symlink():
                    os.symlink(root / r["path"], link)
                    links += 1
        (tmp / "photos.json").write_text(
            json.dumps({p: sorted(v) for p, v in by_photo.items()}, indent=1, ensure_ascii=False),
            encoding="utf-8")
        (tmp / MARKER).write_text(str(root) + "\n")
        old = None
        if out.exists():
            old = out.with_name(f".{out.name}.old.{os.getpid()}")
            out.rename(old)
        tmp.rename(out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return ExportReport(out=out, people=len(folders), links=links, photos=len(by_photo))
