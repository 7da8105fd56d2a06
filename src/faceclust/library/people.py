"""People from clusters, and user corrections that every later clustering honours.

The incremental clusterer's own labels (``faces.cluster``) are the machine's view and
are what the next scan continues from; people are a layer on top. The catalogue keeps
two kinds of user statement (see :mod:`.catalogue`):

* **pins** -- ``faces.pinned = P``: "this face is person P" (a face moved to P, the
  faces of a person merged into P, a face confirmed in the review queue, and one
  *anchor* face -- the most confident -- for every person the user named or
  otherwise touched);
* **exclusions** -- ``(face, P)``: "this face is not P".

:func:`resolve_people` turns any clustering of the active faces into person ids that
respect them, through the constraint stage every method shares
(:func:`faceclust.stages.constraints.apply_constraints`):

1. each pinned face is put into its person's main cluster (the cluster holding most
   of that person's faces and pins), and another cluster made mostly of that
   person's earlier faces comes along whole: a face moved into a person moves alone,
   while the parts of a merged person stay together -- and new faces that the
   clusterer puts with either part follow them;
2. must-link: the pins of one person; cannot-link: an excluded face and its person's
   anchor, two faces of one photo, and the anchors of two pinned people that end up
   in one cluster (a conflicting group moves to the best other cluster whose mean
   cosine reaches the threshold, or to a new one);
3. a cluster holding a person's pins is that person; every other cluster takes the
   previous person id it overlaps most (largest overlaps first, each id once), so ids
   and names are stable across scans; what is left gets a fresh id.

:func:`recluster` runs this inside one write transaction: after a scan's
``IncrementalClusterer.partial_fit`` (+ ``refine``) on the new faces, or on the
current assignment after a correction; then it stores person ids and per-face
confidence (:func:`faceclust.suggest.confidence`; pinned faces 1.0).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import asdict
from itertools import combinations
from typing import Any

import numpy as np

from ..errors import InputError
from ..stages.constraints import apply_constraints
from .catalogue import embeddings, get_meta, log, new_person, set_meta, write_tx

#: A face whose confidence is below this is marked "not sure" on its person's page.
LOW_CONFIDENCE = 0.2


def transform(x: np.ndarray, centre_mean: np.ndarray | None) -> np.ndarray:
    """Unit rows in the clustering's space (centred when ``auto`` chose to centre)."""
    x = np.asarray(x, dtype=np.float32)
    if centre_mean is None or not len(x):
        return np.ascontiguousarray(x)
    xc = x - np.asarray(centre_mean, dtype=np.float32)
    xc /= np.maximum(np.linalg.norm(xc, axis=1, keepdims=True), 1e-12)
    return xc.astype(np.float32)


