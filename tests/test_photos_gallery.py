"""Static HTML gallery: ordering, pagination, thumbnails, scale, and a real headless browser."""

from __future__ import annotations

import os
import re
import shutil
import time

import numpy as np
import pytest
from click.testing import CliRunner

Image = pytest.importorskip("PIL.Image", reason="pillow not installed (faceclust[photos])")

from faceclust.cli import main  # noqa: E402
from faceclust.errors import InputError  # noqa: E402
from faceclust.photos import FaceTable, write_faces  # noqa: E402
from faceclust.photos.gallery import build_gallery  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
COLOURS = {"red": (220, 20, 20), "green": (20, 200, 20), "blue": (20, 20, 220)}


def _sections(html_text: str) -> list[tuple[str, int, str]]:
    return [
        (m.group(1), int(m.group(2)), m.group(3))
        for m in re.finditer(
            r'<section class="(\w+)" data-size="(\d+)"><h2>(.*?)</h2>', html_text
        )
    ]


@pytest.fixture
def small(tmp_path):
    """4 photos, 16 faces; photo k has a red, green and blue square where its faces are."""
    root = tmp_path / "photos"
    (root / "sub").mkdir(parents=True)
    paths, boxes = [], []
    for k in range(4):
        im = Image.new("RGB", (300, 200), (128, 128, 128))
        for j, colour in enumerate(COLOURS.values()):
            im.paste(colour, (20 + 90 * j, 60, 80 + 90 * j, 120))
        name = f"sub/p{k}.png" if k == 3 else f"p{k}.jpg"
        im.save(root / name, quality=95)
        for j in range(4):
            jj = j % 3
            paths.append(name)
            boxes.append([20 + 90 * jj, 60, 80 + 90 * jj, 120])
    n = len(paths)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 8)).astype(np.float32)
    table = FaceTable(x / np.linalg.norm(x, axis=1, keepdims=True), paths, boxes,
                      np.linspace(0.5, 2, n), root=str(root))
    # sizes: label 5 -> 4, label 2 -> 3, label 9 -> 3, label 1 -> 2, 3 and 4 single, 2 noise
    labels = np.array([5, 5, 5, 5, 9, 2, 9, 2, 9, 2, 1, 1, 3, 4, -1, -1])
    return table, labels, tmp_path


def test_order_counts_and_pages(small):
    table, labels, tmp = small
    rep = build_gallery(table, labels, tmp / "g", clusters_per_page=2, thumb_size=48,
                        progress_bar=False)
    assert (rep.pages, rep.clusters, rep.singletons) == (3, 4, 4)
    assert (rep.thumbs_written, rep.thumbs_reused, rep.thumbs_failed) == (16, 0, 0)
    pages = [tmp / "g" / n for n in ("index.html", "page-2.html", "page-3.html")]
    found = [_sections(p.read_text()) for p in pages]
    assert [[(c, s) for c, s, _ in page] for page in found] == [
        [("cluster", 4), ("cluster", 3)],
        [("cluster", 3), ("cluster", 2)],
        [("singletons", 4)],
    ]
    heads = [h for page in found for _, _, h in page]
    assert heads[0] == "Cluster #1 (label 5) &middot; 4 faces"
    assert "(label 2)" in heads[1] and "(label 9)" in heads[2]  # tie: smaller label first
    assert heads[4] == "Unclustered faces 1&ndash;4 of 4"
    first = pages[0].read_text()
    assert "16 faces in 4 photos: 4 clusters of 2+ faces, 4 unclustered" in first
    assert 'href="page-2.html" rel="next"' in first
    imgs = re.findall(r"<img [^>]*>", first)
    assert len(imgs) == 7 and all('loading="lazy"' in i for i in imgs)
    # every thumbnail and every photo link resolves from the gallery folder
    for page in pages:
        text = page.read_text()
        for src in re.findall(r'src="(thumbs/[^"]+)"', text):
            assert (tmp / "g" / src).is_file()
        for href in re.findall(r'<a href="([^"]+)"><img', text):
            assert (tmp / "g" / href).resolve().is_file()


def test_thumbnails_crop_the_face_box(small):
    table, labels, tmp = small
    build_gallery(table, labels, tmp / "g", thumb_size=40, margin=0.0, progress_bar=False)
    text = (tmp / "g" / "index.html").read_text()
    srcs = re.findall(r'src="(thumbs/[^"]+)"[^>]*title="([^"]+) \(face (\d+),', text)
    assert len(srcs) == 16
    for src, _, face in srcs:
        pixel = np.asarray(Image.open(tmp / "g" / src)).reshape(-1, 3).mean(axis=0)
        expected = list(COLOURS.values())[int(face) % 4 % 3]
        np.testing.assert_allclose(pixel, expected, atol=25)


