"""Training-loop pieces shared by the GCN methods: seeding, SGD with step decay, loops.

Schedules follow learn-to-cluster (SGD, momentum 0.9, LR x0.1 at fixed
fractions of the run) but with iteration counts sized for a 2-core CPU; the
callers record the loss curve in the checkpoint's ``meta``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .._progress import progress
from ..errors import ParameterError

__all__ = [
    "RESUME_DIR",
    "Resume",
    "SgdSchedule",
    "TrainLog",
    "clear_resume",
    "fingerprint",
    "make_optimizer",
    "seeded",
    "train_steps",
]

#: Sub-directory of a model directory holding the resumable training states.
RESUME_DIR = ".resume"


@contextmanager
def seeded(seed: int, threads: int | None = None) -> Iterator[None]:
    """Seed torch (and restore the previous thread count) for a deterministic run.

    Torch CPU kernels used here (dense matmul, COO sparse matmul, SGD) give
    identical results for identical seeds and thread counts; ``threads``
    optionally pins the count (1 gives bitwise reproducibility across machines
    with different core counts).
    """
    old_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    torch.manual_seed(seed)
    try:
        yield
    finally:
        torch.set_num_threads(old_threads)


@dataclass
class SgdSchedule:
    """Optimiser hyper-parameters and a step schedule: ``lr`` times ``gamma`` at each milestone fraction."""

    steps: int
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 1e-5
    milestones: Sequence[float] = (0.5, 0.8, 0.9)
    gamma: float = 0.1
    optimizer: str = "sgd"  # "sgd" (momentum) or "adam" (momentum unused)
    #: "step" (MultiStepLR at ``milestones``) or "cosine": linear warm-up from 0 over
    #: ``warmup`` steps, then ``lr (1 + cos(pi (t - warmup) / (steps - warmup))) / 2`` (Ada-NETS).
    decay: str = "step"
    warmup: int = 0

    def milestone_steps(self) -> list[int]:
        """Milestones as step numbers."""
        return [int(round(f * self.steps)) for f in self.milestones]


@dataclass
class TrainLog:
    """Loss curve (every ``every`` steps, mean over the window) and wall time."""

    every: int
    losses: list[float] = field(default_factory=list)
    seconds: float = 0.0

    def as_meta(self) -> dict:
        """JSON-friendly summary for a checkpoint's ``meta``."""
        return {
            "loss_every": self.every,
            "losses": [round(v, 6) for v in self.losses],
            "train_seconds": round(self.seconds, 2),
        }


@dataclass
class Resume:
    """Where :func:`train_steps` keeps a resumable state: ``directory/.resume/<name>.*``.

    The state (weights, optimizer buffers, step, loss curve) is written every
    ``every_seconds``, on Ctrl-C (then the KeyboardInterrupt goes on) and at the
    end (marked done, so a rerun after a later interruption skips a finished
    run). A rerun with the same ``fingerprint`` (data, parameters, seed)
    continues from it; another fingerprint starts afresh. The caller removes
    the states with :func:`clear_resume` once the whole training is saved.
    """

    directory: str | os.PathLike
    name: str
    fingerprint: str
    every_seconds: float = 60.0

    def paths(self) -> tuple[Path, Path]:
        d = Path(self.directory) / RESUME_DIR
        return d / f"{self.name}.json", d / f"{self.name}.safetensors"


