"""``faceclust bench``: run several methods on one labelled set; Markdown table + JSON."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ..errors import ParameterError
from ._app import main


def _parse_method_settings(items: tuple[str, ...]) -> dict[str, dict[str, object]]:
    """``method.key=value`` strings to ``{method: {key: value}}`` (values as Python literals)."""
    from ..params import parse_set

    out: dict[str, dict[str, object]] = {}
    for item in items:
        target, sep, _ = item.partition("=")
        method, dot, key = target.strip().rpartition(".")
        if not sep or not dot or not method or not key:
            raise ParameterError(f"--set expects method.key=value (e.g. hac.k=30), got {item!r}")
        value = parse_set((f"{key}={item.partition('=')[2]}",))
        out.setdefault(method, {}).update(value)
    return out


@main.command("bench")
@click.argument("features", type=click.Path(dir_okay=False), required=False)
@click.option("--gt", default=None, type=click.Path(dir_okay=False),
              help="Ground-truth labels (.meta text or .npy), one per row.")
@click.option("--knn", "knn_path", type=click.Path(dir_okay=False), default=None,
              help="Precomputed kNN graph shared by all methods (default: build one with the "
                   "largest k needed, index auto: exact up to 100,000 points, ivf-blas above).")
@click.option("--dim", type=int, default=None, help="Feature dimension of a raw .bin file.")
@click.option("--methods", "method_list", default=None,
              help="Comma-separated method names (default: every unsupervised method).")
@click.option("--set", "settings", multiple=True, metavar="METHOD.KEY=VALUE",
              help="Method parameter, repeatable (e.g. --set hac.linkage=average).")
@click.option("--out", default=None, type=click.Path(file_okay=False),
              help="Output directory for bench.md and bench.json (created if missing).")
@click.option("--report", "report_dir", default=None, type=click.Path(file_okay=False),
              help="Instead of running: write REPORT/benchmarks.md and REPORT/img/*.png from the "
                   "JSON results in --results (see docs/benchmarks.md).")
@click.option("--results", "results_dir", default="benchmarks/results", show_default=True,
              type=click.Path(file_okay=False), help="Benchmark JSON directory read by --report.")
def bench_cmd(features, gt, knn_path, dim, method_list, settings, out, report_dir, results_dir):
    """Run clustering methods on FEATURES, score them against --gt, and tabulate.

    Prints a Markdown table (pairwise/BCubed P, R, F, NMI, clusters, seconds,
    per-stage seconds, peak memory increase in MB) and writes it to
    OUT/bench.md, with all numbers in OUT/bench.json. A method that fails is
    listed with its error instead of stopping the run, and the exit status is
    then 1 (0 only when every method ran).
    """
    if report_dir is not None:
        from ..report import write_report as write_md_report

        cmd = f"faceclust bench --report {report_dir}"
        if results_dir != "benchmarks/results":
            cmd += f" --results {results_dir}"
        for p in write_md_report(results_dir, report_dir, command=cmd):
            click.echo(f"wrote {p}", err=True)
        return
    if features is None or gt is None or out is None:
        raise ParameterError("bench needs FEATURES, --gt and --out (or --report DIR)")
    from .. import io
    from ..bench import make_estimators, run_bench, write_report
    from ._core import load_features

    params = _parse_method_settings(settings)
    names = [m.strip() for m in method_list.split(",")] if method_list else None
    if names is not None:
        checked = {m: dict(p) for m, p in params.items()}
        if "kmeans" in names:
            checked.setdefault("kmeans", {}).setdefault("n_clusters", 1)
        make_estimators(names, checked)  # fail fast on unknown names / keys
    from ._preflight import check_out_dir, writing

    if names is not None and any(not m for m in names):
        raise ParameterError(f"--methods {method_list!r} has an empty name")
    out_dir = Path(out)
    if out_dir.exists() and not out_dir.is_dir():
        raise ParameterError(f"--out {out}: exists and is not a directory")
    check_out_dir(out_dir)
    x = load_features(features, dim)
    labels = io.read_labels(gt, n=x.shape[0])
    knn = io.read_knn(knn_path, n=x.shape[0]) if knn_path else None
    report = run_bench(x, labels, names, params, knn=knn, name=Path(features).name)
    with writing(out_dir):
        write_report(report, out_dir)
    click.echo(report.to_markdown(), nl=False)
    failed = [r.method for r in report.results if r.error is not None]
    msg = f"wrote {out_dir / 'bench.md'} and {out_dir / 'bench.json'}"
    if failed:
        msg += f"; failed: {', '.join(failed)}"
    click.echo(msg, err=True)
    if failed:
        sys.exit(1)
