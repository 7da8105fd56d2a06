"""The default command and published FC-ES at MS1M part9 scale: seconds, memory, recall, F.

What it runs (each CLI step as its own process, timed, peak RSS from ``wait4``):

1. ``faceclust synth --n N --ids C --dim 256 --seed S --out WORK/PREFIX`` unless the files exist;
2. a GEMM probe in this process: fp32 ``sgemm`` (numpy BLAS) on the shapes the kNN join
   multiplies, and bf16 / fp16 (torch, when installed), in GFLOP/s -- the hardware limit the
   stage seconds are compared with;
3. **default**: ``faceclust cluster WORK/PREFIX.npy --out WORK/default.meta`` (no flags), its
   per-stage seconds and peak memory parsed from its last lines;
4. recall of the default's kNN graph on ``--recall-sample`` rows against exact search:
   ``faceclust knn WORK/PREFIX.npy --k 20 --recall-sample R`` builds the same graph (same index,
   cells, probes, refinement and seed) in its own timed process and prints its steps;
5. **fc-es** (unless ``--skip-fces``): ``faceclust knn WORK/PREFIX.npy --k 80 --out
   WORK/PREFIX_k80.npz --recall-sample R`` (the cached graph and its measured seconds and
   recall, ``WORK/PREFIX_k80.knn.json``, are reused when both exist) then
   ``faceclust cluster WORK/PREFIX.npy --knn WORK/PREFIX_k80.npz --method fc-es``;
6. pairwise / BCubed F of both against the synthetic identities.

Writes ``benchmarks/results/scale_default_<PREFIX>.json`` and prints the rows for
``docs/benchmarks.md``. Run it on an idle machine (the load average is recorded)::

    python benchmarks/bench_default_scale.py --n 5206761 --ids 77157 --seed 11 --work /tmp/fcbench
    python benchmarks/bench_default_scale.py --n 100000 --work /tmp/fcbench   # smoke size

A tiny ``--n`` is what ``tests/test_bench_default_scale.py`` runs.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from faceclust.fsutil import write_text

RESULTS = Path(__file__).resolve().parent / "results"
IDS_PER_FACE = 77157 / 5206761  # MS1M part9: 67.5 faces per identity


def run_timed(cmd: list[str], env: dict) -> dict:
    """Run ``cmd``; wall seconds, its own peak RSS (GB, from ``wait4``), stdout and stderr."""
    import tempfile

    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env, text=True)
        _, status, usage = os.wait4(proc.pid, 0)
        secs = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if proc.returncode != 0:
        sys.stderr.write(stderr[-4000:])
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(cmd)}")
    peak = usage.ru_maxrss / (2**30 if sys.platform == "darwin" else 2**20)
    return {"cmd": " ".join(cmd), "seconds": round(secs, 2), "peak_rss_gb": round(peak, 2),
            "stderr_tail": stderr[-3000:], "stdout": stdout[-2000:]}


def parse_stages(stderr: str) -> tuple[dict, dict]:
    """Stage seconds and peak GB from ``faceclust cluster``'s closing lines."""
    secs, peaks = {}, {}
    m = re.search(r"clusters in [\d.]+ s \(([^)]*)\)", stderr)
    if m:
        for part in m.group(1).split(","):
            name, _, val = part.strip().rpartition(" ")
            if name:
                secs[name] = float(val.rstrip("s"))
    m = re.search(r"peak memory after each stage[^:]*: (.*)", stderr)
    if m:
        for part in m.group(1).split(","):
            bits = part.split()
            if len(bits) == 3:
                peaks[bits[0]] = float(bits[1])
    return secs, peaks