def fingerprint(*parts: object, arrays: Sequence[np.ndarray] = ()) -> str:
    """Short hash of JSON-able ``parts`` and of ``arrays`` (shape, dtype and a strided
    sample of at most ~1M values each, so hashing 1M x 512 features stays cheap)."""
    h = hashlib.sha1(json.dumps(parts, sort_keys=True, default=str).encode())
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.shape}{a.dtype}".encode())
        flat = a.reshape(-1)
        h.update(np.ascontiguousarray(flat[:: max(1, flat.size // 1_000_000)]).tobytes())
    return h.hexdigest()[:16]


def clear_resume(directory: str | os.PathLike) -> None:
    """Remove the resumable states of a model directory (after a completed training)."""
    shutil.rmtree(Path(directory) / RESUME_DIR, ignore_errors=True)


def _save_state(resume: Resume, model: nn.Module, opt: torch.optim.Optimizer, step: int,
                log: TrainLog, done: bool) -> None:
    from safetensors.torch import save_file

    jpath, wpath = resume.paths()
    jpath.parent.mkdir(parents=True, exist_ok=True)
    tensors = {f"model.{k}": v.detach().contiguous().clone()
               for k, v in model.state_dict().items()}
    osd = opt.state_dict()
    for idx, st in osd["state"].items():
        for key, v in st.items():
            t = v if torch.is_tensor(v) else torch.tensor(v)
            tensors[f"opt.{idx}.{key}"] = t.detach().contiguous().clone()
    doc = {"fingerprint": resume.fingerprint, "step": step, "done": done,
           "losses": log.losses, "seconds": log.seconds, "every": log.every,
           "param_groups": osd["param_groups"]}
    tmp_w = wpath.with_name(wpath.name + f".tmp{os.getpid()}")
    tmp_j = jpath.with_name(jpath.name + f".tmp{os.getpid()}")
    save_file(tensors, str(tmp_w))
    tmp_j.write_text(json.dumps(doc), encoding="utf-8")
    os.replace(tmp_w, wpath)
    os.replace(tmp_j, jpath)


def _load_state(resume: Resume, model: nn.Module, opt: torch.optim.Optimizer
                ) -> dict | None:
    """Restore a matching state into ``model``/``opt``; its JSON document, or None."""
    from safetensors.torch import load_file

    jpath, wpath = resume.paths()
    if not (jpath.is_file() and wpath.is_file()):
        return None
    try:
        doc = json.loads(jpath.read_text(encoding="utf-8"))
        if doc.get("fingerprint") != resume.fingerprint:
            return None
        tensors = load_file(str(wpath))
        model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
        state: dict[int, dict[str, torch.Tensor]] = {}
        for k, v in tensors.items():
            if k.startswith("opt."):
                _, idx, key = k.split(".", 2)
                state.setdefault(int(idx), {})[key] = v
        opt.load_state_dict({"state": state, "param_groups": doc["param_groups"]})
    except (OSError, ValueError, KeyError, RuntimeError, json.JSONDecodeError):
        return None  # unreadable or from another model: start afresh
    return doc


def make_optimizer(
    model: nn.Module, sched: SgdSchedule
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    """SGD (or Adam) optimizer and its MultiStepLR scheduler for ``sched``."""
    if sched.optimizer == "sgd":
        opt: torch.optim.Optimizer = torch.optim.SGD(
            model.parameters(), lr=sched.lr, momentum=sched.momentum,
            weight_decay=sched.weight_decay,
        )
    elif sched.optimizer == "adam":
        opt = torch.optim.Adam(model.parameters(), lr=sched.lr, weight_decay=sched.weight_decay)
    else:
        raise ParameterError(f"optimizer must be 'sgd' or 'adam', got {sched.optimizer!r}")
    if sched.decay == "cosine":
        warm, total = max(0, int(sched.warmup)), max(1, int(sched.steps))

        def factor(t: int) -> float:
            if t < warm:
                return t / warm
            return 0.5 * (1.0 + float(np.cos(np.pi * (t - warm) / max(1, total - warm))))

        return opt, torch.optim.lr_scheduler.LambdaLR(opt, factor)
    if sched.decay != "step":
        raise ParameterError(f"decay must be 'step' or 'cosine', got {sched.decay!r}")
    lr_sched = torch.optim.lr_scheduler.MultiStepLR(
        opt, milestones=sched.milestone_steps(), gamma=sched.gamma
    )
    return opt, lr_sched


def train_steps(
    model: nn.Module,
    loss_fn: Callable[[int], torch.Tensor],
    sched: SgdSchedule,
    *,
    log_every: int = 50,
    desc: str = "train",
    resume: Resume | None = None,
) -> TrainLog:
    """Run ``sched.steps`` optimisation steps; ``loss_fn(step)`` returns the step's loss.

    The loss function builds its own batch (full graph, or a batch of
    sub-graphs), so this loop is shared by full-graph and mini-batch training.
    Raises ``FloatingPointError`` if the loss becomes NaN/inf (diverged).

    ``loss_fn`` must depend only on ``step`` (and fixed data/seed), never on
    how many steps this process ran: then a run resumed from ``resume``
    (see :class:`Resume`) gives the same model as an uninterrupted one.
    """
    model.train()
    log_every = max(1, min(log_every, sched.steps // 10))  # at least ~10 points per curve
    opt, lr_sched = make_optimizer(model, sched)
    log = TrainLog(every=log_every)
    start = 0
    if resume is not None:
        doc = _load_state(resume, model, opt)
        if doc is not None:
            start = int(doc["step"])
            log.losses = [float(v) for v in doc["losses"]]
            log.seconds = float(doc["seconds"])
            with warnings.catch_warnings():  # "lr_scheduler.step() before optimizer.step()"
                warnings.simplefilter("ignore", UserWarning)
                for _ in range(start):  # the LR schedule is a function of the step
                    lr_sched.step()
    window: list[float] = []
    t0 = time.perf_counter() - log.seconds
    last_save = time.perf_counter()
    completed = start  # steps fully applied (optimizer and LR schedule)
    with progress(total=sched.steps, desc=desc, unit="step", initial=start) as bar:
        try:
            for step in range(start, sched.steps):
                if start and step == start:
                    bar.set_postfix(resumed=start)
                opt.zero_grad(set_to_none=True)
                loss = loss_fn(step)
                if not torch.isfinite(loss):
                    raise FloatingPointError(f"{desc}: loss became {loss.item()} at step {step}")
                loss.backward()
                opt.step()
                lr_sched.step()
                completed = step + 1
                window.append(float(loss.detach()))
                if len(window) == log_every or step == sched.steps - 1:
                    log.losses.append(float(np.mean(window)))
                    bar.set_postfix(loss=f"{log.losses[-1]:.4g}")
                    window = []
                bar.update(1)
                if resume is not None and time.perf_counter() - last_save > resume.every_seconds:
                    log.seconds = time.perf_counter() - t0
                    _save_state(resume, model, opt, completed, log, done=False)
                    last_save = time.perf_counter()
        except KeyboardInterrupt:
            if resume is not None:
                log.seconds = time.perf_counter() - t0
                _save_state(resume, model, opt, completed, log, done=False)
                bar.write(f"{desc}: interrupted after step {completed}/{sched.steps}; the same "
                          f"command resumes from it ({Path(resume.directory) / RESUME_DIR})")
            raise
    log.seconds = time.perf_counter() - t0
    if resume is not None and start < sched.steps:
        _save_state(resume, model, opt, sched.steps, log, done=True)
    model.eval()
    return log
