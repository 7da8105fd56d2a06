"""The photo library on a real album: scan time, quality numbers, F before/after corrections.

Album: LFW photos (``/work/shared/data/lfw/images``) of ``--people`` people with at least
two photos (chosen with ``--seed``), up to ``--per`` photos each, plus the 6 photos of
``/work/shared/data/photos``; linked (not copied) into ``--work``. The identity of an
LFW photo is its folder; the labelled face is the one nearest the image centre (as in
LFW's own features), the other faces (background people) are clustered but not scored.

1. ``scan`` the first ``--first`` share of the photos (shuffled), real dlib embedding;
2. a simulated user makes ``--corrections`` answers in the app's review queue order
   (merge suggestions answered yes/no by the truth, then "is this X?" for the least
   confident faces);
3. ``scan`` again with the rest of the photos (placed onto the corrected people).

Pairwise and BCubed F of the labelled faces after each step (an unsure labelled face
counts as a singleton). JSON to stdout and ``--json``. Quality numbers of every face
go to ``--quality-json`` (to choose the quality floor).

    python benchmarks/library_album.py --people 100 --per 4 --json benchmarks/results/library_album.json
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import time
from collections import Counter
from pathlib import Path

import numpy as np

from faceclust.fsutil import write_text
from faceclust.library import connect, scan
from faceclust.library import people as ppl
from faceclust.library.catalogue import embeddings, get_meta
from faceclust.metrics import bcubed, pairwise
from faceclust.suggest import suggest_merges

LFW = Path("/work/shared/data/lfw")
PHOTOS = Path("/work/shared/data/photos")


def build_album(work: Path, people: int, per: int, seed: int) -> dict[str, str]:
    paths = (LFW / "paths.txt").read_text().split()
    by: dict[str, list[str]] = {}
    for p in paths:
        by.setdefault(p.split("/")[0], []).append(p)
    names = sorted(n for n, v in by.items() if len(v) >= 2)
    rng = random.Random(seed)
    chosen = rng.sample(names, people)
    truth = {}
    for n in chosen:
        for p in sorted(by[n])[:per]:
            truth[p] = n
    for f in sorted(PHOTOS.glob("*.jpg")):
        truth[f"shared/{f.name}"] = "Joe_Biden" if "biden" in f.name else "Barack_Obama"
    if work.exists():
        shutil.rmtree(work)
    return truth


def link(work: Path, rels: list[str]) -> None:
    for rel in rels:
        src = PHOTOS / rel.split("/", 1)[1] if rel.startswith("shared/") else LFW / "images" / rel
        dst = work / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.symlink_to(src)


def labelled_faces(db: Path, truth: dict[str, str]) -> tuple[list[int], list[str], list[int]]:
    """(face ids, identity, predicted person or a unique negative) of the labelled faces."""
    conn = connect(db)
    rows = conn.execute("SELECT f.id, f.x0, f.y0, f.x1, f.y1, f.person_id, p.path, p.width, "
                        "p.height FROM faces f JOIN photos p ON p.id = f.photo_id").fetchall()
    conn.close()
    best: dict[str, tuple[float, object]] = {}
    for r in rows:
        cx, cy = (r["x0"] + r["x1"]) / 2 - r["width"] / 2, (r["y0"] + r["y1"]) / 2 - r["height"] / 2
        d = cx * cx + cy * cy
        if r["path"].startswith("shared/"):  # the largest face of the shared photos
            d = -(r["x1"] - r["x0"])
        if r["path"] not in best or d < best[r["path"]][0]:
            best[r["path"]] = (d, r)
    ids, gt, pred = [], [], []
    for path, (_, r) in sorted(best.items()):
        ids.append(r["id"])
        gt.append(truth[path])
        pred.append(r["person_id"] if r["person_id"] is not None else -r["id"])
    return ids, gt, pred


def score(db: Path, truth: dict[str, str]) -> dict[str, float]:
    _, gt, pred = labelled_faces(db, truth)
    names = {n: i for i, n in enumerate(sorted(set(gt)))}
    g = np.array([names[n] for n in gt])
    p = np.array(pred)
    return {"pairwise_f": round(pairwise(g, p)[2], 4), "bcubed_f": round(bcubed(g, p)[2], 4),
            "labelled_faces": len(g)}


def simulate_user(db: Path, truth: dict[str, str], n_actions: int) -> list[str]:
    """Answer the review queue truthfully, ``n_actions`` answers."""
    ids, gt, _ = labelled_faces(db, truth)
    who = dict(zip(ids, gt, strict=True))
    conn = connect(db)
    done: list[str] = []

    def majority(pid: int) -> str | None:
        c = Counter(who[f] for (f,) in conn.execute("SELECT id FROM faces WHERE person_id = ?", (pid,))
                    if f in who)
        return c.most_common(1)[0][0] if c else None

    state = get_meta(conn, "cluster_state") or {}
    rows = conn.execute("SELECT id, person_id, embedding FROM faces WHERE hidden = 0 AND unsure = 0 "
                        "AND person_id IS NOT NULL ORDER BY id").fetchall()
    x = ppl.transform(embeddings(rows, int(get_meta(conn, "dim"))), state.get("centre_mean"))
    lab = np.array([r["person_id"] for r in rows])
    for a, b, _s in suggest_merges(x, lab, top=3 * n_actions):
        if len(done) >= n_actions // 2:
            break
        if not conn.execute("SELECT 1 FROM people WHERE id = ?", (a,)).fetchone() or \
                not conn.execute("SELECT 1 FROM people WHERE id = ?", (b,)).fetchone():
            continue
        ma, mb = majority(a), majority(b)
        if ma is None or mb is None:
            continue
        if ma == mb:
            ppl.merge_people(conn, a, b)
            done.append(f"merge {a} {b} ({ma})")
        else:
            ppl.different_people(conn, a, b)
            done.append(f"different {a} {b}")
    low = conn.execute("SELECT id, person_id FROM faces WHERE hidden = 0 AND pinned IS NULL AND "
                       "person_id IS NOT NULL ORDER BY confidence, id LIMIT 200").fetchall()
    for r in low:
        if len(done) >= n_actions:
            break
        if r["id"] not in who:
            continue
        m = majority(r["person_id"])
        if m is None or conn.execute("SELECT COUNT(*) FROM faces WHERE person_id = ?",
                                     (r["person_id"],)).fetchone()[0] < 2:
            continue
        if who[r["id"]] == m:
            ppl.confirm_face(conn, r["id"], r["person_id"])
            done.append(f"confirm {r['id']}")
        else:
            ppl.not_person(conn, r["id"], r["person_id"])
            done.append(f"not {r['id']} {r['person_id']}")
    for (pid,) in conn.execute("SELECT DISTINCT person_id FROM faces WHERE person_id IS NOT NULL "
                               "GROUP BY person_id HAVING COUNT(*) >= 2").fetchall()[:3]:
        m = majority(pid)
        if m and len(done) < n_actions + 3:
            ppl.name_person(conn, pid, m.replace("_", " "))
            done.append(f"name {pid} {m}")
    conn.close()
    return done


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--people", type=int, default=100)
    ap.add_argument("--per", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--first", type=float, default=0.75)
    ap.add_argument("--corrections", type=int, default=8)
    ap.add_argument("--work", type=Path, default=Path("/tmp/faceclust_library_album"))
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--quality-json", type=Path, default=None)
    ap.add_argument("--no-floor", action="store_true", help="cluster every face (no quality floor)")
    args = ap.parse_args()
    truth = build_album(args.work, args.people, args.per, args.seed)
    rels = sorted(truth)
    random.Random(args.seed).shuffle(rels)
    cut = int(len(rels) * args.first)
    db = args.work / ".faceclust" / "catalogue.sqlite"
    out: dict[str, object] = {"album": {"photos": len(rels), "people": len(set(truth.values())),
                                        "lfw_people": args.people, "per": args.per,
                                        "seed": args.seed}}
    link(args.work, rels[:cut])
    t = time.perf_counter()
    floor = {"min_size": 0, "min_sharpness": 0, "min_score": -1e9} if args.no_floor else None
    r1 = scan(args.work, db, quality=floor, progress_bar=False)
    out["scan1"] = {"photos": cut, "faces": r1.faces_new, "unsure": r1.unsure_new,
                    "seconds": round(time.perf_counter() - t, 2),
                    "embed_s_per_photo": round(r1.embed_seconds / cut, 3),
                    "cluster_s": round(r1.cluster_seconds, 2), **score(db, truth)}
    t = time.perf_counter()
    actions = simulate_user(db, truth, args.corrections)
    out["corrections"] = {"actions": actions, "seconds": round(time.perf_counter() - t, 2),
                          **score(db, truth)}
    conn = connect(db)
    pins_before = conn.execute("SELECT id, pinned FROM faces WHERE pinned IS NOT NULL").fetchall()
    conn.close()
    link(args.work, rels[cut:])
    t = time.perf_counter()
    r2 = scan(args.work, db, progress_bar=False)
    conn = connect(db)
    kept = sum(1 for r in pins_before if conn.execute(
        "SELECT 1 FROM faces WHERE id = ? AND person_id = ?", (r["id"], r["pinned"])).fetchone())
    excl = conn.execute("SELECT COUNT(*) FROM exclusions e JOIN faces f ON f.id = e.face_id "
                        "WHERE f.person_id = e.person_id").fetchone()[0]
    out["scan2"] = {"photos": len(rels) - cut, "faces": r2.faces_new, "unsure": r2.unsure_new,
                    "seconds": round(time.perf_counter() - t, 2),
                    "embed_s_per_photo": round(r2.embed_seconds / max(1, len(rels) - cut), 3),
                    "cluster_s": round(r2.cluster_seconds, 2),
                    "pinned_faces_kept": f"{kept}/{len(pins_before)}",
                    "exclusions_violated": excl, **score(db, truth)}
    if args.quality_json:
        ids, _, _ = labelled_faces(db, truth)
        lab = set(ids)
        q = [{"id": r["id"], "size": r["size"], "sharpness": r["sharpness"], "score": r["score"],
              "labelled": r["id"] in lab, "path": r["path"]} for r in conn.execute(
            "SELECT f.id, f.size, f.sharpness, f.score, p.path FROM faces f JOIN photos p ON "
            "p.id = f.photo_id")]
        write_text(args.quality_json, json.dumps(q))
    conn.close()
    text = json.dumps(out, indent=1)
    print(text)
    if args.json:
        write_text(args.json, text + "\n")


if __name__ == "__main__":
    main()