def resolve_people(
    labels: np.ndarray,
    x: np.ndarray,
    pinned: np.ndarray,
    previous: np.ndarray,
    *,
    exclusions: list[tuple[int, int]] = (),
    same_photo: np.ndarray | None = None,
    threshold: float | None = None,
    new_id: Callable[[], int],
) -> np.ndarray:
    """Person id of every row (see the module doc).

    Parameters
    ----------
    labels : int [N] clusters (>= 0) from any clustering of the rows.
    x : float [N, D] unit rows (the clustering's space).
    pinned : int [N] person a row is pinned to, -1 for none.
    previous : int [N] person a row had before, -1 for none (new faces).
    exclusions : (row, person) pairs: the row is not that person.
    same_photo : [m, 2] row pairs from one photo (cannot-link).
    threshold : float or None
        Where a face split off a cluster may go (mean cosine to an existing cluster).
    new_id : callable returning a fresh person id.
    """
    y = np.asarray(labels, dtype=np.int64).copy()
    pinned = np.asarray(pinned, dtype=np.int64)
    n = len(y)
    persons = np.unique(pinned[pinned >= 0])
    anchor: dict[int, int] = {}
    ml: list[tuple[int, int]] = []
    prev = np.asarray(previous, dtype=np.int64)
    old = prev >= 0
    for p in persons.tolist():  # 1. pinned faces into their person's main cluster
        rows = np.flatnonzero(pinned == p)
        ids, cnt = np.unique(y[(pinned == p) | (prev == p)], return_counts=True)
        main = ids[np.argmax(cnt)]
        for c, k in zip(ids.tolist(), cnt.tolist(), strict=True):
            # a cluster made mostly of this person's faces comes along whole (new faces too)
            if c != main and 2 * k > int(np.count_nonzero((y == c) & old)):
                y[y == c] = main
        y[rows] = main
        anchor[p] = int(rows[0])
        ml += [(int(rows[0]), int(r)) for r in rows[1:]]
    cl: list[tuple[int, int]] = []
    moved: dict[int, set[int]] = {}
    nxt = int(y.max(initial=-1)) + 1
    for r, p in exclusions:
        a = anchor.get(int(p))
        if a is not None and pinned[r] != p and a != r:
            cl.append((int(r), a))
            if y[r] == y[a] and pinned[r] < 0:  # the excluded face leaves, not the anchor
                y[r] = nxt
                nxt += 1
                moved.setdefault(int(r), set())
    for r, p in exclusions:  # where a moved face may not go
        if int(r) in moved and int(p) in anchor:
            moved[int(r)].add(anchor[int(p)])
    if moved and threshold is not None:
        _rejoin(y, x, moved, threshold)
    sp = np.zeros((0, 2), np.int64)
    if same_photo is not None and len(same_photo):
        sp = np.asarray(same_photo, dtype=np.int64).reshape(-1, 2)
        both = (pinned[sp[:, 0]] >= 0) & (pinned[sp[:, 0]] == pinned[sp[:, 1]])
        sp = sp[~both]
    must = np.asarray(ml, dtype=np.int64).reshape(-1, 2)
    out = y
    for _ in range(8):  # 2. constraints; only pairs that share a cluster can conflict, so
        # same-photo pairs and anchors are added when they do (a group photo has many pairs)
        extra = _anchor_conflicts(out, anchor)
        extra += [tuple(p) for p in sp[out[sp[:, 0]] == out[sp[:, 1]]].tolist()]
        seen = set(cl)
        extra = [p for p in extra if p not in seen]
        if not extra and out is not y:
            break
        cl += extra
        out = apply_constraints(y, must, np.asarray(cl, dtype=np.int64).reshape(-1, 2), x,
                                threshold=threshold)
    y = out
    # 3. clusters -> person ids
    person = np.full(n, -1, dtype=np.int64)
    owner: dict[int, int] = {}
    for p, a in sorted(anchor.items()):
        owner.setdefault(int(y[a]), p)
    taken = set(owner.values())
    free = np.array([c not in owner for c in y.tolist()], dtype=bool) if n else np.zeros(0, bool)
    cand = free & (prev >= 0) & ~np.isin(prev, list(taken))
    if cand.any():
        pairs, counts = np.unique(np.stack([y[cand], prev[cand]], axis=1), axis=0, return_counts=True)
        for (c, p) in pairs[np.lexsort((pairs[:, 1], -counts))].tolist():
            if c not in owner and p not in taken:
                owner[c] = p
                taken.add(p)
    for c in y.tolist():
        if c not in owner:
            owner[c] = new_id()
    if n:
        person[:] = [owner[c] for c in y.tolist()]
    return person


def _rejoin(y: np.ndarray, x: np.ndarray, moved: dict[int, set[int]], threshold: float) -> None:
    """Each excluded face joins the cluster with the highest mean cosine >= ``threshold``
    that holds none of the anchors it is excluded from (in place)."""
    from ..graph import group_sums

    ids, inv = np.unique(y, return_inverse=True)
    sums = group_sums(x, inv, len(ids))
    cnt = np.bincount(inv, minlength=len(ids)).astype(np.float64)
    for r, anchors in moved.items():
        own = inv[r]
        link = (sums @ x[r].astype(np.float64) - np.where(np.arange(len(ids)) == own, 1.0, 0.0)) / \
            np.maximum(cnt - (np.arange(len(ids)) == own), 1)
        link[own] = -np.inf
        link[[inv[a] for a in anchors]] = -np.inf
        best = int(np.argmax(link))
        if link[best] >= threshold:
            y[r] = ids[best]


