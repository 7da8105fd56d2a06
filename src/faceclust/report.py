"""Benchmark report: Markdown tables and PNG plots from the JSON files in ``benchmarks/results``.

Reads what the benchmark scripts wrote (``scale_*.json`` from
``benchmarks/bench_scale.py``, ``calibration.json`` from
``benchmarks/calibrate_hist.py``, ``bench_metrics*.json`` and an optional
hand-written ``notes.md``) and writes ``benchmarks.md`` plus ``img/*.png``
into an output directory. Nothing is re-measured: the report is a pure
function of the results, so it can be regenerated anywhere
(``faceclust bench --report docs``). Every file is written atomically.

matplotlib is imported only when plotting (``pip install faceclust[report]``);
without it :func:`write_report` raises a one-line :class:`~faceclust.errors.FaceclustError`.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from .errors import FaceclustError, InputError
from .fsutil import atomic_write

__all__ = ["TARGETS", "load_results", "render_markdown", "write_report"]

#: Targets of the scale benchmark (2-core 24 GiB machine).
TARGETS = {
    "584K end-to-end": (180.0, 4.0),  # seconds, GB
    "584K clustering stages": (15.0, None),
    "5.21M end-to-end": (40 * 60.0, 20.0),
    "5.2M metrics": (2.0, None),
}
STAGES = ("load", "knn", "refine", "select", "partition", "eval")
_COLORS = {"load": "#999999", "knn": "#1f77b4", "refine": "#ff7f0e", "select": "#2ca02c",
           "partition": "#d62728", "eval": "#9467bd", "recall": "#8c564b"}


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: cannot read benchmark result ({exc})") from None


def load_results(results_dir: str | Path) -> dict:
    """Collect the benchmark JSON files of ``results_dir``.

    Returns ``{"scale": [run, ...] sorted by (n, index), "default_scale": [run, ...]
    (``benchmarks/bench_default_scale.py``), "calibration": dict | None,
    "metrics": [dict, ...], "notes": str}``.
    """
    d = Path(results_dir)
    if not d.is_dir():
        raise InputError(f"{d}: results directory not found")
    scale = [_read_json(p) for p in sorted(d.glob("scale_*.json"))]
    scale = [r for r in scale if "stages" in r and "n" in r]
    scale.sort(key=lambda r: (r["n"], r.get("index", ""), r.get("tag", "")))
    default_scale = [_read_json(p) for p in sorted(d.glob("scale_default_*.json"))]
    default_scale = [r for r in default_scale if "n" in r and ("default" in r or "fces" in r)]
    cal = d / "calibration.json"
    metrics = [_read_json(p) for p in sorted(d.glob("bench_metrics*.json"))]
    notes = (d / "notes.md").read_text() if (d / "notes.md").is_file() else ""
    if not scale and not cal.is_file():
        raise InputError(f"{d}: no scale_*.json or calibration.json to report on")
    return {"scale": scale, "default_scale": default_scale,
            "calibration": _read_json(cal) if cal.is_file() else None,
            "metrics": metrics, "notes": notes}


# ------------------------------------------------------------------ formatting
def _n_label(n: int) -> str:
    return f"{n / 1e6:.2f}M" if n >= 1_000_000 else f"{n / 1e3:.0f}K"


def _run_label(r: dict) -> str:
    p = r["stages"].get("knn", {}).get("params", {})
    idx = r.get("index", "?")
    if idx in ("ivf", "ivf-blas"):
        idx += f" {p.get('nlist', '?')}/{p.get('nprobe', '?')}"
    elif idx == "hnsw":
        idx += f" M{p.get('hnsw_m', '?')} ef{p.get('ef_search', '?')}"
    cap = r.get("fces", {}).get("max_links")
    if cap:
        idx += f", max_links {cap}"
    if _cached(r):
        idx += " (cached kNN)"
    return f"{_n_label(r['n'])} {idx}"


def _recall(r: dict) -> str:
    v = r.get("recall")
    return "–" if v is None else f"{v:.3f}"


def _sec(v: float | None) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    return f"{v:.0f}" if v >= 100 else f"{v:.1f}" if v >= 10 else f"{v:.2f}"


def _stage_s(r: dict, stage: str) -> float | None:
    s = r["stages"].get(stage)
    return None if s is None else float(s["seconds"])


def _load(r: dict) -> str:
    la = r.get("machine_start", {}).get("loadavg")
    lb = r.get("machine_end", {}).get("loadavg")
    if not la:
        return "–"
    return f"{la[0]:.1f}" + (f" → {lb[0]:.1f}" if lb else "")


def _power_fit(ns: list[float], ys: list[float]) -> tuple[float, float] | None:
    """Least-squares fit ``log y = a + b log n``; None with fewer than 2 distinct n."""
    pts = [(math.log(n), math.log(y)) for n, y in zip(ns, ys, strict=True) if y and y > 0]
    if len({p[0] for p in pts}) < 2:
        return None
    mx = sum(p[0] for p in pts) / len(pts)
    my = sum(p[1] for p in pts) / len(pts)
    sxx = sum((p[0] - mx) ** 2 for p in pts)
    b = sum((p[0] - mx) * (p[1] - my) for p in pts) / sxx
    return my - b * mx, b


def _cached(r: dict) -> bool:
    """True when the run re-used a cached kNN graph (its kNN seconds are a file load)."""
    return bool(r["stages"].get("knn", {}).get("params", {}).get("cached"))


def _scaling_runs(scale: list[dict]) -> list[dict]:
    """One run per N for the scaling plot/extrapolation: the IVF run (else the first)."""
    by_n: dict[int, dict] = {}
    for r in scale:
        if _cached(r):
            continue
        cur = by_n.get(r["n"])
        if cur is None or (r.get("index") == "ivf" and cur.get("index") != "ivf"):
            by_n[r["n"]] = r
    return [by_n[n] for n in sorted(by_n)]


def extrapolate(scale: list[dict], n_target: int) -> dict:
    """Power-law extrapolation of each stage's seconds and of peak RSS to ``n_target``."""
    runs = _scaling_runs(scale)
    ns = [r["n"] for r in runs]
    out: dict = {"from_n": ns}
    for key in (*STAGES, "end_to_end", "peak_rss_gb"):
        if key == "end_to_end":
            ys = [r.get("end_to_end_s") for r in runs]
        elif key == "peak_rss_gb":
            ys = [r.get("peak_rss_gb") for r in runs]
        else:
            ys = [_stage_s(r, key) for r in runs]
        if any(y is None for y in ys):
            continue
        fit = _power_fit(ns, ys)
        if fit:
            a, b = fit
            out[key] = (math.exp(a + b * math.log(n_target)), b)
    return out


