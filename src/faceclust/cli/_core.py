"""Core commands: knn, cluster, eval, methods, demo.

The contract other commands extend:

* ``faceclust knn FEATURES --k 80 [--index auto|flat|ivf|ivf-blas|hnsw] --out KNN.npz``
* ``faceclust cluster FEATURES --method NAME [--knn KNN.npz] [--set key=value ...]
  [--must-link PAIRS] [--cannot-link PAIRS] --out LABELS``
* ``faceclust eval --pred LABELS --gt LABELS [--json]``
* ``faceclust methods``
* ``faceclust demo``

FEATURES is a ``.npy``, a ``.bin`` (with ``--dim``, or with its ``.meta``
beside it) or a faces file written by ``faceclust embed``.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import click
import numpy as np

from ..errors import ParameterError
from ..knn import INDEX_KINDS, KnnGraph, build_knn, knn_recall
from ..methods import METHODS, make_method
from ..params import parse_set
from ._app import main

#: --preset NAME -> the method used when --method is not given. "auto" estimates
#: the embedding's similarity scale from the data; "ms1m" reproduces the papers:
#: FC-ES at its published MS-Celeb-1M defaults (k=80, sigma=0.5, theta=0.22).
PRESETS: dict[str, str] = {"auto": "auto", "ms1m": "fc-es"}


# ------------------------------------------------------------------ helpers
def load_features(path: str | Path, dim: int | None = None) -> np.ndarray:
    """Features from any supported file: faces file (``faceclust embed``), .npy, .bin, .npz."""
    from .. import io

    try:
        from ..photos import is_faces_file, read_faces
    except ImportError:  # photo extra absent
        is_faces_file = None
    if is_faces_file is not None and is_faces_file(path):
        return read_faces(path).embeddings
    return io.read_features(path, dim=dim)


def _print_metrics(metrics: dict, *, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(metrics))
        return
    rows = [
        ("pairwise", "pairwise_precision", "pairwise_recall", "pairwise_f"),
        ("bcubed", "bcubed_precision", "bcubed_recall", "bcubed_f"),
    ]
    click.echo(f"{'metric':<10}{'precision':>10}{'recall':>10}{'F':>10}")
    for name, p, r, f in rows:
        click.echo(f"{name:<10}{metrics[p]:>10.4f}{metrics[r]:>10.4f}{metrics[f]:>10.4f}")
    click.echo(f"{'NMI':<10}{metrics['nmi']:>30.4f}")
    click.echo(f"clusters: {metrics['n_clusters']}  samples: {metrics['n_samples']}")


def backend_options(f):
    """``--backend local|ray``, ``--address`` and ``--ray-cpus`` (knn, cluster, embed)."""
    opts = [
        click.option("--backend", type=click.Choice(["local", "ray"]), default="local",
                     show_default=True,
                     help="Where to compute: this process, or a Ray cluster "
                          "(pip install 'faceclust[ray]'; same results, docs/scale.md)."),
        click.option("--address", default=None,
                     help="Ray cluster to join (e.g. ray://head:10001 or auto); default: start "
                          "a local Ray with this machine's cores."),
        click.option("--ray-cpus", type=click.IntRange(1, None), default=None,
                     help="CPUs of the local Ray (default: all cores)."),
    ]
    for opt in reversed(opts):
        f = opt(f)
    return f


def ray_session_for(backend: str, address: str | None, ray_cpus: int | None):
    """A Ray session for --backend ray; a no-op context (None) otherwise."""
    from contextlib import nullcontext

    if backend != "ray":
        if address or ray_cpus:
            raise ParameterError("--address and --ray-cpus need --backend ray")
        return nullcontext(None)
    from ..distributed import ray_session

    return ray_session(address, ray_cpus)


# ----------------------------------------------------------------- commands
@main.command("methods")
def methods_cmd() -> None:
    """List the available clustering methods, one line each; [needs model]: supervised,
    train one with `faceclust train --method NAME` and pass it with --model."""
    for name in sorted(METHODS):
        doc = (METHODS[name].__doc__ or "").strip().splitlines()
        mark = "[needs model] " if getattr(METHODS[name], "needs_model", False) else ""
        click.echo(f"{name:<18} {mark}{doc[0] if doc else ''}")


@main.command("knn")
@click.argument("features", type=click.Path(dir_okay=False))
@click.option("--k", "k", default=80, show_default=True,
              help="Neighbours per point, self included (1 <= k < N).")
@click.option("--index", type=click.Choice(INDEX_KINDS), default="auto", show_default=True,
              help="auto: exact search up to 100,000 points (numpy up to 4,096, faiss flat "
                   "beyond), ivf-blas above (recall@80 about 0.98 at 584K, minutes instead of hours); "
                   "flat/numpy: exact; ivf, ivf-blas, hnsw: approximate.")
@click.option("--dim", type=int, default=None, help="Feature dimension of a raw .bin file.")
@click.option("--nlist", type=int, default=None, help="IVF cells (ivf: min(4096, 8*sqrt N); ivf-blas: ~5.4*sqrt N, <= 8192).")
@click.option("--nprobe", type=int, default=None, help="IVF cells probed (ivf: min(128, nlist); ivf-blas: 16, for k <= 32 max(2, nlist/2048)).")
@click.option("--refine", type=click.IntRange(0, None), default=None,
              help="ivf-blas: passes of neighbours-of-neighbours refinement after the join "
                   "(default 2 for k <= 32, else 0).")
@click.option("--hnsw-m", type=int, default=32, show_default=True,
              help="HNSW links per node (hnsw only).")
@click.option("--ef-search", type=int, default=None, help="HNSW search breadth (default max(2k,128)).")
@click.option("--recall-sample", type=int, default=1000, show_default=True,
              help="Rows checked against exact search for ivf/hnsw (0 to skip).")
@click.option("--cache-dir", type=click.Path(file_okay=False), default=None,
              help="Keep the graph there under a hash of features and parameters; reused "
                   "by the next identical call.")
@click.option("--force", is_flag=True, help="Replace OUT if it exists (default: refuse).")
@click.option("--out", required=True, type=click.Path(dir_okay=False),
              help="Output .npz in learn-to-cluster's format (key data: ids, 1-sim).")
@backend_options
def knn_cmd(features, k, index, dim, nlist, nprobe, refine, hnsw_m, ef_search, recall_sample,
            cache_dir, force, out, backend, address, ray_cpus):
    """Build the cosine kNN graph of FEATURES and write it in learn-to-cluster's .npz format.

    The default --index auto searches exactly up to 100,000 points and uses the
    approximate ivf-blas index above (as `faceclust cluster` does).
    """
    from .. import io
    from ._preflight import check_out_file, writing

    check_out_file(out, [features], force=force, exts=(".npz",), what="kNN output")
    x = load_features(features, dim)
    if isinstance(k, int) and 0 < k < x.shape[0]:  # size known: (N, 2, k) float32
        check_out_file(out, [features], force=force, size=x.shape[0] * k * 8)
    with ray_session_for(backend, address, ray_cpus) as pool:
        t0 = time.perf_counter()
        if pool is None:
            graph = build_knn(x, k=k, index=index, nlist=nlist, nprobe=nprobe, hnsw_m=hnsw_m,
                              ef_search=ef_search, cache_dir=cache_dir, refine=refine)
        else:
            from ..distributed import build_knn_ray

            graph = build_knn_ray(x, k, pool=pool, index=index, nlist=nlist, nprobe=nprobe,
                                  refine=refine)
        secs = time.perf_counter() - t0
    index = str(graph.meta.get("index", index))
    msg = f"kNN ({index}) N={graph.n} k={graph.k} in {secs:.1f} s"
    if pool is not None:
        msg += f" on Ray ({pool.workers} workers, start-up {pool.init_seconds:.1f} s)"
    cells = {key: graph.meta[key] for key in ("nlist", "nprobe", "refine") if key in graph.meta}
    if cells:
        msg += " (" + ", ".join(f"{key} {v}" for key, v in cells.items()) + ")"
    if "steps" in graph.meta:
        msg += f", steps {graph.meta['steps']}"
    if index in ("ivf", "ivf-blas", "hnsw") and recall_sample > 0:
        msg += f"; recall@{graph.k} on {min(recall_sample, graph.n)} rows = "
        msg += f"{knn_recall(graph, x, sample=recall_sample):.4f}"
    with writing(out):
        io.write_knn(out, graph, fmt="ltc", protect=[features])
    click.echo(f"{msg} -> {out}", err=True)


@main.command("cluster")
@click.argument("features", type=click.Path(dir_okay=False))
@click.option("--method", "method", default=None,
              help="Method name (see `faceclust methods`); default: from --preset.")
@click.option("--preset", type=click.Choice(sorted(PRESETS)), default="auto", show_default=True,
              help="auto: label-free, adapts thresholds to the embedding's similarity scale; "
                   "ms1m: FC-ES at its published MS-Celeb-1M defaults. Ignored with --method "
                   "(every method's own defaults are the published ones).")
@click.option("--knn", "knn_path", type=click.Path(dir_okay=False), default=None,
              help="Precomputed kNN graph (.npz from `faceclust knn` or a published one).")
@click.option("--dim", type=int, default=None, help="Feature dimension of a raw .bin file.")
@click.option("--set", "settings", multiple=True, metavar="KEY=VALUE",
              help="Method parameter, repeatable (e.g. --set k=30 --set threshold=0.6).")
@click.option("--model", type=click.Path(), default=None,
              help="Model directory for supervised methods (same as --set model=DIR).")
@click.option("--gt", type=click.Path(dir_okay=False), default=None,
              help="Ground-truth labels: print metrics after clustering.")
@click.option("--explain", is_flag=True, help="Print what the method chose and why.")
@click.option("--must-link", "must_link", type=click.Path(dir_okay=False), default=None,
              help="Face pairs that are the same person: text 'i,j' per line or .npy [P, 2] "
                   "(row indices of FEATURES); their clusters are merged.")
@click.option("--cannot-link", "cannot_link", type=click.Path(dir_okay=False), default=None,
              help="Face pairs that are different people (e.g. faces in one photo), same "
                   "format; a cluster holding such a pair is split.")
@click.option("--out", required=True, type=click.Path(dir_okay=False),
              help="Output labels (.meta text or .npy), one per row.")
@backend_options
def cluster_cmd(features, method, preset, knn_path, dim, settings, model, gt, explain,
                must_link, cannot_link, out, backend, address, ray_cpus):
    """Cluster FEATURES and write one label per row to OUT.

    With --must-link / --cannot-link the result honours every pair (any method).
    """
    from .. import io
    from ..metrics import evaluate
    from ._preflight import check_out_file, writing

    inputs = [p for p in (features, knn_path, gt, must_link, cannot_link) if p]
    check_out_file(out, inputs, exts=io.LABEL_EXTENSIONS, what="labels output")
    if method is not None and not method.strip():
        raise ParameterError("--method is empty; see `faceclust methods` for the names")
    method = method or PRESETS[preset]
    params = parse_set(settings)
    if model is not None:
        params["model"] = model
    est = make_method(method, params)
    x = load_features(features, dim)
    if getattr(type(est), "needs_model", False) and params.get("model") is not None:
        from ..methods._modeldir import check_input

        for warning in check_input(str(params["model"]), x):
            click.echo(f"faceclust: warning: {warning}", err=True)
    knn: KnnGraph | None = io.read_knn(knn_path, n=x.shape[0]) if knn_path else None
    gt_labels = io.read_labels(gt, n=x.shape[0]) if gt else None
    constraints = None
    if must_link or cannot_link:
        constraints = (io.read_pairs(must_link, n=x.shape[0]) if must_link else None,
                       io.read_pairs(cannot_link, n=x.shape[0]) if cannot_link else None)
    if backend == "ray":
        from ..distributed import RAY_METHODS

        if method not in RAY_METHODS:
            raise ParameterError(f"--backend ray runs methods {', '.join(RAY_METHODS)}, "
                                 f"not {method!r}")
    with ray_session_for(backend, address, ray_cpus) as pool:
        t0 = time.perf_counter()
        if pool is None:
            labels = est.fit(x, knn=knn, constraints=constraints).labels_
        else:
            from ..distributed import fit_ray

            labels = fit_ray(est, x, pool=pool, knn=knn, constraints=constraints).labels_
            click.echo(f"Ray: {est.ray_info_} (start-up {pool.init_seconds:.1f} s)", err=True)
        secs = time.perf_counter() - t0
    with writing(out):
        io.write_labels(out, labels, protect=inputs)
    stages = ", ".join(f"{k} {v:.2f}s" for k, v in est.stage_seconds_.items())
    n_clusters = len(np.unique(labels[labels >= 0])) + int((labels < 0).sum())
    click.echo(f"{method}: {len(labels)} samples -> {n_clusters} clusters in {secs:.2f} s "
               f"({stages}) -> {out}", err=True)
    peaks = getattr(est, "stage_peak_gb_", {})
    if peaks:
        click.echo("peak memory after each stage (process high-water mark): "
                   + ", ".join(f"{k} {v:.2f} GB" for k, v in peaks.items()), err=True)
    if explain:
        text = getattr(est, "explain_", None)
        click.echo(text if text else f"{method}: parameters {est.get_params()}", err=True)
    if gt_labels is not None:
        _print_metrics(evaluate(gt_labels, labels), as_json=False)


@main.command("eval")
@click.option("--pred", required=True, type=click.Path(dir_okay=False), help="Predicted labels.")
@click.option("--gt", required=True, type=click.Path(dir_okay=False), help="Ground-truth labels.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def eval_cmd(pred, gt, as_json):
    """Pairwise P/R/F, BCubed P/R/F and NMI of PRED against GT."""
    from .. import io
    from ..metrics import evaluate

    gt_labels = io.read_labels(gt)
    pred_labels = io.read_labels(pred)
    if len(pred_labels) != len(gt_labels):
        raise ParameterError(
            f"--pred {pred} has {len(pred_labels)} labels but --gt {gt} has {len(gt_labels)}; "
            "both must label the same faces"
        )
    _print_metrics(evaluate(gt_labels, pred_labels), as_json=as_json)


@main.command("demo")
@click.option("--methods", "method_list", default=None,
              help="Comma-separated methods (default: auto,infomap,knn-cc).")
def demo_cmd(method_list):
    """Cluster the bundled sample (synthetic faces with identities) and print the metrics."""
    from .. import io
    from ..synth import sample_paths

    feat_path, label_path = sample_paths()
    x = io.read_features(feat_path)
    gt = io.read_labels(label_path, n=x.shape[0])
    names = (method_list.split(",") if method_list
             else [m for m in ("auto", "infomap", "knn-cc") if m in METHODS])
    ests = [make_method(m.strip(), {}) for m in names]
    k = max(int(e.get_params().get("k", 10) or 10) for e in ests)
    click.echo(f"sample: {x.shape[0]} embeddings of dim {x.shape[1]}, "
               f"{len(np.unique(gt))} identities ({feat_path.parent})")
    # no progress bars here: under `2>&1` they would interleave with the table
    quiet = os.environ.get("FACECLUST_PROGRESS")
    os.environ["FACECLUST_PROGRESS"] = "0"
    try:
        _demo_table(x, gt, names, ests, k)
    finally:
        if quiet is None:
            os.environ.pop("FACECLUST_PROGRESS", None)
        else:
            os.environ["FACECLUST_PROGRESS"] = quiet


def _demo_table(x: np.ndarray, gt: np.ndarray, names: list[str], ests: list, k: int) -> None:
    from ..metrics import evaluate

    t0 = time.perf_counter()
    graph = build_knn(x, k=min(k, x.shape[0] - 1))
    click.echo(f"kNN graph k={graph.k}: {time.perf_counter() - t0:.2f} s\n")
    header = f"{'method':<18}{'pair P':>8}{'pair R':>8}{'pair F':>8}{'BCub F':>8}{'NMI':>8}{'#clu':>7}{'sec':>7}"
    click.echo(header)
    click.echo("-" * len(header))
    for name, est in zip(names, ests, strict=True):
        t0 = time.perf_counter()
        labels = est.fit(x, knn=graph if est.uses_knn else None).labels_
        secs = time.perf_counter() - t0
        m = evaluate(gt, labels)
        click.echo(f"{name:<18}{m['pairwise_precision']:>8.4f}{m['pairwise_recall']:>8.4f}"
                   f"{m['pairwise_f']:>8.4f}{m['bcubed_f']:>8.4f}{m['nmi']:>8.4f}"
                   f"{m['n_clusters']:>7d}{secs:>7.2f}")
    sys.stdout.flush()