def test_rerun_reuses_thumbnails_and_drops_stale_pages(small):
    table, labels, tmp = small
    build_gallery(table, labels, tmp / "g", clusters_per_page=1, progress_bar=False)
    assert (tmp / "g" / "page-5.html").exists()
    rep = build_gallery(table, labels, tmp / "g", progress_bar=False)
    assert (rep.thumbs_written, rep.thumbs_reused, rep.pages) == (0, 16, 1)
    assert not list((tmp / "g").glob("page-*.html"))


def test_missing_photos(small):
    table, labels, tmp = small
    with pytest.raises(InputError, match="photos folder not found"):
        build_gallery(table, labels, tmp / "g", photos_root=tmp / "nowhere")
    with pytest.raises(InputError, match="labels"):
        build_gallery(table, labels[:-1], tmp / "g")
    (tmp / "photos" / "p0.jpg").unlink()
    rep = build_gallery(table, labels, tmp / "g", progress_bar=False)
    assert rep.thumbs_failed == 4 and rep.thumbs_written == 12
    text = (tmp / "g" / "index.html").read_text()
    assert text.count("data:image/gif") == 4  # placeholder, no broken image request


def test_cli_gallery(small):
    table, labels, tmp = small
    faces = write_faces(table, tmp / "faces.npz")
    (tmp / "labels.txt").write_text("\n".join(map(str, labels)) + "\n")
    res = CliRunner().invoke(main, ["gallery", str(faces), str(tmp / "labels.txt"),
                                    "--out", str(tmp / "web"), "--per-page", "3"])
    assert res.exit_code == 0, res.output
    assert "4 clusters, 4 unclustered faces on 2 page(s)" in res.output
    (tmp / "bad.txt").write_text("1\n2\n")
    res = CliRunner().invoke(main, ["gallery", str(faces), str(tmp / "bad.txt"),
                                    "--out", str(tmp / "web")])
    assert res.exit_code == 2 and "2 labels" in res.output


# ------------------------------------------------------------------ 10,000 faces

N_BIG = 10_000


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    """10,000 faces in 20 photos; heavy-tailed cluster sizes, one cluster of 2,500."""
    tmp = tmp_path_factory.mktemp("big")
    root = tmp / "photos"
    root.mkdir()
    rng = np.random.default_rng(1)
    for k in range(20):
        arr = rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)
        Image.fromarray(np.kron(arr, np.ones((8, 8, 1), np.uint8))).save(root / f"{k}.jpg")
    paths = [f"{k % 20}.jpg" for k in range(N_BIG)]
    xy = rng.integers(0, 480, (N_BIG, 2))
    boxes = np.concatenate([xy, xy + 32], axis=1)
    sizes = [2500] + [int(s) for s in rng.zipf(1.8, 3000) if 2 <= s <= 400]
    labels = np.full(N_BIG, -1)
    start = 0
    for c, s in enumerate(sizes):
        if start + s > N_BIG - 1500:  # keep 1,500 singletons
            break
        labels[start : start + s] = c
        start += s
    labels[start:] = np.arange(len(sizes), len(sizes) + N_BIG - start)
    labels = rng.permutation(labels)
    table = FaceTable(np.ones((N_BIG, 2), np.float32) / np.sqrt(2), paths, boxes,
                      np.ones(N_BIG), root=str(root))
    t0 = time.perf_counter()
    rep = build_gallery(table, labels, tmp / "g", thumb_size=32, progress_bar=False)
    return rep, labels, tmp / "g", time.perf_counter() - t0


def test_ten_thousand_faces(big):
    rep, labels, out, seconds = big
    _, counts = np.unique(labels, return_counts=True)
    assert rep.clusters == int((counts >= 2).sum())
    assert rep.singletons == int((counts == 1).sum())
    assert rep.thumbs_written == N_BIG
    pages = sorted(out.glob("*.html"), key=lambda p: (p.name != "index.html", len(p.name), p.name))
    assert len(pages) == rep.pages
    sizes, n_img = [], 0
    for p in pages:
        text = p.read_text()
        secs = _sections(text)
        assert sum(c == "cluster" for c, _, _ in secs) <= 50
        page_faces = sum(s for _, s, _ in secs)
        assert page_faces <= 2000 or len(secs) == 1  # one giant cluster may exceed
        n_img += text.count('loading="lazy"')
        sizes += [s for c, s, _ in secs if c == "cluster"]
        assert len(text) < 1_500_000
    assert n_img == N_BIG
    assert sizes == sorted(sizes, reverse=True) and sizes[0] == 2500
    assert seconds < 60


