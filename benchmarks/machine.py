"""What every benchmark shares: the machine line written next to its numbers in docs/benchmarks.md, and timing."""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable
from pathlib import Path


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, {platform.system()}"


def time_runs(fn: Callable[[], object], repeats: int) -> list[float]:
    """Wall seconds of ``repeats`` calls after one untimed warm-up call (imports, caches, Ray workers importing
    the package), so the numbers describe steady use."""
    fn()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return samples
