"""GCN-D and GCN-D+S (Yang et al., CVPR'19, "Learning to Cluster Faces on an Affinity Graph"):
supervised, with trained models from ``faceclust train --method gcn-d|gcn-ds``.

Pipeline (``gcn-d``): kNN graph -> cluster proposals
(:func:`~faceclust.stages.proposals.generate_proposals`: super-vertices at several
thresholds with a size cap and a threshold step, and iterative proposals over
super-vertices; ``preset`` = the paper's 2 / 5 / 8 / 20 settings) -> GCN-D scores each
proposal (its predicted IoU with the identity it mostly holds; :mod:`faceclust.nn.dsgcn`)
-> de-overlap by descending score (:func:`~faceclust.stages.proposals.deoverlap`).
``gcn-ds`` adds GCN-S: proposals whose predicted IoP (a second GCN-D trained on IoP) lies
in ``[0.1, 0.9]`` are cleaned, keeping the members GCN-S gives P(same as seed) > 0.5.

The presets' thresholds are the paper's (ArcFace-like scale); they are moved onto the
data's similarity scale by the random-pair cosine mean (see :mod:`faceclust.stages.proposals`).

CPU scaling (reference: convolutions 512-64 on 256-d, 30 epochs of SGD, hours on a GPU):
convolutions 64-32, Adam (lr 0.01: at 1e-3 the 300 steps left GCN-D's loss above the
targets' variance), 300 steps of 32 proposals (GCN-S: 300 steps of 8).

Measured on people never seen in training (``benchmarks/supervised_eval.py``, rows in
``benchmarks/results/supervised_eval.json``, docs/supervised.md; machine under heavy load):

* The proposals are good: de-overlapped by their *true* IoU (an oracle score), preset 8
  gives pairwise F 0.994 on regime 1a ArcFace (preset 2: 0.925). GCN-D's predicted IoU
  hardly ranks them on unseen people (correlation with the true IoU ~0 to 0.18; test
  people hold larger identities than training, so |G| and with it IoU differ), yet the
  de-overlap still gives pairwise F 0.899 (1a ArcFace) / 0.903 (1a dlib).
* **GCN-D+S < GCN-D here**: on regime 1a GCN-S drops most members of the proposals it
  segments (pairwise F 0.058 ArcFace, 0.000 dlib). Measured with
  ``benchmarks/dsgcn_gcns_check.py`` (reference GCN-S: seed one-hot, trained on the 145
  training proposals of true IoP 0.2-0.8): node accuracy 0.29 on the test people's
  impure proposals against 0.80 for keeping every member; with every impure proposal in
  training it keeps everyone (0.80, no gain); with residual seed input (``s_seed_input=
  "residual"``) 0.42-0.65. It learns no seed-vs-intruder signal that transfers from
  ~150 proposals, and its training prior (IoP 0.2-0.8: about half intruders) makes it
  discard members. A first training-time check (node accuracy on the held-out training
  people's truly impure proposals) saw a gain there and kept GCN-S on; but the trained
  IoP model puts nearly every proposal inside ``iop_range``, so inference segments the
  pure ones too. The check (``s_check``) now runs the whole inference on held-out
  training people with and without GCN-S: regime 1a ArcFace pairwise F 0.723 with vs
  0.785 without (all 207 proposals segmented), 1b dlib 0.000 vs 0.793 (72 of 72), so
  ``segment="auto"`` switches GCN-S off and ``gcn-ds`` gives ``gcn-d``'s clustering
  (1a ArcFace 0.899, 1b dlib 0.625 on the test people); ``segment=True`` forces it.
  Why every proposal falls in the range: with the reference's node-row dropout (0.5)
  before max-pooling, the IoP network predicts lower in eval mode than it was trained
  to (1a ArcFace, its own training proposals: target mean 0.905, training-mode output
  0.85, eval output 0.72 within 0.62-0.81); on unseen people its correlation with the
  true IoP is 0.03 (GCN-D's IoU: 0.03 too).
"""

