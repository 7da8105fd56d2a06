"""Real-data quality table: every unsupervised method at its published defaults, ``auto``,
scikit-learn HDBSCAN and a labelled oracle, on LFW, CelebA crops and in-the-wild CelebA
(ArcFace-like 512-d and dlib 128-d), ORL and MS1M-like synthetic data.

    python benchmarks/real_data_eval.py [--out docs/real-data.md] [--methods auto,knn-cc,...]
                                        [--halves] [--more-synth] [--sweep] [--wild-halves N]
                                        [--json benchmarks/results/real_data.json]

Data sets (read-only, from ``../shared/data`` or ``$FACECLUST_DATA``):

* ``lfw-arcface512`` / ``lfw-dlib128``: all 7,605 photos of 3,476 people (72 % of the
  people have one photo);
* ``... >=2``: only the people with at least two photos, clustered on their own;
* ``orl-dlib128``: 40 people x 10 photos;
* ``celeba-*``: 4,986 half-resolution CelebA crops of 2,714 people (most with 1-4 photos);
* ``celeba_wild-*``: 2,756 full-size CelebA web photos of 132 people (mostly 19-30 each);
* ``synth-ms1m``: ``make_faces(20000, 300, 256, seed=1)`` -- about 67 photos per identity
  like MS-Celeb-1M part 1, few singletons (``--no-synth`` skips it).

Every method is run without labels at its published defaults (the constructor defaults);
``kmeans`` is left out (it needs the true number of clusters) and so are the supervised
GCN methods (they need training). The **oracle** row is ``knn-cc`` (k = 10) with its
threshold swept over the data's own similarity range and the best threshold *chosen with
the labels*, separately for pairwise and for BCubed F: an upper reference a user without
labels cannot reach by tuning one threshold. ``--halves`` adds the per-half check: the
identities are split at random into two halves and ``auto`` is run on each (LFW and
celeba_wild); ``--wild-halves N`` adds a table of ``N`` such splits of celeba_wild (auto with
and without its joining step, HDBSCAN, oracle).
``--more-synth`` adds synthetic sets of other regimes (half the people photographed once,
dlib's scale, the ``hard`` preset); ``--sweep`` adds the table behind ``auto``'s attachment
defaults (every set, each ``attach_share`` x ``attach``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("FACECLUST_PROGRESS", "0")

from faceclust.bench import run_bench  # noqa: E402
from faceclust.fsutil import write_text  # noqa: E402
from faceclust.graph import relabel  # noqa: E402
from faceclust.knn import build_knn  # noqa: E402
from faceclust.methods import METHODS, AutoClusterer  # noqa: E402
from faceclust.metrics import evaluate  # noqa: E402
from faceclust.stages.partition import connected_components  # noqa: E402
from faceclust.synth import PRESETS, SynthConfig, make_faces  # noqa: E402

#: ``--more-synth``: other regimes, so no choice is made on one kind of data.
MORE_SYNTH = [
    ("synth-strangers", (20000, 2000, 256, 2), SynthConfig(singleton_frac=0.5)),
    ("synth-dlib", (20000, 300, 128, 3), PRESETS["dlib"]),
    ("synth-hard", (20000, 300, 256, 4), PRESETS["hard"]),
]
SKIP = {"kmeans", "gcn-v", "gcn-ve"}  # need the cluster count / training labels
ROOT = Path(__file__).resolve().parents[1]


def _data_root() -> Path:
    env = os.environ.get("FACECLUST_DATA")
    if env:
        return Path(env)
    for cand in (ROOT.parent / "shared" / "data", Path("/work/shared/data")):
        if cand.exists():
            return cand
    sys.exit("shared data not found; set FACECLUST_DATA")


def _multi(y: np.ndarray) -> np.ndarray:
    _, inv, cnt = np.unique(y, return_inverse=True, return_counts=True)
    return cnt[inv] >= 2


def person_half(y: np.ndarray, seed: int) -> np.ndarray:
    """Mask of a random half of the people (``default_rng(seed)`` shuffles the identities)."""
    ids = np.unique(y)
    np.random.default_rng(seed).shuffle(ids)
    return np.isin(y, ids[: len(ids) // 2])


def datasets(root: Path, synth: bool, halves: bool,
             more_synth: bool = False) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Name -> (features, labels)."""
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    y_lfw = np.loadtxt(root / "lfw" / "labels.meta", dtype=np.int64)
    for model in ("arcface512", "dlib128"):
        x = np.load(root / "lfw" / f"{model}_features.npy").astype(np.float32)
        out[f"lfw-{model}"] = (x, y_lfw)
        m = _multi(y_lfw)
        out[f"lfw-{model} >=2"] = (x[m], y_lfw[m])
        if halves:
            a = person_half(y_lfw, 0)
            out[f"lfw-{model} half A"] = (x[a], y_lfw[a])
            out[f"lfw-{model} half B"] = (x[~a], y_lfw[~a])
    out["orl-dlib128"] = (
        np.load(root / "orl" / "dlib128_features.npy").astype(np.float32),
        np.loadtxt(root / "orl" / "labels.meta", dtype=np.int64),
    )
    for src in ("celeba", "celeba_wild"):
        if not (root / src).exists():
            continue
        y_src = np.loadtxt(root / src / "labels.meta", dtype=np.int64)
        for model in ("arcface512", "dlib128"):
            x = np.load(root / src / f"{model}_features.npy").astype(np.float32)
            out[f"{src}-{model}"] = (x, y_src)
            if halves and src == "celeba_wild":
                a = person_half(y_src, 0)
                out[f"{src}-{model} half A"] = (x[a], y_src[a])
                out[f"{src}-{model} half B"] = (x[~a], y_src[~a])
    if synth:
        x, y = make_faces(20000, 300, 256, seed=1)
        out["synth-ms1m"] = (x, np.asarray(y))
    if more_synth:
        for name, args, cfg in MORE_SYNTH:
            n, ids, dim, seed = args
            x, y = make_faces(n, ids, dim, seed=seed, config=cfg)
            out[name] = (x, np.asarray(y))
    return out


