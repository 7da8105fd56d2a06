"""The photo catalogue: one SQLite file (WAL mode) holding photos, faces, people and corrections.

Tables (schema version :data:`SCHEMA_VERSION`):

* ``photos`` -- one row per image file: path relative to the photos folder, content
  hash (sha256), size and mtime (to skip unchanged files cheaply), status
  (``ok`` / ``noface`` / ``error`` with the message);
* ``faces`` -- one row per detected face: box (full-size pixels), detector score,
  face size (shorter box side, px) and sharpness, the float32 embedding as a BLOB,
  ``unsure`` (below the quality floor: kept, not clustered), ``hidden`` (by the user),
  ``placed`` (0 until a scan has clustered it), ``cluster`` (the incremental
  clusterer's own label, which the next scan continues from), ``person_id`` (the
  cluster after the user's corrections), ``confidence`` and ``pinned`` (the person
  the user said this face is);
* ``people`` -- stable person ids and their names (photo, face and person ids are
  never reused, so a link or a cached thumbnail never points at something else);
* ``exclusions`` -- (face, person) pairs the user said are *not* that person;
* ``different`` -- person pairs the user said are different people (review queue);
* ``corrections`` -- a log of every user action; ``scans`` -- one row per scan;
* ``meta`` -- JSON values: backend config, quality floor, the clustering state
  (threshold, scale estimate, centring vector) that the next scan continues from.

Embeddings live in the catalogue itself (128-d float32 = 512 bytes a face), so a
face, its embedding and its corrections are committed in one transaction; loading
all of them is one query (measured in ``docs/library.md``). Every connection sets
``journal_mode=WAL`` (readers never block the writer: the app serves while a scan
runs), ``foreign_keys=ON`` (deleting a photo deletes its faces and their
corrections) and a 30 s busy timeout; writers take the lock with
``BEGIN IMMEDIATE`` (:func:`write_tx`).
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError

SCHEMA_VERSION = 1
CATALOGUE_DIR = ".faceclust"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS photos(
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    path TEXT NOT NULL UNIQUE,
    sha256 TEXT,
    size INTEGER,
    mtime_ns INTEGER,
    status TEXT NOT NULL,
    error TEXT,
    width INTEGER,
    height INTEGER,
    scanned_at REAL
);
CREATE TABLE IF NOT EXISTS people(
    id INTEGER PRIMARY KEY,
    name TEXT,
    created_at REAL
);
CREATE TABLE IF NOT EXISTS faces(
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    photo_id INTEGER NOT NULL REFERENCES photos(id) ON DELETE CASCADE,
    x0 REAL NOT NULL, y0 REAL NOT NULL, x1 REAL NOT NULL, y1 REAL NOT NULL,
    score REAL NOT NULL,
    size REAL NOT NULL,
    sharpness REAL NOT NULL,
    unsure INTEGER NOT NULL DEFAULT 0,
    hidden INTEGER NOT NULL DEFAULT 0,
    placed INTEGER NOT NULL DEFAULT 0,
    cluster INTEGER,
    person_id INTEGER REFERENCES people(id) ON DELETE SET NULL,
    pinned INTEGER REFERENCES people(id) ON DELETE SET NULL,
    confidence REAL,
    embedding BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS faces_person ON faces(person_id);
CREATE INDEX IF NOT EXISTS faces_photo ON faces(photo_id);
CREATE INDEX IF NOT EXISTS faces_pinned ON faces(pinned);
CREATE TABLE IF NOT EXISTS exclusions(
    face_id INTEGER NOT NULL REFERENCES faces(id) ON DELETE CASCADE,
    person_id INTEGER NOT NULL REFERENCES people(id) ON DELETE CASCADE,
    PRIMARY KEY(face_id, person_id)
);
CREATE TABLE IF NOT EXISTS different(
    a INTEGER NOT NULL REFERENCES people(id) ON DELETE CASCADE,
    b INTEGER NOT NULL REFERENCES people(id) ON DELETE CASCADE,
    PRIMARY KEY(a, b)
);
CREATE TABLE IF NOT EXISTS corrections(
    id INTEGER PRIMARY KEY,
    at REAL NOT NULL,
    action TEXT NOT NULL,
    face_id INTEGER,
    person_id INTEGER,
    other_id INTEGER,
    value TEXT
);
CREATE TABLE IF NOT EXISTS scans(
    id INTEGER PRIMARY KEY,
    started_at REAL NOT NULL,
    finished_at REAL,
    photos_new INTEGER, photos_changed INTEGER, photos_removed INTEGER,
    photos_moved INTEGER, photos_failed INTEGER, faces_new INTEGER,
    seconds REAL, state TEXT
);
"""


def default_db(photos_dir: str | os.PathLike) -> Path:
    """``PHOTOS_DIR/.faceclust/catalogue.sqlite``."""
    return Path(photos_dir) / CATALOGUE_DIR / "catalogue.sqlite"