def render_markdown(res: dict, img: str = "img", command: str = "") -> str:
    """The report text (plots are referenced as ``img/<name>.png``)."""
    scale, cal = res["scale"], res["calibration"]
    L: list[str] = ["# Benchmarks", ""]
    L += ["Generated from the JSON files in `benchmarks/results/` by one command:", "",
          "```sh", command or "faceclust bench --report docs", "```", "",
          "The measurements themselves are re-run with the commands in "
          "[Reproducing](#reproducing). Timings are wall seconds; memory is the peak "
          "resident set size (RSS) of the whole benchmark process, sampled every 50 ms.", ""]
    if scale:
        m = scale[-1].get("machine_start", {})
        L += ["## Machine", "",
              f"- CPU: {m.get('cpu_model', '?')}; `nproc` = {m.get('nproc', '?')}; "
              f"memory {m.get('mem_total_gb', '?')} GiB (`free -g` total); {m.get('platform', '')}, "
              f"Python {m.get('python', '')}, numpy {m.get('numpy', '')}.",
              "- **Shared machine**: other jobs ran concurrently; the 1-minute load average "
              "(`uptime`) at the start → end of each run is listed next to its timings. With a "
              "load of L on 2 cores a CPU-bound stage gets roughly 2/L of the machine, so wall "
              "times are upper bounds of what an idle machine gives.", ""]
    if cal:
        L += _calibration_md(cal, img)
    if scale:
        L += _targets_md(res)
        L += _runs_md(scale, img)
    if res["notes"]:
        L += [res["notes"].rstrip(), ""]
    L += _reproducing_md(scale)
    return "\n".join(L) + "\n"


