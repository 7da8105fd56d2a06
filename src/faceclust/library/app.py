"""``faceclust library serve``: a local web app over the catalogue (Starlette, server-rendered).

Pages (plain HTML forms, no JavaScript, no build step):

* ``/`` -- people with 2+ faces (and every named person), largest first, with names;
* ``/person/ID`` -- the person's faces, most confident first; the least sure come
  last and are marked; forms to name, merge another person into this one, and per
  face: *not this person*, *hide*, *move to* a person or a new person;
* ``/face/ID`` -- the face in its photo with its box (the photo's other faces too);
* ``/review`` -- "same person?" merge suggestions (:func:`faceclust.suggest.suggest_merges`)
  and "is this X?" for the least confident faces;
* ``/singles``, ``/unsure`` (below the quality floor), ``/hidden``;
* ``/thumb/ID``, ``/photo/ID`` -- face crops (cached beside the catalogue) and photos.

Every action is a POST that calls :mod:`faceclust.library.people` (one transaction,
stored as a correction) and redirects back. Each request opens its own SQLite
connection (WAL), so a ``scan`` can run meanwhile. Only ``127.0.0.1``/``localhost``
hosts are answered, and a POST from another origin is refused.
"""

from __future__ import annotations

import html
import os
import re
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlencode, urlparse

import numpy as np

from . import people as ppl
from .catalogue import connect, embeddings, get_meta, new_person, status, write_tx

PEOPLE_PER_PAGE = 60
FACES_PER_PAGE = 300
SINGLES_PER_PAGE = 240
THUMB = 112

_CSS = """
body{font-family:system-ui,sans-serif;margin:0;background:#f6f6f6;color:#222}
header{background:#263238;color:#fff;padding:8px 16px}header a{color:#fff;margin-right:14px}
header .counts{float:right;color:#cfd8dc;font-size:13px;margin-top:3px}
main{padding:12px 16px}h1{font-size:20px;margin:6px 0 10px}h2{font-size:16px;margin:4px 0}
.grid{display:flex;flex-wrap:wrap;gap:10px}
.card{background:#fff;border:1px solid #ddd;border-radius:6px;padding:8px;width:268px}
.card h2 a{color:#222;text-decoration:none}.card .n{color:#777;font-weight:normal}
.thumbs img{width:60px;height:60px;object-fit:cover;border-radius:3px;margin:1px;background:#eee}
.faces{display:flex;flex-wrap:wrap;gap:6px}
.face{background:#fff;border:1px solid #ddd;border-radius:5px;padding:4px;width:124px;font-size:12px}
.face img{width:112px;height:112px;object-fit:cover;border-radius:3px;display:block;background:#eee}
.face.low{border:2px solid #e65100;background:#fff3e0}.face.pinned{border:2px solid #2e7d32}
.face .conf{color:#555}.face.low .conf{color:#e65100;font-weight:bold}
.face form{display:inline;margin:0}.face input[type=text]{width:68px;font-size:11px}
button{font-size:11px;padding:1px 5px;cursor:pointer}
.tools{background:#fff;border:1px solid #ddd;border-radius:6px;padding:8px;margin-bottom:10px}
.tools form{display:inline-block;margin-right:18px}
.photo{position:relative;display:inline-block;max-width:100%}
.photo img{max-width:min(100%,1000px);max-height:80vh;display:block}
.box{position:absolute;border:3px solid #ffeb3b;box-shadow:0 0 0 2px #000}
.box.other{border:2px dashed #90caf9;box-shadow:none}
.pager a,.pager span{margin-right:8px}.muted{color:#777}
table.info td{padding:2px 10px 2px 0;font-size:14px}
.pair{background:#fff;border:1px solid #ddd;border-radius:6px;padding:8px;margin:6px 0}
.pair .side{display:inline-block;vertical-align:top;margin-right:20px}
"""


def _e(s: Any) -> str:
    return html.escape(str(s), quote=True)


def _person_label(pid: int | None, name: str | None) -> str:
    if pid is None:
        return "nobody"
    return name if name else f"Person {pid}"


