"""Run several clustering methods on one labelled data set and tabulate quality, time and memory.

One kNN graph is built (index auto: exact up to 100,000 points, ivf-blas above;
with the largest ``k`` any selected method
asks for) or a cached one is used, and every method gets it (truncated to its
own ``k``). For each method the report holds the metrics of
:func:`faceclust.metrics.evaluate`, wall seconds in total and per stage
(``stage_seconds_``), and peak memory: the highest **resident set size of
the whole process** seen by a thread sampling it every 50 ms while the method
runs (:func:`faceclust._resources.measure`), minus the RSS when the method
started. It is a per-method *increase*, so the shared kNN graph is not
counted again; memory freed by an earlier method and re-used by the
allocator can make it an underestimate, and a peak shorter than 50 ms can be
missed. A method that raises is reported with its error, never a crash.

>>> from faceclust.bench import run_bench  # doctest: +SKIP
>>> report = run_bench(x, gt, ["knn-cc", "hac"], {"hac": {"k": 30}})  # doctest: +SKIP
>>> print(report.to_markdown())  # doctest: +SKIP
"""

from __future__ import annotations

import json
import math
import platform
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ._resources import measure
from ._validation import check_features, check_labels
from .errors import InputError, ParameterError
from .fsutil import write_text
from .knn import KnnGraph, build_knn
from .methods import METHODS, BaseClusterer, make_method

__all__ = ["BenchReport", "BenchResult", "default_methods", "make_estimators", "run_bench"]

METRIC_KEYS: tuple[str, ...] = (
    "pairwise_precision", "pairwise_recall", "pairwise_f",
    "bcubed_precision", "bcubed_recall", "bcubed_f", "nmi", "n_clusters", "n_samples",
)


def _is_supervised(cls: type[BaseClusterer]) -> bool:
    """True for methods that need a trained model (they are left out of the default list)."""
    if getattr(cls, "supervised", False):
        return True
    try:
        params = cls().get_params()
    except Exception:  # noqa: BLE001 - a class that cannot be built with defaults is skipped
        return True
    return "model" in params


def default_methods() -> list[str]:
    """Every registered unsupervised method, sorted by name."""
    return sorted(name for name, cls in METHODS.items() if not _is_supervised(cls))


@dataclass
class BenchResult:
    """One method's outcome; ``error`` is set (and ``metrics`` empty) when it failed.

    ``explain`` and ``threshold`` are the method's own account of what it chose
    (``explain_``, ``threshold_``: ``auto`` estimates its threshold), empty / None
    for methods without them.
    """

    method: str
    params: dict
    metrics: dict = field(default_factory=dict)
    seconds: float = 0.0
    stage_seconds: dict = field(default_factory=dict)
    peak_rss_mb: float = 0.0
    error: str | None = None
    note: str = ""
    explain: str = ""
    threshold: float | None = None


@dataclass
class BenchReport:
    """Everything ``faceclust bench`` writes: data set, kNN graph and one result per method."""

    dataset: dict
    knn: dict
    results: list[BenchResult]
    machine: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """JSON-serialisable form (``bench.json``)."""
        return {
            "dataset": self.dataset,
            "knn": self.knn,
            "machine": self.machine,
            "results": [_json_safe(asdict(r)) for r in self.results],
        }

    def to_json(self) -> str:
        """``bench.json`` text."""
        return json.dumps(self.to_dict(), indent=2, allow_nan=True) + "\n"

    def to_markdown(self) -> str:
        """A Markdown summary: one line on the data and graph, then one table row per method."""
        d, g = self.dataset, self.knn
        lines = [
            f"Data: {d.get('name', '')} N={d['n_samples']} D={d['dim']} "
            f"classes={d['n_classes']}. kNN: k={g.get('k')} ({g.get('source')}, "
            f"{g.get('seconds', 0.0):.2f} s).",
            "",
            "| method | params | pair P | pair R | pair F | BCubed P | BCubed R | BCubed F "
            "| NMI | clusters | seconds | peak MB | stages (s) |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
        ]
        for r in self.results:
            params = ", ".join(f"{k}={v}" for k, v in r.params.items()) or "defaults"
            if r.note:
                params += f" ({r.note})"
            if r.error is not None:
                err = r.error.replace("|", "/")
                lines.append(f"| {r.method} | {params} | error: {err} |" + " |" * 10)
                continue
            m = r.metrics
            stages = ", ".join(f"{k} {v:.2f}" for k, v in r.stage_seconds.items())
            cells = [f"{m[k]:.4f}" for k in METRIC_KEYS[:7]]
            lines.append(
                f"| {r.method} | {params} | " + " | ".join(cells)
                + f" | {m['n_clusters']} | {r.seconds:.2f} | {r.peak_rss_mb:.0f} | {stages} |"
            )
        return "\n".join(lines) + "\n"


def _json_safe(obj):
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if obj is None or isinstance(obj, bool | int | float | str):
        return obj
    return repr(obj)