def _reproducing_md(scale: list[dict]) -> list[str]:
    """The commands behind every number (data prefixes as recorded in the results)."""
    L = ["## Reproducing", "",
         "Everything (hours on 2 cores): `sh benchmarks/run_scale.sh` (data and kNN caches in "
         "`$FCBENCH`, default `/tmp/fcbench`), then the report command at the top. One run:", "",
         "```sh",
         "faceclust synth --n 584013 --ids 8573 --seed 0 --out /tmp/fcbench/part1   # MS1M part1 size",
         "python benchmarks/bench_scale.py --data /tmp/fcbench/part1 --index ivf --nlist 4096 "
         "--nprobe 24 --cache /tmp/fcbench/cache",
         "python benchmarks/calibrate_hist.py          # calibration.json (histograms, precision@k)",
         "python benchmarks/bench_metrics_scale.py --gt /tmp/fcbench/part9.meta",
         "faceclust bench --report docs", "```", "",
         "MS1M sizes: part1 584,013 / 8,573 ids; part3 1,740,301 / 25,719; part5 2,890,517 / 42,865; "
         "part7 4,046,365 / 60,011; part9 5,206,761 / 77,157 (`--n` / `--ids`, 256-d).", ""]
    if scale:
        L += ["Runs in this report:", ""]
        for r in scale:
            p = r["stages"].get("knn", {}).get("params", {})
            opts = "".join(f" --{k.replace('_', '-')} {p[k]}" for k in ("nlist", "nprobe") if k in p)
            if r.get("fces", {}).get("max_links"):
                opts += f" --max-links {r['fces']['max_links']}"
            if _cached(r):
                opts += f" --cache DIR --recall-sample 0 --tag {r.get('tag', '')}  # kNN graph from the cache"
            L.append(f"- `{r.get('tag', '')}`: `python benchmarks/bench_scale.py --data {r.get('data', '?')} "
                     f"--index {r.get('index', '?')}{opts}` (git {r.get('git', '?')}, "
                     f"{r.get('machine_start', {}).get('time_utc', '?')})")
        L.append("")
    return L


def _calibration_md(cal: dict, img: str) -> list[str]:
    L = ["## Synthetic data vs real face embeddings", "",
         "`faceclust synth` (ArcFace-like preset) against the real 512-d LFW features "
         "(`/work/shared/data/lfw/arcface512_features.npy`): intra-/inter-identity cosine "
         "histograms and kNN precision@k (exact kNN; rows whose identity has more than k "
         "samples).", "", f"![calibration]({img}/calibration.png)", "",
         "| set | n | dim | ids | intra cos mean ± std | inter cos mean ± std | prec@1 | prec@10 | prec@50 |",
         "|---|---:|---:|---:|---|---|---:|---:|---:|"]
    for name, d in cal["sets"].items():
        p = d["prec_at_k"]

        def f(v):
            return "–" if v is None else f"{v:.3f}"

        L.append(f"| {name} | {d['n']} | {d['dim']} | {d['n_ids']} | {d['intra_mean']:.3f} ± "
                 f"{d['intra_std']:.3f} | {d['inter_mean']:.3f} ± {d['inter_std']:.3f} | "
                 f"{f(p[0])} | {f(p[9])} | {f(p[49])} |")
    return L + [""]