class Library:
    """What the app serves: the photos folder and its catalogue."""

    def __init__(self, photos_dir: str | os.PathLike, db: str | os.PathLike) -> None:
        self.root = Path(photos_dir).resolve()
        self.db = Path(db)
        self.thumbs = self.db.parent / "thumbs"
        self._suggestions: tuple[int | None, list] = (None, [])
        connect(self.db).close()  # fail now (one line) if it is not a catalogue

    @contextmanager
    def conn(self) -> Iterator[sqlite3.Connection]:
        conn = connect(self.db)
        try:
            yield conn
        finally:
            conn.close()

    # ------------------------------------------------------------------ pages
    def page(self, title: str, body: str, conn) -> str:
        st = conn.execute(
            "SELECT (SELECT COUNT(*) FROM photos), (SELECT COUNT(*) FROM faces WHERE hidden = 0)"
        ).fetchone()
        return (
            f"<!doctype html><html><head><meta charset='utf-8'><link rel='icon' href='data:,'><title>{_e(title)} - faceclust</title>"
            f"<style>{_CSS}</style></head><body><header><a href='/'>People</a>"
            "<a href='/review'>Review</a><a href='/singles'>Single faces</a>"
            "<a href='/unsure'>Unsure</a><a href='/hidden'>Hidden</a>"
            f"<span class='counts'>{st[0]} photos &middot; {st[1]} faces</span></header>"
            f"<main>{body}</main></body></html>"
        )

    def thumbs_html(self, face_ids: list[int], size: int = 60) -> str:
        return "".join(
            f"<a href='/face/{f}'><img loading='lazy' src='/thumb/{f}' width='{size}' "
            f"height='{size}' alt='face {f}'></a>" for f in face_ids
        )

    def people_list(self, conn) -> list[Any]:
        return conn.execute(
            "SELECT p.id, p.name, COUNT(f.id) AS n FROM people p JOIN faces f ON f.person_id = p.id "
            "AND f.hidden = 0 GROUP BY p.id ORDER BY (p.name IS NULL), n DESC, p.id"
        ).fetchall()

    def datalist(self, conn) -> str:
        opts = "".join(
            f"<option value='{_e(_person_label(r['id'], r['name']))} #{r['id']}'>"
            for r in self.people_list(conn) if r["n"] >= 2 or r["name"]
        )
        return f"<datalist id='people'>{opts}</datalist>"

    def index(self, page: int) -> str:
        with self.conn() as conn:
            total = conn.execute(
                "SELECT COUNT(*) FROM (SELECT p.id FROM people p JOIN faces f ON f.person_id = p.id "
                "AND f.hidden = 0 GROUP BY p.id HAVING COUNT(f.id) >= 2 OR p.name IS NOT NULL)"
            ).fetchone()[0]
            rows = conn.execute(
                "SELECT p.id, p.name, COUNT(f.id) AS n FROM people p JOIN faces f ON "
                "f.person_id = p.id AND f.hidden = 0 GROUP BY p.id HAVING n >= 2 OR p.name IS NOT NULL "
                "ORDER BY n DESC, p.id LIMIT ? OFFSET ?",
                (PEOPLE_PER_PAGE, (page - 1) * PEOPLE_PER_PAGE),
            ).fetchall()
            ids = [r["id"] for r in rows]
            tops: dict[int, list[int]] = {i: [] for i in ids}
            if ids:
                q = ",".join("?" * len(ids))
                for r in conn.execute(
                    f"SELECT id, person_id FROM (SELECT id, person_id, ROW_NUMBER() OVER "
                    f"(PARTITION BY person_id ORDER BY confidence DESC, id) AS rn FROM faces "
                    f"WHERE hidden = 0 AND person_id IN ({q})) WHERE rn <= 8", ids
                ):
                    tops[r["person_id"]].append(r["id"])
            st = status(conn)
            cards = "".join(
                f"<div class='card person' data-id='{r['id']}' data-size='{r['n']}'>"
                f"<h2><a href='/person/{r['id']}'>{_e(_person_label(r['id'], r['name']))}</a> "
                f"<span class='n'>{r['n']} face{'s' if r['n'] != 1 else ''}</span></h2>"
                f"<div class='thumbs'>{self.thumbs_html(tops[r['id']])}</div></div>"
                for r in rows
            )
            last = st["last_scan"]
            summary = (
                f"<p class='muted'>{st['people']} people ({st['named_people']} named), "
                f"{st['single_faces']} single face(s), {st['unsure_faces']} unsure, "
                f"{st['photos_failed']} unreadable photos"
                + (f"; last scan {_e(_when(last['finished_at']))}" if last else "; not scanned yet")
                + "</p>"
            )
            body = f"<h1>People</h1>{summary}<div class='grid'>{cards}</div>" + _pager("/", page, total, PEOPLE_PER_PAGE)
            if st["photos_failed"]:
                bad = conn.execute("SELECT path, error FROM photos WHERE status = 'error' ORDER BY path LIMIT 50")
                body += "<h2>Photos that could not be read</h2><ul class='failed'>" + "".join(
                    f"<li>{_e(r['path'])}: <span class='muted'>{_e(r['error'])}</span></li>" for r in bad
                ) + "</ul>"
            return self.page("People", body, conn)

    def face_card(self, f, pid: int | None, back: str, low: float = ppl.LOW_CONFIDENCE,
                  hidden: bool = False) -> str:
        conf = f["confidence"]
        pinned = f["pinned"] is not None and f["pinned"] == pid
        is_low = (not pinned) and conf is not None and conf < low
        cls = "face" + (" pinned" if pinned else "") + (" low" if is_low else "")
        label = "confirmed" if pinned else ("?" if conf is None else f"{conf:.2f}")
        mark = " not sure" if is_low else ""
        b = _e(back)
        forms = ""
        if pid is not None:
            forms += (f"<form method='post' action='/face/{f['id']}/not'><input type='hidden' name='person' "
                      f"value='{pid}'><input type='hidden' name='back' value='{b}'>"
                      f"<button class='not' title='not this person'>not</button></form> ")
        verb = "unhide" if hidden else "hide"
        forms += (f"<form method='post' action='/face/{f['id']}/{verb}'><input type='hidden' name='back' "
                  f"value='{b}'><button class='{verb}'>{verb}</button></form>"
                  f"<form method='post' action='/face/{f['id']}/move' class='move'><input type='hidden' "
                  f"name='back' value='{b}'><input type='text' name='to' list='people' "
                  f"placeholder='move to' aria-label='move to'><button>move</button></form>")
        return (f"<div class='{cls}' data-face='{f['id']}' data-conf='{'' if conf is None else f'{conf:.3f}'}'>"
                f"<a href='/face/{f['id']}'><img loading='lazy' src='/thumb/{f['id']}' width='{THUMB}' "
                f"height='{THUMB}' alt='face {f['id']}'></a><span class='conf'>{label}{mark}</span><br>{forms}</div>")

    def person(self, pid: int, page: int) -> str | None:
        with self.conn() as conn:
            p = conn.execute("SELECT * FROM people WHERE id = ?", (pid,)).fetchone()
            if p is None:
                return None
            n = conn.execute("SELECT COUNT(*) FROM faces WHERE person_id = ? AND hidden = 0", (pid,)).fetchone()[0]
            faces = conn.execute(
                "SELECT id, confidence, pinned FROM faces WHERE person_id = ? AND hidden = 0 "
                "ORDER BY (pinned IS NOT NULL AND pinned = person_id) DESC, confidence DESC, id "
                "LIMIT ? OFFSET ?", (pid, FACES_PER_PAGE, (page - 1) * FACES_PER_PAGE),
            ).fetchall()
            name = _person_label(pid, p["name"])
            back = f"/person/{pid}" + (f"?page={page}" if page > 1 else "")
            others = "".join(
                f"<option value='{r['id']}'>{_e(_person_label(r['id'], r['name']))} ({r['n']})</option>"
                for r in self.people_list(conn) if r["id"] != pid and (r["n"] >= 2 or r["name"])
            )
            low = sum(1 for f in faces if f["confidence"] is not None and f["confidence"] < ppl.LOW_CONFIDENCE
                      and f["pinned"] != pid)
            tools = (
                f"<div class='tools'><form method='post' action='/person/{pid}/name' class='name'>"
                f"<input type='text' name='name' value='{_e(p['name'] or '')}' placeholder='name' "
                f"aria-label='name'><button>save name</button></form>"
                f"<form method='post' action='/person/{pid}/merge' class='merge'>Same person as "
                f"<select name='other' aria-label='merge with'>{others}</select> "
                f"<button>merge into {_e(name)}</button></form></div>"
            )
            body = (f"<h1 data-person='{pid}'>{_e(name)} <span class='muted'>{n} faces"
                    + (f", {low} not sure (marked, last)" if low else "") + "</span></h1>" + tools
                    + self.datalist(conn)
                    + "<div class='faces'>" + "".join(self.face_card(f, pid, back) for f in faces)
                    + "</div>" + _pager(f"/person/{pid}", page, n, FACES_PER_PAGE))
            return self.page(name, body, conn)

    def face(self, fid: int) -> str | None:
        with self.conn() as conn:
            f = conn.execute(
                "SELECT f.*, p.path, p.width, p.height, pe.name FROM faces f JOIN photos p ON "
                "p.id = f.photo_id LEFT JOIN people pe ON pe.id = f.person_id WHERE f.id = ?", (fid,)
            ).fetchone()
            if f is None:
                return None
            w, h = f["width"] or 1, f["height"] or 1

            def box(r, cls: str) -> str:
                return (f"<a href='/face/{r['id']}' class='box {cls}' data-face='{r['id']}' style='left:"
                        f"{100 * r['x0'] / w:.2f}%;top:{100 * r['y0'] / h:.2f}%;width:"
                        f"{100 * (r['x1'] - r['x0']) / w:.2f}%;height:{100 * (r['y1'] - r['y0']) / h:.2f}%'></a>")

            others = conn.execute(
                "SELECT f.id, f.x0, f.y0, f.x1, f.y1, f.person_id, pe.name FROM faces f LEFT JOIN "
                "people pe ON pe.id = f.person_id WHERE f.photo_id = ? AND f.id != ?", (f["photo_id"], fid)
            ).fetchall()
            who = _person_label(f["person_id"], f["name"])
            state = ("hidden" if f["hidden"] else "unsure (below the quality floor)" if f["unsure"] and
                     f["pinned"] is None else "confirmed" if f["pinned"] is not None else "clustered")
            conf = "" if f["confidence"] is None else f"{f['confidence']:.2f}"
            info = (
                "<table class='info'>"
                "<tr><td>person</td><td>" + (f"<a href='/person/{f['person_id']}' class='who'>{_e(who)}</a>"
                                              if f["person_id"] is not None else _e(who)) + "</td></tr>"
                f"<tr><td>state</td><td>{state}</td></tr>"
                f"<tr><td>confidence</td><td>{conf}</td></tr>"
                f"<tr><td>quality</td><td>size {f['size']:.0f} px, sharpness {f['sharpness']:.0f}, "
                f"detector score {f['score']:.2f}</td></tr>"
                f"<tr><td>photo</td><td>{_e(f['path'])}</td></tr>"
                "<tr><td>others in the photo</td><td>" + (", ".join(
                    f"<a href='/face/{o['id']}'>{_e(_person_label(o['person_id'], o['name']))}</a>"
                    for o in others) or "none") + "</td></tr></table>"
            )
            actions = self.face_card(f, f["person_id"], f"/face/{fid}", hidden=bool(f["hidden"]))
            body = (f"<h1>Face {fid}: {_e(who)}</h1><div class='photo'><img src='/photo/{f['photo_id']}' "
                    f"alt='{_e(f['path'])}'>{box(f, 'this')}{''.join(box(o, 'other') for o in others)}</div>"
                    f"{info}{self.datalist(conn)}<div class='faces'>{actions}</div>")
            return self.page(f"face {fid}", body, conn)

    def review(self, top: int = 15) -> str:
        from ..suggest import suggest_merges

        with self.conn() as conn:
            dim = int(get_meta(conn, "dim", 0) or 0)
            state = get_meta(conn, "cluster_state") or {}
            where = "hidden = 0 AND unsure = 0 AND person_id IS NOT NULL"
            n_rows = conn.execute(f"SELECT COUNT(*) FROM faces WHERE {where}").fetchone()[0]
            gen = get_meta(conn, "generation", 0)
            pairs_html = ""
            if n_rows >= 3:
                diff = {(r["a"], r["b"]) for r in conn.execute("SELECT a, b FROM different")}
                if self._suggestions[0] != gen:  # one kNN search per change of the catalogue
                    rows = conn.execute(f"SELECT person_id, embedding FROM faces WHERE {where} "
                                        "ORDER BY id").fetchall()
                    x = ppl.transform(embeddings(rows, dim), state.get("centre_mean"))
                    lab = np.array([r["person_id"] for r in rows], dtype=np.int64)
                    self._suggestions = (gen, suggest_merges(x, lab, top=4 * top,
                                                             k=min(10, len(rows) - 1)))
                est = ppl.saved_estimate(state)
                floor = -np.inf if est is None else float(
                    (est.impostor_mode + est.threshold) / 2)  # closer to "same" than to "different"
                sugg = [(a, b, s) for a, b, s in self._suggestions[1]
                        if (min(a, b), max(a, b)) not in diff and s >= floor][:top]
                names = {r["id"]: (r["name"], r["n"]) for r in self.people_list(conn)}
                for a, b, s in sugg:
                    # keep the named / larger person
                    (na, ca), (nb, cb) = names.get(a, (None, 0)), names.get(b, (None, 0))
                    keep, drop = (a, b) if (na is not None, ca) >= (nb is not None, cb) else (b, a)
                    side = lambda p: (  # noqa: E731
                        f"<div class='side'><a href='/person/{p}'>{_e(_person_label(p, names.get(p, (None, 0))[0]))}"
                        f"</a> ({names.get(p, (None, 0))[1]})<br>" + self.thumbs_html(_top_faces(conn, p, 5))
                        + "</div>")
                    pairs_html += (
                        f"<div class='pair' data-a='{keep}' data-b='{drop}'>{side(keep)}{side(drop)}"
                        f"<p>Same person? <span class='muted'>(mean similarity {s:.3f})</span> "
                        f"<form method='post' action='/person/{keep}/merge' style='display:inline'>"
                        f"<input type='hidden' name='other' value='{drop}'><input type='hidden' name='back' "
                        f"value='/review'><button class='yes'>yes, merge</button></form> "
                        f"<form method='post' action='/different' style='display:inline'><input type='hidden' "
                        f"name='a' value='{a}'><input type='hidden' name='b' value='{b}'><input type='hidden' "
                        f"name='back' value='/review'><button class='no'>no, different</button></form></p></div>")
            low = conn.execute(
                "SELECT f.id, f.confidence, f.pinned, f.person_id, pe.name FROM faces f JOIN people pe ON "
                "pe.id = f.person_id WHERE f.hidden = 0 AND f.pinned IS NULL AND f.confidence < ? AND "
                "f.person_id IN (SELECT person_id FROM faces WHERE hidden = 0 GROUP BY person_id "
                "HAVING COUNT(*) >= 2) ORDER BY f.confidence, f.id LIMIT 30", (ppl.LOW_CONFIDENCE,)
            ).fetchall()
            asks = "".join(
                f"<div class='face low ask' data-face='{f['id']}'><a href='/face/{f['id']}'><img loading='lazy' "
                f"src='/thumb/{f['id']}' width='{THUMB}' height='{THUMB}'></a>Is this "
                f"<a href='/person/{f['person_id']}'>{_e(_person_label(f['person_id'], f['name']))}</a>?<br>"
                f"<form method='post' action='/face/{f['id']}/confirm'><input type='hidden' name='person' "
                f"value='{f['person_id']}'><input type='hidden' name='back' value='/review'><button>yes</button>"
                f"</form> <form method='post' action='/face/{f['id']}/not'><input type='hidden' name='person' "
                f"value='{f['person_id']}'><input type='hidden' name='back' value='/review'><button>no</button>"
                "</form></div>" for f in low)
            body = ("<h1>Review</h1><h2>Same person?</h2>" + (pairs_html or "<p class='muted'>no suggestions</p>")
                    + "<h2>Is this the right person?</h2><div class='faces'>"
                    + (asks or "<p class='muted'>no unsure faces</p>") + "</div>")
            return self.page("Review", body, conn)

    def face_list(self, kind: str, page: int) -> str:
        where = {
            "singles": "f.hidden = 0 AND f.person_id IN (SELECT person_id FROM faces WHERE hidden = 0 "
                       "AND person_id IS NOT NULL GROUP BY person_id HAVING COUNT(*) = 1) "
                       "AND f.person_id IN (SELECT id FROM people WHERE name IS NULL)",
            "unsure": "f.hidden = 0 AND f.unsure = 1 AND f.pinned IS NULL",
            "hidden": "f.hidden = 1",
        }[kind]
        title = {"singles": "Single faces", "unsure": "Unsure faces (below the quality floor, not clustered)",
                 "hidden": "Hidden faces"}[kind]
        with self.conn() as conn:
            n = conn.execute(f"SELECT COUNT(*) FROM faces f WHERE {where}").fetchone()[0]
            faces = conn.execute(
                f"SELECT f.id, f.confidence, f.pinned, f.person_id FROM faces f WHERE {where} "
                "ORDER BY f.id LIMIT ? OFFSET ?", (SINGLES_PER_PAGE, (page - 1) * SINGLES_PER_PAGE)
            ).fetchall()
            back = f"/{kind}" + (f"?page={page}" if page > 1 else "")
            cards = [self.face_card(f, f["person_id"], back, hidden=kind == "hidden") for f in faces]
            body = (f"<h1>{_e(title)} <span class='muted'>{n}</span></h1>{self.datalist(conn)}"
                    f"<div class='faces'>{''.join(cards)}</div>" + _pager(f"/{kind}", page, n, SINGLES_PER_PAGE))
            return self.page(title, body, conn)

    # ------------------------------------------------------------------ files
    def photo_file(self, photo_id: int) -> Path | None:
        with self.conn() as conn:
            r = conn.execute("SELECT path FROM photos WHERE id = ?", (photo_id,)).fetchone()
        if r is None:
            return None
        path = (self.root / r["path"]).resolve()
        if not path.is_relative_to(self.root) and not (self.root / r["path"]).is_file():
            return None
        return path if path.is_file() else None

    def thumb_file(self, fid: int) -> Path | None:
        target = self.thumbs / f"{fid // 1000}" / f"{fid}.jpg"
        if target.is_file():
            return target
        with self.conn() as conn:
            r = conn.execute("SELECT f.x0, f.y0, f.x1, f.y1, p.path FROM faces f JOIN photos p ON "
                             "p.id = f.photo_id WHERE f.id = ?", (fid,)).fetchone()
        if r is None:
            return None
        return make_thumb(self.root / r["path"], (r["x0"], r["y0"], r["x1"], r["y1"]), target)

    # ------------------------------------------------------------------ actions
    def act(self, action: str, ident: int, form: dict[str, str]) -> str:
        """Run one POST action; returns where to go next."""
        with self.conn() as conn:
            if action == "name":
                ident = ppl.name_person(conn, ident, form.get("name", ""))
                return f"/person/{ident}"
            if action == "merge":
                other = _int(form.get("other"))
                if other is not None and other != ident:
                    ppl.merge_people(conn, ident, other)
                return form.get("back") or f"/person/{ident}"
            if action == "not":
                ppl.not_person(conn, ident, _int(form.get("person")))
            elif action == "confirm":
                ppl.confirm_face(conn, ident, _int(form.get("person")))
            elif action in ("hide", "unhide"):
                ppl.hide_face(conn, ident, action == "hide")
            elif action == "move":
                to = _parse_person(conn, form.get("to", ""))
                if to == "?":
                    return form.get("back") or f"/face/{ident}"
                ppl.move_face(conn, ident, to)
            elif action == "different":
                ppl.different_people(conn, _int(form.get("a")), _int(form.get("b")))
        return form.get("back") or "/"