def connect(db: str | os.PathLike, *, create: bool = False) -> sqlite3.Connection:
    """Open the catalogue ``db`` (WAL, foreign keys on, 30 s busy timeout, rows by name).

    ``create`` makes the file and its folder when missing; otherwise a missing
    catalogue is an :class:`InputError` (run ``faceclust library scan`` first).
    """
    db = Path(db)
    if not db.exists():
        if not create:
            raise InputError(f"{db}: no catalogue here (run 'faceclust library scan' first)")
        db.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(db, timeout=30.0, isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA synchronous=NORMAL")
        if create:
            conn.executescript(_SCHEMA)  # idempotent (IF NOT EXISTS)
            with write_tx(conn):
                if get_meta(conn, "schema_version") is None:
                    set_meta(conn, "schema_version", SCHEMA_VERSION)
        version = get_meta(conn, "schema_version")
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise InputError(f"{db}: not a faceclust catalogue ({exc})") from exc
    if version is None:
        conn.close()
        raise InputError(f"{db}: not a faceclust catalogue (no schema version)")
    if int(version) > SCHEMA_VERSION:
        conn.close()
        raise InputError(f"{db}: catalogue schema {version} is newer than this faceclust")
    return conn


@contextmanager
def write_tx(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` ... ``COMMIT`` (``ROLLBACK`` on any error, Ctrl-C included)."""
    if conn.in_transaction:  # nested: run inside the caller's transaction
        yield conn
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def get_meta(conn: sqlite3.Connection, key: str, default: Any = None) -> Any:
    try:
        row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    except sqlite3.OperationalError:
        return default
    return default if row is None else json.loads(row[0])


def set_meta(conn: sqlite3.Connection, key: str, value: Any) -> None:
    conn.execute(
        "INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        (key, json.dumps(value)),
    )


def log(conn: sqlite3.Connection, action: str, *, face: int | None = None,
        person: int | None = None, other: int | None = None, value: str | None = None) -> None:
    """Append one user action to ``corrections``."""
    conn.execute(
        "INSERT INTO corrections(at, action, face_id, person_id, other_id, value) VALUES (?,?,?,?,?,?)",
        (time.time(), action, face, person, other, value),
    )


def embeddings(rows: list[sqlite3.Row] | list[bytes], dim: int) -> np.ndarray:
    """float32 ``[N, dim]`` from embedding BLOBs (or rows with an ``embedding`` column)."""
    if not rows:
        return np.zeros((0, dim), dtype=np.float32)
    blobs = [r if isinstance(r, bytes | bytearray | memoryview) else r["embedding"] for r in rows]
    return np.frombuffer(b"".join(blobs), dtype=np.float32).reshape(len(blobs), dim).copy()


def new_person(conn: sqlite3.Connection, name: str | None = None) -> int:
    """A fresh person id (ids are never reused, so a stale link never names someone else)."""
    nxt = int(get_meta(conn, "next_person", 1))
    top = conn.execute("SELECT COALESCE(MAX(id), 0) FROM people").fetchone()[0]
    pid = max(nxt, int(top) + 1)
    conn.execute("INSERT INTO people(id, name, created_at) VALUES (?, ?, ?)", (pid, name, time.time()))
    set_meta(conn, "next_person", pid + 1)
    return pid


def status(conn: sqlite3.Connection) -> dict[str, Any]:
    """Counts for ``faceclust library status``: photos, faces, people, named, unsure, last scan."""
    one = lambda q: conn.execute(q).fetchone()[0]  # noqa: E731
    last = conn.execute("SELECT * FROM scans ORDER BY id DESC LIMIT 1").fetchone()
    return {
        "photos": one("SELECT COUNT(*) FROM photos"),
        "photos_with_faces": one("SELECT COUNT(DISTINCT photo_id) FROM faces"),
        "photos_failed": one("SELECT COUNT(*) FROM photos WHERE status = 'error'"),
        "faces": one("SELECT COUNT(*) FROM faces"),
        "faces_unplaced": one("SELECT COUNT(*) FROM faces WHERE placed = 0 AND unsure = 0 AND hidden = 0"),
        "people": one("SELECT COUNT(*) FROM (SELECT person_id FROM faces WHERE person_id IS NOT NULL "
                      "AND hidden = 0 GROUP BY person_id HAVING COUNT(*) >= 2)"),
        "single_faces": one("SELECT COUNT(*) FROM (SELECT person_id FROM faces WHERE person_id IS NOT NULL "
                            "AND hidden = 0 GROUP BY person_id HAVING COUNT(*) = 1)"),
        "named_people": one("SELECT COUNT(*) FROM people WHERE name IS NOT NULL AND id IN "
                            "(SELECT person_id FROM faces WHERE hidden = 0)"),
        "unsure_faces": one("SELECT COUNT(*) FROM faces WHERE unsure = 1 AND hidden = 0 AND pinned IS NULL"),
        "hidden_faces": one("SELECT COUNT(*) FROM faces WHERE hidden = 1"),
        "corrections": one("SELECT COUNT(*) FROM corrections"),
        "last_scan": None if last is None else {
            k: last[k] for k in last.keys()  # noqa: SIM118 (sqlite3.Row)
        },
    }