def _targets_md(res: dict) -> list[str]:
    scale = res["scale"]
    L = ["## Targets", "",
         "| target | limit | measured | met? |", "|---|---|---|---|"]

    def pick(n: int, capped: bool) -> dict | None:
        full = [r for r in scale if r["n"] == n and not _cached(r)
                and bool(r.get("fces", {}).get("max_links")) == capped]
        cands = [r for r in full if r.get("recall", 0) >= 0.95 and r.get("index") != "flat"]
        cands = cands or [r for r in full if r.get("index") != "flat"]
        return min(cands, key=lambda r: r["end_to_end_s"]) if cands else None

    for capped in (False, True):  # the published FC-ES, then with its link cap
        r = pick(584_013, capped)
        if r is None:
            continue
        e2e, mem, cl = r["end_to_end_s"], r["peak_rss_gb"], r["clustering_s"]
        rec = r.get("recall", float("nan"))
        L.append(f"| 584K end-to-end, kNN recall@80 ≥ 0.95 + fc-es | ≤ 180 s, ≤ 4 GB | {e2e:.0f} s, "
                 f"{mem:.2f} GB ({_run_label(r)}, recall {rec:.3f}, load {_load(r)}) | "
                 f"{'yes' if e2e <= 180 and mem <= 4 else 'no'} |")
        cpu = [r["stages"].get(st, {}).get("cpu_seconds") for st in ("refine", "select", "partition")]
        cpu_txt = f", {sum(cpu):.1f} CPU-s" if None not in cpu else ""
        L.append(f"| 584K clustering stages ({_run_label(r)}) | ≤ 15 s | {cl:.1f} s wall"
                 f"{cpu_txt} (load {_load(r)}) | {'yes' if cl <= 15 else 'no'} |")
    L += _big_targets_md(scale, res.get("default_scale", []))
    for m in res["metrics"]:
        if m.get("n", 0) >= 5_000_000 and "seconds" in m:
            s = m["seconds"]
            cpu = m.get("cpu_seconds")
            la = m.get("loadavg", [float("nan")])[0]
            extra = f" wall, {cpu:.2f} s CPU at load {la:.1f}" if cpu is not None else ""
            ok = (cpu if cpu is not None else s) <= 2
            L.append(f"| metrics (`evaluate`) on {_n_label(m['n'])} | ≤ 2 s | {s:.2f} s{extra} | "
                     f"{'yes' if ok else 'no'} |")
    return L + [""]


def _big_targets_md(scale: list[dict], default_scale: list[dict]) -> list[str]:
    """The 5.21M rows: the default command and FC-ES as measured by bench_default_scale.py
    (the fastest run of each), else bench_scale.py's runs or their extrapolation."""
    L = []
    big = [r for r in default_scale if r["n"] >= 5_000_000]
    runs = [r for r in big if "default" in r]
    if runs:
        r = min(runs, key=lambda r: r["default"]["seconds"])
        d = r["default"]
        rec = d.get("recall", {}).get("recall", float("nan"))
        ok = d["seconds"] <= 15 * 60 and d["peak_rss_gb"] <= 16 and rec >= 0.95
        L.append(f"| 5.21M default (`faceclust cluster`, no flags) | ≤ 15 min, ≤ 16 GB, recall@20 ≥ 0.95 | "
                 f"{d['seconds'] / 60:.1f} min, {d['peak_rss_gb']:.2f} GB, recall {rec:.3f} "
                 f"(load {_load(r)}) | {'yes' if ok else 'no'} |")
    runs = [r for r in big if "fces" in r]
    if runs:
        r = min(runs, key=lambda r: r["fces"]["with_knn_s"])
        f, kn = r["fces"], r["fces_knn"]
        peak = max(f["peak_rss_gb"], kn["peak_rss_gb"])
        ok = f["with_knn_s"] <= 40 * 60 and peak <= 20
        cap = " with a memory link cap" if f.get("warnings") else ""
        L.append(f"| 5.21M fc-es (k 80, graph cached and reused){cap} | ≤ 40 min, ≤ 20 GB | "
                 f"{f['with_knn_s'] / 60:.1f} min, {peak:.2f} GB, recall@80 {kn.get('recall', float('nan')):.3f} "
                 f"(load {_load(r)}) | {'yes' if ok else 'no'} |")
        return L
    old = [r for r in scale if r["n"] >= 5_000_000 and not _cached(r)]
    if old:
        r = min(old, key=lambda r: r["end_to_end_s"])
        L.append(f"| 5.21M end-to-end | ≤ 40 min, ≤ 20 GB | {r['end_to_end_s'] / 60:.1f} min, "
                 f"{r['peak_rss_gb']:.1f} GB | "
                 f"{'yes' if r['end_to_end_s'] <= 2400 and r['peak_rss_gb'] <= 20 else 'no'} |")
    else:
        ex = extrapolate(scale, 5_206_761)
        if "end_to_end" in ex:
            L.append(f"| 5.21M end-to-end | ≤ 40 min, ≤ 20 GB | not run to the end; **extrapolated** "
                     f"{ex['end_to_end'][0] / 60:.0f} min, {ex.get('peak_rss_gb', (float('nan'),))[0]:.1f} GB "
                     f"(power law over N = {', '.join(_n_label(n) for n in ex['from_n'])}) | see below |")
    return L


