"""Time ``faceclust.metrics.evaluate`` at MS1M scale on one core.

Generates 5,206,761 gt labels over 77,157 long-tailed classes (log-normal
class sizes, shuffled class ids, items in class-contiguous blocks like the
MS1M meta files) and a noisy prediction: some classes split in two, some pairs
of classes merged, a fraction of items marked -1 (unclustered -> singletons),
predicted ids permuted. Prints seconds per ``evaluate`` call and memory.

Usage::

    python benchmarks/bench_metrics.py              # defaults: MS1M-sized, 5 repeats
    python benchmarks/bench_metrics.py --n 584013 --classes 8573
    python benchmarks/bench_metrics.py --check      # also compare NMI with sklearn (slow)
"""

from __future__ import annotations

import os

# One core: pin BLAS/OpenMP pools and the process itself before numpy loads.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[_var] = "1"
if hasattr(os, "sched_setaffinity"):
    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})

import argparse  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import time  # noqa: E402
import tracemalloc  # noqa: E402

import numpy as np  # noqa: E402
import psutil  # noqa: E402

from faceclust.metrics import evaluate  # noqa: E402


def make_labels(
    n: int, n_classes: int, seed: int, split: float, merge: float, noise: float
) -> tuple[np.ndarray, np.ndarray]:
    """Long-tailed gt labels and a prediction with splits, merges and -1 noise."""
    rng = np.random.default_rng(seed)
    w = rng.lognormal(mean=0.0, sigma=1.0, size=n_classes)
    sizes = np.maximum(1, np.floor(w / w.sum() * n)).astype(np.int64)
    sizes[np.argmax(sizes)] += n - int(sizes.sum())
    gt = np.repeat(rng.permutation(n_classes), sizes).astype(np.int64)

    # Split: items of a chosen class go to a second id (class + n_classes) with p = 0.5.
    pred = gt.copy()
    split_cls = rng.random(n_classes) < split
    moved = split_cls[gt] & (rng.random(n) < 0.5)
    pred[moved] += n_classes
    # Merge: chosen classes take the id of a random partner class.
    partner = np.arange(2 * n_classes)
    merged = np.flatnonzero(rng.random(n_classes) < merge)
    partner[merged] = rng.integers(0, n_classes, size=len(merged))
    pred = partner[pred]
    # Noise: unclustered items, then random predicted ids.
    pred = rng.permutation(2 * n_classes)[pred]
    pred[rng.random(n) < noise] = -1
    return gt, pred


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=5_206_761)
    ap.add_argument("--classes", type=int, default=77_157)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--split", type=float, default=0.1, help="fraction of classes split in two")
    ap.add_argument("--merge", type=float, default=0.05, help="fraction of classes merged")
    ap.add_argument("--noise", type=float, default=0.05, help="fraction of items labelled -1")
    ap.add_argument("--check", action="store_true", help="compare NMI with sklearn")
    args = ap.parse_args()

    gt, pred = make_labels(args.n, args.classes, args.seed, args.split, args.merge, args.noise)
    proc = psutil.Process()
    rss_before = proc.memory_info().rss

    evaluate(gt, pred)  # warm-up (imports, page faults)
    times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        result = evaluate(gt, pred)
        times.append(time.perf_counter() - t0)

    tracemalloc.start()
    evaluate(gt, pred)
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB
    mib = 1 << 20
    print(json.dumps(result, indent=1))
    print(
        f"N={args.n} gt classes={args.classes} cores={len(os.sched_getaffinity(0))} "
        f"evaluate: best {min(times):.3f} s, median {float(np.median(times)):.3f} s "
        f"over {args.repeats} runs"
    )
    print(
        f"memory: RSS before {rss_before / mib:.0f} MiB, process peak RSS {peak_rss / mib:.0f} MiB, "
        f"peak numpy allocations inside evaluate {traced_peak / mib:.0f} MiB"
    )
    if args.check:
        from sklearn.metrics import normalized_mutual_info_score

        from faceclust.graph import relabel

        ref = normalized_mutual_info_score(
            relabel(gt), relabel(pred), average_method="arithmetic"
        )
        print(f"sklearn NMI {ref:.15f}  ours {result['nmi']:.15f}  diff {abs(ref - result['nmi']):.2e}")


if __name__ == "__main__":
    main()
