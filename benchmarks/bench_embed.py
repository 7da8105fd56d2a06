"""Photos -> faces throughput: faces/s and peak memory of ``embed_folder`` on real LFW photos.

    python benchmarks/bench_embed.py [--n 200] [--workers 2] [--detector hog] [--upsample 1]

Takes every (7605 // n)-th photo of /work/shared/data/lfw/images (250 x 250, one
centred face, sometimes more), links them into a temporary folder (nothing is
copied) and embeds them with the dlib backend. Peak memory is the highest sum
of the resident memory of this process and its worker processes, sampled every
50 ms. CPU seconds (all processes) are reported too: on a busy machine
faces_per_cpu_s x cores is the throughput an idle machine would give. Writes JSON to --json (default benchmarks/results/bench_embed.json).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import tempfile
import threading
import time
from pathlib import Path

import psutil

from faceclust.fsutil import write_text
from faceclust.photos import embed_folder

LFW = Path(__file__).resolve().parents[2] / "shared" / "data" / "lfw"
if not LFW.is_dir():
    LFW = Path("/work/shared/data/lfw")


def _tree_rss(proc: psutil.Process) -> int:
    total = proc.memory_info().rss
    for child in proc.children(recursive=True):
        try:
            total += child.memory_info().rss
        except psutil.Error:
            pass
    return total


def _cpu_seconds() -> float:
    """User + system CPU time of this process and its finished (reaped) children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--n", type=int, default=200, help="number of photos")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--detector", choices=["hog", "cnn"], default="hog")
    ap.add_argument("--upsample", type=int, default=1)
    ap.add_argument("--json", default="benchmarks/results/bench_embed.json")
    args = ap.parse_args()

    paths = (LFW / "paths.txt").read_text().split()
    step = max(1, len(paths) // args.n)
    chosen = paths[::step][: args.n]
    proc = psutil.Process()
    with tempfile.TemporaryDirectory() as tmp:
        photos = Path(tmp) / "photos"
        for rel in chosen:
            dst = photos / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            dst.symlink_to(LFW / "images" / rel)
        peak = [_tree_rss(proc)]
        done = threading.Event()

        def sample() -> None:
            while not done.wait(0.05):
                peak[0] = max(peak[0], _tree_rss(proc))

        thread = threading.Thread(target=sample, daemon=True)
        thread.start()
        t0 = time.perf_counter()
        cpu0 = _cpu_seconds()
        report = embed_folder(
            photos, Path(tmp) / "faces.npz", workers=args.workers,
            backend_options={"detector": args.detector, "upsample": args.upsample},
            progress_bar=False,
        )
        seconds = time.perf_counter() - t0
        cpu = _cpu_seconds() - cpu0
        done.set()
        thread.join()

    result = {
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "photos": report.n_images,
        "faces": report.n_faces,
        "photos_without_face": len(report.no_face),
        "unreadable": len(report.failed),
        "workers": args.workers,
        "detector": args.detector,
        "upsample": args.upsample,
        "seconds": round(seconds, 2),
        "faces_per_s": round(report.n_faces / seconds, 2),
        "photos_per_s": round(report.n_images / seconds, 2),
        "cpu_seconds_all_processes": round(cpu, 2),
        "faces_per_cpu_s": round(report.n_faces / cpu, 2),
        "peak_rss_gb_all_processes": round(peak[0] / 2**30, 3),
        "load_average_1m": os.getloadavg()[0],
    }
    print(json.dumps(result, indent=1))
    write_text(args.json, json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
