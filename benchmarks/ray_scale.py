"""Ray backend at scale: kNN (ivf-blas) and ``auto`` on a local Ray with 1 or 2 workers.

Records, for one feature file (``faceclust synth`` output):

* Ray's own overhead: ``ray.init`` start-up, ``ray.put`` of the features, and
  the round trip of 100 empty tasks (scheduling);
* ``build_knn_ray`` per step (train, assign, group, join+merge, sort) and the
  single-machine ``build_knn`` with the same cells (all cores), with how many
  rows' ids differ (only from BLAS rounding with other thread counts);
* ``auto`` on that graph: single machine vs :func:`faceclust.distributed.fit_ray`
  (stages, components, tasks), and whether the labels are identical;
* peak RSS of this (driver) process and the object store's use;
* the peak memory of the whole run: the sum of the proportional set sizes (PSS,
  shared pages split between their users, so the object store counts once) of
  this process and every process it started (Ray's raylet, GCS, workers),
  sampled every 0.5 s, per phase (``memory_peak_gb``).

    faceclust synth --n 584013 --ids 8573 --seed 0 --out /tmp/fcbench/part1
    python benchmarks/ray_scale.py --data /tmp/fcbench/part1 --cpus 2 --k 20

writes ``benchmarks/results/ray_<data>_<cpus>cpu.json``. ``--skip-local``
leaves out the single-machine reference runs (same numbers for each --cpus).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("FACECLUST_PROGRESS", "0")

from faceclust.io import read_features, write_text  # noqa: E402
from faceclust.knn import build_knn  # noqa: E402
from faceclust.methods import make_method  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def _rss_gb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


class PssSampler:
    """Peak summed PSS (GB) of this process and its descendants, per phase, from ``/proc``."""

    def __init__(self, every: float = 0.5) -> None:
        import threading

        self.phase = "start"
        self.peak: dict[str, float] = {}
        self._stop = threading.Event()
        self._every = every
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    @staticmethod
    def _tree() -> list[int]:
        kids: dict[int, list[int]] = {}
        for d in os.listdir("/proc"):
            if d.isdigit():
                try:
                    with open(f"/proc/{d}/stat") as f:
                        ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                except (OSError, IndexError, ValueError):
                    continue
                kids.setdefault(ppid, []).append(int(d))
        out, todo = [], [os.getpid()]
        while todo:
            pid = todo.pop()
            out.append(pid)
            todo.extend(kids.get(pid, []))
        return out

    @classmethod
    def total_gb(cls) -> float:
        kb = 0
        for pid in cls._tree():
            try:
                with open(f"/proc/{pid}/smaps_rollup") as f:
                    for line in f:
                        if line.startswith("Pss:"):
                            kb += int(line.split()[1])
                            break
            except OSError:
                continue
        return kb / 2**20

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            gb = self.total_gb()
            if gb > self.peak.get(self.phase, 0.0):
                self.peak[self.phase] = round(gb, 3)

    def stop(self) -> dict[str, float]:
        self._stop.set()
        self._thread.join()
        return {**self.peak, "all": max(self.peak.values(), default=0.0)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True, help="prefix written by faceclust synth")
    ap.add_argument("--cpus", type=int, default=2, help="CPUs of the local Ray (workers)")
    ap.add_argument("--k", type=int, default=20, help="neighbours (auto's default graph: 20)")
    ap.add_argument("--skip-local", action="store_true", help="no single-machine reference")
    ap.add_argument("--tag", default=None)
    ap.add_argument("--results", default=str(RESULTS), help="folder of the result JSON")
    a = ap.parse_args()

    import ray

    from faceclust.distributed import build_knn_ray, fit_ray, ray_session

    mem = PssSampler()
    tag = a.tag or f"ray_{Path(a.data).name}_{a.cpus}cpu"
    results = Path(a.results)
    results.mkdir(parents=True, exist_ok=True)

    def save(done: bool) -> None:
        """Write what is measured so far (a long run cut short still leaves its phases)."""
        out["complete"] = done
        out["memory_peak_gb"] = {**mem.peak, "all": max(mem.peak.values(), default=0.0)}
        out["driver_peak_rss_gb"] = _rss_gb()
        write_text(results / f"{tag}.json", json.dumps(out, indent=1, default=float))

    x = read_features(a.data + ".npy")
    n, d = x.shape
    out: dict = {"n": n, "dim": d, "k": a.k, "cpus": a.cpus, "load_before": os.getloadavg()}
    t0 = time.perf_counter()
    with ray_session(num_cpus=a.cpus) as pool:
        out["ray_init_s"] = pool.init_seconds
        noop = ray.remote(num_cpus=1)(lambda: None)
        ray.get([noop.remote() for _ in range(10)])  # warm the workers
        t1 = time.perf_counter()
        ray.get([noop.remote() for _ in range(100)])
        out["ray_100_empty_tasks_s"] = time.perf_counter() - t1
        t1 = time.perf_counter()
        pool.put(x)
        out["ray_put_features_s"] = time.perf_counter() - t1

        mem.phase = "knn_ray"
        t1 = time.perf_counter()
        g_ray = build_knn_ray(x, a.k, pool=pool, index="ivf-blas")
        out["knn_ray"] = {"seconds": time.perf_counter() - t1, **g_ray.meta}
        out["load_after_knn"] = os.getloadavg()
        save(False)
        store = ray.available_resources().get("object_store_memory")
        total = ray.cluster_resources().get("object_store_memory")
        out["object_store_gb"] = {"total": total / 2**30 if total else None,
                                  "used_after_knn": (total - store) / 2**30 if total else None}
        if not a.skip_local:
            mem.phase = "knn_local"
            t1 = time.perf_counter()
            g_loc = build_knn(x, a.k, index="ivf-blas", progress_bar=False)
            out["knn_local"] = {"seconds": time.perf_counter() - t1, **g_loc.meta}
            rows = (g_loc.ids != g_ray.ids).any(axis=1)
            out["knn_rows_with_other_ids"] = int(rows.sum())
            del g_loc
        est = make_method("auto", {})
        mem.phase = "auto_ray"
        t1 = time.perf_counter()
        lab_ray = fit_ray(est, x, pool=pool, knn=g_ray).labels_
        out["auto_ray"] = {"seconds": time.perf_counter() - t1, "stages": est.stage_seconds_,
                           **est.ray_info_, "clusters": int(lab_ray.max()) + 1}
        save(False)
        if not a.skip_local:
            ref = make_method("auto", {})
            mem.phase = "auto_local"
            t1 = time.perf_counter()
            lab = ref.fit(x, knn=g_ray).labels_
            out["auto_local"] = {"seconds": time.perf_counter() - t1,
                                 "stages": ref.stage_seconds_}
            out["auto_labels_identical"] = bool(np.array_equal(lab, lab_ray))
    out["total_s"] = time.perf_counter() - t0
    out["load_after"] = os.getloadavg()
    mem.stop()
    save(True)
    print(json.dumps(out, indent=1, default=float))


if __name__ == "__main__":
    main()