from __future__ import annotations

import os
import time
from typing import Any, ClassVar

import numpy as np

from .._validation import check_features, check_labels
from ..errors import InputError, ParameterError
from ..knn import KnnGraph, build_knn
from ..stages.proposals import (
    PRESETS,
    Proposals,
    deoverlap,
    generate_proposals,
    proposal_targets,
    similarity_offset,
)
from ._base import BaseClusterer, Constraint, OneOf, Param, check_param, register
from ._modeldir import model_dir

__all__ = ["GcnD", "GcnDS"]

_DET, _IOP, _SEG = "gcn_d", "gcn_d_iop", "gcn_s"
IOP_RANGE = (0.1, 0.9)  # proposals of predicted IoP in it are segmented (reference)


def _prepare(X, labels, k: int, preset: str, max_size: int, min_size: int, step: float):
    """Features, labels, kNN, proposals and their targets of a training set."""
    if isinstance(preset, bool) or str(preset) not in PRESETS:
        raise ParameterError(f"preset must be one of {', '.join(PRESETS)}, got {preset!r}")
    preset = str(preset)
    check_param("k", k, int, 2)
    check_param("max_size", max_size, int, 2)
    check_param("min_size", min_size, int, 1)
    x = check_features(X, source="features")
    y = check_labels(labels, x.shape[0], source="labels")
    if x.shape[0] < 4:
        raise InputError("train gcn-d: need at least 4 labelled faces")
    graph = build_knn(x, k=min(k, x.shape[0] - 1))
    offset = similarity_offset(x)
    props = generate_proposals(x, graph.ids, graph.sims, preset, offset=offset,
                               max_size=max_size, min_size=min_size, step=step)
    if len(props) == 0:
        raise InputError("train gcn-d: no proposals on the training data (too few faces per person?)")
    iou, iop = proposal_targets(props, y)
    return x, y, graph, offset, props, iou, iop


def _train_net(out, name, x, y, graph, props, targets, *, kind, seed, dims, dropout, steps,
               batch_size, lr, weight_decay, optimizer, weighted, seed_input="indicator"):
    from ..nn.dsgcn import save_dsgcn, train_dsgcn
    from ..nn.train import Resume, fingerprint

    params = {"kind": kind, "dims": dims, "dropout": dropout, "steps": steps,
              "batch_size": batch_size, "lr": lr, "weight_decay": weight_decay,
              "optimizer": optimizer, "weighted": weighted, "n_props": len(props),
              "seed_input": seed_input}
    resume = Resume(out, name, fingerprint(name, params, seed,
                                           arrays=[x, y, props.nodes, props.ptr]))
    model, meta = train_dsgcn(x, y, graph.ids, graph.sims, props, targets, kind=kind, dims=dims,
                              dropout=dropout, steps=steps, batch_size=batch_size, lr=lr,
                              weight_decay=weight_decay, optimizer=optimizer, weighted=weighted,
                              seed_input=seed_input, seed=seed, resume=resume)
    return model, meta, save_dsgcn