def oracle(graph, y: np.ndarray, k: int = 10) -> dict:
    """knn-cc with the threshold chosen WITH the labels, best per metric."""
    g = graph.truncate(min(k, graph.k))
    lo, hi = np.quantile(g.sims[:, 1:][g.valid[:, 1:]], [0.01, 0.999])
    best: dict = {}
    for th in np.linspace(lo, hi, 240):
        src, dst, _ = g.edges(min_sim=float(th))
        r = evaluate(y, connected_components(src, dst, g.n))
        for key in ("pairwise_f", "bcubed_f"):
            if key not in best or r[key] > best[key][0]:
                best[key] = (r[key], float(th), r)
    return best


NO_JOIN = "auto-nojoin"
HDBSCAN_ROW = "hdbscan"
#: Table labels of the rows that are not registered methods.
LABELS = {NO_JOIN: "auto without the joining step (join=None)",
          HDBSCAN_ROW: "hdbscan (scikit-learn, min_cluster_size 2)"}


#: HDBSCAN gets the dense distance matrix (its tree search is minutes at 512-d): N^2 floats.
HDBSCAN_MAX_N = 10000


def hdbscan_labels(x: np.ndarray) -> np.ndarray:
    """scikit-learn HDBSCAN (min_cluster_size 2) with Euclidean distance between the unit rows
    (``sqrt(2 - 2 cos)``, its default metric, given precomputed); noise points become singletons."""
    from sklearn.cluster import HDBSCAN

    d = np.sqrt(np.clip(2.0 - 2.0 * (x.astype(np.float64) @ x.T.astype(np.float64)), 0.0, None))
    np.fill_diagonal(d, 0.0)
    return relabel(HDBSCAN(min_cluster_size=2, metric="precomputed", copy=False).fit_predict(d))


def _scores(y: np.ndarray, labels: np.ndarray, seconds: float) -> dict:
    r = evaluate(y, labels)
    return {"pairwise_f": r["pairwise_f"], "bcubed_f": r["bcubed_f"],
            "n_clusters": r["n_clusters"], "seconds": seconds}


