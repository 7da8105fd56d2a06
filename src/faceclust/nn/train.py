"""Training-loop pieces shared by the GCN methods: seeding, SGD with step decay, loops.

Schedules follow learn-to-cluster (SGD, momentum 0.9, LR x0.1 at fixed
fractions of the run) but with iteration counts sized for a 2-core CPU; the
callers record the loss curve in the checkpoint's ``meta``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from .._progress import progress
from ..errors import ParameterError

__all__ = ["SgdSchedule", "TrainLog", "make_optimizer", "seeded", "train_steps"]


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
) -> TrainLog:
    """Run ``sched.steps`` optimisation steps; ``loss_fn(step)`` returns the step's loss.

    The loss function builds its own batch (full graph, or a batch of
    sub-graphs), so this loop is shared by full-graph and mini-batch training.
    Raises ``FloatingPointError`` if the loss becomes NaN/inf (diverged).
    """
    model.train()
    log_every = max(1, min(log_every, sched.steps // 10))  # at least ~10 points per curve
    opt, lr_sched = make_optimizer(model, sched)
    log = TrainLog(every=log_every)
    window: list[float] = []
    t0 = time.perf_counter()
    with progress(total=sched.steps, desc=desc, unit="step") as bar:
        for step in range(sched.steps):
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(step)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"{desc}: loss became {loss.item()} at step {step}")
            loss.backward()
            opt.step()
            lr_sched.step()
            window.append(float(loss.detach()))
            if len(window) == log_every or step == sched.steps - 1:
                log.losses.append(float(np.mean(window)))
                bar.set_postfix(loss=f"{log.losses[-1]:.4g}")
                window = []
            bar.update(1)
    log.seconds = time.perf_counter() - t0
    model.eval()
    return log