def _runs_md(scale: list[dict], img: str) -> list[str]:
    L = ["## Stage timings and peak memory", "",
         "One row per run of `benchmarks/bench_scale.py` (FC-ES: k = 80, σ = 0.5, θ = 0.22). "
         "`recall` (recall@80 against exact search on 500 rows) is a check, not a pipeline "
         "stage. End-to-end = load + kNN + clustering; clustering = refine + select + partition "
         "(+ the 1-2 s locality renumbering in runs from ivf-blas on). Cells are wall seconds, "
         "with the process's CPU seconds (all threads) in brackets where recorded: on the loaded "
         "machine CPU seconds / 2 cores is closer to what an idle 2-core machine gives.", "",
         "| run | recall@80 | load | kNN | refine (NEP) | select | partition (Infomap) | eval | "
         "clustering | end-to-end | peak RSS GB | load avg |",
         "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in scale:
        cells = [_sec(_stage_s(r, s)) for s in STAGES]
        for i, st in enumerate(STAGES):
            cpu = r["stages"].get(st, {}).get("cpu_seconds")
            if cpu is not None:
                cells[i] += f" ({_sec(cpu)})"
        if _cached(r):
            cells[1] += " (cached)"
        L.append(f"| {_run_label(r)} | {_recall(r)} | " + " | ".join(cells)
                 + f" | {_sec(r['clustering_s'])} | {_sec(r['end_to_end_s'])} | "
                 f"{r['peak_rss_gb']:.2f} | {_load(r)} |")
    L += ["", f"![time per stage]({img}/stages.png)", "",
          "## Quality cost of approximate kNN", "",
          "| run | recall@80 | pairwise P | pairwise R | pairwise F | BCubed F | NMI | clusters |",
          "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in scale:
        m = r.get("metrics", {})
        if not m:
            continue
        L.append(f"| {_run_label(r)} | {_recall(r)} | "
                 f"{m['pairwise_precision']:.4f} | {m['pairwise_recall']:.4f} | "
                 f"{m['pairwise_f']:.4f} | {m['bcubed_f']:.4f} | {m['nmi']:.4f} | {m['n_clusters']} |")
    L += ["", f"![F-score per kNN method]({img}/fscore.png)", "",
          "## Scaling with N", "", f"![time and memory vs N]({img}/scaling.png)", ""]
    ex = extrapolate(scale, 5_206_761)
    if len(ex.get("from_n", [])) >= 2:
        loads = [v for r in _scaling_runs(scale) for v in
                 (r.get("machine_start", {}).get("loadavg", [None])[0],
                  r.get("machine_end", {}).get("loadavg", [None])[0]) if v is not None]
        lo_hi = f"{min(loads):.0f}–{max(loads):.0f}" if loads else "?"
        L += [f"**Extrapolation** (power law `t = a·N^b` fitted on N = "
              f"{', '.join(_n_label(n) for n in ex['from_n'])}; not a measurement) to N = 5.21M. "
              f"The fitted times are wall times at load average {lo_hi} on 2 cores: an idle "
              "machine runs the CPU-bound stages several times faster (see the notes), so read "
              "the exponents more than the absolute values:", "",
              "| quantity | exponent b | extrapolated at 5.21M |", "|---|---:|---:|"]
        for key in (*STAGES, "end_to_end", "peak_rss_gb"):
            if key in ex:
                v, b = ex[key]
                val = f"{v:.1f} GB" if key == "peak_rss_gb" else f"{v:.0f} s ({v / 60:.1f} min)"
                L.append(f"| {key} | {b:.2f} | {val} |")
        L.append("")
    return L


# ------------------------------------------------------------------ plots
def _plt():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise FaceclustError(
            "the benchmark report needs matplotlib: pip install 'faceclust[report]' (or pip install matplotlib)"
        ) from None
    return plt


def _save(fig, path: Path) -> None:
    with atomic_write(path) as f:
        fig.savefig(f, format="png", dpi=80, bbox_inches="tight")


def _plot_calibration(plt, cal: dict, path: Path) -> None:
    bins = cal["bins"]
    mids = [(a + b) / 2 for a, b in zip(bins[:-1], bins[1:], strict=True)]
    names = list(cal["sets"])
    fig, axes = plt.subplots(1, len(names) + 1, figsize=(4 * (len(names) + 1), 3.2))
    for ax, name in zip(axes, names, strict=False):
        d = cal["sets"][name]
        ax.fill_between(mids, d["inter_hist"], step="mid", alpha=0.5, label="different identity")
        ax.fill_between(mids, d["intra_hist"], step="mid", alpha=0.5, label="same identity")
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("cosine")
        ax.set_xlim(bins[0], bins[-1])
    axes[0].set_ylabel("density")
    axes[0].legend(fontsize=7)
    ax = axes[-1]
    for name in names:
        p = cal["sets"][name]["prec_at_k"]
        ks = [k for k, v in zip(cal["ks"], p, strict=True) if v is not None]
        ax.plot(ks, [v for v in p if v is not None], label=name)
    ax.set_xlabel("k")
    ax.set_ylabel("kNN precision@k")
    ax.set_title("kNN precision", fontsize=9)
    ax.legend(fontsize=6)
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)


def _plot_stages(plt, scale: list[dict], path: Path) -> None:
    labels = [_run_label(r) for r in scale]
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(scale) + 1.2))
    left = [0.0] * len(scale)
    for st in STAGES:
        vals = [_stage_s(r, st) or 0.0 for r in scale]
        ax.barh(labels, vals, left=left, color=_COLORS[st], label=st)
        left = [a + b for a, b in zip(left, vals, strict=True)]
    ax.set_xlabel("wall seconds (stacked by stage; machine load in the table)")
    ax.invert_yaxis()
    ax.legend(fontsize=7, ncol=6, loc="lower left", bbox_to_anchor=(0, 1.0))
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)