def _anchor_conflicts(y: np.ndarray, anchor: dict[int, int]) -> list[tuple[int, int]]:
    by_cluster: dict[int, list[int]] = {}
    for a in anchor.values():
        by_cluster.setdefault(int(y[a]), []).append(a)
    return [pair for rows in by_cluster.values() if len(rows) > 1 for pair in combinations(rows, 2)]


# ---------------------------------------------------------------------------- catalogue level


def saved_estimate(state: dict[str, Any] | None):
    """The scale estimate stored in the library's clustering ``state``, or None."""
    from ..adaptive import ScaleEstimate

    if not state or not state.get("estimate"):
        return None
    try:
        return ScaleEstimate(**state["estimate"])
    except TypeError:
        return None


def _scale(est, threshold: float) -> float:
    if est is not None:
        s = float(est.genuine_mode - est.impostor_mode)
        if np.isfinite(s) and s > 0:
            return s
    return max(1e-3, 1.0 - threshold) if np.isfinite(threshold) else 1.0


def recluster(conn: sqlite3.Connection, *, place_new: bool = False,
              params: dict[str, Any] | None = None) -> dict[str, Any]:
    """Cluster (``place_new``: place the unplaced faces) and store people; one transaction.

    Without ``place_new`` the current assignment is only re-resolved against the
    corrections (what every app action does). Returns what was done.
    """
    with write_tx(conn):
        dim = int(get_meta(conn, "dim", 0) or 0)
        rows = conn.execute(
            "SELECT id, photo_id, placed, cluster, person_id, pinned, confidence, embedding FROM faces "
            "WHERE hidden = 0 AND unsure = 0 ORDER BY id"
        ).fetchall()
        if not place_new:  # faces a scan has not placed yet wait for it
            rows = [r for r in rows if r["placed"] == 1 and r["cluster"] is not None]
        state = get_meta(conn, "cluster_state")
        info: dict[str, Any] = {"faces": len(rows), "placed": 0, "refined": False}
        if rows and not dim:
            raise InputError("catalogue: faces without a recorded embedding size")
        x = embeddings(rows, dim) if rows else np.zeros((0, dim), np.float32)
        placed = np.array([r["placed"] == 1 and r["cluster"] is not None for r in rows], bool)
        cluster = np.array([r["cluster"] if r["cluster"] is not None else -1 for r in rows],
                           dtype=np.int64)
        prev = np.array([r["person_id"] if r["person_id"] is not None else -1 for r in rows],
                        dtype=np.int64)
        pinned = np.array([r["pinned"] if r["pinned"] is not None else -1 for r in rows],
                          dtype=np.int64)
        params = dict(params or {})
        params.setdefault("refine_every", 1)
        n = len(rows)
        order = np.arange(n)
        if n == 0:
            labels = np.zeros(0, np.int64)
            xt = x
        elif place_new and (state is None or not placed.any()):
            from ..methods import IncrementalClusterer

            if n >= 2:
                inc = IncrementalClusterer(**params).fit(x)
                labels = inc.labels_
                state = _save_state(inc)
            else:
                labels = np.zeros(1, np.int64)
                state = None
            info.update(placed=n, refined=True)
            xt = transform(x, (state or {}).get("centre_mean"))
        elif place_new and (~placed).any():
            from ..methods import IncrementalClusterer

            old, new = np.flatnonzero(placed), np.flatnonzero(~placed)
            order = np.concatenate([old, new])
            inc = IncrementalClusterer.from_state(
                x[old], cluster[old], threshold=state["threshold"], estimate=saved_estimate(state),
                centre_mean=state.get("centre_mean"), n_at_estimate=state.get("n_at_estimate"),
                **params,
            )
            inc.partial_fit(x[new])
            labels = np.empty(n, np.int64)
            labels[order] = inc.labels_
            state = _save_state(inc)
            info.update(placed=len(new), refined=params.get("refine_every") == 1)
            xt = np.empty_like(inc.features_)
            xt[order] = inc.features_
        else:
            labels = cluster.copy()
            miss = labels < 0
            labels[miss] = labels.max(initial=0) + 1 + np.arange(int(miss.sum()))
            xt = transform(x, (state or {}).get("centre_mean"))
        threshold = float(state["threshold"]) if state else None
        row_of = {r["id"]: i for i, r in enumerate(rows)}
        excl = [(row_of[f], p) for f, p in conn.execute("SELECT face_id, person_id FROM exclusions")
                if f in row_of]
        photo = np.array([r["photo_id"] for r in rows], dtype=np.int64)
        person = resolve_people(
            labels, xt, pinned, prev, exclusions=excl, same_photo=_same_photo_pairs(photo),
            threshold=threshold, new_id=lambda: new_person(conn),
        )
        old_conf = np.array([r["confidence"] if r["confidence"] is not None else np.nan
                             for r in rows], dtype=np.float64)
        conf = np.ones(n)
        if n >= 2:
            est = saved_estimate(state)
            thr = threshold if threshold is not None and np.isfinite(threshold) else 0.0
            todo = np.arange(n)
            if not place_new:  # a correction: only the people it touched
                hit = (person != prev) | np.isnan(old_conf)
                todo = np.flatnonzero(np.isin(person, person[hit]) | np.isin(person, prev[hit]))
                conf = np.where(np.isnan(old_conf), 1.0, old_conf)
            if len(todo):
                conf[todo] = face_confidence(xt, person, todo, scale=_scale(est, thr),
                                             threshold=thr, k=min(10, max(2, n - 1)))
        conf[pinned >= 0] = 1.0
        changed = int((person != prev).sum())
        conn.executemany(
            "UPDATE faces SET cluster = ?, person_id = ?, confidence = ?, placed = 1 WHERE id = ?",
            [(int(lab), int(p), float(c), r["id"])
             for lab, p, c, r in zip(labels, person, conf, rows, strict=True)],
        )
        # faces outside the clustering: pinned ones follow their pin, others belong to nobody
        conn.execute("UPDATE faces SET person_id = pinned, confidence = 1.0 "
                     "WHERE (hidden = 0 AND unsure = 1) AND pinned IS NOT NULL")
        conn.execute("UPDATE faces SET person_id = NULL, confidence = NULL "
                     "WHERE hidden = 1 OR (unsure = 1 AND pinned IS NULL)")
        drop_empty_people(conn)
        if state is not None:
            set_meta(conn, "cluster_state", state)
        set_meta(conn, "generation", int(get_meta(conn, "generation", 0)) + 1)
        info["changed"] = changed
        return info