@register("gcn-d")
class GcnD(BaseClusterer):
    """GCN-D: cluster proposals scored by a learned IoU, de-overlapped (needs model=DIR).

    Parameters
    ----------
    model : str
        Model directory written by ``faceclust train --method gcn-d`` (or ``gcn-ds``).
    preset : str, int or None
        Proposal settings: ``"2"``, ``"5"``, ``"8"`` or ``"20"`` (the paper's; ints accepted);
        None = as trained.
    k : int or None
        kNN size (self included); None = as trained.
    max_size : int or None
        Largest iteration-0 proposal (size cap); None = as trained (reference 300).
    min_score : float or None
        Drop proposals scoring below it before de-overlap (reference ``th_pos``: keep all).
    batch_nodes : int
        Proposal members per forward pass (bounds memory).
    """

    needs_model: ClassVar[bool] = True
    _parameter_constraints: ClassVar[dict[str, Constraint]] = {
        "preset": OneOf((None, *PRESETS, *(int(p) for p in PRESETS)),
                        text="one of " + ", ".join(PRESETS) + " or None"),
        "k": Param(int, 2, optional=True),
        "max_size": Param(int, 2, optional=True),
        "min_score": Param((int, float), optional=True),
        "batch_nodes": Param(int, 1),
    }

    def __init__(self, model: str | None = None, preset: str | None = None,
                 k: int | None = None, max_size: int | None = None,
                 min_score: float | None = None, batch_nodes: int = 65536) -> None:
        self.model = model
        self.preset = preset
        self.k = k
        self.max_size = max_size
        self.min_score = min_score
        self.batch_nodes = batch_nodes

    @classmethod
    def train(cls, X: np.ndarray, labels: np.ndarray, out_dir: str | os.PathLike, *,
              seed: int = 42, k: int = 80, preset: str = "8", max_size: int = 300,
              min_size: int = 3, step: float = 0.05, dims: tuple[int, ...] = (64, 32),
              dropout: float = 0.5, steps: int = 300, batch_size: int = 32, lr: float = 1e-2,
              weight_decay: float = 1e-4, optimizer: str = "adam",
              weighted: bool = True) -> dict[str, Any]:
        """Generate proposals on the training data and train GCN-D (IoU) into ``out_dir``.

        Interrupted (Ctrl-C), the same call resumes from the last saved state.
        """
        from ..nn.train import clear_resume

        t0 = time.perf_counter()
        dims = _dims(dims)
        x, y, graph, offset, props, iou, iop = _prepare(X, labels, k, preset, max_size,
                                                        min_size, step)
        prep = time.perf_counter() - t0
        preset = str(preset)
        model, meta, save = _train_net(out_dir, _DET, x, y, graph, props, iou, kind="det",
                                       seed=seed, dims=dims, dropout=dropout, steps=steps,
                                       batch_size=batch_size, lr=lr, weight_decay=weight_decay,
                                       optimizer=optimizer, weighted=weighted)
        meta.update(_proposal_meta(graph, preset, max_size, min_size, step, offset, props, iou,
                                   iop, prep))
        save(model, out_dir, _DET, meta)
        clear_resume(out_dir)
        return {"gcn_d": meta, "seconds": round(time.perf_counter() - t0, 2)}

    # ------------------------------------------------------------------ inference
    def _proposals(self, x: np.ndarray | None, knn: KnnGraph | None):
        from ..nn.dsgcn import load_dsgcn

        directory = model_dir(self.model, self.method_name)
        if x is None:
            raise InputError(f"{self.method_name}: features X are required (the GCN reads them)")
        with self._stage("load"):
            det, meta = load_dsgcn(directory, _DET)
        if x.shape[1] != det.in_dim:
            raise InputError(
                f"{self.method_name}: features have dimension {x.shape[1]} but the model in "
                f"{directory} was trained on dimension {det.in_dim}"
            )
        self.model_meta_ = meta
        k = int(self.k if self.k is not None else meta.get("k", 80))
        graph = self._knn(x, knn, min(k, x.shape[0] - 1))
        preset = str(self.preset if self.preset is not None else meta.get("preset", "8"))
        max_size = int(self.max_size if self.max_size is not None else meta.get("max_size", 300))
        with self._stage("proposals"):
            offset = similarity_offset(x)
            props = generate_proposals(x, graph.ids, graph.sims, preset, offset=offset,
                                       max_size=max_size, min_size=int(meta.get("min_size", 3)),
                                       step=float(meta.get("step", 0.05)))
        self.n_proposals_ = len(props)
        self.similarity_offset_ = offset
        weighted = bool(meta.get("weighted", True))
        with self._stage("gcn-d"):
            scores = self._predict(det, x, graph, props, weighted, "GCN-D")
        return directory, graph, props, scores, weighted

    def _predict(self, model, x, graph, props, weighted, desc, seeds=None):
        from ..nn.dsgcn import predict_proposals

        if len(props) == 0:
            return np.zeros(0, np.float32)
        return predict_proposals(model, x, graph.ids, graph.sims, props, weighted=weighted,
                                 batch_nodes=self.batch_nodes, seeds=seeds, desc=desc)

    def _fit(self, x: np.ndarray | None, knn: KnnGraph | None) -> np.ndarray:
        _, _, props, scores, _ = self._proposals(x, knn)
        with self._stage("deoverlap"):
            return deoverlap(props, scores, x.shape[0], min_score=self.min_score)


