"""Page load times of the people app on a synthetic 10,000-face catalogue.

Faces: ``faceclust.synth.make_faces(N, N // 16, 128)`` (heavy-tailed identity sizes)
spread over ``N // 50`` synthetic 512x512 photos, inserted into a fresh catalogue and
clustered by ``recluster(place_new=True)`` (what ``scan`` runs after embedding). Then the
app is served with uvicorn on a free port and measured:

* server time of each page (median of 5 warm GETs, urllib);
* browser time (Debian chromium via playwright) to the ``load`` event, first visit
  (thumbnails cropped on demand) and again (cached);
* one correction (POST "not this person") on the catalogue;
* reading all embeddings out of SQLite (the "catalogue or sidecar" choice).

    python benchmarks/library_pageload.py --faces 10000 --json benchmarks/results/library_pageload.json
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import statistics
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np


def build(work: Path, n: int, seed: int = 0) -> Path:
    from PIL import Image

    from faceclust.library import connect
    from faceclust.library.catalogue import set_meta, write_tx
    from faceclust.library.people import recluster
    from faceclust.synth import make_faces

    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    x, _ = make_faces(n, max(2, n // 16), 128, seed=seed)
    n_photos = max(1, n // 50)
    for k in range(n_photos):
        arr = rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)
        Image.fromarray(np.kron(arr, np.ones((8, 8, 1), np.uint8))).save(work / f"{k:05d}.jpg")
    db = work / ".faceclust" / "catalogue.sqlite"
    conn = connect(db, create=True)
    with write_tx(conn):
        set_meta(conn, "dim", 128)
        set_meta(conn, "embedder", {"backend": {"backend": "synthetic"}, "max_side": 1600})
        conn.executemany("INSERT INTO photos(id, path, sha256, size, mtime_ns, status, width, height) "
                         "VALUES (?, ?, '', 0, 0, 'ok', 512, 512)",
                         [(k + 1, f"{k:05d}.jpg") for k in range(n_photos)])
        xy = rng.integers(0, 448, (n, 2))
        conn.executemany(
            "INSERT INTO faces(photo_id, x0, y0, x1, y1, score, size, sharpness, embedding) "
            "VALUES (?, ?, ?, ?, ?, 1.0, 64, 100, ?)",
            [(int(i % n_photos) + 1, float(a), float(b), float(a + 64), float(b + 64), x[i].tobytes())
             for i, (a, b) in enumerate(xy)])
    t = time.perf_counter()
    recluster(conn, place_new=True)
    conn.close()
    print(f"clustered {n} faces in {time.perf_counter() - t:.1f} s", flush=True)
    return db


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--faces", type=int, default=10_000)
    ap.add_argument("--work", type=Path, default=Path("/tmp/faceclust_library_10k"))
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    import uvicorn

    from faceclust.fsutil import write_text
    from faceclust.library import connect
    from faceclust.library.app import create_app
    from faceclust.library.catalogue import embeddings

    db = build(args.work, args.faces)
    out: dict[str, object] = {"faces": args.faces}
    conn = connect(db)
    t = time.perf_counter()
    rows = conn.execute("SELECT embedding FROM faces ORDER BY id").fetchall()
    embeddings(rows, 128)
    out["load_embeddings_s"] = round(time.perf_counter() - t, 4)
    big = conn.execute("SELECT person_id, COUNT(*) n FROM faces GROUP BY person_id ORDER BY n DESC "
                       "LIMIT 1").fetchone()
    face = conn.execute("SELECT id FROM faces WHERE person_id = ? LIMIT 1", (big[0],)).fetchone()[0]
    st = conn.execute("SELECT COUNT(DISTINCT person_id) FROM faces").fetchone()[0]
    conn.close()
    out["people"] = st
    out["largest_person_faces"] = big[1]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(args.work, db), host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="off"))
    th = threading.Thread(target=server.run, daemon=True)
    th.start()
    while not server.started:
        time.sleep(0.05)
    base = f"http://127.0.0.1:{port}"
    pages = {"people": "/", "largest person": f"/person/{big[0]}", "face": f"/face/{face}",
             "review": "/review", "single faces": "/singles"}
    server_s = {}
    for name, url in pages.items():
        times = []
        for _ in range(5):
            t = time.perf_counter()
            with urllib.request.urlopen(base + url) as r:
                body = r.read()
            times.append(time.perf_counter() - t)
        server_s[name] = {"median_s": round(statistics.median(times), 4), "html_kb": len(body) // 1024}
    out["server"] = server_s
    from playwright.sync_api import sync_playwright

    browser_s = {}
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=shutil.which("chromium"),
                              args=["--no-sandbox", "--disable-gpu"])
        page = b.new_page(viewport={"width": 1200, "height": 900})
        for name, url in pages.items():
            res = []
            for _ in range(2):  # first visit (thumbnails made), then cached
                t = time.perf_counter()
                page.goto(base + url, wait_until="load")
                res.append(round(time.perf_counter() - t, 3))
            browser_s[name] = {"first_load_s": res[0], "again_s": res[1],
                               "images": page.evaluate("document.images.length")}
        b.close()
    out["browser"] = browser_s
    data = urllib.parse.urlencode({"person": big[0], "back": "/"}).encode()
    t = time.perf_counter()
    urllib.request.urlopen(urllib.request.Request(f"{base}/face/{face}/not", data=data)).read()
    out["correction_not_person_s"] = round(time.perf_counter() - t, 3)
    server.should_exit = True
    th.join(timeout=10)
    text = json.dumps(out, indent=1)
    print(text)
    if args.json:
        write_text(args.json, text + "\n")


if __name__ == "__main__":
    main()