def run(names: list[str], data: dict, graphs: dict, log) -> dict:
    """Each data set through ``faceclust bench``'s runner (:func:`faceclust.bench.run_bench`,
    one shared exact k = 80 graph, as ``faceclust bench FEATURES --gt LABELS`` builds), plus
    the labelled oracle."""
    results: dict = {}
    methods = [m for m in names if m in METHODS]
    for dname, (x, y) in data.items():
        graph = graphs[dname]
        res: dict = {"n": int(len(x)), "ids": int(len(np.unique(y)))}
        report = run_bench(x, y, methods, knn=graph, name=dname, progress_bar=False)
        for r in report.results:
            if r.error is not None:  # a broken method must not hide the others
                res[r.method] = {"error": r.error}
            else:
                res[r.method] = {"pairwise_f": r.metrics["pairwise_f"],
                                 "bcubed_f": r.metrics["bcubed_f"],
                                 "n_clusters": r.metrics["n_clusters"], "seconds": r.seconds}
                if r.method == "auto":
                    res["auto"]["explain"] = r.explain
                    res["auto"]["threshold"] = r.threshold
            log(f"{dname:22s} {r.method:17s} {res[r.method]}")
        if "auto" in names:  # the same run without the joining step: what it changed
            t0 = time.perf_counter()
            lab = AutoClusterer(join=None).fit(x, knn=graph).labels_
            res[NO_JOIN] = _scores(y, lab, time.perf_counter() - t0)
            log(f"{dname:22s} auto, no join     {res[NO_JOIN]}")
        if HDBSCAN_ROW in names and len(x) <= HDBSCAN_MAX_N:
            t0 = time.perf_counter()
            res[HDBSCAN_ROW] = _scores(y, hdbscan_labels(x), time.perf_counter() - t0)
            log(f"{dname:22s} hdbscan           {res[HDBSCAN_ROW]}")
        if "oracle" in names:
            o = oracle(graph, y)
            res["oracle"] = {
                "pairwise_f": o["pairwise_f"][0], "pairwise_th": o["pairwise_f"][1],
                "bcubed_f": o["bcubed_f"][0], "bcubed_th": o["bcubed_f"][1],
                "at_pairwise_th": [o["pairwise_f"][2]["pairwise_f"], o["pairwise_f"][2]["bcubed_f"]],
                "at_bcubed_th": [o["bcubed_f"][2]["pairwise_f"], o["bcubed_f"][2]["bcubed_f"]],
            }
            log(f"{dname:22s} oracle            {res['oracle']}")
        results[dname] = res
    return results


def wild_halves(root: Path, seeds: int, log) -> dict:
    """``auto`` (with and without joining), HDBSCAN and the oracle on person-disjoint random
    halves of celeba_wild (seeds ``0 .. seeds-1``, both models): people no choice was made on."""
    out: dict = {}
    y = np.loadtxt(root / "celeba_wild" / "labels.meta", dtype=np.int64)
    for model in ("arcface512", "dlib128"):
        x_all = np.load(root / "celeba_wild" / f"{model}_features.npy").astype(np.float32)
        for seed in range(seeds):
            a = person_half(y, seed)
            for part, sel in (("A", a), ("B", ~a)):
                x, yy = x_all[sel], y[sel]
                g = build_knn(x, k=min(80, len(x) - 1))
                o = oracle(g, yy)
                row = {
                    "n": int(len(x)), "ids": int(len(np.unique(yy))),
                    "auto": _scores(yy, AutoClusterer().fit(x, knn=g).labels_, 0.0),
                    NO_JOIN: _scores(yy, AutoClusterer(join=None).fit(x, knn=g).labels_, 0.0),
                    HDBSCAN_ROW: _scores(yy, hdbscan_labels(x), 0.0),
                    "oracle": {"pairwise_f": o["pairwise_f"][0], "bcubed_f": o["bcubed_f"][0]},
                }
                name = f"celeba_wild-{model} seed {seed} half {part}"
                out[name] = row
                log(f"{name} {row}")
    return out