@register("gcn-ds")
class GcnDS(GcnD):
    """GCN-D + GCN-S: GCN-D's proposals, cleaned by GCN-S before de-overlap (needs model=DIR).

    Parameters (besides :class:`GcnD`'s)
    ----------
    iop_range : tuple of two floats
        Proposals whose predicted IoP lies in this range are segmented (reference 0.1-0.9).
    seed_rule : str
        GCN-S seed member: ``"random"`` (reference; seeded by ``seed``) or ``"max_degree"``.
    keep_outliers : bool
        Removed members of each proposal become one extra, lowest-priority cluster.
    seed : int
        Random seed of the seed members.
    segment : "auto", True or False
        Apply GCN-S: always, never (= ``gcn-d``), or ``"auto"``: as decided at training time
        on held-out training identities (``s_check``; GCN-S is used only when it raised the
        pairwise F of the whole ``gcn-ds`` inference there).
    """

    _parameter_constraints: ClassVar[dict[str, Constraint]] = {
        **GcnD._parameter_constraints,
        "seed_rule": OneOf(("random", "max_degree")),
        "segment": OneOf(("auto", True, False), same_type=True),
        "keep_outliers": Param(bool),
        "seed": Param(int, 0),
    }

    def __init__(self, model: str | None = None, preset: str | None = None,
                 k: int | None = None, max_size: int | None = None,
                 min_score: float | None = None, batch_nodes: int = 65536,
                 iop_range: tuple[float, float] = IOP_RANGE, seed_rule: str = "random",
                 keep_outliers: bool = False, seed: int = 42,
                 segment: str | bool = "auto") -> None:
        super().__init__(model=model, preset=preset, k=k, max_size=max_size,
                         min_score=min_score, batch_nodes=batch_nodes)
        self.iop_range = iop_range
        self.seed_rule = seed_rule
        self.keep_outliers = keep_outliers
        self.seed = seed
        self.segment = segment

    def _validate_params(self) -> None:
        r = self.iop_range
        if (not isinstance(r, list | tuple) or len(r) != 2
                or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in r)
                or r[0] > r[1]):
            raise ParameterError(f"iop_range must be two numbers lo <= hi, got {r!r}")
        super()._validate_params()

    @classmethod
    def train(cls, X: np.ndarray, labels: np.ndarray, out_dir: str | os.PathLike, *,
              seed: int = 42, k: int = 80, preset: str = "8", max_size: int = 300,
              min_size: int = 3, step: float = 0.05, dims: tuple[int, ...] = (64, 32),
              dropout: float = 0.5, steps: int = 300, batch_size: int = 32, lr: float = 1e-2,
              weight_decay: float = 1e-4, optimizer: str = "adam", weighted: bool = True,
              s_steps: int = 300, s_batch_size: int = 8,
              s_iop_lo: float = 0.2, s_iop_hi: float = 0.8,
              s_seed_input: str = "indicator", s_check: float = 0.3) -> dict[str, Any]:
        """Train GCN-D (IoU; the same network as ``gcn-d``'s), GCN-D on IoP and GCN-S into
        ``out_dir`` (it also serves ``gcn-d``). GCN-S trains on proposals with true IoP in
        ``[s_iop_lo, s_iop_hi]`` (all impure ones when fewer than ``s_batch_size`` fall there), with the
        seed given as a one-hot column (``s_seed_input="indicator"``, the reference) or also
        as residuals ``x - x_seed`` (``"residual"``).

        ``s_check`` (fraction of the training *identities*, 0 = off): GCN-D (IoU and IoP)
        and GCN-S trained on the other training identities run the ``gcn-ds`` inference on
        these (IoP-selected proposals segmented, de-overlap) with and without GCN-S; the
        pairwise F of both is stored and ``cluster`` (``segment="auto"``) applies GCN-S only
        when it was higher. Model selection on training people only, never on test people.
        (An earlier check compared node accuracy on the truly impure proposals only; it
        missed that inference also segments the pure proposals the IoP model lets through,
        and kept GCN-S on where it made nearly every face a singleton.)
        """
        from ..nn.train import clear_resume

        t0 = time.perf_counter()
        dims = _dims(dims)
        x, y, graph, offset, props, iou, iop = _prepare(X, labels, k, preset, max_size,
                                                        min_size, step)
        prep = time.perf_counter() - t0
        preset = str(preset)
        common = {"seed": seed, "dims": dims, "dropout": dropout, "weight_decay": weight_decay,
                  "optimizer": optimizer, "weighted": weighted, "lr": lr}
        pmeta = _proposal_meta(graph, preset, max_size, min_size, step, offset, props, iou, iop,
                               prep)
        out: dict[str, Any] = {}
        for name, tgt in ((_DET, iou), (_IOP, iop)):
            model, meta, save = _train_net(out_dir, name, x, y, graph, props, tgt, kind="det",
                                           steps=steps, batch_size=batch_size, **common)
            meta.update(pmeta, target="iou" if name == _DET else "iop")
            save(model, out_dir, name, meta)
            out[name] = meta
        lo, hi = float(s_iop_lo), float(s_iop_hi)
        sel = np.flatnonzero((iop >= lo) & (iop <= hi))
        if len(sel) < s_batch_size:
            sel = np.flatnonzero(iop < 1.0)
        if len(sel) == 0:
            sel = np.arange(len(props))
        sp_ = props.select(sel)
        check = None
        if s_check:
            check = _check_gcn_s(out_dir, x, y, preset, k, max_size, min_size, step, offset,
                                 float(s_check), lo, hi, steps, batch_size, s_steps,
                                 s_batch_size, s_seed_input, common)
        model, meta, save = _train_net(out_dir, _SEG, x, y, graph, sp_, None, kind="seg",
                                       steps=s_steps, batch_size=s_batch_size,
                                       seed_input=s_seed_input, **common)
        meta.update(iop_range=[lo, hi], n_selected=len(sel), check=check,
                    segment=True if check is None else bool(check["gain"] > 0))
        save(model, out_dir, _SEG, meta)
        out[_SEG] = meta
        clear_resume(out_dir)
        return {**out, "seconds": round(time.perf_counter() - t0, 2)}

    def _fit(self, x: np.ndarray | None, knn: KnnGraph | None) -> np.ndarray:
        from ..nn.dsgcn import has_checkpoint, load_dsgcn

        directory, graph, props, scores, weighted = self._proposals(x, knn)
        if not (has_checkpoint(directory, _IOP) and has_checkpoint(directory, _SEG)):
            raise InputError(f"{directory}: no GCN-S model; train it with "
                             "`faceclust train --method gcn-ds ...`")
        with self._stage("load"):
            iop_model, _ = load_dsgcn(directory, _IOP)
            seg, smeta = load_dsgcn(directory, _SEG)
        self.segmented_ = bool(smeta.get("segment", True)) if self.segment == "auto" \
            else bool(self.segment)
        if not self.segmented_:
            self.n_segmented_ = 0
            with self._stage("deoverlap"):
                return deoverlap(props, scores, x.shape[0], min_score=self.min_score)
        with self._stage("gcn-d-iop"):
            iop = self._predict(iop_model, x, graph, props, weighted, "GCN-D IoP")
        with self._stage("gcn-s"):
            props, scores, which, _, _, _ = _segment(
                props, scores, iop, seg, x, graph, weighted, self.iop_range,
                self.seed_rule, np.random.default_rng(self.seed), self.batch_nodes,
                self.keep_outliers)
        self.n_segmented_ = len(which)
        with self._stage("deoverlap"):
            return deoverlap(props, scores, x.shape[0], min_score=self.min_score)


