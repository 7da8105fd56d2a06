"""The photo library: catalogue, incremental scans, corrections that stick, export, CLI.

Photos here are synthetic PNGs; a fake backend "detects" each textured coloured
square as a face whose embedding is that colour's identity vector plus a little
noise, so the tests are fast and the right answer is known.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

Image = pytest.importorskip("PIL.Image", reason="pillow not installed (faceclust[photos])")

from faceclust.cli import main  # noqa: E402
from faceclust.errors import InputError, ParameterError  # noqa: E402
from faceclust.library import connect, scan, status  # noqa: E402
from faceclust.library import people as ppl  # noqa: E402
from faceclust.library.export import export  # noqa: E402
from faceclust.photos.backend import Face  # noqa: E402

DIM = 32
PALETTE = [(230, 30, 30), (30, 200, 30), (30, 30, 230), (220, 200, 20), (200, 30, 200),
           (20, 200, 200), (250, 130, 20)]
BASES = np.random.default_rng(3).normal(size=(len(PALETTE), DIM)).astype(np.float32)


class FakeBackend:
    """Faces = textured squares of a palette colour; identity = the colour."""

    name = "fake"
    dim = DIM

    def __init__(self, fail_after: int | None = None) -> None:
        self.calls = 0
        self.fail_after = fail_after

    def config(self) -> dict:
        return {"backend": "fake", "dim": DIM}

    def detect_and_embed(self, image: np.ndarray) -> list[Face]:
        if image.shape[0] == 32 and not image.any():  # the model check on a blank image
            return []
        self.calls += 1
        if self.fail_after is not None and self.calls > self.fail_after:
            raise KeyboardInterrupt  # Ctrl-C in the middle of a scan
        faces = []
        for ident, colour in enumerate(PALETTE):
            mask = (np.abs(image.astype(int) - colour).sum(axis=2) < 12)
            ys, xs = np.nonzero(mask)
            if len(xs) < 4:
                continue
            box = (float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1))
            rng = np.random.default_rng(int(box[0]) * 1000 + int(box[1]) + 7 * ident)
            e = BASES[ident] + 0.15 * rng.normal(size=DIM).astype(np.float32)
            faces.append(Face(box=box, score=1.0, embedding=e / np.linalg.norm(e)))
        return faces


def _photo(path: Path, faces: list[tuple[int, int, int, int]]) -> None:
    """``faces``: (identity, x, y, side). Each square is a checkerboard of its colour and black."""
    im = np.full((240, 360, 3), 128, np.uint8)
    for ident, x, y, side in faces:
        yy, xx = np.mgrid[0:side, 0:side]
        check = ((yy // 4 + xx // 4) % 2 == 0)[..., None]
        im[y:y + side, x:x + side] = np.where(check, np.array(PALETTE[ident], np.uint8), 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(im).save(path)


def _album(root: Path, people: range, per: int, start: int = 0) -> None:
    for p in people:
        for k in range(start, start + per):
            _photo(root / f"p{p}" / f"{k}.png", [(p, 20 + 13 * k % 200, 40, 64)])


def _faces(db: Path) -> list[sqlite3.Row]:
    conn = connect(db)
    rows = conn.execute("SELECT f.*, p.path, pe.name FROM faces f JOIN photos p ON p.id = f.photo_id "
                        "LEFT JOIN people pe ON pe.id = f.person_id ORDER BY f.id").fetchall()
    conn.close()
    return rows


def _ident(path: str) -> int:
    return int(path.split("/")[0][1:])


@pytest.fixture
def album(tmp_path):
    root = tmp_path / "photos"
    _album(root, range(5), 4)
    return root, tmp_path / "cat.sqlite"


def test_scan_builds_people_and_is_incremental(album):
    root, db = album
    (root / "broken.jpg").write_bytes(b"not an image")
    _photo(root / "group.png", [(0, 10, 10, 60), (1, 150, 10, 60)])
    be = FakeBackend()
    rep = scan(root, db, backend=be, progress_bar=False)
    assert (rep.photos, rep.new, rep.faces_new, be.calls) == (22, 22, 22, 21)
    assert rep.failed and rep.failed[0][0] == "broken.jpg"  # listed, not fatal
    rows = _faces(db)
    truth = [_ident(r["path"]) if r["path"] != "group.png" else (0 if r["x0"] < 100 else 1) for r in rows]
    person = [r["person_id"] for r in rows]
    assert len(set(person)) == 5
    assert all((a == b) == (c == d) for a, c in zip(truth, person, strict=True)
               for b, d in zip(truth, person, strict=True))
    # nothing changed: nothing read again
    be2 = FakeBackend()
    rep2 = scan(root, db, backend=be2, progress_bar=False)
    assert (rep2.unchanged, rep2.new, be2.calls) == (22, 0, 0)
    assert [r["person_id"] for r in _faces(db)] == person
    # one new photo of person 2 joins person 2; only it is embedded
    _photo(root / "p2" / "new.png", [(2, 100, 100, 70)])
    be3 = FakeBackend()
    rep3 = scan(root, db, backend=be3, progress_bar=False)
    assert (rep3.new, rep3.faces_new, rep3.placed, be3.calls) == (1, 1, 1, 1)
    rows = _faces(db)
    new = [r for r in rows if r["path"] == "p2/new.png"][0]
    assert new["person_id"] == [r for r in rows if r["path"] == "p2/0.png"][0]["person_id"]
    assert [r["person_id"] for r in rows[:-1]] == person  # ids stable


def test_changed_moved_and_deleted_files(album):
    root, db = album
    scan(root, db, backend=FakeBackend(), progress_bar=False)
    before = {r["path"]: r for r in _faces(db)}
    (root / "p0" / "0.png").rename(root / "moved.png")  # same content: a move
    (root / "p1" / "0.png").unlink()
    _photo(root / "p3" / "0.png", [(3, 150, 150, 50)])  # same name, new content
    be = FakeBackend()
    rep = scan(root, db, backend=be, progress_bar=False)
    assert (rep.moved, rep.removed, rep.changed, be.calls) == (1, 1, 1, 1)
    after = {r["path"]: r for r in _faces(db)}
    assert after["moved.png"]["id"] == before["p0/0.png"]["id"]  # faces kept
    assert "p1/0.png" not in after and len(after) == len(before) - 1
    assert after["p3/0.png"]["id"] != before["p3/0.png"]["id"]
    assert after["p3/0.png"]["x0"] == 150
    assert after["p3/0.png"]["person_id"] == after["p3/1.png"]["person_id"]


def test_interrupted_scan_resumes(album):
    root, db = album
    with pytest.raises(KeyboardInterrupt):
        scan(root, db, backend=FakeBackend(fail_after=9), batch_size=4, progress_bar=False)
    conn = connect(db)
    n_photos = conn.execute("SELECT COUNT(*) FROM photos").fetchone()[0]
    placed = conn.execute("SELECT COUNT(*) FROM faces WHERE placed = 1").fetchone()[0]
    conn.close()
    assert (n_photos, placed) == (8, 0)  # two committed batches of 4 kept, none placed yet
    be = FakeBackend()
    rep = scan(root, db, backend=be, progress_bar=False)
    assert (be.calls, rep.new, rep.unchanged, rep.placed) == (12, 12, 8, 20)
    assert len({r["person_id"] for r in _faces(db)}) == 5


def test_quality_floor_keeps_small_faces_unclustered(tmp_path):
    root = tmp_path / "photos"
    _album(root, range(3), 4)
    _photo(root / "tiny.png", [(0, 5, 5, 24)])  # 24 px: below the 40 px floor
    rep = scan(root, tmp_path / "c.sqlite", backend=FakeBackend(), progress_bar=False)
    assert rep.unsure_new == 1
    tiny = [r for r in _faces(tmp_path / "c.sqlite") if r["path"] == "tiny.png"][0]
    assert tiny["unsure"] == 1 and tiny["person_id"] is None and tiny["size"] == 24
    assert tiny["sharpness"] > 100  # the texture is sharp; only the size fails
    conn = connect(tmp_path / "c.sqlite")
    assert status(conn)["unsure_faces"] == 1
    conn.close()
    # a lower floor on the next scan re-marks it and places it with person 0
    scan(root, tmp_path / "c.sqlite", backend=FakeBackend(), quality={"min_size": 16},
         progress_bar=False)
    rows = _faces(tmp_path / "c.sqlite")
    tiny = [r for r in rows if r["path"] == "tiny.png"][0]
    assert tiny["unsure"] == 0
    assert tiny["person_id"] == [r for r in rows if r["path"] == "p0/0.png"][0]["person_id"]
    # raising it again (nothing else changed) takes it out of its person
    scan(root, tmp_path / "c.sqlite", backend=FakeBackend(), quality={"min_size": 30},
         progress_bar=False)
    tiny = [r for r in _faces(tmp_path / "c.sqlite") if r["path"] == "tiny.png"][0]
    assert tiny["unsure"] == 1 and tiny["person_id"] is None


def test_corrections_survive_rescans(album):
    root, db = album
    scan(root, db, backend=FakeBackend(), progress_bar=False)
    rows = _faces(db)
    pid = {k: [r["person_id"] for r in rows if r["path"].startswith(f"p{k}/")][0] for k in range(5)}
    face = {r["path"]: r["id"] for r in rows}
    conn = connect(db)
    ppl.name_person(conn, pid[0], "Alice")
    ppl.merge_people(conn, pid[1], pid[2])  # the user says 1 and 2 are one person
    moved_to = ppl.move_face(conn, face["p3/0.png"], pid[4])
    ppl.not_person(conn, face["p3/1.png"], pid[3])
    ppl.hide_face(conn, face["p0/3.png"])
    conn.close()

    def check() -> None:
        rows = {r["path"]: r for r in _faces(db)}
        assert rows["p0/0.png"]["name"] == "Alice" and rows["p0/0.png"]["person_id"] == pid[0]
        assert {rows[f"p{k}/{i}.png"]["person_id"] for k in (1, 2) for i in range(4)} == {pid[1]}
        assert moved_to == pid[4] and rows["p3/0.png"]["person_id"] == pid[4]
        assert rows["p3/1.png"]["person_id"] not in (pid[3], None)
        assert rows["p3/2.png"]["person_id"] == pid[3]
        assert rows["p0/3.png"]["hidden"] == 1 and rows["p0/3.png"]["person_id"] is None

    check()
    for extra in range(2):  # new photos of everyone, twice: each scan places + refines
        _album(root, range(5), 2, start=10 + 2 * extra)
        rep = scan(root, db, backend=FakeBackend(), progress_bar=False)
        assert rep.placed == 10
        check()
        rows = {r["path"]: r for r in _faces(db)}
        for k, want in [(0, pid[0]), (1, pid[1]), (2, pid[1]), (3, pid[3]), (4, pid[4])]:
            assert rows[f"p{k}/{10 + 2 * extra}.png"]["person_id"] == want, (k, extra, pid, {p: (r["person_id"], r["cluster"], r["pinned"]) for p, r in rows.items()})
    conn = connect(db)
    acts = [r[0] for r in conn.execute("SELECT action FROM corrections ORDER BY id")]
    assert acts == ["name", "merge", "move", "not_person", "hide"]
    # a second name that already exists merges the two people
    ppl.name_person(conn, pid[3], "alice")
    assert conn.execute("SELECT COUNT(*) FROM people WHERE id = ?", (pid[3],)).fetchone()[0] == 0
    n_alice = conn.execute("SELECT COUNT(*) FROM faces WHERE person_id = ?", (pid[0],)).fetchone()[0]
    assert n_alice == (4 - 1 + 4) + (4 + 4 - 2)  # p0 (one hidden, 4 new) + p3 (two moved out)
    conn.close()


def test_resolve_people_by_hand():
    x = np.eye(6, dtype=np.float32)
    labels = np.array([0, 0, 0, 1, 1, 1])
    prev = np.array([7, 7, 7, 9, 9, -1])
    fresh = iter(range(100, 110))
    new_id = lambda: next(fresh)  # noqa: E731
    # no corrections: ids by overlap; the new face follows its cluster
    out = ppl.resolve_people(labels, x, np.full(6, -1), prev, new_id=new_id)
    assert out.tolist() == [7, 7, 7, 9, 9, 9]
    # face 2 pinned to person 9 moves alone, even though its cluster is 0
    pinned = np.array([-1, -1, 9, -1, -1, -1])
    out = ppl.resolve_people(labels, x, pinned, prev, new_id=new_id)
    assert out.tolist() == [7, 7, 9, 9, 9, 9]
    # pins of two people in one cluster: the clustering merged them, the pins keep them apart
    pinned = np.array([7, -1, -1, 9, -1, -1])
    out = ppl.resolve_people(np.zeros(6, int), x, pinned, prev, new_id=new_id)
    assert out[0] == 7 and out[3] == 9
    # an excluded face leaves (to a new person when nothing else is close enough)
    out = ppl.resolve_people(labels, x, np.array([7, -1, -1, -1, -1, -1]), prev,
                             exclusions=[(1, 7)], threshold=0.5, new_id=new_id)
    assert out[0] == out[2] == 7 and out[1] not in (7, 9)
    # two faces of one photo are never one person
    out = ppl.resolve_people(labels, x, np.full(6, -1), prev, same_photo=np.array([[3, 4]]),
                             new_id=new_id)
    assert out[3] != out[4]


def test_face_confidence_matches_suggest_and_same_photo_pairs():
    from faceclust.suggest import confidence
    from faceclust.synth import make_faces

    x, y = make_faces(300, 20, 16, seed=1)
    full = confidence(x, y, scale=0.3, threshold=0.5)
    rows = np.array([0, 5, 77, 299])
    part = ppl.face_confidence(x, y, rows, scale=0.3, threshold=0.5)
    np.testing.assert_allclose(part, full[rows], atol=1e-6)
    pairs = ppl._same_photo_pairs(np.array([4, 9, 4, 4, 7, 9]))
    assert sorted(map(tuple, np.sort(pairs, axis=1).tolist())) == [(0, 2), (0, 3), (1, 5), (2, 3)]


def test_incremental_from_state_continues_like_the_saved_estimator():
    from faceclust.methods import IncrementalClusterer
    from faceclust.synth import make_faces

    x, _ = make_faces(900, 40, 32, seed=2)
    a = IncrementalClusterer().fit(x[:600])
    assert a.n_at_estimate_ == 600
    with pytest.raises(AttributeError):
        a.n_at_estimate_ = 1  # read-only
    b = IncrementalClusterer.from_state(x[:600], a.labels_, threshold=a.threshold_,
                                        estimate=a.estimate_, centre_mean=a.centre_mean_,
                                        n_at_estimate=a.n_at_estimate_)
    a.partial_fit(x[600:]).refine()
    b.partial_fit(x[600:]).refine()
    np.testing.assert_array_equal(a.labels_, b.labels_)
    assert a.threshold_ == b.threshold_
    assert a.n_at_estimate_ == b.n_at_estimate_ > 600  # grown past 25 %: re-estimated
    with pytest.raises(InputError, match="labels"):
        IncrementalClusterer.from_state(x[:10], np.arange(9), threshold=0.5)


def test_reads_while_a_scan_writes(album):
    root, db = album
    scan(root, db, backend=FakeBackend(), progress_bar=False)
    writer = connect(db)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("UPDATE faces SET confidence = 0")
    reader = connect(db)  # WAL: reads the last committed state, does not wait
    assert reader.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert reader.execute("SELECT MIN(confidence) FROM faces").fetchone()[0] > 0
    writer.execute("ROLLBACK")
    reader.close()
    writer.close()


def test_export_and_cli(album, tmp_path):
    root, db = album
    scan(root, db, backend=FakeBackend(), progress_bar=False)
    conn = connect(db)
    pid0 = _faces(db)[0]["person_id"]
    ppl.name_person(conn, pid0, "Alice/B")
    conn.close()
    rep = export(root, db, tmp_path / "out")
    assert (rep.people, rep.links, rep.photos) == (5, 20, 20)
    alice = tmp_path / "out" / "Alice_B"
    assert sorted(p.name for p in alice.iterdir()) == [f"p0__{k}.png" for k in range(4)]
    assert (alice / "p0__0.png").resolve() == (root / "p0" / "0.png").resolve()
    data = json.loads((tmp_path / "out" / "photos.json").read_text())
    assert data["p0/1.png"] == ["Alice/B"]
    lines = (tmp_path / "out" / "photos.csv").read_text().splitlines()
    assert lines[0].startswith("photo,person_id,person") and len(lines) == 21
    export(root, db, tmp_path / "out")  # an earlier export is replaced
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "keep.txt").write_text("x")
    with pytest.raises(InputError, match="not an earlier export"):
        export(root, db, tmp_path / "mine")
    assert (tmp_path / "mine" / "keep.txt").read_text() == "x"
    r = CliRunner().invoke(main, ["library", "status", str(root), "--db", str(db), "--json"])
    assert r.exit_code == 0, r.output
    st = json.loads(r.output)
    assert (st["photos"], st["faces"], st["people"], st["named_people"]) == (20, 20, 5, 1)
    r = CliRunner().invoke(main, ["library", "status", str(root), "--db", str(db)])
    assert "20 photos (0 unreadable), 20 faces" in r.output and "5 people (1 named)" in r.output
    r = CliRunner().invoke(main, ["library", "status", str(root)])
    assert r.exit_code == 2 and "no catalogue here" in r.output
    r = CliRunner().invoke(main, ["library", "export", str(root), "--db", str(db), "--out",
                                  str(tmp_path / "mine")])
    assert r.exit_code == 2 and "not an earlier export" in r.output


def test_other_model_is_refused(album):
    root, db = album
    scan(root, db, backend=FakeBackend(), progress_bar=False)

    class Other(FakeBackend):
        def config(self) -> dict:
            return {"backend": "other", "dim": DIM}

    with pytest.raises(ParameterError, match="not comparable"):
        scan(root, db, backend=Other(), progress_bar=False)
    with pytest.raises(InputError, match="not a faceclust catalogue"):
        (root / "x.sqlite").write_bytes(b"junk" * 100)
        connect(root / "x.sqlite")


def test_move_target_parsing(album):
    pytest.importorskip("starlette")
    from faceclust.library.app import _parse_person

    root, db = album
    scan(root, db, backend=FakeBackend(), progress_bar=False)
    conn = connect(db)
    pid = _faces(db)[0]["person_id"]
    ppl.name_person(conn, pid, "Alice")
    assert _parse_person(conn, f"Alice #{pid}") == pid
    assert _parse_person(conn, str(pid)) == pid
    assert _parse_person(conn, " alice ") == pid
    assert _parse_person(conn, "new") is None
    assert _parse_person(conn, "") == "?"
    bob = _parse_person(conn, "Bob 2")  # a new name ending in a number is a new person
    assert bob not in (2, pid) and conn.execute("SELECT name FROM people WHERE id = ?",
                                                 (bob,)).fetchone()[0] == "Bob 2"
    conn.close()