def _top_faces(conn, pid: int, n: int) -> list[int]:
    return [r[0] for r in conn.execute(
        "SELECT id FROM faces WHERE person_id = ? AND hidden = 0 ORDER BY confidence DESC, id LIMIT ?", (pid, n))]


def _int(v: Any) -> int | None:
    try:
        return int(v)
    except (TypeError, ValueError):
        return None


def _parse_person(conn, text: str) -> int | None | str:
    """``"Name #12"`` / ``"12"`` / a name -> person id; ``"new"`` -> None (new person); else ``"?"``."""
    text = " ".join(text.split())
    if text.lower() in ("new", "new person", "+"):
        return None
    m = re.search(r"#(\d+)$", text) or re.fullmatch(r"(\d+)", text)
    if m and conn.execute("SELECT 1 FROM people WHERE id = ?", (int(m.group(1)),)).fetchone():
        return int(m.group(1))
    r = conn.execute("SELECT id FROM people WHERE name = ? COLLATE NOCASE", (text,)).fetchone()
    if r is not None:
        return int(r[0])
    if text:  # a new name: a new person with that name
        with write_tx(conn):
            return new_person(conn, text)
    return "?"


def _pager(base: str, page: int, total: int, per: int) -> str:
    pages = max(1, -(-total // per))
    if pages == 1:
        return ""
    link = lambda p: f"{base}?{urlencode({'page': p})}"  # noqa: E731
    out = "<p class='pager'>"
    if page > 1:
        out += f"<a href='{link(page - 1)}' rel='prev'>previous</a>"
    out += f"<span>page {page} of {pages}</span>"
    if page < pages:
        out += f"<a href='{link(page + 1)}' rel='next'>next</a>"
    return out + "</p>"


def _when(ts: float | None) -> str:
    import time

    return "" if ts is None else time.strftime("%Y-%m-%d %H:%M", time.localtime(ts))


def make_thumb(photo: Path, box: tuple[float, float, float, float], target: Path,
               size: int = THUMB, margin: float = 0.25) -> Path | None:
    """Square crop of ``box`` (full-size pixels) from ``photo`` -> ``target`` JPEG (atomic)."""
    from PIL import Image, ImageOps

    from ..photos.gallery import crop_box

    try:
        with Image.open(photo) as im:
            full_w = im.size[0]
            side = max(box[2] - box[0], box[3] - box[1]) * (1 + 2 * margin)
            f = min(1.0, size / max(1.0, side))
            if f < 0.5 and im.format == "JPEG":
                im.draft("RGB", (int(im.size[0] * f) + 1, int(im.size[1] * f) + 1))
            ratio = im.size[0] / full_w
            im = ImageOps.exif_transpose(im).convert("RGB")
            scaled = np.asarray(box, dtype=np.float64) * ratio
            crop = im.crop(crop_box(scaled, im.width, im.height, margin))
            crop = crop.resize((size, size), Image.Resampling.LANCZOS)
    except OSError:
        return None
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{id(target)}.tmp")
    crop.save(tmp, "JPEG", quality=85)
    os.replace(tmp, target)
    return target


# ---------------------------------------------------------------------- ASGI app


def create_app(photos_dir: str | os.PathLike, db: str | os.PathLike):
    """The Starlette application serving ``db`` (photos under ``photos_dir``)."""
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.middleware import Middleware
    from starlette.middleware.trustedhost import TrustedHostMiddleware
    from starlette.requests import Request
    from starlette.responses import (
        FileResponse,
        HTMLResponse,
        PlainTextResponse,
        RedirectResponse,
        Response,
    )
    from starlette.routing import Route

    from ..errors import FaceclustError

    lib = Library(photos_dir, db)
    gif = bytes.fromhex("47494638396101000100800000ffffff00000021f90401000000002c00000000010001000002024401003b")

    def _page(request: Request) -> int:
        return max(1, _int(request.query_params.get("page")) or 1)

    async def index(request: Request) -> Response:
        return HTMLResponse(await run_in_threadpool(lib.index, _page(request)))

    async def person(request: Request) -> Response:
        out = await run_in_threadpool(lib.person, request.path_params["pid"], _page(request))
        return HTMLResponse(out) if out is not None else HTMLResponse("no such person", 404)

    async def face(request: Request) -> Response:
        out = await run_in_threadpool(lib.face, request.path_params["fid"])
        return HTMLResponse(out) if out is not None else HTMLResponse("no such face", 404)

    async def review(request: Request) -> Response:
        return HTMLResponse(await run_in_threadpool(lib.review))

    def lister(kind: str):
        async def handler(request: Request) -> Response:
            return HTMLResponse(await run_in_threadpool(lib.face_list, kind, _page(request)))
        return handler

    async def thumb(request: Request) -> Response:
        path = await run_in_threadpool(lib.thumb_file, request.path_params["fid"])
        if path is None:
            return Response(gif, media_type="image/gif")
        return FileResponse(path, media_type="image/jpeg", headers={"Cache-Control": "max-age=3600"})

    async def photo(request: Request) -> Response:
        path = await run_in_threadpool(lib.photo_file, request.path_params["pid"])
        return FileResponse(path) if path is not None else PlainTextResponse("photo missing", 404)

    def action(name: str, key: str):
        async def handler(request: Request) -> Response:
            origin = request.headers.get("origin")
            if origin and urlparse(origin).netloc != request.headers.get("host"):
                return PlainTextResponse("cross-origin request refused", 403)
            body = (await request.body()).decode("utf-8", "replace")
            form = {k: v[-1] for k, v in parse_qs(body, keep_blank_values=True).items()}
            try:
                nxt = await run_in_threadpool(lib.act, name, request.path_params.get(key, 0), form)
            except FaceclustError as exc:
                return PlainTextResponse(str(exc), 400)
            if not nxt.startswith("/") or nxt.startswith("//"):
                nxt = "/"
            return RedirectResponse(quote(nxt, safe="/?=&"), status_code=303)
        return handler

    routes = [
        Route("/", index),
        Route("/person/{pid:int}", person),
        Route("/face/{fid:int}", face),
        Route("/review", review),
        Route("/singles", lister("singles")),
        Route("/unsure", lister("unsure")),
        Route("/hidden", lister("hidden")),
        Route("/thumb/{fid:int}", thumb),
        Route("/photo/{pid:int}", photo),
        Route("/person/{pid:int}/name", action("name", "pid"), methods=["POST"]),
        Route("/person/{pid:int}/merge", action("merge", "pid"), methods=["POST"]),
        Route("/face/{fid:int}/not", action("not", "fid"), methods=["POST"]),
        Route("/face/{fid:int}/confirm", action("confirm", "fid"), methods=["POST"]),
        Route("/face/{fid:int}/hide", action("hide", "fid"), methods=["POST"]),
        Route("/face/{fid:int}/unhide", action("unhide", "fid"), methods=["POST"]),
        Route("/face/{fid:int}/move", action("move", "fid"), methods=["POST"]),
        Route("/different", action("different", "x"), methods=["POST"]),
    ]
    middleware = [Middleware(TrustedHostMiddleware, allowed_hosts=["127.0.0.1", "localhost"])]
    return Starlette(routes=routes, middleware=middleware)


def serve(photos_dir: str | os.PathLike, db: str | os.PathLike, *, port: int = 8765,
          host: str = "127.0.0.1", log_level: str = "warning") -> None:
    """Run the app with uvicorn until Ctrl-C."""
    import uvicorn

    uvicorn.run(create_app(photos_dir, db), host=host, port=port, log_level=log_level)