def _segment(props: Proposals, scores: np.ndarray, iop: np.ndarray, seg, x: np.ndarray,
             graph: KnnGraph, weighted: bool, iop_range, seed_rule: str,
             rng: np.random.Generator, batch_nodes: int, keep_outliers: bool):
    """GCN-S cleaning of the proposals whose predicted IoP lies in ``iop_range``: one seed
    member each (``seed_rule``), members with P(same as seed) <= 0.5 removed (see
    :func:`_clean`). Returns the cleaned proposals and scores, the segmented proposals'
    indices, those proposals (uncleaned), their seed rows and the kept mask over their
    members."""
    from ..nn.dsgcn import predict_proposals, seed_nodes
    from ..stages.subgraphs import proposal_graphs

    lo, hi = float(iop_range[0]), float(iop_range[1])
    which = np.flatnonzero((iop >= lo) & (iop <= hi))
    sub = props.select(which)
    if len(sub) == 0:
        return props, scores, which, sub, np.zeros(0, np.int64), np.ones(0, bool)
    rowsum = None
    if seed_rule == "max_degree":
        a = proposal_graphs(sub.ptr, sub.nodes, graph.ids, graph.sims, weighted=weighted)
        rowsum = np.asarray(a.sum(axis=1)).reshape(-1)
    seeds = seed_nodes(sub, rowsum, seed_rule, rng)
    prob = predict_proposals(seg, x, graph.ids, graph.sims, sub, weighted=weighted,
                             batch_nodes=batch_nodes, seeds=seeds, desc="GCN-S")
    keep = prob > 0.5
    keep[seeds] = True
    cleaned, cscores = _clean(props, scores, which, sub, keep, keep_outliers)
    return cleaned, cscores, which, sub, seeds, keep


