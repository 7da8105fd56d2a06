"""Wall time and peak resident memory of a block of work (for benchmarks and ``bench``)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass
class Usage:
    """Filled in when the ``measure`` block exits."""

    seconds: float = 0.0
    peak_rss_gb: float = 0.0  # highest RSS seen during the block (whole process)
    start_rss_gb: float = 0.0

    @property
    def peak_delta_gb(self) -> float:
        """Peak RSS above the RSS at the start of the block."""
        return max(0.0, self.peak_rss_gb - self.start_rss_gb)


@contextmanager
def measure(interval: float = 0.05) -> Iterator[Usage]:
    """Time the block and sample this process's RSS every ``interval`` seconds."""
    import psutil

    proc = psutil.Process()
    usage = Usage(start_rss_gb=proc.memory_info().rss / 2**30)
    peak = [usage.start_rss_gb]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(interval):
            peak[0] = max(peak[0], proc.memory_info().rss / 2**30)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    t0 = time.perf_counter()
    try:
        yield usage
    finally:
        usage.seconds = time.perf_counter() - t0
        done.set()
        thread.join()
        usage.peak_rss_gb = max(peak[0], proc.memory_info().rss / 2**30)


def peak_rss_gb() -> float:
    """This process's peak resident set size so far (GB; ``nan`` where the OS does not say)."""
    try:
        import resource
    except ImportError:  # pragma: no cover - not on Windows
        return float("nan")
    import sys

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KB on Linux, bytes on macOS
    return peak / 2**30 if sys.platform == "darwin" else peak / 2**20