def _save_state(inc) -> dict[str, Any]:
    est = inc.estimate_
    return {
        "threshold": float(inc.threshold_),
        "estimate": None if est is None else {k: _jsonable(v) for k, v in asdict(est).items()},
        "centre_mean": None if inc.centre_mean_ is None else [float(v) for v in inc.centre_mean_],
        "n_at_estimate": inc.n_at_estimate_,
        "k": inc.k,
    }


def _jsonable(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    return v


def _same_photo_pairs(photo: np.ndarray) -> np.ndarray:
    """Row pairs of faces detected in one photo (vectorised per group size)."""
    if not len(photo):
        return np.zeros((0, 2), np.int64)
    order = np.argsort(photo, kind="stable")
    ph = photo[order]
    starts = np.flatnonzero(np.r_[True, ph[1:] != ph[:-1]])
    sizes = np.diff(np.r_[starts, len(ph)])
    out = [np.zeros((0, 2), np.int64)]
    for size in np.unique(sizes[sizes > 1]).tolist():
        a, b = np.triu_indices(size, 1)
        st = starts[sizes == size][:, None]
        out.append(np.stack([order[(st + a).ravel()], order[(st + b).ravel()]], axis=1))
    return np.concatenate(out).astype(np.int64)


def face_confidence(x: np.ndarray, person: np.ndarray, rows: np.ndarray, *, scale: float,
                    threshold: float, k: int = 10) -> np.ndarray:
    """:func:`faceclust.suggest.confidence` of the faces ``rows`` only (same numbers):
    margin between the mean cosine to their own person and to the best neighbouring one."""
    from ..knn import search_topk
    from ..suggest import cluster_sums

    ids, sums, cnt = cluster_sums(x, person)
    own = np.searchsorted(ids, person[rows])
    xr = x[rows]
    size = cnt[own]
    s_own = np.einsum("ij,ij->i", xr, sums[own]) - 1.0
    a = np.where(size > 1, s_own / np.maximum(size - 1, 1), threshold)
    _, nn = search_topk(x, xr, min(k + 1, len(x)))
    cand = np.searchsorted(ids, person[nn])
    other = cand != own[:, None]
    r = np.repeat(np.arange(len(rows)), cand.shape[1])[other.ravel()]
    c = cand[other]
    b = np.full(len(rows), -1.0)
    if len(c):
        np.maximum.at(b, r, np.einsum("ij,ij->i", xr[r], sums[c]) / cnt[c])
    return np.clip((a - b) / scale, 0.0, 1.0)


def drop_empty_people(conn: sqlite3.Connection) -> None:
    """Delete the people no face belongs to or is pinned to."""
    conn.execute("DELETE FROM people WHERE id NOT IN (SELECT person_id FROM faces "
                 "WHERE person_id IS NOT NULL) AND id NOT IN (SELECT pinned FROM faces "
                 "WHERE pinned IS NOT NULL)")


# ---------------------------------------------------------------------------- corrections


def _face(conn: sqlite3.Connection, face: int) -> sqlite3.Row:
    row = conn.execute("SELECT * FROM faces WHERE id = ?", (face,)).fetchone()
    if row is None:
        raise InputError(f"face {face}: not in the catalogue")
    return row


def _person(conn: sqlite3.Connection, pid: int) -> sqlite3.Row:
    row = conn.execute("SELECT * FROM people WHERE id = ?", (pid,)).fetchone()
    if row is None:
        raise InputError(f"person {pid}: not in the catalogue")
    return row


def ensure_anchor(conn: sqlite3.Connection, pid: int, exclude_face: int | None = None) -> None:
    """Pin the most confident face of ``pid`` unless the person has a pinned face already."""
    if conn.execute("SELECT 1 FROM faces WHERE pinned = ? AND hidden = 0 LIMIT 1", (pid,)).fetchone():
        return
    row = conn.execute(
        "SELECT id FROM faces WHERE person_id = ? AND hidden = 0 AND id != ? AND id NOT IN "
        "(SELECT face_id FROM exclusions WHERE person_id = ?) "
        "ORDER BY unsure, confidence DESC, id LIMIT 1",
        (pid, -1 if exclude_face is None else exclude_face, pid),
    ).fetchone()
    if row is not None:
        conn.execute("UPDATE faces SET pinned = ? WHERE id = ?", (pid, row["id"]))


def name_person(conn: sqlite3.Connection, pid: int, name: str) -> int:
    """Name ``pid`` (empty: remove the name). A name another person has merges into that one.

    Returns the id of the named person.
    """
    name = " ".join(str(name).split())[:200] or None
    with write_tx(conn):
        _person(conn, pid)
        if name is not None:
            other = conn.execute("SELECT id FROM people WHERE name = ? COLLATE NOCASE AND id != ?",
                                 (name, pid)).fetchone()
            if other is not None:
                merge_people(conn, other["id"], pid)
                log(conn, "name", person=other["id"], value=name)
                return int(other["id"])
        conn.execute("UPDATE people SET name = ? WHERE id = ?", (name, pid))
        ensure_anchor(conn, pid)
        log(conn, "name", person=pid, value=name)
    return pid


def merge_people(conn: sqlite3.Connection, target: int, source: int) -> None:
    """``source`` is the same person as ``target``: the faces of both are pinned to ``target``.

    (Pinning both sides keeps them together when a later refine would separate the
    two groups again; a wrong face among them is moved out with :func:`move_face`
    or :func:`not_person`.)
    """
    with write_tx(conn):
        t, s = _person(conn, target), _person(conn, source)
        if target == source:
            return
        conn.execute("UPDATE faces SET pinned = ? WHERE person_id IN (?, ?) AND hidden = 0 AND "
                     "(pinned IS NULL OR pinned IN (?, ?))", (target, source, target, source, target))
        conn.execute("UPDATE faces SET pinned = ? WHERE pinned = ?", (target, source))
        conn.execute("UPDATE faces SET person_id = ? WHERE person_id = ?", (target, source))
        conn.execute("UPDATE OR IGNORE exclusions SET person_id = ? WHERE person_id = ?", (target, source))
        conn.execute("DELETE FROM exclusions WHERE face_id IN (SELECT id FROM faces WHERE pinned = ?) "
                     "AND person_id = ?", (target, target))
        conn.execute("DELETE FROM different WHERE a IN (?, ?) AND b IN (?, ?)",
                     (target, source, target, source))
        for a, b in conn.execute("SELECT a, b FROM different WHERE a = ? OR b = ?", (source, source)).fetchall():
            other = b if a == source else a
            conn.execute("INSERT OR IGNORE INTO different(a, b) VALUES (?, ?)",
                         (min(other, target), max(other, target)))
        conn.execute("DELETE FROM different WHERE a = ? OR b = ?", (source, source))
        if t["name"] is None and s["name"] is not None:
            conn.execute("UPDATE people SET name = ? WHERE id = ?", (s["name"], target))
        conn.execute("DELETE FROM people WHERE id = ?", (source,))
        log(conn, "merge", person=target, other=source)
        recluster(conn)


def move_face(conn: sqlite3.Connection, face: int, to: int | None, *, action: str = "move") -> int:
    """Face ``face`` is person ``to`` (``None``: a new person). Returns the person id."""
    with write_tx(conn):
        f = _face(conn, face)
        if to is None:
            to = new_person(conn)
        else:
            _person(conn, to)
        old = f["person_id"]
        conn.execute("UPDATE faces SET pinned = ?, person_id = ?, hidden = 0 WHERE id = ?", (to, to, face))
        conn.execute("DELETE FROM exclusions WHERE face_id = ? AND person_id = ?", (face, to))
        if old is not None and old != to:
            conn.execute("INSERT OR IGNORE INTO exclusions(face_id, person_id) VALUES (?, ?)", (face, old))
            ensure_anchor(conn, old, exclude_face=face)
        log(conn, action, face=face, person=to, other=old)
        recluster(conn)
    return int(to)


def not_person(conn: sqlite3.Connection, face: int, pid: int) -> None:
    """Face ``face`` is not person ``pid``: it leaves (to its best other match, or alone)."""
    with write_tx(conn):
        f = _face(conn, face)
        _person(conn, pid)
        if f["pinned"] == pid:
            conn.execute("UPDATE faces SET pinned = NULL WHERE id = ?", (face,))
        conn.execute("INSERT OR IGNORE INTO exclusions(face_id, person_id) VALUES (?, ?)", (face, pid))
        ensure_anchor(conn, pid, exclude_face=face)
        log(conn, "not_person", face=face, person=pid)
        recluster(conn)


def confirm_face(conn: sqlite3.Connection, face: int, pid: int) -> None:
    """Face ``face`` is person ``pid`` (the review queue's "yes")."""
    move_face(conn, face, pid, action="confirm")


def different_people(conn: sqlite3.Connection, a: int, b: int) -> None:
    """People ``a`` and ``b`` are different: never merged, not suggested again."""
    with write_tx(conn):
        _person(conn, a), _person(conn, b)
        conn.execute("INSERT OR IGNORE INTO different(a, b) VALUES (?, ?)", (min(a, b), max(a, b)))
        ensure_anchor(conn, a)
        ensure_anchor(conn, b)
        log(conn, "different", person=a, other=b)
        recluster(conn)


def hide_face(conn: sqlite3.Connection, face: int, hidden: bool = True) -> None:
    """Hide a face (not a person, a poster, ...): kept, never clustered or shown with people."""
    with write_tx(conn):
        _face(conn, face)
        if hidden:
            conn.execute("UPDATE faces SET hidden = 1, pinned = NULL WHERE id = ?", (face,))
        else:  # the next scan places it again
            conn.execute("UPDATE faces SET hidden = 0, placed = 0 WHERE id = ?", (face,))
        log(conn, "hide" if hidden else "unhide", face=face)
        recluster(conn)
