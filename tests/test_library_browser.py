"""The people app in a real browser, on a catalogue of real photos (LFW + the shared photos).

Debian's chromium driven by playwright (as the gallery test); the app runs with uvicorn
in a thread on a free 127.0.0.1 port and is stopped by the fixture. The user names a
person, moves a face to a new person, merges that person back, moves a face to a new
named person, marks "not this person"; then ``scan`` runs (while the app serves) on
added photos, and the page and SQLite must show every correction and the new faces
placed. ``FACECLUST_SCREENSHOTS=DIR`` saves screenshots of the main pages there.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("PIL.Image", reason="pillow not installed (faceclust[photos])")
pytest.importorskip("dlib", reason="dlib not installed (faceclust[photos])")
pytest.importorskip("starlette", reason="starlette not installed (faceclust[photos])")
uvicorn = pytest.importorskip("uvicorn", reason="uvicorn not installed (faceclust[photos])")
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright not installed")

from faceclust.library import connect, scan  # noqa: E402
from faceclust.library.app import create_app  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SHARED = Path("/work/shared/data")
if not SHARED.is_dir():
    SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
LFW = SHARED / "lfw" / "images"
FIRST = {f"{n}_{k:04d}.jpg": n for n in ("Colin_Powell", "Donald_Rumsfeld", "Tony_Blair")
         for k in (1, 2, 3)}
ADDED = [f"{n}_0004.jpg" for n in ("Colin_Powell", "Donald_Rumsfeld", "Tony_Blair")]
SHARED_PHOTOS = ["obama.jpg", "obama2.jpg", "biden.jpg"]

pytestmark = [
    pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (apt-get install chromium)"),
    pytest.mark.skipif(not (LFW / "Colin_Powell").is_dir(), reason="shared LFW photos absent"),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def served(tmp_path):
    root = tmp_path / "Pictures"
    root.mkdir()
    for name, person in FIRST.items():
        shutil.copy(LFW / person / name, root / name)
    for name in SHARED_PHOTOS:
        shutil.copy(SHARED / "photos" / name, root / name)
    rep = scan(root, max_side=700, progress_bar=False)
    assert rep.faces_new >= 12
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(root, rep.db), host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.05)
    yield root, rep.db, f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def _face_of(db: Path, photo: str) -> tuple[int, int]:
    """(face id, person id) of the largest face of ``photo``."""
    conn = connect(db)
    r = conn.execute("SELECT f.id, f.person_id FROM faces f JOIN photos p ON p.id = f.photo_id "
                     "WHERE p.path = ? ORDER BY (f.x1 - f.x0) DESC LIMIT 1", (photo,)).fetchone()
    conn.close()
    return r["id"], r["person_id"]


def _person_faces(page, base: str, pid: int) -> list[int]:
    page.goto(f"{base}/person/{pid}")
    return [int(v) for v in page.eval_on_selector_all(".faces .face", "e => e.map(x => x.dataset.face)")]


def _shot(page, name: str) -> None:
    out = os.environ.get("FACECLUST_SCREENSHOTS")
    if out:
        Path(out).mkdir(parents=True, exist_ok=True)
        page.wait_for_function("[...document.images].every(i => i.complete)", timeout=60_000)
        page.screenshot(path=str(Path(out) / f"{name}.png"), full_page=False)


def test_corrections_in_the_browser_survive_a_scan(served):
    root, db, base = served
    powell, powell_p = _face_of(db, "Colin_Powell_0001.jpg")
    rums, rums_p = _face_of(db, "Donald_Rumsfeld_0001.jpg")
    rums3, rums3_p = _face_of(db, "Donald_Rumsfeld_0003.jpg")
    blair, blair_p = _face_of(db, "Tony_Blair_0001.jpg")
    blair3, blair3_p = _face_of(db, "Tony_Blair_0003.jpg")
    biden, _ = _face_of(db, "biden.jpg")
    # the automatic clustering got these three people right (what the test builds on)
    assert len({powell_p, rums_p, blair_p}) == 3 and rums3_p == rums_p and blair3_p == blair_p
    errors: list[str] = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run"])
        page = browser.new_page(viewport={"width": 1200, "height": 800})
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.goto(base + "/")
        sizes = [int(v) for v in page.eval_on_selector_all(".card.person", "e => e.map(x => x.dataset.size)")]
        assert sizes == sorted(sizes, reverse=True) and sum(sizes) >= 9

        # 1. name a person
        page.goto(f"{base}/person/{powell_p}")
        page.fill("form.name input[name=name]", "Colin Powell")
        page.click("form.name button")
        assert page.locator("h1").inner_text().startswith("Colin Powell")
        # 2. move a face to a new person ...
        page.goto(f"{base}/face/{rums3}")
        _shot(page, "face")
        page.fill(f".face[data-face='{rums3}'] form.move input[name=to]", "new")
        page.click(f".face[data-face='{rums3}'] form.move button")
        _, new_p = _face_of(db, "Donald_Rumsfeld_0003.jpg")
        assert new_p != rums_p and rums3 not in _person_faces(page, base, rums_p)
        # 3. ... and merge that person back: two clusters, one person
        page.goto(f"{base}/person/{rums_p}")
        page.select_option("form.merge select", str(new_p))
        page.click("form.merge button")
        assert rums3 in _person_faces(page, base, rums_p)
        # 4. move a face to a new person by typing a new name
        page.goto(f"{base}/face/{biden}")
        page.fill(f".face[data-face='{biden}'] form.move input[name=to]", "Joe Biden")
        page.click(f".face[data-face='{biden}'] form.move button")
        assert "Joe Biden" in page.locator("a.who").inner_text()
        # 5. not this person
        page.goto(f"{base}/person/{blair_p}")
        _shot(page, "person")
        page.click(f".face[data-face='{blair3}'] form[action$='/not'] button")
        assert blair3 not in _person_faces(page, base, blair_p)
        page.goto(base + "/review")
        _shot(page, "review")

        # new photos arrive; scan runs while the app serves
        for name in ADDED:
            shutil.copy(LFW / name.rsplit("_", 1)[0] / name, root / name)
        rep = scan(root, max_side=700, progress_bar=False)
        assert (rep.new, rep.unchanged, rep.placed) == (3, 12, 3)

        page.goto(base + "/")
        assert any("Colin Powell" in t for t in page.locator(".card.person h2").all_inner_texts())
        _shot(page, "people")
        powell4, powell4_p = _face_of(db, "Colin_Powell_0004.jpg")
        assert powell4_p == powell_p and powell4 in _person_faces(page, base, powell_p)
        assert page.locator("h1").inner_text().startswith("Colin Powell 4 faces")
        rums_faces = _person_faces(page, base, rums_p)
        assert rums3 in rums_faces and _face_of(db, "Donald_Rumsfeld_0004.jpg")[0] in rums_faces
        blair_faces = _person_faces(page, base, blair_p)
        assert blair3 not in blair_faces and _face_of(db, "Tony_Blair_0004.jpg")[0] in blair_faces
        page.goto(f"{base}/face/{biden}")
        assert "Joe Biden" in page.locator("a.who").inner_text()
        browser.close()
    assert errors == []
    conn = connect(db)
    acts = [r[0] for r in conn.execute("SELECT action FROM corrections ORDER BY id")]
    assert acts == ["name", "move", "merge", "move", "not_person"]
    assert conn.execute("SELECT name FROM people WHERE id = ?", (powell_p,)).fetchone()[0] == "Colin Powell"
    assert conn.execute("SELECT COUNT(*) FROM faces WHERE placed = 0").fetchone()[0] == 0
    assert conn.execute("SELECT COUNT(*) FROM exclusions e JOIN faces f ON f.id = e.face_id "
                        "WHERE f.person_id = e.person_id").fetchone()[0] == 0
    assert conn.execute("SELECT person_id FROM faces WHERE id = ?", (blair3,)).fetchone()[0] != blair_p
    conn.close()