def wild_halves_markdown(res: dict, seeds: int) -> list[str]:
    lines = [
        "## celeba_wild: person-disjoint random halves",
        "",
        f"The people of celeba_wild split at random into two halves ({seeds} seeds, "
        "`default_rng(seed)` shuffles the identities), each half clustered on its own with its "
        "own exact k = 80 graph: `auto`'s joining step was chosen on the whole set, so the halves "
        "check that it carries to other people. Each cell: pairwise F / BCubed F; last column: "
        "`auto` minus the oracle.",
        "",
        "| half | photos / people | **auto** | auto without joining | hdbscan | oracle "
        "| auto - oracle |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, r in res.items():
        d = (r["auto"]["pairwise_f"] - r["oracle"]["pairwise_f"],
             r["auto"]["bcubed_f"] - r["oracle"]["bcubed_f"])
        lines.append(
            f"| {name} | {r['n']} / {r['ids']} | {_cell(r['auto'])} | {_cell(r[NO_JOIN])} | "
            f"{_cell(r[HDBSCAN_ROW])} | {_cell(r['oracle'])} | {d[0]:+.3f} / {d[1]:+.3f} |"
        )
    return lines + [""]


#: ``auto``'s attachment step: (attach_share, attach) settings compared by ``--sweep``.
SWEEP = [(None, None)] + [(s, a) for s in (0.6, 0.75, 0.9, 1.0) for a in (0.0, 0.05, 0.1, 0.15)]


def sweep(data: dict, graphs: dict, log) -> dict:
    """``auto`` with each attachment setting of :data:`SWEEP` on every data set."""
    out: dict = {}
    for dname, (x, y) in data.items():
        graph = graphs[dname]
        rows = {}
        for share, attach in SWEEP:
            model = AutoClusterer(attach=attach, attach_share=share or 0.9)
            r = evaluate(y, model.fit(x, knn=graph).labels_)
            rows[f"{share}/{attach}"] = [r["pairwise_f"], r["bcubed_f"]]
        out[dname] = rows
        log(f"{dname:22s} sweep {rows}")
    return out


def sweep_markdown(res: dict, reused: str | None = None) -> list[str]:
    dnames = list(res)
    note = ([f"(Stored sweep, reused from `{reused}` with `--sweep-from`: measured before `auto`",
             "had its joining step, i.e. as `join=None` today; rerun with `--sweep` to refresh.)",
             ""] if reused else [])
    lines = [
        "## Choosing `auto`'s attachment step",
        "",
        "`auto` at each setting of the attachment step (`attach_share` = fraction of the 19",
        "nearest neighbours that must lie in one cluster, `attach` = floor on the mean cosine to",
        "it, as a fraction of the way from the different-people to the same-person mode), change",
        "of pairwise F / BCubed F against no attachment (first row, absolute). Chosen (the",
        "defaults): 0.9 / 0.05. Every setting gains on the dense synthetic sets; on the real",
        "LFW halves a floor below 0.05 or a share below 0.9 starts to lose (up to 1 point",
        "pairwise: strangers joining a famous face's big cluster). The floor cannot go higher",
        "either: the different-people mode rises with the number of identities, and at 584K",
        "(8,573 identities) a floor of 0.1 leaves `auto` 0.5 points below `fc-es` where 0.05",
        "gives 0.9841 / 0.9825 vs 0.9865 / 0.9860 (`benchmarks/attach_sweep_scale.py`, table in",
        "`docs/benchmarks.md`). Among the settings at 0.05, 0.9 and 1.0 lose least on the real",
        "sets (at most 0.3 / 0.2 points on one LFW half); 0.9 gains more on the dense sets.",
        "",
        *note,
        "| share / attach | " + " | ".join(dnames) + " |",
        "|---|" + "---|" * len(dnames),
    ]
    for key in res[dnames[0]]:
        cells = []
        for d in dnames:
            pf, bf = res[d][key]
            if key == "None/None":
                cells.append(f"{pf:.3f} / {bf:.3f}")
            else:
                b = res[d]["None/None"]
                cells.append(f"{pf - b[0]:+.3f} / {bf - b[1]:+.3f}")
        label = "no attachment" if key == "None/None" else key.replace("/", " / ")
        if key == "0.9/0.05":
            label = f"**{label}** (default)"
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines + [""]


def _cell(r: dict | None) -> str:
    if not r:
        return "–"
    if "error" in r:
        return "error"
    return f"{r['pairwise_f']:.3f} / {r['bcubed_f']:.3f}"


def markdown(results: dict, names: list[str], command: str, swept: dict | None = None,
             halves_res: dict | None = None, seeds: int = 0, reused: str | None = None,
             reused_rows: list[str] | None = None, reuse_from: str | None = None) -> str:
    dnames = list(results)
    lines = [
        "# Quality on real faces (and MS1M-like synthetic data)",
        "",
        "Each cell: **pairwise F / BCubed F**. Every method runs without labels at its",
        "published defaults; `auto` is the label-free default (no flags). The *oracle* row is",
        "`knn-cc` (k = 10) with the threshold **chosen with the labels** (best pairwise F and best",
        "BCubed F each at their own threshold): a reference no unsupervised run can be tuned to.",
        "`>=2` columns cluster only the people with at least two photos (a separate run).",
        "`celeba` (4,986 low-resolution aligned crops, 2,714 people, most with 1-4 photos) and",
        "`celeba_wild` (2,756 full-size web photos, 132 people, mostly 19-30 photos each, no",
        "singletons) are the shared CelebA parts; `half A/B` columns are random person-disjoint",
        "halves (seed 0; more seeds for celeba_wild in their own section below). *hdbscan* is",
        "scikit-learn's HDBSCAN with `min_cluster_size=2` on the unit features (noise points",
        "count as singletons; not run on the 20K synthetic sets: it needs the N x N distances).",
        "",
        "How `auto` works (`faceclust.adaptive`, `faceclust.methods._auto`): the similarities of",
        "each point to its 19 nearest neighbours are a mixture of different-people and same-person",
        "pairs; a minimum-error (Kittler-Illingworth) split separates the two classes, the density",
        "mode of each is found, and the merge threshold is placed 0.3 of the way from the",
        "different-people mode to the same-person mode (scale-free: it follows ArcFace-like and",
        "dlib-like scales alike). Clusters are then formed by exact average linkage (mean cosine",
        "over all member pairs, from cluster vector sums) along the 9-NN edges above the",
        "threshold, so one look-alike pair cannot chain two people together. Clusters that are",
        "evidently pieces of one person (varied photos: pose, age, lighting) are then joined:",
        "a cluster joins another if at least 45 % of its members' 19 nearest neighbours lie in",
        "it, and at least half of those outside itself, the other lists it back (at least 0.2 x",
        "as often), some neighbour pair between the two is at least 0.55 of the way from the",
        "different-people to the same-person mode (they touch), and their mean cosine over all",
        "member pairs is at least the attachment's floor (average linkage from the partition,",
        "along those pairs only; `faceclust.stages.join`). The row *auto without the joining",
        "step* shows what it changes. A face left alone",
        "then joins the cluster holding at least 90 % of its 19 nearest neighbours if its mean",
        "cosine to that cluster is at least 0.05 of the way from the different-people mode to the",
        "same-person mode: a poor photo of a well-photographed person (most MS-Celeb-1M",
        "identities) has nearly all its neighbours in that person's cluster, a stranger's",
        "look-alikes rarely agree that much (the choice of 90 % / 0.05 is in the sweep below).",
        "Centring is tried only for features with a long mean vector and kept only if it",
        "separates the two modes better (chosen on ORL, rejected on LFW dlib).",
        "",
        "Every data set goes through `faceclust bench`'s runner (`faceclust.bench.run_bench`, one",
        "shared exact k = 80 graph): a column equals `faceclust bench FEATURES --gt LABELS",
        "--methods ...` on that set.",
        "",
        *([f"Rows {', '.join(f'`{m}`' for m in reused_rows)} are not rerun: their cells are reused",
           f"from `{reuse_from}` (`--reuse`; those methods did not change), `–` on data sets it",
           "does not have.", ""] if reused_rows else []),
        "Reproduce with:",
        "",
        "```",
        command,
        "```",
        "",
        "| method | " + " | ".join(dnames) + " |",
        "|---|" + "---|" * len(dnames),
    ]
    rows = [n for n in names if n != "oracle"]
    if "auto" in rows:
        rows.insert(rows.index("auto") + 1, NO_JOIN)
    for name in rows:
        if not any(name in results[d] for d in dnames):
            continue
        row = [f"**{name}**" if name == "auto" else LABELS.get(name, name)]
        row += [_cell(results[d].get(name)) for d in dnames]
        lines.append("| " + " | ".join(row) + " |")
    if all("oracle" in results[d] for d in dnames):
        row = ["oracle (knn-cc, uses labels)"]
        row += [_cell(results[d]["oracle"]) for d in dnames]
        lines.append("| " + " | ".join(row) + " |")
        row = ["oracle thresholds (pairwise / BCubed)"]
        row += [f"{results[d]['oracle']['pairwise_th']:.3f} / {results[d]['oracle']['bcubed_th']:.3f}"
                for d in dnames]
        lines.append("| " + " | ".join(row) + " |")
    if any("auto" in results[d] and "threshold" in results[d]["auto"] for d in dnames):
        row = ["auto: estimated threshold"]
        row += [f"{results[d]['auto']['threshold']:.4f}" if "threshold" in results[d].get("auto", {})
                else "–" for d in dnames]
        lines.append("| " + " | ".join(row) + " |")
    lines += ["", "Sizes: " + "; ".join(
        f"{d}: {results[d]['n']} photos, {results[d]['ids']} people" for d in dnames), ""]
    if halves_res:
        lines += wild_halves_markdown(halves_res, seeds)
    if swept:
        lines += sweep_markdown(swept, reused)
    for d in dnames:
        if "explain" in results[d].get("auto", {}):
            lines += [f"`auto` on {d}:", "", "```", results[d]["auto"]["explain"], "```", ""]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--out", default=str(ROOT / "docs" / "real-data.md"))
    ap.add_argument("--json", default=str(ROOT / "benchmarks" / "results" / "real_data.json"))
    ap.add_argument("--methods", default=None, help="comma list (default: all unsupervised + oracle)")
    ap.add_argument("--halves", action="store_true", help="also run on random halves of identities")
    ap.add_argument("--no-synth", action="store_true")
    ap.add_argument("--more-synth", action="store_true",
                    help="add synthetic sets with many strangers, dlib scale, hard preset")
    ap.add_argument("--sweep", action="store_true",
                    help="also sweep auto's attachment step (attach_share x attach)")
    ap.add_argument("--sweep-from", default=None, metavar="JSON",
                    help="instead of --sweep, reuse the attachment sweep stored in a previous "
                         "--json file (it is labelled as such in the table)")
    ap.add_argument("--reuse", default=None, metavar="JSON",
                    help="fill the cells of methods not run (not in --methods) from a previous "
                         "--json file, for the data sets it has (marked in the table text)")
    ap.add_argument("--wild-halves", type=int, default=0, metavar="SEEDS",
                    help="also run auto / hdbscan / oracle on SEEDS pairs of random person halves "
                         "of celeba_wild")
    args = ap.parse_args()
    every = (["auto"] + sorted(n for n in METHODS if n not in SKIP and n != "auto")
             + [HDBSCAN_ROW, "oracle"])
    names = args.methods.split(",") if args.methods else every
    data = datasets(_data_root(), synth=not args.no_synth, halves=args.halves,
                    more_synth=args.more_synth)
    graphs = {d: build_knn(x, k=min(80, len(x) - 1)) for d, (x, _) in data.items()}
    results = run(names, data, graphs, lambda s: print(s, flush=True))
    reused_rows: list[str] = []
    if args.reuse:
        stored = json.loads(Path(args.reuse).read_text())
        reused_rows = [m for m in every if m not in names and m != "oracle"]
        for d, res in results.items():
            for m in reused_rows:
                if m in stored.get(d, {}):
                    res[m] = stored[d][m]
        names = [m for m in every if m in names or m in reused_rows]
    swept = sweep(data, graphs, lambda s: print(s, flush=True)) if args.sweep else None
    reused = None
    if swept is None and args.sweep_from:
        swept = json.loads(Path(args.sweep_from).read_text()).get("_attach_sweep")
        reused = args.sweep_from
    if swept:
        results["_attach_sweep"] = swept
    halves_res = (wild_halves(_data_root(), args.wild_halves, lambda s: print(s, flush=True))
                  if args.wild_halves else None)
    if halves_res:
        results["_celeba_wild_halves"] = halves_res
    command = "python benchmarks/real_data_eval.py " + " ".join(sys.argv[1:])
    table = {d: r for d, r in results.items() if not d.startswith("_")}
    write_text(Path(args.out), markdown(table, names, command.strip(), swept, halves_res,
                                        args.wild_halves, reused, reused_rows, args.reuse))
    write_text(Path(args.json), json.dumps(results, indent=1, default=float))
    print(f"wrote {args.out} and {args.json}")


if __name__ == "__main__":
    main()