def gemm_probe(seconds: float = 3.0) -> dict:
    """GFLOP/s of fp32 numpy BLAS (and torch bf16/fp16 when installed) on join-like shapes."""
    rng = np.random.default_rng(0)
    out: dict = {}
    shapes = {"join": (8192, 640, 256), "square": (4096, 4096, 256)}

    def rate(f, flops):
        f()
        t0, reps = time.perf_counter(), 0
        while time.perf_counter() - t0 < seconds / 6 or reps < 2:
            f()
            reps += 1
        return round(flops * reps / (time.perf_counter() - t0) / 1e9, 1)

    for name, (m, n, d) in shapes.items():
        a = rng.standard_normal((m, d), dtype=np.float32)
        b = rng.standard_normal((n, d), dtype=np.float32)
        fl = 2.0 * m * n * d
        out[f"fp32_numpy_{name}"] = rate(lambda a=a, b=b: a @ b.T, fl)
        try:
            import torch

            ta, tb = torch.from_numpy(a), torch.from_numpy(b)
            out["torch_cpu_capability"] = torch.backends.cpu.get_cpu_capability()
            for dt in ("bfloat16", "float16"):
                xa, xb = ta.to(getattr(torch, dt)), tb.to(getattr(torch, dt))
                out[f"{dt}_torch_{name}"] = rate(lambda xa=xa, xb=xb: xa @ xb.T, fl)
        except ImportError:
            pass
    return out


def knn_run(fc: list[str], npy: Path, k: int, out: Path, sample: int, env: dict) -> dict:
    """``faceclust knn NPY --k K --out OUT --recall-sample R`` as a timed process: seconds, peak,
    recall on the sampled rows, and the steps and cells it printed (the default command builds
    the same graph: same index, cells, probes and seed)."""
    out.unlink(missing_ok=True)  # this benchmark's own file in WORK, rebuilt each run
    r = run_timed(fc + ["knn", str(npy), "--k", str(k), "--out", str(out),
                        "--recall-sample", str(sample)], env)
    line = r["stderr_tail"].strip().splitlines()[-1]
    rec = re.search(r"recall@\d+ on \d+ rows = ([\d.]+)", r["stderr_tail"])
    res = {"seconds": r["seconds"], "peak_rss_gb": r["peak_rss_gb"], "k": k, "rows": sample,
           "recall": float(rec.group(1)) if rec else 1.0, "line": line}
    for key in ("nlist", "nprobe", "refine"):
        m = re.search(rf"\b{key} (\d+)", line)
        if m:
            res[key] = int(m.group(1))
    m = re.search(r"steps (\{[^}]*\})", line)
    if m:
        res["steps"] = json.loads(m.group(1).replace("'", '"'))
    return res


