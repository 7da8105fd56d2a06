"""LCE-PCENet and FC-ESER on people they never saw (issue 16), next to auto and fc-es.

    python benchmarks/lcepce_eval.py train METHOD FEAT [key=value ...]   # on the LFW train people
    python benchmarks/lcepce_eval.py eval METHOD FEAT TESTSET [key=value ...]
    python benchmarks/lcepce_eval.py table RESULTS.jsonl ...   # markdown table of eval rows

FEAT: arcface512 | dlib128. TESTSET: lfw-test (the other LFW people) | celeba_wild
(every photo of that source: trained on LFW, tested across sources). LFW is split
by person with ``split_by_identity(labels, 0.5, seed=0)``, sides swapped so the test
side holds the largest person (236 photos; the training side's largest has 71),
issue 23's regime 1a. Models go to WORK/<method>-<feat> (WORK: env LCEPCE_WORK,
default /tmp/lcepce_eval). Each call prints one JSON line (metrics, seconds, stage
seconds, nodes/s of the network stages, peak RSS of the process). Torch runs
one thread (``LCEPCE_THREADS``, default 1): on a loaded 2-core machine that was
faster than two.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np

from faceclust.params import parse_set

DATA = Path(os.environ.get("FACECLUST_DATA", "")) if os.environ.get("FACECLUST_DATA") else next(
    (p / "shared" / "data" for p in Path(__file__).resolve().parents
     if (p / "shared" / "data").is_dir()), Path("/work/shared/data"))
WORK = Path(os.environ.get("LCEPCE_WORK", "/tmp/lcepce_eval"))


def _lfw(feat: str, side: str) -> tuple[np.ndarray, np.ndarray]:
    from faceclust.stages.confidence import split_by_identity

    x = np.load(DATA / "lfw" / f"{feat}_features.npy")
    y = np.loadtxt(DATA / "lfw" / "labels.meta", dtype=np.int64)
    test, train = split_by_identity(y, 0.5, seed=0)  # swapped: test holds the largest person
    idx = train if side == "train" else test
    return x[idx], y[idx]


def _testset(name: str, feat: str) -> tuple[np.ndarray, np.ndarray]:
    if name == "lfw-test":
        return _lfw(feat, "test")
    x = np.load(DATA / name / f"{feat}_features.npy")
    return x, np.loadtxt(DATA / name / "labels.meta", dtype=np.int64)


def table(paths: list[str]) -> str:
    """Markdown table of the ``eval`` rows (later rows replace earlier ones of one key)."""
    rows: dict[tuple, dict] = {}
    for path in paths:
        for line in Path(path).read_text().splitlines():
            if line.startswith("{"):
                r = json.loads(line)
                if r.get("cmd") == "eval":
                    rows[(r["feat"], r["test"], r["method"], json.dumps(r["params"]))] = r
    out = ["| features | test people | method | pairwise P / R / F | BCubed F | clusters | "
           "seconds | network nodes/s | peak RSS MiB |", "|---|---|---|---|---|---|---|---|---|"]
    for (feat, test, method, params), r in sorted(rows.items()):
        name = method + (f" {', '.join(f'{k}={v}' for k, v in json.loads(params).items())}"
                         if params != "{}" else "")
        out.append(f"| {feat} | {test} ({r['n']}) | {name} | {r['pairwise_p']:.4f} / "
                   f"{r['pairwise_r']:.4f} / **{r['pairwise_f']:.4f}** | **{r['bcubed_f']:.4f}** | "
                   f"{r['n_clusters']} | {r['seconds']:.1f} | {r.get('network_nodes_per_s', '')} | "
                   f"{r['peak_rss_mib']} |")
    return "\n".join(out)


def main() -> None:
    if sys.argv[1] == "table":
        print(table(sys.argv[2:]))
        return
    import torch

    torch.set_num_threads(int(os.environ.get("LCEPCE_THREADS", "1")))
    from faceclust.methods import get_method
    from faceclust.metrics import evaluate

    cmd, method, feat, rest = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
    model = WORK / f"{method}-{feat}"
    if cmd == "train":
        x, y = _lfw(feat, "train")
        t0 = time.perf_counter()
        meta = get_method(method).train(x, y, model, **parse_set(rest))
        secs = time.perf_counter() - t0
        nets = {k: {"best_epoch": v.get("best_epoch"), "epochs": v.get("epochs"),
                    "pool": v.get("pool")}
                for k, v in meta.items() if isinstance(v, dict) and "epochs" in v}
        print(json.dumps({"cmd": "train", "method": method, "feat": feat, "n": len(y),
                          "seconds": round(secs, 1), "nets": nets,
                          "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}))
        return
    testset, params = rest[0], parse_set(rest[1:])
    x, y = _testset(testset, feat)
    if get_method(method).needs_model:
        params["model"] = str(model)
    t0 = time.perf_counter()
    est = get_method(method)(**params).fit(x)
    secs = time.perf_counter() - t0
    m = evaluate(y, est.labels_)
    st = {k: round(v, 2) for k, v in est.stage_seconds_.items()}
    net = sum(st.get(k, 0.0) for k in ("lcenet", "pcenet", "recall"))
    row = {"cmd": "eval", "method": method, "feat": feat, "test": testset, "n": len(y),
           "params": {k: v for k, v in params.items() if k != "model"},
           "pairwise_f": round(m["pairwise_f"], 4), "bcubed_f": round(m["bcubed_f"], 4),
           "pairwise_p": round(m["pairwise_precision"], 4),
           "pairwise_r": round(m["pairwise_recall"], 4), "n_clusters": m["n_clusters"],
           "seconds": round(secs, 2), "stages": st,
           "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}
    if net > 0:
        row["network_nodes_per_s"] = round(len(y) / net, 1)
    for attr in ("n_edges_", "n_candidates_", "n_recalled_", "n_links_"):
        if hasattr(est, attr):
            row[attr.strip("_")] = getattr(est, attr)
    print(json.dumps(row))


if __name__ == "__main__":
    main()
