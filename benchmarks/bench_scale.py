"""End-to-end FC-ES at MS1M scale on synthetic faces: time and peak RSS of every stage.

Stages, each timed with :func:`faceclust._resources.measure` (wall seconds,
peak RSS of the whole process, sampled every 50 ms):

``load`` (read the features written by ``faceclust synth``), ``knn`` (exact
flat / IVF / HNSW via :func:`faceclust.knn.build_knn`), ``recall`` (recall@k of
the graph against exact search on 500 sampled rows; not part of the pipeline),
``clustering`` (``FCES().fit(None, knn=graph)``, with its own stage times:
``reorder`` for memory locality, ``refine`` = NEP, ``select`` = early stop,
``partition`` = Infomap), ``eval`` (:func:`faceclust.metrics.evaluate`).
``end_to_end_s`` is load + knn + clustering (what ``faceclust cluster --method
fc-es`` does), and ``clustering_s`` is the clustering stage.

    faceclust synth --n 584013 --ids 8573 --seed 0 --out /tmp/fcbench/part1
    python benchmarks/bench_scale.py --data /tmp/fcbench/part1 --index ivf-blas

writes ``benchmarks/results/scale_part1_ivf.json`` (name from the data prefix
and index; ``--tag`` overrides). ``--cache DIR`` keeps the kNN graph (keyed on
the features and every parameter) so a rerun, or an exact graph that took a
quarter of an hour, is re-used; its build time is then the one recorded in the
first run's JSON (``knn.cached`` is set and ``seconds`` is the load time).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("FACECLUST_PROGRESS", "0")

from faceclust._resources import measure  # noqa: E402
from faceclust.fsutil import write_text  # noqa: E402
from faceclust.io import read_labels  # noqa: E402
from faceclust.knn import build_knn, knn_recall  # noqa: E402
from faceclust.metrics import evaluate  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict:
    """CPU model, cores, memory and load average, recorded next to every timing."""
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        import psutil

        mem_gb = psutil.virtual_memory().total / 2**30
    except Exception:  # noqa: BLE001
        mem_gb = float("nan")
    return {
        "cpu_model": model,
        "nproc": os.cpu_count(),
        "mem_total_gb": round(mem_gb, 1),
        "loadavg": [round(v, 2) for v in os.getloadavg()],
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def git_rev() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, cwd=Path(__file__).parent, check=False).stdout.strip()
    except OSError:
        return ""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--data", required=True, help="prefix written by faceclust synth (PREFIX.npy, PREFIX.meta)")
    ap.add_argument("--index", default="ivf-blas", choices=["flat", "ivf", "ivf-blas", "hnsw"])
    ap.add_argument("--k", type=int, default=80)
    ap.add_argument("--nlist", type=int, default=None)
    ap.add_argument("--nprobe", type=int, default=None)
    ap.add_argument("--hnsw-m", type=int, default=32)
    ap.add_argument("--ef-construction", type=int, default=80)
    ap.add_argument("--ef-search", type=int, default=None)
    ap.add_argument("--cache", default=None, help="kNN cache directory (outside the repo)")
    ap.add_argument("--recall-sample", type=int, default=500, help="rows for recall@k (0: skip)")
    ap.add_argument("--sigma", type=float, default=0.5)
    ap.add_argument("--theta", type=float, default=0.22)
    ap.add_argument("--max-links", type=int, default=None, help="fc-es max_links (default: no cap)")
    ap.add_argument("--tag", default=None, help="result name (default: <data name>_<index>)")
    ap.add_argument("--out", default=str(RESULTS))
    args = ap.parse_args()

    from faceclust.methods import FCES

    prefix = Path(args.data)
    tag = args.tag or f"scale_{prefix.name}_{args.index}"
    res: dict = {"tag": tag, "data": str(prefix), "index": args.index, "k": args.k,
                 "fces": {"sigma": args.sigma, "theta": args.theta, "max_links": args.max_links},
                 "machine_start": machine(), "git": git_rev(), "stages": {}}

    cpu0 = [time.process_time()]

    def record(stage: str, u, **extra) -> None:
        cpu = time.process_time()
        res["stages"][stage] = {"seconds": round(u.seconds, 3), "cpu_seconds": round(cpu - cpu0[0], 3),
                                "peak_rss_gb": round(u.peak_rss_gb, 3),
                                "loadavg": [round(v, 2) for v in os.getloadavg()], **extra}
        cpu0[0] = time.process_time()
        more = "".join(f"  {k}={v}" for k, v in extra.items())
        print(f"{stage:<10} {u.seconds:9.2f} s   peak RSS {u.peak_rss_gb:6.2f} GB"
              f"   load {os.getloadavg()[0]:.2f}{more}", flush=True)

    with measure() as u:
        x = np.load(prefix.with_name(prefix.name + ".npy"))
        gt = read_labels(prefix.with_name(prefix.name + ".meta"), n=x.shape[0])
    res["n"], res["dim"] = int(x.shape[0]), int(x.shape[1])
    res["n_ids"] = int(gt.max()) + 1
    record("load", u)

    kw: dict = {}
    if args.index in ("ivf", "ivf-blas"):
        kw = {"nlist": args.nlist, "nprobe": args.nprobe}
    elif args.index == "hnsw":
        kw = {"hnsw_m": args.hnsw_m, "ef_construction": args.ef_construction, "ef_search": args.ef_search}
    with measure() as u:
        graph = build_knn(x, args.k, index=args.index, cache_dir=args.cache, **kw)
    params = {k: v for k, v in graph.meta.items() if k not in ("seconds",)}
    record("knn", u, **{"params": params})
    if args.recall_sample:
        cpu0[0] = time.process_time()
        with measure() as u:
            rec = knn_recall(graph, x, sample=args.recall_sample)
        record("recall", u, recall=round(rec, 4))
        res["recall"] = rec
    del x

    cpu0[0] = time.process_time()
    model = FCES(k=args.k, sigma=args.sigma, theta=args.theta, max_links=args.max_links)
    with measure() as u:
        labels = model.fit_predict(None, knn=graph)
    inner = {k: round(v, 3) for k, v in model.stage_seconds_.items() if k != "knn"}
    print("  " + "  ".join(f"{k} {v:.2f} s" for k, v in inner.items()), flush=True)
    record("clustering", u, clusters=int(labels.max()) + 1, links=int(model.n_links_))
    for stage, seconds in inner.items():  # FCES's own stages, wall seconds only
        res["stages"][stage] = {"seconds": seconds}
    cpu0[0] = time.process_time()
    with measure() as u:
        m = evaluate(gt, labels)
    record("eval", u)
    res["metrics"] = {k: (float(v) if isinstance(v, float | np.floating) else int(v)) for k, v in m.items()}

    st = res["stages"]
    res["clustering_s"] = st["clustering"]["seconds"]
    res["end_to_end_s"] = round(res["clustering_s"] + st["load"]["seconds"] + st["knn"]["seconds"], 3)
    res["peak_rss_gb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 3)
    res["machine_end"] = machine()
    print(f"pairwise F {m['pairwise_f']:.4f}  BCubed F {m['bcubed_f']:.4f}  "
          f"end-to-end {res['end_to_end_s']:.1f} s  clustering {res['clustering_s']:.1f} s  "
          f"peak RSS {res['peak_rss_gb']:.2f} GB", flush=True)

    path = write_text(Path(args.out) / f"{tag}.json", json.dumps(res, indent=2) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