def make_estimators(
    methods: Sequence[str], params: Mapping[str, Mapping[str, object]] | None = None
) -> list[tuple[str, dict, BaseClusterer]]:
    """Instantiate each method with its parameters; unknown names or keys raise ParameterError.

    Returns ``(name, given_params, estimator)`` triples. Parameter *values*
    are checked later, when the method runs (a bad value becomes an error row).
    """
    params = dict(params or {})
    names = [m.strip() for m in methods if m.strip()]
    if not names:
        raise ParameterError("methods: no method given")
    dup = sorted({m for m in names if names.count(m) > 1})
    if dup:
        raise ParameterError(f"methods: {', '.join(dup)} listed more than once")
    extra = sorted(set(params) - set(names))
    if extra:
        raise ParameterError(
            f"--set given for {', '.join(extra)}, which is not among the methods run "
            f"({', '.join(names)})"
        )
    out = []
    for name in names:
        given = dict(params.get(name, {}))
        out.append((name, given, make_method(name, given)))
    return out


def run_bench(
    features: np.ndarray,
    gt: np.ndarray,
    methods: Sequence[str] | None = None,
    params: Mapping[str, Mapping[str, object]] | None = None,
    *,
    knn: KnnGraph | None = None,
    name: str = "",
    progress_bar: bool | None = None,
) -> BenchReport:
    """Run ``methods`` (default: every unsupervised one) on ``features`` and score them on ``gt``.

    Parameters
    ----------
    features:
        ``[N, D]`` embeddings (L2-normalised here).
    gt:
        ``[N]`` ground-truth identity labels.
    methods:
        Registered method names.
    params:
        ``{method: {param: value}}`` overrides. ``kmeans`` gets
        ``n_clusters`` = the number of ground-truth classes unless given (an
        oracle, as learn-to-cluster's script; the row says so).
    knn:
        A precomputed graph for all graph methods; otherwise one is built once
        (index auto: exact up to 100,000 points, ivf-blas above) with the largest ``k`` among the methods (capped at N - 1).
    """
    from .metrics import evaluate

    x = check_features(features, source="features")
    n = x.shape[0]
    gt = check_labels(gt, n, source="gt labels")
    n_classes = int(len(np.unique(gt)))
    params = {m: dict(p) for m, p in (params or {}).items()}
    names = list(methods) if methods else default_methods()
    notes: dict[str, str] = {}
    for m in names:
        if m.strip() == "kmeans" and "n_clusters" not in params.get("kmeans", {}):
            params.setdefault("kmeans", {})["n_clusters"] = n_classes
            notes["kmeans"] = "n_clusters = gt classes, oracle"
    ests = make_estimators(names, params)

    graph_info: dict = {}
    graph = knn
    if any(est.uses_knn for _, _, est in ests):
        if graph is not None:
            if graph.n != n:
                raise InputError(f"kNN graph has {graph.n} rows but features have {n}")
            graph_info = {"k": graph.k, "source": graph.meta.get("source", "given"),
                          "seconds": 0.0}
        else:
            ks = [int(est.get_params()["k"]) for _, _, est in ests
                  if est.uses_knn and isinstance(est.get_params().get("k"), int)]
            k = max(2, min(max(ks, default=80), n - 1))
            with measure() as usage:
                graph = build_knn(x, k=k, progress_bar=progress_bar)
            graph_info = {"k": graph.k, "source": f"built, {graph.meta.get('index', '')}",
                          "seconds": usage.seconds,
                          "peak_rss_mb": usage.peak_delta_gb * 1024}

    results = []
    for name_, given, est in ests:
        result = BenchResult(method=name_, params=given, note=notes.get(name_, ""))
        try:
            with measure() as usage:
                labels = est.fit(x, knn=graph if est.uses_knn else None).labels_
            result.seconds = usage.seconds
            result.peak_rss_mb = usage.peak_delta_gb * 1024
            result.stage_seconds = dict(getattr(est, "stage_seconds_", {}))
            result.metrics = evaluate(gt, labels)
            result.explain = str(getattr(est, "explain_", ""))
            thr = getattr(est, "threshold_", None)
            result.threshold = float(thr) if isinstance(thr, int | float | np.floating) else None
        except Exception as exc:  # noqa: BLE001 - reported as an error row
            result.error = f"{type(exc).__name__}: {' '.join(str(exc).split())}"[:300]
        results.append(result)

    dataset = {"name": name, "n_samples": n, "dim": int(x.shape[1]), "n_classes": n_classes}
    machine = {"python": platform.python_version(), "platform": platform.platform(),
               "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    return BenchReport(dataset=dataset, knn=graph_info, results=results, machine=machine)


def write_report(report: BenchReport, out_dir: str | Path) -> tuple[Path, Path]:
    """Write ``bench.md`` and ``bench.json`` into ``out_dir`` (created if missing), atomically."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: --out must be a directory, found a file")
    return write_text(out / "bench.md", report.to_markdown()), write_text(
        out / "bench.json", report.to_json()
    )
