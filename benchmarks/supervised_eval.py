"""One evaluation protocol for supervised methods: train on some people, cluster others.

    python benchmarks/supervised_eval.py [--regimes 1a,1b,2,3] [--methods gcn-v,auto,...]
        [--embeddings arcface512,dlib128] [--train-set METHOD:key=value ...]
        [--cluster-set METHOD:key=value ...] [--retrain]
        [--scale N_TRAIN:IDS_TRAIN:N_TEST:IDS_TEST] [--work DIR]

Every supervised method of the registry (``needs_model``) and the best
unsupervised ones (``auto``, ``fc-es``, ``infomap``, their defaults) are run on
the same test people; a method added to the registry gets rows by existing.

Regimes (splits by person are seeded and fixed; train and test share no identity):

* **1a** LFW split by person, the test side holding the largest identities:
  every person with more than half the photos of the largest goes to test,
  the others 50/50 at random (seed 0); the test side's largest person is then
  >= 2x the training side's (checked).
* **1b** celeba_wild split by person, 50/50 at random (seed 0).
* **2** across sources: train on all of LFW -> test on celeba_wild and celeba;
  train on all of celeba_wild -> test on LFW.
* **3** MS-Celeb-1M-like at scale: ``faceclust synth`` (256-d, arcface preset)
  train set seed 1 and test set seed 2 (other identities); sizes from
  ``--scale`` (default part0_train / part1_test: 576,494 / 8,573 and 584,013 / 8,573).

Regimes 1-2 run on both embedding models (ArcFace-like 512-d, dlib 128-d).
Every training is ``faceclust train`` and every clustering ``faceclust
cluster`` in its own process: training seconds and peak RSS come from the
model's ``training.json``, clustering seconds from the CLI (features loaded,
kNN built, clustered), its peak RSS from the process. Models are cached in
``WORK/models`` (keyed by method, training set and ``--train-set`` values;
``--retrain`` ignores the cache). ``--cluster-set`` passes parameters to ``faceclust
cluster --set`` (a variant of the method with the same model: its own row, its
settings after the training settings). Results accumulate in
``benchmarks/results/supervised_eval.json`` (a filtered run replaces only
its own rows) and ``docs/supervised.md`` is regenerated from all of them.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("FACECLUST_DATA", ROOT.parents[1] / "shared" / "data"))
if not DATA.is_dir():
    DATA = Path("/work/shared/data")
RESULTS = ROOT / "benchmarks" / "results" / "supervised_eval.json"
DOC = ROOT / "docs" / "supervised.md"
UNSUPERVISED = ("auto", "fc-es", "infomap")
EMBEDDINGS = ("arcface512", "dlib128")
FULL_SCALE = (576494, 8573, 584013, 8573)

_RUN = ("import json, resource, sys\n"
        "from faceclust.cli import main\n"
        "sys.argv[0] = 'faceclust'\n"
        "try:\n"
        "    main(standalone_mode=False)\n"
        "finally:\n"
        "    u = resource.getrusage(resource.RUSAGE_SELF)\n"
        "    print('PEAK_RSS_MIB', u.ru_maxrss / 1024, file=sys.stderr)\n"
        "    print('CPU_S', u.ru_utime + u.ru_stime, file=sys.stderr)\n")


# ------------------------------------------------------------------ data sets
def _load(source: str, emb: str) -> tuple[np.ndarray, np.ndarray]:
    x = np.load(DATA / source / f"{emb}_features.npy")
    y = np.loadtxt(DATA / source / "labels.meta", dtype=np.int64)
    return x, y


def lfw_split_largest_to_test(y: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Regime 1a: people with > half the photos of the largest to test, the rest 50/50."""
    ids, counts = np.unique(y, return_counts=True)
    big = ids[counts > counts.max() / 2]
    rest = ids[counts <= counts.max() / 2]
    perm = np.random.default_rng(seed).permutation(len(rest))
    test_ids = np.concatenate([big, rest[perm[: len(rest) // 2]]])
    is_test = np.isin(y, test_ids)
    tr, te = np.flatnonzero(~is_test), np.flatnonzero(is_test)
    c_tr, c_te = np.bincount(y[tr]).max(), np.bincount(y[te]).max()
    assert c_te >= 2 * c_tr, (c_te, c_tr)
    return tr, te


def split_half(y: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Regime 1b: half of the people (seeded) to test."""
    from faceclust.stages.confidence import split_by_identity

    return split_by_identity(y, 0.5, seed=seed)


def _save(work: Path, name: str, x: np.ndarray, y: np.ndarray) -> dict:
    work.mkdir(parents=True, exist_ok=True)
    fx, fy = work / f"{name}_features.npy", work / f"{name}.meta"
    if not fx.is_file():
        np.save(fx, np.ascontiguousarray(x, dtype=np.float32))
        fy.write_text("\n".join(map(str, y)) + "\n")
    sizes = np.bincount(np.unique(y, return_inverse=True)[1])
    return {"name": name, "x": str(fx), "y": str(fy), "n": int(len(y)),
            "ids": int(len(sizes)), "largest": int(sizes.max())}


def tasks(regime: str, emb: str, work: Path, scale: tuple[int, int, int, int]) -> list[dict]:
    """``[{regime, emb, train: set, test: set}]`` for one regime and embedding."""
    d = work / "data" / emb
    if regime == "1a":
        x, y = _load("lfw", emb)
        tr, te = lfw_split_largest_to_test(y)
        return [{"train": _save(d, "lfw-train", x[tr], y[tr]),
                 "test": _save(d, "lfw-test", x[te], y[te])}]
    if regime == "1b":
        x, y = _load("celeba_wild", emb)
        tr, te = split_half(y)
        return [{"train": _save(d, "celeba_wild-train", x[tr], y[tr]),
                 "test": _save(d, "celeba_wild-test", x[te], y[te])}]
    if regime == "2":
        sets = {s: _save(d, s, *_load(s, emb)) for s in ("lfw", "celeba_wild", "celeba")}
        return [{"train": sets["lfw"], "test": sets["celeba_wild"]},
                {"train": sets["lfw"], "test": sets["celeba"]},
                {"train": sets["celeba_wild"], "test": sets["lfw"]}]
    if regime == "3":
        n_tr, ids_tr, n_te, ids_te = scale
        d = work / "data" / "synth"
        d.mkdir(parents=True, exist_ok=True)
        out = []
        for name, n, ids, seed in (("train", n_tr, ids_tr, 1), ("test", n_te, ids_te, 2)):
            prefix = d / f"synth-{name}-{n}-{ids}"
            if not Path(f"{prefix}.npy").is_file():
                _cli(["synth", "--n", str(n), "--ids", str(ids), "--dim", "256", "--seed",
                      str(seed), "--out", str(prefix)])
            y = np.loadtxt(f"{prefix}.meta", dtype=np.int64)
            sizes = np.bincount(y)
            out.append({"name": f"synth-{name}-{n}", "x": f"{prefix}.npy", "y": f"{prefix}.meta",
                        "n": int(n), "ids": int((sizes > 0).sum()), "largest": int(sizes.max())})
        return [{"train": out[0], "test": out[1]}]
    raise SystemExit(f"unknown regime {regime!r}; known: 1a, 1b, 2, 3")


# ------------------------------------------------------------------ running
def _cli(args: list[str], timeout: float | None = None) -> tuple[str, float | None, float | None]:
    """Run ``faceclust ARGS`` in a new process; return (stderr, its peak RSS in MiB, its CPU
    seconds). CPU seconds (user + system, all threads) barely depend on other jobs sharing the
    machine, unlike wall seconds: with ``OMP_NUM_THREADS=1`` they are the one-core time."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    p = subprocess.run([sys.executable, "-c", _RUN, *args], capture_output=True, text=True,
                       env=env, timeout=timeout)
    m = re.search(r"PEAK_RSS_MIB ([\d.]+)", p.stderr)
    c = re.search(r"CPU_S ([\d.]+)", p.stderr)
    if p.returncode != 0:
        tail = "\n".join(p.stderr.strip().splitlines()[-5:])
        raise RuntimeError(f"faceclust {' '.join(args[:3])} ... failed:\n{tail}")
    return p.stderr, float(m.group(1)) if m else None, round(float(c.group(1)), 1) if c else None


def _train_key(method: str, train: dict, settings: list[str]) -> str:
    h = hashlib.sha1(json.dumps([method, train["x"], settings]).encode()).hexdigest()[:8]
    return f"{method}-{train['name']}-{h}"


def train_model(method: str, train: dict, settings: list[str], work: Path, emb: str,
                retrain: bool) -> tuple[Path, dict]:
    """Train (or reuse) ``method`` on ``train``; return its model directory and training.json."""
    model = work / "models" / emb / _train_key(method, train, settings)
    info_path, cpu_path = model / "training.json", model / "eval_cpu.json"
    if retrain or not info_path.is_file():
        args = ["train", "--method", method, train["x"], train["y"], "--out", str(model),
                "--embedding", emb]
        for s in settings:
            args += ["--set", s]
        t0 = time.perf_counter()
        print(f"  train {method} on {train['name']} ({emb}) ...", file=sys.stderr, flush=True)
        cpu = _cli(args)[2]
        print(f"    {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
        cpu_path.write_text(json.dumps({"cpu_seconds": cpu, "threads": _threads()}))
    info = json.loads(info_path.read_text())
    if cpu_path.is_file():
        info.update(json.loads(cpu_path.read_text()))
    return model, info


def _threads() -> str | None:
    """The thread limit the child processes ran under (``OMP_NUM_THREADS``), if set."""
    return os.environ.get("OMP_NUM_THREADS")


def cluster(method: str, test: dict, model: Path | None, work: Path,
            settings: list[str] | None = None) -> dict:
    """Cluster ``test`` with ``method`` (``settings``: ``--set`` KEY=VALUE); metrics, seconds,
    peak RSS."""
    from faceclust.metrics import evaluate

    pred = work / "pred" / f"{test['name']}-{method}-{os.getpid()}.meta"
    pred.parent.mkdir(parents=True, exist_ok=True)
    args = ["cluster", test["x"], "--method", method, "--out", str(pred)]
    if model is not None:
        args += ["--model", str(model)]
    for s in settings or []:
        args += ["--set", s]
    err, rss, cpu = _cli(args)
    m = re.search(r"clusters in ([\d.]+) s", err)
    labels = np.loadtxt(pred, dtype=np.int64)
    pred.unlink()
    gt = np.loadtxt(test["y"], dtype=np.int64)
    met = evaluate(gt, labels)
    warn = [ln for ln in err.splitlines() if "warning:" in ln]
    return {**{k: round(float(v), 4) for k, v in met.items() if isinstance(v, float)},
            "n_clusters": int(met["n_clusters"]),
            "cluster_seconds": float(m.group(1)) if m else None, "cluster_peak_mib": rss,
            "cluster_cpu_seconds": cpu, "threads": _threads(), "warnings": warn}


# ------------------------------------------------------------------ report
def _key(r: dict) -> str:
    """One row per (regime, embedding, train, test, method, training settings, clustering
    settings): a run with other settings (an ablation) adds a row instead of replacing the
    default's. Rows without clustering settings keep the key they had before those existed."""
    key = [r["regime"], r["emb"], r["train"], r["test"], r["method"],
           " ".join(r.get("train_settings") or [])]
    if r.get("cluster_settings"):
        key.append(" ".join(r["cluster_settings"]))
    return "|".join(key)


def _f(v, fmt="{:.3f}"):
    return "–" if v is None else fmt.format(v)


def _method_cell(r: dict) -> str:
    """The method, with its training settings other than the defaults (``--train-set``)
    and its clustering settings (``--cluster-set``, after "cluster:")."""
    s = list(r.get("train_settings") or [])
    if r.get("cluster_settings"):
        s.append("cluster: " + ", ".join(r["cluster_settings"]))
    return r["method"] + (f" ({', '.join(s)})" if s else "")


def summary(rows: list[dict]) -> list[str]:
    """One line per method (settings included): pairwise / BCubed F on every test set, with
    the difference to ``auto`` on the same test set; the best method per column in bold."""
    cols = []
    for r in rows:
        c = (r["regime"], r["emb"], r["train"] if r.get("train_ids") else None, r["test"])
        if r.get("train_ids") and c not in cols:
            cols.append(c)
    if not cols:
        return []

    def find(method_cell: str, c: tuple) -> dict | None:
        regime, emb, train, test = c
        for r in rows:
            if (_method_cell(r) == method_cell and r["regime"] == regime and r["emb"] == emb
                    and r["test"] == test and (not r.get("train_ids") or r["train"] == train)):
                return r
        return None

    methods = list(dict.fromkeys(_method_cell(r) for r in rows))
    best = {c: max((find(m, c) or {}).get("pairwise_f", -1) for m in methods) for c in cols}
    head = [f"{c[0]} {c[1].replace('arcface512', 'arc').replace('dlib128', 'dlib')} "
            f"{c[2]} → {c[3]}" for c in cols]
    out = ["## Summary: pairwise F / BCubed F (Δ pairwise F vs `auto`) on every test set", "",
           "Bold: the best pairwise F of the column. `–`: not run. Details per regime below.",
           "", "| method | " + " | ".join(head) + " |", "|---" * (len(cols) + 1) + "|"]
    for m in methods:
        cells = []
        for c in cols:
            r, a = find(m, c), find("auto", c)
            if r is None:
                cells.append("–")
                continue
            f = f"{r['pairwise_f']:.3f}"
            f = f"**{f}**" if r["pairwise_f"] == best[c] else f
            d = "" if a is None or m == "auto" else f" ({r['pairwise_f'] - a['pairwise_f']:+.3f})"
            cells.append(f"{f} / {r['bcubed_f']:.3f}{d}")
        if any(v != "–" for v in cells):
            out.append(f"| {m} | " + " | ".join(cells) + " |")
    return out + [""]


def render(rows: list[dict], meta: dict) -> str:
    titles = {
        "1a": "Regime 1a: LFW, unseen people, test side holds the largest identities",
        "1b": "Regime 1b: celeba_wild, unseen people (50/50 by person)",
        "2": "Regime 2: across sources (train once, run on other photos)",
        "3": "Regime 3: MS-Celeb-1M-like at scale (`faceclust synth`, 256-d)",
    }
    out = [
        "# Supervised methods on people they never saw",
        "",
        "Generated by `python benchmarks/supervised_eval.py` (see its docstring for the exact",
        "splits); do not edit by hand. Every supervised method of the registry",
        "(`faceclust methods` marks them `[needs model]`) is trained with `faceclust train",
        "--method M` at its defaults (other training settings in brackets after its name)",
        "on the training people and run with",
        "`faceclust cluster --method M --model DIR` on the test people; `auto`, `fc-es` and",
        "`infomap` (label-free, defaults) run on the same test people. Train and test share no",
        "identity. Δ columns: pairwise / BCubed F minus `auto`'s on the same test set.",
        "Times and memory: wall seconds and peak RSS of the `faceclust train` / `faceclust",
        "cluster` process (cluster: load + kNN + clustering), measured on a shared 2-core",
        "machine under load from other jobs: compare within a table, not across runs.",
        "CPU s (user + system seconds of the same process, all threads; rows run with",
        "`OMP_NUM_THREADS=1` and one numba thread, so about the one-core time) depend far less",
        "on the other jobs; `–` where a row predates that column.",
        "",
        "Train and use a model yourself:",
        "",
        "    faceclust train --method gcn-v FEATURES.npy LABELS.meta --out MODEL [--set steps=300]",
        "    faceclust cluster OTHER.npy --method gcn-v --model MODEL --out PRED.meta",
        "",
        "`MODEL/training.json` records what the model was trained on (N, dimension,",
        "embedding, class sizes, similarity scale, parameters, command); `cluster` refuses",
        "another dimension and warns when the similarity scale is far from training's.",
        "Ctrl-C during training saves a resumable state: the same command continues.",
        "On a busy machine `OMP_NUM_THREADS=1` trains several times faster (less thread",
        "contention). Reproduce or extend these tables (a new supervised method gets rows by",
        "being registered): `python benchmarks/supervised_eval.py --methods NAME`",
        "(`--regimes 1a,1b,2,3`, `--train-set NAME:key=value`, `--scale` for regime 3).",
        "",
    ]
    if meta.get("notes"):
        out += [f"Run notes: {meta['notes']}", ""]
    out += summary(rows)
    for regime in ("1a", "1b", "2", "3"):
        rr = [r for r in rows if r["regime"] == regime]
        if not rr:
            continue
        out += [f"## {titles[regime]}", ""]
        out += ["| embedding | train → test (people, largest) | method | pair P | pair R | pair F "
                "| ΔF | BCubed P | BCubed R | BCubed F | ΔB | clusters | train s | train CPU s "
                "| train MiB | cluster s | cluster CPU s | cluster MiB |",
                "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in rr:
            auto = next((a for a in rr if a["method"] == "auto" and a["emb"] == r["emb"]
                         and a["test"] == r["test"]), None)
            dpf = None if auto is None else r["pairwise_f"] - auto["pairwise_f"]
            dbf = None if auto is None else r["bcubed_f"] - auto["bcubed_f"]
            tr = (f"{r['train']} ({r['train_ids']}, {r['train_largest']}) → " if r.get("train_ids")
                  else "– → ")
            out.append(
                f"| {r['emb']} | {tr}{r['test']} ({r['test_ids']}, {r['test_largest']}) "
                f"| {_method_cell(r)} | {_f(r['pairwise_precision'])} | {_f(r['pairwise_recall'])} "
                f"| {_f(r['pairwise_f'])} | {_f(dpf, '{:+.3f}')} | {_f(r['bcubed_precision'])} "
                f"| {_f(r['bcubed_recall'])} | {_f(r['bcubed_f'])} | {_f(dbf, '{:+.3f}')} "
                f"| {r['n_clusters']} | {_f(r.get('train_seconds'), '{:.0f}')} "
                f"| {_f(r.get('train_cpu_seconds'), '{:.0f}')} "
                f"| {_f(r.get('train_peak_mib'), '{:.0f}')} | {_f(r['cluster_seconds'], '{:.1f}')} "
                f"| {_f(r.get('cluster_cpu_seconds'), '{:.1f}')} "
                f"| {_f(r['cluster_peak_mib'], '{:.0f}')} |")
        warns = sorted({f"{r['method']} on {r['test']} ({r['emb']}): {w.split('warning: ')[-1]}"
                        for r in rr for w in r.get("warnings", [])})
        if warns:
            out += ["", "Warnings printed by `cluster`:", ""] + [f"- {w}" for w in warns]
        out.append("")
    return "\n".join(out)


def main() -> None:
    from faceclust.methods import METHODS

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    supervised = sorted(n for n, c in METHODS.items() if getattr(c, "needs_model", False))
    ap.add_argument("--regimes", default="1a,1b,2,3")
    ap.add_argument("--methods", default=",".join([*supervised, *UNSUPERVISED]))
    ap.add_argument("--embeddings", default=",".join(EMBEDDINGS))
    ap.add_argument("--train-set", action="append", default=[], metavar="METHOD:KEY=VALUE",
                    help="training parameter of one method (repeatable)")
    ap.add_argument("--cluster-set", action="append", default=[], metavar="METHOD:KEY=VALUE",
                    help="clustering parameter of one method, `faceclust cluster --set` "
                         "(repeatable; the rows get their own key)")
    ap.add_argument("--retrain", action="store_true", help="ignore cached models")
    ap.add_argument("--scale", default=":".join(map(str, FULL_SCALE)),
                    help="regime 3 sizes N_TRAIN:IDS_TRAIN:N_TEST:IDS_TEST")
    ap.add_argument("--work", default=os.environ.get("SUPERVISED_EVAL_WORK",
                                                      "/tmp/faceclust_supervised_eval"))
    ap.add_argument("--notes", default=None, help="free text stored and shown in the doc")
    ap.add_argument("--no-doc", action="store_true", help="do not rewrite docs/supervised.md")
    ap.add_argument("--results", default=str(RESULTS), help="results JSON (accumulated)")
    ap.add_argument("--merge", nargs="*", default=[], metavar="JSON",
                    help="also take the rows of these results files (runs made in parallel)")
    a = ap.parse_args()
    work = Path(a.work)
    scale = tuple(int(v) for v in a.scale.split(":"))
    methods = [m.strip() for m in a.methods.split(",") if m.strip()]
    for m in methods:
        if m not in METHODS:
            raise SystemExit(f"unknown method {m!r}")
    settings, csettings = _per_method(a.train_set), _per_method(a.cluster_set)
    results = Path(a.results)
    stored = json.loads(results.read_text()) if results.is_file() else {"rows": [], "meta": {}}
    rows = {_key(r): r for r in stored["rows"]}
    for extra in a.merge:
        rows.update({_key(r): r for r in json.loads(Path(extra).read_text())["rows"]})
    _write(results, rows, stored.get("meta", {}), a.notes, supervised, not a.no_doc)
    for regime in [r for r in a.regimes.split(",") if r and r != "none"]:
        embs = ["synth256"] if regime == "3" else a.embeddings.split(",")
        for emb in embs:
            for task in tasks(regime, emb if regime != "3" else "synth", work, scale):
                tr, te = task["train"], task["test"]
                for method in methods:
                    sup = getattr(METHODS[method], "needs_model", False)
                    row = {"regime": regime, "emb": emb, "method": method,
                           "train": tr["name"] if sup else "–", "test": te["name"],
                           "test_ids": te["ids"], "test_largest": te["largest"]}
                    model = None
                    if sup:
                        s = settings.get(method, [])
                        model, info = train_model(method, tr, s, work, emb, a.retrain)
                        row.update(train_ids=tr["ids"], train_largest=tr["largest"],
                                   train_seconds=info.get("seconds"),
                                   train_cpu_seconds=info.get("cpu_seconds"),
                                   train_peak_mib=info.get("peak_rss_mib"), train_settings=s)
                    print(f"  cluster {method} on {te['name']} ({emb}) ...", file=sys.stderr,
                          flush=True)
                    cs = csettings.get(method, [])
                    if cs:
                        row["cluster_settings"] = cs
                    row.update(cluster(method, te, model, work, cs))
                    print(f"    pair F {row['pairwise_f']:.3f} BCubed F {row['bcubed_f']:.3f}",
                          file=sys.stderr, flush=True)
                    rows[_key(row)] = row
                    _write(results, rows, stored.get("meta", {}), a.notes, supervised,
                           not a.no_doc)


def _per_method(values: list[str]) -> dict[str, list[str]]:
    """``["M:k=v", ...]`` -> ``{"M": ["k=v", ...]}`` (order kept); a value without
    ``METHOD:`` or ``=`` is refused."""
    out: dict[str, list[str]] = {}
    for s in values:
        m, _, kv = s.partition(":")
        if not m or "=" not in kv:
            raise SystemExit(f"expected METHOD:KEY=VALUE, got {s!r}")
        out.setdefault(m, []).append(kv)
    return out


def _write(results: Path, rows: dict, meta: dict, notes: str | None, supervised: list[str],
           doc: bool) -> None:
    """Results JSON and (``doc``) docs/supervised.md from all rows, in a fixed order."""
    from faceclust import io

    order = {"1a": 0, "1b": 1, "2": 2, "3": 3}
    ordered = sorted(rows.values(), key=lambda r: (
        order[r["regime"]], r["emb"], r["test"], r["method"] not in supervised, r["method"]))
    if notes:
        meta["notes"] = notes
    io.write_text(results, json.dumps({"meta": meta, "rows": ordered}, indent=1) + "\n")
    if doc:
        io.write_text(DOC, render(ordered, meta) + "\n")


if __name__ == "__main__":
    main()
