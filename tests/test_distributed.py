"""Ray backend: the same faces file, kNN ids and labels as one machine (one 2-CPU local Ray)."""

from __future__ import annotations

import shutil
from contextlib import closing, contextmanager
from pathlib import Path

import numpy as np
import pytest

ray = pytest.importorskip("ray")

from threadpoolctl import threadpool_limits  # noqa: E402

from faceclust import knn as knn_mod  # noqa: E402
from faceclust.distributed import (  # noqa: E402
    _cell_groups,
    _split,
    build_knn_ray,
    fit_ray,
    ray_embed_runner,
    ray_session,
)
from faceclust.errors import ParameterError  # noqa: E402
from faceclust.knn import build_knn  # noqa: E402
from faceclust.methods import make_method  # noqa: E402
from faceclust.synth import make_faces  # noqa: E402

PHOTOS = Path(__file__).resolve().parents[2] / "shared" / "data" / "photos"
if not PHOTOS.is_dir():
    PHOTOS = Path("/work/shared/data/photos")


@pytest.fixture(scope="module")
def pool():
    """One local Ray with 2 CPUs for the whole module (start-up costs seconds)."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    try:
        with ray_session() as p:
            yield p
    finally:
        ray.shutdown()


@contextmanager
def one_thread():
    """The single-machine reference with one thread per product, as a 1-CPU Ray task.

    BLAS rounds a product differently when it splits it over more threads, so
    bit-identical similarities need the same count on both sides.
    """
    knn_mod.set_threads(1)
    try:
        with threadpool_limits(1):
            yield
    finally:
        knn_mod.set_threads(None)


@pytest.fixture(scope="module")
def faces():
    x, y = make_faces(4000, 400, 64, seed=3)
    return x, y


# ------------------------------------------------------------------ helpers
def test_split_aligned_and_covering():
    parts = _split(10_000, 4, 1024)
    assert parts[0][0] == 0 and parts[-1][1] == 10_000
    assert all(a % 1024 == 0 for a, _ in parts)
    assert all(b == c for (_, b), (c, _) in zip(parts[:-1], parts[1:], strict=True))
    assert _split(5, 10) == [(0, 1), (1, 2), (2, 3), (3, 4), (4, 5)]


def test_cell_groups_cover_every_cell_once():
    probe = np.random.default_rng(0).integers(0, 50, size=(1000, 4)).astype(np.uint16)
    groups = knn_mod.ivf_group(probe, 50)
    cents = np.random.default_rng(1).normal(size=(50, 8)).astype(np.float32)
    for c in (None, cents):
        parts = _cell_groups(groups, c, 6)
        assert 2 <= len(parts) <= 6
        assert np.array_equal(np.sort(np.concatenate(parts)), np.arange(50))


def test_heap_keeps_smaller_id_on_ties_whatever_the_order():
    """The merge kernel keeps the top k by (similarity desc, id asc) in any offer order."""
    sims = np.array([[0.5, 0.9, 0.5, 0.5, 0.7]], dtype=np.float32)
    cols = np.array([7, 1, 3, 5, 2])
    for perm in ([0, 1, 2, 3, 4], [3, 2, 0, 4, 1], [4, 3, 2, 1, 0]):
        ts = np.full((1, 3), -np.inf, np.float32)
        ti = np.full((1, 3), -1, np.int32)
        knn_mod._merge_topk(ts, ti, np.array([0]), sims[:, perm], cols[perm])
        assert sorted(ti[0].tolist()) == [1, 2, 3]


# ---------------------------------------------------------------------- kNN
def test_exact_knn_equals_one_machine(pool, faces):
    x, _ = faces
    with one_thread():
        ref = build_knn(x, k=15, index="flat")
    got = build_knn_ray(x, 15, pool=pool, index="flat")
    assert got.meta["ray"]["pieces"] >= 2  # really split over database blocks
    assert np.array_equal(got.ids, ref.ids)
    assert np.array_equal(got.sims, ref.sims)


def test_ivf_blas_knn_equals_one_machine(pool, faces):
    x, _ = faces
    with one_thread():
        ref = build_knn(x, k=15, index="ivf-blas", nlist=64, nprobe=6)
    got = build_knn_ray(x, 15, pool=pool, index="ivf-blas", nlist=64, nprobe=6, pieces=5)
    assert (got.meta["nlist"], got.meta["nprobe"], got.meta["ray"]["pieces"]) == (64, 6, 5)
    assert np.array_equal(got.ids, ref.ids)
    assert np.array_equal(got.sims, ref.sims)


def test_features_reach_tasks_zero_copy_from_the_store(pool, faces):
    x = faces[0]
    ref = pool.put(x)
    assert pool.put(x) is ref  # put once per array, tasks get the reference
    probe = ray.remote(num_cpus=1)(lambda a: (a.flags.writeable, a.flags.owndata, a.shape))
    writeable, owndata, shape = ray.get(probe.remote(ref))
    assert shape == x.shape and not writeable and not owndata  # a map of the store: no copy


def test_knn_rejects_unsupported_index(pool, faces):
    with pytest.raises(ParameterError, match="hnsw"):
        build_knn_ray(faces[0], 5, pool=pool, index="hnsw")


# ------------------------------------------------------------------ cluster
@pytest.mark.parametrize("use_x", [True, False])
def test_auto_labels_equal_one_machine(pool, faces, use_x):
    x, y = faces
    graph = build_knn(x, k=20, index="flat")
    ref = make_method("auto", {}).fit(x if use_x else None, knn=graph).labels_
    est = fit_ray(make_method("auto", {}), x if use_x else None, pool=pool, knn=graph)
    assert np.array_equal(est.labels_, ref)
    info = est.ray_info_
    assert info["components_multi"] > 1 and info["link_tasks"] >= 2
    # the attachment step did something, so the cross-component reads were exercised
    assert est.stage_seconds_["attach"] >= 0 and len(np.unique(ref)) < len(ref)


def test_auto_builds_its_graph_on_ray(pool):
    x, _ = make_faces(5000, 500, 32, seed=4)  # > 4096 points: exact search on Ray
    with one_thread():
        ref = make_method("auto", {}).fit(x).labels_
    assert np.array_equal(fit_ray(make_method("auto", {}), x, pool=pool).labels_, ref)


def test_fces_labels_equal_one_machine(pool, faces):
    x, _ = faces
    graph = build_knn(x, k=20, index="flat")
    ref = make_method("fc-es", {"k": 20}).fit(x, knn=graph).labels_
    est = fit_ray(make_method("fc-es", {"k": 20}), x, pool=pool, knn=graph, pieces=3)
    assert np.array_equal(est.labels_, ref)
    assert "_executor" not in vars(est)  # executing_on left nothing behind


def test_other_methods_are_refused(pool, faces):
    with pytest.raises(ParameterError, match="auto, fc-es"):
        fit_ray(make_method("knn-cc", {}), faces[0], pool=pool)


# -------------------------------------------------------------------- embed
@pytest.fixture(scope="module")
def few_photos(tmp_path_factory) -> Path:
    pytest.importorskip("dlib", reason="dlib not installed (pip install 'faceclust[photos]')")
    if not (PHOTOS / "obama.jpg").exists():
        pytest.skip("shared photos absent")
    d = tmp_path_factory.mktemp("photos")
    for name in ("obama.jpg", "biden.jpg"):
        shutil.copy(PHOTOS / name, d / name)
    (d / "broken.jpg").write_bytes(b"not a jpeg" * 10)
    return d


def _same_faces(a, b) -> None:
    assert a.paths == b.paths
    assert np.array_equal(a.embeddings, b.embeddings)
    assert np.array_equal(a.boxes, b.boxes) and np.array_equal(a.scores, b.scores)
    for key in ("config", "n_images", "images_without_faces", "unreadable_images", "n_faces"):
        assert a.meta[key] == b.meta[key]


def test_embed_on_ray_equals_one_process_and_resumes(pool, few_photos, tmp_path):
    from faceclust.photos import embed_folder, read_faces

    ref = tmp_path / "ref.npz"
    embed_folder(few_photos, ref, workers=1, batch_size=1, max_side=400)
    out = tmp_path / "ray.npz"
    runner = ray_embed_runner(pool)
    report = embed_folder(few_photos, out, batch_size=1, max_side=400, runner=runner)
    assert report.n_images == 3 and report.resumed_images == 0 and report.n_faces >= 2
    _same_faces(read_faces(ref), read_faces(out))

    # interrupted after the first shard: the re-run takes it from the checkpoint
    def stop_after_one_shard(todo, **kw):
        with closing(runner(todo, **kw)) as inner:  # closing it kills its actors
            for i, res in enumerate(inner):
                yield res
                if i == 0:
                    raise KeyboardInterrupt

    again = tmp_path / "again.npz"
    with pytest.raises(KeyboardInterrupt):
        embed_folder(few_photos, again, batch_size=1, max_side=400, runner=stop_after_one_shard)
    assert not again.exists() and any(again.with_name("again.npz.partial").glob("part-*.npz"))
    # the re-run, from the command line, takes the finished shard from the checkpoint
    from click.testing import CliRunner

    from faceclust.cli import main

    res = CliRunner().invoke(main, ["embed", str(few_photos), "--out", str(again),
                                    "--batch-size", "1", "--max-side", "400", "--backend", "ray"])
    assert res.exit_code == 0, res.output
    assert "1 taken from the checkpoint" in res.output
    _same_faces(read_faces(ref), read_faces(again))


# ---------------------------------------------------------------------- CLI
def test_cli_knn_and_cluster_with_ray_backend(pool, faces, tmp_path):
    from click.testing import CliRunner

    from faceclust import io
    from faceclust.cli import main

    x, _ = faces
    feats = tmp_path / "x.npy"
    np.save(feats, x)
    runner = CliRunner()
    res = runner.invoke(main, ["knn", str(feats), "--k", "20", "--index", "flat", "--backend", "ray",
                               "--out", str(tmp_path / "knn.npz")])
    assert res.exit_code == 0, res.output
    graph = io.read_knn(tmp_path / "knn.npz", n=len(x))
    res = runner.invoke(main, ["cluster", str(feats), "--knn", str(tmp_path / "knn.npz"),
                               "--backend", "ray", "--out", str(tmp_path / "lab.npy")])
    assert res.exit_code == 0, res.output
    ref = make_method("auto", {}).fit(x, knn=graph).labels_
    assert np.array_equal(io.read_labels(tmp_path / "lab.npy"), ref)
    res = runner.invoke(main, ["cluster", str(feats), "--method", "knn-cc", "--backend", "ray",
                               "--out", str(tmp_path / "l2.npy")])
    assert res.exit_code == 2 and "--backend ray runs methods" in res.output
    res = runner.invoke(main, ["knn", str(feats), "--address", "auto",
                               "--out", str(tmp_path / "k2.npz")])
    assert res.exit_code == 2 and "need --backend ray" in res.output