def _check_gcn_s(out_dir, x, y, preset, k, max_size, min_size, step, offset, fraction, lo, hi,
                 steps, batch_size, s_steps, s_batch_size, seed_input,
                 common) -> dict[str, Any] | None:
    """Does GCN-S help ``gcn-ds`` on training identities it never saw? GCN-D (IoU), GCN-D
    (IoP) and GCN-S are trained on the other training identities; on these, the inference
    of ``gcn-ds`` (proposals scored by IoU, those of predicted IoP in the default
    ``iop_range`` segmented, de-overlap) runs with and without the segmentation. ``gain``:
    pairwise F with minus without. Node accuracy of the kept members on the segmented
    proposals (against keeping all) is recorded beside it. None when a side is too small."""
    from ..metrics import pairwise
    from ..nn.dsgcn import predict_proposals
    from ..stages.confidence import split_by_identity

    if len(np.unique(y)) < 4:
        return None
    fit_idx, val_idx = split_by_identity(y, fraction, seed=common["seed"])
    sides = []
    for idx in (fit_idx, val_idx):
        if len(idx) < 4:
            return None
        g = build_knn(x[idx], k=min(k, len(idx) - 1))
        p = generate_proposals(x[idx], g.ids, g.sims, preset, offset=offset, max_size=max_size,
                               min_size=min_size, step=step)
        if len(p) == 0:
            return None
        sides.append((idx, g, p, *proposal_targets(p, y[idx])))
    (fi, fg, fp, fiou, fiop), (vi, vg, vp, _, _) = sides
    sel = np.flatnonzero((fiop >= lo) & (fiop <= hi))
    if len(sel) < s_batch_size:
        sel = np.flatnonzero(fiop < 1.0)
    if len(sel) == 0:
        return None
    nets = {}
    for name, props, tgt, kind, n_steps, bs, si in (
            (_DET, fp, fiou, "det", steps, batch_size, "indicator"),
            (_IOP, fp, fiop, "det", steps, batch_size, "indicator"),
            (_SEG, fp.select(sel), None, "seg", s_steps, s_batch_size, seed_input)):
        nets[name] = _train_net(out_dir, name + ".check", x[fi], y[fi], fg, props, tgt,
                                kind=kind, steps=n_steps, batch_size=bs, seed_input=si,
                                **common)[0]
    xv, yv, w = x[vi], y[vi], common["weighted"]
    scores, iop = (predict_proposals(nets[n], xv, vg.ids, vg.sims, vp, weighted=w,
                                     desc=f"check {n}") for n in (_DET, _IOP))
    plain = deoverlap(vp, scores, len(vi))
    iop_range = IOP_RANGE
    cleaned, cscores, which, sub, seeds, keep = _segment(
        vp, scores, iop, nets[_SEG], xv, vg, w, iop_range, "random",
        np.random.default_rng(common["seed"]), 65536, False)
    segmented = deoverlap(cleaned, cscores, len(vi))
    f_plain, f_seg = pairwise(yv, plain)[2], pairwise(yv, segmented)[2]
    out = {"val_identities": int(len(np.unique(yv))), "val_proposals": len(vp),
           "segmented_proposals": len(which), "iop_range": list(iop_range),
           "pairwise_f_segmented": round(float(f_seg), 4),
           "pairwise_f_unsegmented": round(float(f_plain), 4),
           "gain": round(float(f_seg - f_plain), 4)}
    if len(sub):
        same = yv[sub.nodes] == yv[sub.nodes[seeds]][sub.owner()]
        out.update(node_accuracy=round(float(np.mean(keep == same)), 4),
                   keep_all_accuracy=round(float(np.mean(same)), 4))
    return out