# ------------------------------------------------------------------ headless browser


def _launch(p):
    return p.chromium.launch(
        executable_path=CHROMIUM,
        args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
              "--disable-component-update", "--disable-sync", "--no-first-run"],
    )


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (apt-get install chromium)")
def test_browser_shows_all_clusters_without_errors(big):
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright not installed")
    rep, _, out, _ = big
    errors: list[str] = []
    clusters = singles = lazy_total = 0
    with sync_api.sync_playwright() as p:
        browser = _launch(p)
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.on("console", lambda m: errors.append(m.text) if m.type in ("error", "warning") else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        # ERR_ABORTED: lazy thumbnails still loading when the test clicks "next"
        page.on("requestfailed", lambda r: None if "ABORTED" in (r.failure or "")
                else errors.append(f"failed: {r.url} {r.failure}"))
        page.goto((out / "index.html").as_uri())
        for n in range(rep.pages):
            page.wait_for_load_state("load")
            clusters += page.locator("section.cluster").count()
            singles += page.locator("section.singletons img").count()
            # the first thumbnails on screen are really decoded
            page.wait_for_function(
                "document.images.length > 0 && document.images[0].complete "
                "&& document.images[0].naturalWidth == 32"
            )
            # loaded so far (lazy: those near the viewport) decoded; none broken
            loaded, broken = page.evaluate(
                "() => { const i = [...document.images].filter(e => e.complete);"
                " return [i.filter(e => e.naturalWidth == 32).length,"
                " i.filter(e => e.naturalWidth == 0).length]; }"
            )
            assert loaded > 0 and broken == 0
            lazy_total += loaded
            nxt = page.locator('a[rel="next"]').first
            if n < rep.pages - 1:
                nxt.click()
            else:
                assert nxt.count() == 0
        browser.close()
    assert errors == []
    assert lazy_total < N_BIG  # lazy loading: far-down thumbnails were never fetched
    assert clusters == rep.clusters
    assert singles == rep.singletons


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (apt-get install chromium)")
def test_browser_small_gallery_links(small):
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright not installed")
    table, labels, tmp = small
    build_gallery(table, labels, tmp / "g", progress_bar=False)
    with sync_api.sync_playwright() as p:
        browser = _launch(p)
        page = browser.new_page(viewport={"width": 1200, "height": 2400})
        page.goto((tmp / "g" / "index.html").as_uri())
        assert page.locator("section.cluster").count() == 4
        assert page.locator("section.singletons img").count() == 4
        # on a loaded machine decoding can lag the load event: wait for every image
        page.wait_for_function("[...document.images].every(e => e.complete)")
        widths = page.eval_on_selector_all(
            "img", "els => els.map(e => e.complete ? e.naturalWidth : -1)"
        )
        assert widths == [112] * 16
        href = page.locator("a").first.get_attribute("href")
        assert os.path.isfile(tmp / "g" / href)
        browser.close()


def test_big_jpeg_is_cropped_at_reduced_resolution_in_the_right_place(tmp_path):
    """Large photos are decoded with JPEG DCT scaling; crops must still hit the box."""
    root = tmp_path / "photos"
    root.mkdir()
    im = Image.new("RGB", (2400, 1600), (128, 128, 128))
    im.paste((220, 20, 20), (300, 200, 900, 800))
    im.paste((20, 20, 220), (1500, 700, 2100, 1300))
    im.save(root / "big.jpg", quality=95)
    table = FaceTable(np.eye(2, dtype=np.float32), ["big.jpg", "big.jpg"],
                      [[300, 200, 900, 800], [1500, 700, 2100, 1300]], [1, 1], root=str(root))
    build_gallery(table, np.array([0, 1]), tmp_path / "g", thumb_size=48, margin=0.0,
                  progress_bar=False)
    text = (tmp_path / "g" / "index.html").read_text()
    srcs = re.findall(r'src="(thumbs/[^"]+)"[^>]*title="[^"]+ \(face (\d+),', text)
    for src, face in srcs:
        thumb = np.asarray(Image.open(tmp_path / "g" / src))
        assert thumb.shape == (48, 48, 3)
        expected = [(220, 20, 20), (20, 20, 220)][int(face)]
        np.testing.assert_allclose(thumb.reshape(-1, 3).mean(axis=0), expected, atol=20)