def machine() -> dict:
    """CPU model, flags that matter for GEMM, cores, memory, load average."""
    info = {"nproc": os.cpu_count(), "loadavg": [round(v, 2) for v in os.getloadavg()],
            "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    try:
        text = Path("/proc/cpuinfo").read_text()
        info["cpu_model"] = re.search(r"model name\s*:\s*(.*)", text).group(1).strip()
        flags = set(re.search(r"flags\s*:\s*(.*)", text).group(1).split())
        info["gemm_flags"] = sorted(flags & {"avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni",
                                             "avx_vnni", "amx_bf16", "amx_int8"})
        info["mem_total_gb"] = round(int(re.search(r"MemTotal:\s*(\d+)", Path("/proc/meminfo")
                                                    .read_text()).group(1)) / 2**20, 1)
    except (OSError, AttributeError):
        pass
    return info


def metrics(gt_path: Path, pred_path: Path) -> dict:
    from faceclust.io import read_labels
    from faceclust.metrics import evaluate

    m = evaluate(read_labels(gt_path), read_labels(pred_path))
    return {k: round(float(m[k]), 4) for k in ("pairwise_precision", "pairwise_recall", "pairwise_f",
                                               "bcubed_precision", "bcubed_recall", "bcubed_f")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--n", type=int, default=5206761)
    ap.add_argument("--ids", type=int, default=None, help="identities (default: N x 77157/5206761)")
    ap.add_argument("--dim", type=int, default=256)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--work", default="/tmp/fcbench", help="data, graphs and labels (outside the repo)")
    ap.add_argument("--prefix", default=None, help="data name in WORK (default: synth_<N>_s<seed>)")
    ap.add_argument("--recall-sample", type=int, default=2000)
    ap.add_argument("--skip-fces", action="store_true", help="only the default command")
    ap.add_argument("--skip-default", action="store_true", help="only fc-es (steps 5 and 6)")
    ap.add_argument("--gemm-seconds", type=float, default=3.0)
    ap.add_argument("--out", default=str(RESULTS))
    ap.add_argument("--tag", default=None)
    a = ap.parse_args()

    ids = a.ids or max(1, round(a.n * IDS_PER_FACE))
    work = Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    name = a.prefix or f"synth_{a.n}_s{a.seed}"
    prefix = work / name
    env = {**os.environ, "FACECLUST_PROGRESS": os.environ.get("FACECLUST_PROGRESS", "0")}
    fc = [sys.executable, "-c", "import sys; from faceclust.cli import main; sys.argv[0] = 'faceclust'; main()"]
    res: dict = {"n": a.n, "ids": ids, "dim": a.dim, "seed": a.seed, "data": str(prefix),
                 "machine_start": machine(), "steps": {}}

    npy, meta = prefix.with_suffix(".npy"), prefix.with_suffix(".meta")
    if not (npy.exists() and meta.exists()):
        r = run_timed(fc + ["synth", "--n", str(a.n), "--ids", str(ids), "--dim", str(a.dim),
                            "--seed", str(a.seed), "--out", str(prefix)], env)
        res["steps"]["synth"] = {"seconds": r["seconds"]}
        print(f"synth {r['seconds']:.1f} s", flush=True)

    res["gemm"] = gemm_probe(a.gemm_seconds)
    print("GEMM probe (GFLOP/s):", res["gemm"], flush=True)

    if not a.skip_default:
        k_default = min(20, a.n - 1)  # auto: max(k=10, k_est=20)
        run_default(res, fc, work, name, npy, meta, a.recall_sample, k_default, env)

    # 2. published FC-ES at k = 80 on a cached graph
    if not a.skip_fces:
        graph = work / f"{name}_k80.npz"
        measured = graph.with_suffix(".knn.json")
        if graph.exists() and measured.exists():
            res["fces_knn"] = {**json.loads(measured.read_text()), "cached": str(graph)}
        else:
            measured.unlink(missing_ok=True)
            res["fces_knn"] = knn_run(fc, npy, min(80, a.n - 1), graph, a.recall_sample, env)
            write_text(measured, json.dumps(res["fces_knn"]) + "\n")
        print(f"fc-es kNN: {res['fces_knn']}", flush=True)
        out_fces = work / f"{name}_fces.meta"
        out_fces.unlink(missing_ok=True)
        r = run_timed(fc + ["cluster", str(npy), "--knn", str(graph), "--method", "fc-es",
                            "--out", str(out_fces)], env)
        secs, peaks = parse_stages(r["stderr_tail"])
        res["fces"] = {"seconds": r["seconds"], "peak_rss_gb": r["peak_rss_gb"],
                       "stages_s": secs, "stage_peak_gb": peaks, "metrics": metrics(meta, out_fces),
                       "warnings": re.findall(r"(?:faceclust: warning|FaceclustWarning): (.*)",
                                              r["stderr_tail"])}
        knn_s = res["fces_knn"]["seconds"]
        res["fces"]["with_knn_s"] = round(r["seconds"] + knn_s, 1)
        print(f"fc-es: {r['seconds']:.1f} s (+ kNN {knn_s}), stages {secs}, F {res['fces']['metrics']}",
              flush=True)

    res["machine_end"] = machine()
    path = write_text(Path(a.out) / f"{a.tag or 'scale_default_' + name}.json", json.dumps(res, indent=2) + "\n")
    print(f"wrote {path}")
    for line in doc_rows(res):
        print(line)


def run_default(res: dict, fc: list[str], work: Path, name: str, npy: Path, meta: Path,
                recall_sample: int, k_default: int, env: dict) -> None:
    """Step 3 and 4: the default command with no flags, then the recall of its graph."""
    out_default = work / f"{name}_default.meta"
    out_default.unlink(missing_ok=True)
    r = run_timed(fc + ["cluster", str(npy), "--out", str(out_default)], env)
    secs, peaks = parse_stages(r["stderr_tail"])
    res["default"] = {"cmd": f"faceclust cluster {npy} --out {out_default}", "seconds": r["seconds"],
                      "peak_rss_gb": r["peak_rss_gb"], "stages_s": secs, "stage_peak_gb": peaks,
                      "metrics": metrics(meta, out_default), "load_end": round(os.getloadavg()[0], 2)}
    print(f"default: {r['seconds']:.1f} s, peak {r['peak_rss_gb']:.2f} GB, stages {secs}, "
          f"F {res['default']['metrics']}", flush=True)

    if recall_sample:
        res["default"]["recall"] = knn_run(fc, npy, k_default, work / f"{name}_k20.npz",
                                           recall_sample, env)
        print(f"default graph (k {k_default}): {res['default']['recall']}", flush=True)


def doc_rows(res: dict) -> list[str]:
    """Markdown rows for docs/benchmarks.md: stages, fraction of the GEMM limit."""
    n = res["n"]
    rows = ["| run | end-to-end s | kNN s | other stages (s) | peak GB | graph recall | pairwise F | BCubed F | load start -> end |",
            "|---|---:|---:|---|---:|---:|---:|---:|---|"]
    load = f"{res['machine_start']['loadavg'][0]} -> {res['machine_end']['loadavg'][0]}"
    d = res.get("default")
    if d:
        other = ", ".join(f"{k} {v:.1f}" for k, v in d["stages_s"].items() if k != "knn")
        rows.append(f"| {n:,} default (`auto`, k 20) | {d['seconds']:.1f} | {d['stages_s'].get('knn', float('nan')):.1f} | "
                    f"{other} | {d['peak_rss_gb']:.2f} | {d.get('recall', {}).get('recall', float('nan'))} | "
                    f"{d['metrics']['pairwise_f']} | {d['metrics']['bcubed_f']} | {load} |")
    if "fces" in res:
        f, kn = res["fces"], res["fces_knn"]
        other = ", ".join(f"{k} {v:.1f}" for k, v in f["stages_s"].items() if k != "knn")
        rows.append(f"| {n:,} fc-es (k 80, cached graph) | {f['with_knn_s']} | {kn['seconds']} | "
                    f"{other} | {max(f['peak_rss_gb'], kn['peak_rss_gb']):.2f} | {kn.get('recall')} | "
                    f"{f['metrics']['pairwise_f']} | {f['metrics']['bcubed_f']} | {load} |")
    gf = res["gemm"].get("fp32_numpy_join")
    if d and d.get("recall"):
        rows += limit_rows("the default run", d["recall"], d["stages_s"].get("knn"), n, res["dim"], gf)
    if "fces" in res:
        rows += limit_rows("fc-es's k = 80 graph", res["fces_knn"], res["fces_knn"]["seconds"], n,
                           res["dim"], gf)
    return rows


def limit_rows(what: str, rec: dict, knn_s: float | None, n: int, dim: int, gf: float | None) -> list[str]:
    """Each kNN step's seconds against its GEMM work at the probed fp32 rate (``rec``: a knn_run)."""
    if not (rec.get("nprobe") and gf and knn_s):
        return []
    # products: cell assignment (N x nlist), join (N x nprobe cells of N / nlist points, as if
    # cells were equal), refinement (at most N x 9 x 10 per pass)
    prods = {"assign": n * rec["nlist"], "join": n * n * rec["nprobe"] / rec["nlist"],
             "refine": n * 90 * rec.get("refine", 0)}
    limit = {key: 2.0 * dim * v / (gf * 1e9) for key, v in prods.items()}
    steps = rec.get("steps", {})
    measured = {"assign": steps.get("train", 0) + steps.get("assign", 0),
                "join": steps.get("group", 0) + steps.get("join", 0) + steps.get("sort", 0),
                "refine": steps.get("refine", 0)}
    rows = ["", f"| kNN step ({what}, k {rec['k']}) | GEMM products | limit s at {gf} GFLOP/s | "
            "measured s (`faceclust knn`, same graph) | fraction of the limit |",
            "|---|---:|---:|---:|---:|"]
    for key in prods:
        if prods[key]:
            frac = limit[key] / measured[key] if measured[key] else float("nan")
            rows.append(f"| {key} | {prods[key]:.3g} | {limit[key]:.1f} | {measured[key]:.1f} | {frac:.2f} |")
    total = sum(limit.values())
    rows.append(f"| whole kNN stage of {what} | | {total:.1f} | {knn_s:.1f} | {total / knn_s:.2f} |")
    return rows


if __name__ == "__main__":
    main()
