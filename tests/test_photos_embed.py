"""Photos -> faces file on real photos (dlib backend): detection, EXIF, skips, resume, I/O."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

pytest.importorskip("dlib", reason="dlib not installed (pip install 'faceclust[photos]')")
PIL_Image = pytest.importorskip("PIL.Image")

from faceclust.cli import main  # noqa: E402
from faceclust.errors import InputError, ParameterError  # noqa: E402
from faceclust.photos import (  # noqa: E402
    FaceTable,
    embed_folder,
    is_faces_file,
    list_images,
    load_image,
    read_faces,
    write_faces,
)
from faceclust.photos import embed as embed_mod  # noqa: E402
from faceclust.photos.backend import DlibBackend, FaceBackend, get_backend  # noqa: E402

PHOTOS = Path(__file__).resolve().parents[2] / "shared" / "data" / "photos"
if not PHOTOS.is_dir():
    PHOTOS = Path("/work/shared/data/photos")
needs_photos = pytest.mark.skipif(not (PHOTOS / "obama.jpg").exists(), reason="shared photos absent")
MAX_SIDE = 700  # small images keep the test fast; faces stay > 100 px


def _rotated_png_with_exif(src: Path, dst: Path) -> None:
    """Store the photo rotated by 90 degrees plus EXIF Orientation=6, which rotates it back."""
    im = PIL_Image.open(src).convert("RGB")
    stored = im.transpose(PIL_Image.Transpose.ROTATE_90)  # counter-clockwise
    exif = PIL_Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    stored.save(dst, "PNG", exif=exif.tobytes())


@pytest.fixture(scope="module")
def photo_dir(tmp_path_factory) -> Path:
    if not (PHOTOS / "obama.jpg").exists():
        pytest.skip("shared photos absent")
    d = tmp_path_factory.mktemp("photos")
    shutil.copy(PHOTOS / "obama.jpg", d / "obama.jpg")
    shutil.copy(PHOTOS / "biden.jpg", d / "biden.jpg")
    (d / "sub").mkdir()
    PIL_Image.open(PHOTOS / "obama2.jpg").save(d / "sub" / "obama2.webp", "WEBP", quality=90)
    _rotated_png_with_exif(PHOTOS / "obama.jpg", d / "obama_rot.PNG")
    (d / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 definitely not a jpeg" * 10)
    rng = np.random.default_rng(0)
    PIL_Image.fromarray(rng.integers(100, 140, (300, 400, 3), dtype=np.uint8)).save(d / "blank.png")
    (d / "notes.txt").write_text("not an image")
    (d / ".hidden.jpg").write_bytes(b"skip me")
    return d


@pytest.fixture(scope="module")
def embedded(photo_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("out") / "faces.npz"
    report = embed_folder(photo_dir, out, workers=1, max_side=MAX_SIDE, progress_bar=False)
    return report, read_faces(out), out


def test_list_images_filters_and_sorts(photo_dir):
    assert list_images(photo_dir) == [
        "biden.jpg", "blank.png", "broken.jpg", "obama.jpg", "obama_rot.PNG", "sub/obama2.webp",
    ]
    with pytest.raises(InputError, match="not a folder"):
        list_images(photo_dir / "obama.jpg")


def test_load_image_applies_exif_orientation(photo_dir):
    upright, s1 = load_image(photo_dir / "obama.jpg")
    rot, s2 = load_image(photo_dir / "obama_rot.PNG")
    assert s1 == s2 == 1.0
    assert rot.shape == upright.shape  # portrait again, not landscape
    assert np.abs(rot.astype(int) - upright.astype(int)).mean() < 1.0
    small, scale = load_image(photo_dir / "obama.jpg", max_side=500)
    assert max(small.shape[:2]) <= 500
    assert scale == pytest.approx(max(upright.shape[:2]) / max(small.shape[:2]))


def test_embed_finds_faces_and_reports_skips(embedded):
    report, table, out = embedded
    assert report.n_images == 6
    assert report.no_face == ["blank.png"]
    assert [p for p, _ in report.failed] == ["broken.jpg"]
    assert sorted(table.paths) == ["biden.jpg", "obama.jpg", "obama_rot.PNG", "sub/obama2.webp"]
    assert table.paths == sorted(table.paths)  # ordered by photo
    assert table.embeddings.shape == (4, 128) and table.embeddings.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(table.embeddings, axis=1), 1.0, atol=1e-5)
    meta = json.loads(Path(str(out) + ".json").read_text())
    assert meta["images_without_faces"] == ["blank.png"]
    assert meta["unreadable_images"][0]["path"] == "broken.jpg"
    assert meta["config"]["backend"] == "dlib" and meta["n_faces"] == 4
    assert not Path(str(out) + ".partial").exists()  # checkpoint removed when done


def test_embeddings_separate_people_and_survive_exif_rotation(embedded):
    _, table, _ = embedded
    e = dict(zip(table.paths, table.embeddings, strict=True))
    same = float(e["obama.jpg"] @ e["sub/obama2.webp"])
    other = float(e["obama.jpg"] @ e["biden.jpg"])
    rotated = float(e["obama.jpg"] @ e["obama_rot.PNG"])
    assert rotated > 0.99  # same pixels once EXIF is applied
    assert same > other + 0.05  # dlib scale: same person ~0.95+, different ~0.8
    # boxes are in full-size displayed pixels, identical for the EXIF-rotated copy
    b = dict(zip(table.paths, table.boxes, strict=True))
    np.testing.assert_allclose(b["obama.jpg"], b["obama_rot.PNG"], atol=3)
    w, h = PIL_Image.open(PHOTOS / "obama.jpg").size
    x0, y0, x1, y1 = b["obama.jpg"]
    assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h
    assert 150 < x1 - x0 < 400  # the face is about 270 px wide in the original
    assert (table.scores > 0).all()


def test_full_size_boxes_match_downscaled(photo_dir, embedded, tmp_path):
    _, table, _ = embedded
    out = tmp_path / "full.npz"
    embed_folder(photo_dir, out, workers=1, max_side=None, images=["obama.jpg"],
                 progress_bar=False)
    full = read_faces(out)
    assert full.paths == ["obama.jpg"]
    # HOG boxes come from a fixed-size window pyramid, so sizes differ a little between
    # scales; without the mapping back to full size the small box would sit at ~0.6x.
    big, small = full.boxes[0], table.boxes[table.paths.index("obama.jpg")]
    width = big[2] - big[0]
    np.testing.assert_allclose((big[:2] + big[2:]) / 2, (small[:2] + small[2:]) / 2,
                               atol=0.1 * width)
    assert 0.75 < (small[2] - small[0]) / width < 1.33


def test_faces_file_roundtrip_and_detection(embedded, tmp_path):
    _, table, out = embedded
    assert is_faces_file(out)
    plain = tmp_path / "plain.npz"
    np.savez(plain, embeddings=table.embeddings)
    assert not is_faces_file(plain)
    (tmp_path / "x.txt").write_text("hello")
    assert not is_faces_file(tmp_path / "x.txt")
    assert not is_faces_file(tmp_path / "missing.npz")
    with pytest.raises(InputError, match="not a faceclust faces file"):
        read_faces(plain)
    copy = write_faces(FaceTable(table.embeddings, table.paths, table.boxes, table.scores,
                                 root="/somewhere"), tmp_path / "copy.npz")
    back = read_faces(copy)
    assert back.paths == table.paths and back.root == "/somewhere"
    np.testing.assert_array_equal(back.embeddings, table.embeddings)
    np.testing.assert_array_equal(back.boxes, table.boxes)
    with pytest.raises(InputError):
        FaceTable(table.embeddings[:2], table.paths, table.boxes, table.scores)


def test_resume_after_interruption_recomputes_nothing_done(photo_dir, embedded, tmp_path,
                                                           monkeypatch):
    _, reference, _ = embedded
    out = tmp_path / "faces.npz"
    real = embed_mod._process_one
    calls: list[str] = []

    def crash_after_three(rel):
        if len(calls) == 3:
            raise KeyboardInterrupt
        calls.append(rel)
        return real(rel)

    monkeypatch.setattr(embed_mod, "_process_one", crash_after_three)
    with pytest.raises(KeyboardInterrupt):
        embed_folder(photo_dir, out, workers=1, batch_size=2, max_side=MAX_SIDE,
                     progress_bar=False)
    assert not out.exists()
    assert len(list((tmp_path / "faces.npz.partial").glob("part-*.npz"))) == 1  # 2 saved

    first = list(calls)
    calls.clear()

    def counting(rel):
        calls.append(rel)
        return real(rel)

    monkeypatch.setattr(embed_mod, "_process_one", counting)
    # other settings than the checkpoint: refuse instead of mixing embeddings
    with pytest.raises(ParameterError, match="restart"):
        embed_folder(photo_dir, out, workers=1, max_side=MAX_SIDE + 1, progress_bar=False)
    report = embed_folder(photo_dir, out, workers=1, batch_size=2, max_side=MAX_SIDE,
                          progress_bar=False)
    assert report.resumed_images == 2
    assert set(calls) == set(list_images(photo_dir)) - set(first[:2])
    table = read_faces(out)
    assert table.paths == reference.paths
    np.testing.assert_allclose(table.embeddings, reference.embeddings, atol=1e-6)


def test_two_worker_processes_give_same_result(photo_dir, embedded, tmp_path):
    _, reference, _ = embedded
    out = tmp_path / "faces.npz"
    report = embed_folder(photo_dir, out, workers=2, max_side=MAX_SIDE, progress_bar=False)
    assert report.n_faces == 4 and report.no_face == ["blank.png"]
    table = read_faces(out)
    assert table.paths == reference.paths
    np.testing.assert_allclose(table.embeddings, reference.embeddings, atol=1e-6)


def test_backend_interface_and_errors():
    backend = get_backend("dlib", detector="hog", upsample=0)
    assert isinstance(backend, FaceBackend) and isinstance(backend, DlibBackend)
    assert backend.detect_and_embed(np.zeros((64, 64, 3), np.uint8)) == []
    with pytest.raises(ParameterError, match="backend must be one of"):
        get_backend("nope")
    with pytest.raises(ParameterError, match="detector"):
        get_backend("dlib", detector="yolo")
    with pytest.raises(ParameterError):
        get_backend("dlib", colour="blue")


def test_cli_embed(photo_dir, tmp_path):
    out = tmp_path / "f.npz"
    sub = photo_dir / "sub"
    res = CliRunner().invoke(main, ["embed", str(sub), "--out", str(out), "--workers", "1",
                                    "--max-side", str(MAX_SIDE)])
    assert res.exit_code == 0, res.output
    assert "1 images, 1 faces" in res.output
    assert read_faces(out).paths == ["obama2.webp"]
    res = CliRunner().invoke(main, ["embed", str(tmp_path / "nope"), "--out", str(out)])
    assert res.exit_code == 2 and "not a folder of photos" in res.output
    res = CliRunner().invoke(main, ["embed", str(sub), "--out", str(tmp_path / "f.txt")])
    assert res.exit_code == 2 and "must end in .npz" in res.output


def test_cli_add_photos_folder_uses_stored_settings(embedded, tmp_path):
    """A new photo of a known person joins their cluster; embedded with the old settings."""
    _, table, out = embedded
    labels = np.array([1 if p.startswith("biden") else 0 for p in table.paths])
    (tmp_path / "old.txt").write_text("\n".join(map(str, labels)) + "\n")
    new_dir = tmp_path / "new"
    new_dir.mkdir()
    shutil.copy(PHOTOS / "obama3.jpg", new_dir / "obama3.jpg")
    res = CliRunner().invoke(main, [
        "add", str(out), str(tmp_path / "old.txt"), str(new_dir), "--workers", "1",
        "--out", str(tmp_path / "all.npz"), "--labels-out", str(tmp_path / "all.txt"),
    ])
    assert res.exit_code == 0, res.output
    assert "1 new faces: 1 joined existing clusters" in res.output
    assert np.loadtxt(tmp_path / "all.txt", dtype=np.int64).tolist() == [*labels.tolist(), 0]
    merged = read_faces(tmp_path / "all.npz")
    assert merged.photo_path(4).resolve() == (new_dir / "obama3.jpg").resolve()
    assert merged.photo_path(0).resolve() == (Path(table.root) / table.paths[0]).resolve()
    assert merged.meta["max_side"] == MAX_SIDE  # merged file records the settings used
    assert not (tmp_path / "all.npz.new.npz").exists()