def _clean(props: Proposals, scores: np.ndarray, which: np.ndarray, sub: Proposals,
           keep: np.ndarray, keep_outliers: bool) -> tuple[Proposals, np.ndarray]:
    """``props`` with proposals ``which`` (= ``sub``) reduced to their kept members, at the same
    rank; with ``keep_outliers`` each one's removed members appended as a last-rank proposal."""
    keep_all = np.ones(len(props.nodes), bool)
    pos = np.repeat(props.ptr[which] - sub.ptr[:-1], sub.sizes) + np.arange(len(sub.nodes))
    keep_all[pos] = keep
    own = props.owner()
    sizes = np.bincount(own[keep_all], minlength=len(props))
    cleaned = Proposals(np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64),
                        props.nodes[keep_all])
    if not keep_outliers or keep.all():
        return cleaned, scores
    out_own = sub.owner()[~keep]
    osizes = np.bincount(out_own, minlength=len(sub))
    has = osizes > 0
    outl = Proposals(np.concatenate([[0], np.cumsum(osizes[has])]).astype(np.int64),
                     sub.nodes[~keep])
    low = (float(scores.min()) if len(scores) else 0.0) - 1.0
    return (Proposals.concat([cleaned, outl]),
            np.concatenate([scores, np.full(len(outl), low, np.float32)]))


def _dims(dims) -> list[int]:
    if not isinstance(dims, list | tuple) or not dims:
        raise ParameterError(f"dims must be a list of layer sizes, got {dims!r}")
    return [int(d) for d in dims]


def _proposal_meta(graph, preset, max_size, min_size, step, offset, props, iou, iop, prep):
    return {"k": graph.k, "preset": preset, "max_size": max_size, "min_size": min_size,
            "step": step, "similarity_offset": round(offset, 4), "n_proposals": len(props),
            "mean_iou": round(float(iou.mean()), 4), "mean_iop": round(float(iop.mean()), 4),
            "proposal_seconds": round(prep, 2)}