def _plot_fscore(plt, scale: list[dict], path: Path) -> None:
    runs = [r for r in scale if r.get("metrics")]
    labels = [f"{_run_label(r)}\nrecall {_recall(r)}".replace(", ", "\n").replace(" (", "\n(") for r in runs]
    x = list(range(len(runs)))
    fig, ax = plt.subplots(figsize=(max(5, 1.3 * len(runs)), 3.4))
    ax.bar([i - 0.2 for i in x], [r["metrics"]["pairwise_f"] for r in runs], 0.4, label="pairwise F")
    ax.bar([i + 0.2 for i in x], [r["metrics"]["bcubed_f"] for r in runs], 0.4, label="BCubed F")
    ax.set_xticks(x)
    ax.set_xticklabels(labels, fontsize=7)
    lo = min([r["metrics"]["pairwise_f"] for r in runs] + [r["metrics"]["bcubed_f"] for r in runs])
    ax.set_ylim(max(0.0, lo - 0.05), 1.0)
    ax.set_ylabel("F-score (fc-es)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)


def _plot_scaling(plt, scale: list[dict], path: Path) -> None:
    runs = _scaling_runs(scale)
    ns = [r["n"] for r in runs]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.6))
    series = [("end-to-end", [r["end_to_end_s"] for r in runs], "k")]
    series += [(st, [_stage_s(r, st) for r in runs], _COLORS[st]) for st in ("knn", "refine", "partition", "eval")]
    n_big = 5_206_761
    for name, ys, c in series:
        if any(y is None for y in ys):
            continue
        a1.plot(ns, ys, "o-", color=c, label=name)
        fit = _power_fit(ns, ys)
        if fit and max(ns) < n_big:
            a, b = fit
            a1.plot([max(ns), n_big], [ys[-1], math.exp(a + b * math.log(n_big))], ":", color=c)
    a1.axhline(2400, color="r", lw=0.8, ls="--")
    a1.text(2.5e4, 2400 * 1.1, "40 min target (5.21M)", fontsize=7, color="r")
    a1.axhline(180, color="r", lw=0.8, ls="--")
    a1.text(2.5e4, 180 * 1.1, "180 s target (584K)", fontsize=7, color="r")
    a1.set_xscale("log")
    a1.set_yscale("log")
    a1.set_xlabel("N (log)")
    a1.set_ylabel("wall seconds (log)")
    a1.set_title("time vs N (dotted: extrapolation)", fontsize=9)
    a1.legend(fontsize=7)
    mem = [r["peak_rss_gb"] for r in runs]
    a2.plot(ns, mem, "o-", color="k", label="peak RSS")
    fit = _power_fit(ns, mem)
    if fit and max(ns) < n_big:
        a, b = fit
        a2.plot([max(ns), n_big], [mem[-1], math.exp(a + b * math.log(n_big))], "k:")
    a2.axhline(20, color="r", lw=0.8, ls="--")
    a2.axhline(4, color="r", lw=0.8, ls="--")
    a2.set_xscale("log")
    a2.set_yscale("log")
    a2.set_yticks([0.25, 0.5, 1, 2, 4, 8, 20])
    a2.set_yticklabels(["0.25", "0.5", "1", "2", "4", "8", "20"])
    a2.set_xlabel("N (log)")
    a2.set_ylabel("GB (log)")
    a2.set_title("peak memory vs N (targets 4 GB @584K, 20 GB @5.21M)", fontsize=9)
    ticks = [3e4, 1e5, 3e5, 1e6, 3e6, n_big]
    for a in (a1, a2):
        a.axvline(n_big, color="grey", lw=0.5)
        a.set_xlim(2e4, 8e6)
        a.set_xticks(ticks)
        a.set_xticklabels([_n_label(int(t)) for t in ticks], fontsize=7)
        a.minorticks_off()
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)


def write_report(
    results_dir: str | Path,
    out_dir: str | Path,
    *,
    md_name: str = "benchmarks.md",
    img_dir: str = "img",
    command: str = "",
) -> list[Path]:
    """Write ``out_dir/md_name`` and ``out_dir/img_dir/*.png`` from ``results_dir``; return their paths."""
    res = load_results(results_dir)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: report directory is a file")
    plt = _plt()
    img = out / img_dir
    img.mkdir(parents=True, exist_ok=True)
    written = []
    if res["calibration"]:
        _plot_calibration(plt, res["calibration"], img / "calibration.png")
        written.append(img / "calibration.png")
    if res["scale"]:
        for name, fn in (("stages", _plot_stages), ("fscore", _plot_fscore), ("scaling", _plot_scaling)):
            fn(plt, res["scale"], img / f"{name}.png")
            written.append(img / f"{name}.png")
    md = out / md_name
    with atomic_write(md, "w") as f:
        f.write(render_markdown(res, img_dir, command))
    return [md, *written]
