"""Training of LCENet and PCENet (upstream LCE-PCENet never released its training code).

Recipe (both networks; sized for a 2-core CPU, measured in docs/supervised.md):

* **Data.** Inputs are built exactly as at inference, on a kNN graph of the
  training people only, from features centred on the training mean (stored
  in the model; ``center=False`` keeps them raw): dlib-like features, all in a
  narrow cone, barely trained without it. Model selection uses a kNN graph of *validation people*
  carved from the training data by identity (never test people).
* **LCENet loss.** 2-class cross-entropy on every present, non-self kNN slot
  (label: neighbour has the node's identity), averaged over slots. Deliberately
  unweighted: the density and the ``E_s`` rule read ``c * s`` as a calibrated
  probability, which class re-weighting would inflate. Nodes are shuffled each
  epoch; one epoch visits every training node once.
* **PCENet loss + sampler.** 2-class cross-entropy on pairs drawn by a balanced
  sampler: every epoch draws ``pairs_per_epoch / 2`` positive and as many
  negative pairs from the candidate pool (without replacement when the pool
  side is large enough, else with), shuffled together; the 0.5 threshold is
  then the equal-prior decision.
* **Optimiser and schedule.** AdamW (lr 1e-3, weight decay 1e-4), linear
  warm-up over the first 5 % of steps, cosine decay to 0 at the last step,
  gradient-norm clip 1.0. (Plain SGD at lr 0.01, FC-ESER's recipe for 8 GPU
  epochs on 576K faces, barely moves a Transformer in the few hundred steps a
  CPU run affords.)
* **Checkpoint.** After every epoch the model is scored on the validation
  people (LCENet: slot cross-entropy; PCENet: class-balanced cross-entropy on
  all validation candidate pairs); the best epoch's weights are kept.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from .._progress import progress
from ..errors import InputError, ParameterError
from .lcenet import LCENet, centred, neighbour_ids_for, neighbour_tokens
from .pcenet import PCENet, pair_inputs
from .train import seeded

__all__ = ["balanced_pairs", "capped_per_class", "train_epochs", "train_lcenet", "train_pcenet"]


def train_epochs(
    model: nn.Module,
    batches: Callable[[int], list[Any]],
    loss_of: Callable[[Any], torch.Tensor],
    validate: Callable[[], dict[str, float]],
    *,
    epochs: int,
    steps_per_epoch: int,
    lr: float,
    weight_decay: float,
    select: str,
    warmup: float = 0.05,
    desc: str = "train",
) -> dict[str, Any]:
    """AdamW + warm-up/cosine over ``epochs``; keep the epoch with the lowest ``validate()[select]``.

    ``batches(epoch)`` lists the epoch's batches (``steps_per_epoch`` of them, for
    the schedule); ``loss_of(batch)`` returns the loss. Loads the best weights
    into ``model`` and returns the training log.
    """
    if epochs < 1:
        raise ParameterError(f"epochs must be >= 1, got {epochs}")
    total = max(1, steps_per_epoch * epochs)
    n_warm = max(1, int(warmup * total))

    def factor(step: int) -> float:
        if step < n_warm:
            return (step + 1) / n_warm
        return 0.5 * (1.0 + math.cos(math.pi * (step - n_warm) / max(1, total - n_warm)))

    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
    log: dict[str, Any] = {"epochs": [], "select": select}
    best, best_state = math.inf, None
    t0 = time.perf_counter()
    with progress(total=total, desc=desc, unit="step") as bar:
        for e in range(epochs):
            model.train()
            losses = []
            for b in batches(e):
                opt.zero_grad(set_to_none=True)
                loss = loss_of(b)
                if not torch.isfinite(loss):
                    raise FloatingPointError(f"{desc}: loss became {loss.item()} in epoch {e}")
                loss.backward()
                nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                opt.step()
                sched.step()
                losses.append(float(loss.detach()))
                bar.update(1)
            model.eval()
            with torch.inference_mode():
                val = validate()
            row = {"epoch": e + 1, "train_loss": round(float(np.mean(losses)), 5),
                   **{k: round(v, 5) for k, v in val.items()}}
            log["epochs"].append(row)
            bar.set_postfix(loss=row["train_loss"], **{select: row[select]})
            if val[select] < best:
                best, best_state = val[select], copy.deepcopy(model.state_dict())
                log["best_epoch"] = e + 1
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    log["train_seconds"] = round(time.perf_counter() - t0, 2)
    return log


# ------------------------------------------------------------------ LCENet
def _slot_targets(y: np.ndarray, nbr: np.ndarray) -> np.ndarray:
    """``[N, k]`` int64 targets: 1 same identity, 0 different, -100 self / missing (ignored)."""
    t = (y[np.clip(nbr, 0, None)] == y[:, None]).astype(np.int64)
    t[nbr < 0] = -100
    t[:, 0] = -100
    return t


def train_lcenet(
    x: np.ndarray, y: np.ndarray, ids: np.ndarray,
    val: tuple[np.ndarray, np.ndarray, np.ndarray], *,
    k: int, width: int | None, depth: int, heads: int, ff_dim: int, dropout: float,
    head_dim: int | None, epochs: int, batch_size: int, lr: float, weight_decay: float,
    seed: int, center: bool = True, nodes_per_epoch: int | None = None,
    val_nodes: int | None = None,
) -> tuple[LCENet, dict[str, Any]]:
    """Train LCENet on ``(x, y)`` with kNN ``ids``; select on ``val = (x, y, ids)``.

    ``center``: store the training features' mean in the model and feed it
    centred features (:func:`~faceclust.nn.lcenet.centred`). ``nodes_per_epoch``,
    ``val_nodes``: as :func:`train_slot_model`.
    """
    return train_slot_model(
        lambda: LCENet(x.shape[1], k, width, depth, heads, ff_dim, dropout, head_dim),
        x, y, ids, val, k=k, two_class=True, epochs=epochs, batch_size=batch_size, lr=lr,
        weight_decay=weight_decay, seed=seed, center=center,
        loss_name="slot cross-entropy (unweighted)", optimizer_name="adamw",
        desc="LCENet train", nodes_per_epoch=nodes_per_epoch, val_nodes=val_nodes,
    )


def train_slot_model(
    make_model: Callable[[], nn.Module], x: np.ndarray, y: np.ndarray, ids: np.ndarray,
    val: tuple[np.ndarray, np.ndarray, np.ndarray], *, k: int, two_class: bool, epochs: int,
    batch_size: int, lr: float, weight_decay: float, seed: int, center: bool,
    loss_name: str, optimizer_name: str, desc: str, nodes_per_epoch: int | None = None,
    val_nodes: int | None = None,
) -> tuple[Any, dict[str, Any]]:
    """Train a same-identity model per neighbour slot (``make_model()``, built seeded) on
    ``(x, y)`` with kNN ``ids``; keep the epoch of lowest loss on ``val = (x, y, ids)``.

    The model maps neighbour tokens to logits per slot: two classes (``two_class``,
    LCENet; cross-entropy) or one (Chen's similarity model; BCE-with-logits). The self
    slot and missing neighbours are ignored. ``center``: the training mean is stored in
    the model and subtracted from its inputs.

    ``nodes_per_epoch``: an epoch visits that many training nodes, drawn afresh each
    epoch without replacement (None: every node once). ``val_nodes``: validation
    scores at most that many validation nodes, one seeded draw kept for every epoch
    (None: all; their kNN graph is still the one of every validation person). Both
    bound the cost of an epoch at scale: the default LCENet trains ~1,000 nodes per
    CPU-second, so six full epochs over the 460K training faces of a 576K set would
    take ~45 CPU-minutes.
    """
    for name, v in (("nodes_per_epoch", nodes_per_epoch), ("val_nodes", val_nodes)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
            raise ParameterError(f"{name} must be a positive integer or None, got {v!r}")
    nbr = neighbour_ids_for(ids, k)
    tgt = torch.from_numpy(_slot_targets(y, nbr))
    vx, vy, vids = val
    vnbr = neighbour_ids_for(vids, k)
    vtgt = torch.from_numpy(_slot_targets(vy, vnbr))
    n_val = len(vnbr)
    if val_nodes is not None and val_nodes < n_val:
        vkeep = np.sort(np.random.default_rng(seed + 7).choice(len(vnbr), val_nodes,
                                                                replace=False))
        vnbr, vtgt = vnbr[vkeep], vtgt[vkeep]
    rng = np.random.default_rng(seed)
    n = len(nbr)
    per_epoch = n if nodes_per_epoch is None else min(n, nodes_per_epoch)
    ce = nn.CrossEntropyLoss(ignore_index=-100)
    bce = nn.functional.binary_cross_entropy_with_logits

    def flat(logits: torch.Tensor) -> torch.Tensor:
        return logits.reshape(-1, 2) if two_class else logits.reshape(-1)

    with seeded(seed):
        model = make_model()
        if center:
            model.center.copy_(torch.from_numpy(np.asarray(x, np.float32).mean(axis=0)))
        xt = torch.from_numpy(centred(x, model.center))
        vxt = torch.from_numpy(centred(vx, model.center))

        def batches(epoch: int) -> list[np.ndarray]:
            order = rng.permutation(n)[:per_epoch]
            return [order[s : s + batch_size] for s in range(0, per_epoch, batch_size)]

        def loss_of(b: np.ndarray) -> torch.Tensor:
            tok, pad = neighbour_tokens(xt, torch.from_numpy(nbr[b]))
            lg, t = flat(model(tok, pad)), tgt[b].reshape(-1)
            if two_class:
                return ce(lg, t)
            m = t >= 0
            return bce(lg[m], t[m].float())

        def validate() -> dict[str, float]:
            tot, cnt, hit = 0.0, 0, np.zeros(2)
            seen = np.zeros(2)
            for s in range(0, len(vnbr), 1024):
                tok, pad = neighbour_tokens(vxt, torch.from_numpy(vnbr[s : s + 1024]))
                lg, t = flat(model(tok, pad)), vtgt[s : s + 1024].reshape(-1)
                m = t >= 0
                if two_class:
                    tot += float(nn.functional.cross_entropy(lg[m], t[m], reduction="sum"))
                    pred = lg[m].argmax(-1)
                else:
                    tot += float(bce(lg[m], t[m].float(), reduction="sum"))
                    pred = (lg[m] > 0).long()
                cnt += int(m.sum())
                for c in (0, 1):
                    sel = t[m] == c
                    seen[c] += int(sel.sum())
                    hit[c] += int((pred[sel] == c).sum())
            bacc = float(np.mean(hit[seen > 0] / seen[seen > 0])) if seen.any() else 0.0
            return {"val_loss": tot / max(cnt, 1), "val_balanced_acc": bacc}

        log = train_epochs(model, batches, loss_of, validate, epochs=epochs,
                           steps_per_epoch=-(-per_epoch // batch_size), lr=lr,
                           weight_decay=weight_decay, select="val_loss", desc=desc)
    valid = tgt >= 0
    meta = {
        "n_train": int(n), "n_val": int(n_val), "k": k,
        "nodes_per_epoch": int(per_epoch), "val_nodes_scored": int(len(vnbr)),
        "positive_fraction": round(float((tgt[valid] == 1).float().mean()), 4) if valid.any() else 0.0,
        "recipe": {"loss": loss_name, "center": center,
                   "optimizer": optimizer_name, "lr": lr,
                   "weight_decay": weight_decay, "schedule": "warmup 5% + cosine",
                   "epochs": epochs, "batch_size": batch_size, "seed": seed},
        **log,
    }
    return model, meta


# ------------------------------------------------------------------ PCENet
def balanced_pairs(
    same: np.ndarray, n_pairs: int, rng: np.random.Generator
) -> np.ndarray:
    """Indices into a pair pool: ``n_pairs // 2`` positives and as many negatives, shuffled.

    ``same [M]`` bool marks positive pool entries. Each side is drawn without
    replacement when it holds enough pairs, else with replacement.
    """
    pos, neg = np.flatnonzero(same), np.flatnonzero(~same)
    if len(pos) == 0 or len(neg) == 0:
        raise InputError(
            f"pair training needs positive and negative pairs, got {len(pos)} and {len(neg)}"
        )
    half = max(1, n_pairs // 2)
    pick = [rng.choice(side, half, replace=len(side) < half) for side in (pos, neg)]
    return rng.permutation(np.concatenate(pick))


def capped_per_class(same: np.ndarray, cap: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted indices of at most ``cap`` positive and ``cap`` negative entries of ``same``
    (a uniform draw without replacement per class; all of a class with no more)."""
    out = []
    for side in (np.flatnonzero(same), np.flatnonzero(~same)):
        out.append(side if len(side) <= cap else rng.choice(side, cap, replace=False))
    return np.sort(np.concatenate(out))


def train_pcenet(
    x: np.ndarray, y: np.ndarray, ids: np.ndarray, pairs: tuple[np.ndarray, np.ndarray],
    val: tuple[np.ndarray, np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray]], *,
    k: int, width: int | None, depth: int, heads: int, ff_dim: int, dropout: float,
    mlp_dim: int, epochs: int, pairs_per_epoch: int, batch_size: int, lr: float,
    weight_decay: float, seed: int, desc: str = "PCENet train", center: bool = True,
    val_pairs: int | None = 8192,
) -> tuple[PCENet, dict[str, Any]]:
    """Train PCENet on candidate ``pairs = (src, dst)`` of ``(x, y, ids)``; select on ``val``.

    ``center`` as :func:`train_lcenet`. ``val_pairs``: the validation pool is cut
    to at most ``val_pairs // 2`` positive and as many negative pairs (seeded, fixed
    for every epoch; None keeps all). The selection score is a class-balanced loss,
    which a per-class uniform subsample estimates without bias; scoring every
    candidate instead (FC-ESER's pools hold ~35 per face) cost more than training.
    """
    nbr = neighbour_ids_for(ids, k)
    src, dst = (np.asarray(a, np.int64) for a in pairs)
    same = y[src] == y[dst]
    vx, vy, vids, (vsrc, vdst) = val
    vnbr = neighbour_ids_for(vids, k)
    vsrc, vdst = np.asarray(vsrc, np.int64), np.asarray(vdst, np.int64)
    vsame = vy[vsrc] == vy[vdst]
    n_val_pool = len(vsrc)
    if val_pairs is not None:
        keep = capped_per_class(vsame, int(val_pairs) // 2, np.random.default_rng(seed + 7))
        vsrc, vdst, vsame = vsrc[keep], vdst[keep], vsame[keep]
    if len(vsrc) == 0 or vsame.all() or not vsame.any():
        raise InputError(
            f"{desc}: the validation people give {int(vsame.sum())} positive and "
            f"{int((~vsame).sum())} negative candidate pairs; need both"
        )
    vt = torch.from_numpy(vsame.astype(np.int64))
    rng = np.random.default_rng(seed)
    ce = nn.CrossEntropyLoss()

    with seeded(seed):
        model = PCENet(x.shape[1], k, width, depth, heads, ff_dim, dropout, mlp_dim)
        if center:
            model.center.copy_(torch.from_numpy(np.asarray(x, np.float32).mean(axis=0)))
        xt = torch.from_numpy(centred(x, model.center))
        vxt = torch.from_numpy(centred(vx, model.center))

        def batches(epoch: int) -> list[np.ndarray]:
            idx = balanced_pairs(same, pairs_per_epoch, rng)
            return [idx[s : s + batch_size] for s in range(0, len(idx), batch_size)]

        def loss_of(b: np.ndarray) -> torch.Tensor:
            tok, pad, fi, fj = pair_inputs(xt, nbr, src[b], dst[b])
            return ce(model(tok, pad, fi, fj), torch.from_numpy(same[b].astype(np.int64)))

        def validate() -> dict[str, float]:
            losses = []
            for s in range(0, len(vsrc), 1024):
                tok, pad, fi, fj = pair_inputs(vxt, vnbr, vsrc[s : s + 1024], vdst[s : s + 1024])
                losses.append(nn.functional.cross_entropy(
                    model(tok, pad, fi, fj), vt[s : s + 1024], reduction="none"))
            per = torch.cat(losses)
            pos_l, neg_l = float(per[vt == 1].mean()), float(per[vt == 0].mean())
            p_ok = per < math.log(2.0)  # correct at threshold 0.5
            bacc = 0.5 * (float(p_ok[vt == 1].float().mean()) + float(p_ok[vt == 0].float().mean()))
            return {"val_balanced_loss": 0.5 * (pos_l + neg_l), "val_balanced_acc": bacc}

        log = train_epochs(model, batches, loss_of, validate, epochs=epochs,
                           steps_per_epoch=-(-(max(1, pairs_per_epoch // 2) * 2) // batch_size),
                           lr=lr, weight_decay=weight_decay, select="val_balanced_loss",
                           desc=desc)
    meta = {
        "n_train": int(len(x)), "n_val": int(len(vx)), "k": k,
        "pool": {"pairs": int(len(src)), "positive": int(same.sum())},
        "val_pool": {"pairs": int(n_val_pool), "scored": int(len(vsrc)),
                     "positive_scored": int(vsame.sum())},
        "recipe": {"loss": "pair cross-entropy", "sampler": "balanced (half positive pairs)",
                   "center": center,
                   "optimizer": "adamw", "lr": lr, "weight_decay": weight_decay,
                   "schedule": "warmup 5% + cosine", "epochs": epochs,
                   "pairs_per_epoch": pairs_per_epoch, "batch_size": batch_size, "seed": seed},
        **log,
    }
    return model, meta
