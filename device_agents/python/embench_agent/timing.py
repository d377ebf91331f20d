"""The timed loop and its inputs: the measurement rules of docs/architecture.md, in one place."""

from __future__ import annotations

import os
import resource
import time
from dataclasses import dataclass
from typing import Any, Callable, List, Optional, Sequence, Tuple

from .protocol import RunSpec

Mark = Callable[[str], None]  # marks a telemetry edge on the sampler's clock


@dataclass(frozen=True)
class Timing:
    """The first inference apart, then one sample per timed inference and the window around them."""

    first_inference_ms: float
    samples_ns: Tuple[int, ...]
    window_ns: int
    window_start_unix: float
    window_end_unix: float
    other_cpu: Optional[float] = None  # share of the CPUs other processes (and a hypervisor's steal) used


def _cpu_clock() -> Optional[Tuple[float, float, int]]:
    """(CPU seconds all processes used, incl. steal; this process's own; online CPUs) from /proc/stat
    and getrusage; None where there is no /proc/stat."""
    try:
        with open("/proc/stat", encoding="ascii") as fh:
            lines = fh.read().splitlines()
    except OSError:
        return None
    fields = [int(v) for v in lines[0].split()[1:]]
    busy = sum(fields) - fields[3] - (fields[4] if len(fields) > 4 else 0)  # all but idle and iowait
    cpus = sum(1 for line in lines if line.startswith("cpu") and line[3:4].isdigit())
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return busy / os.sysconf("SC_CLK_TCK"), usage.ru_utime + usage.ru_stime, max(cpus, 1)


def other_cpu_share(before: Optional[Tuple[float, float, int]], after: Optional[Tuple[float, float, int]],
                    seconds: float) -> Optional[float]:  # fmt: skip
    """How much of the machine's CPU time other processes took during a window, 0 (none) to 1 (all)."""
    if before is None or after is None or seconds <= 0:
        return None
    other = (after[0] - before[0]) - (after[1] - before[1])
    return min(1.0, max(0.0, other / (seconds * after[2])))


def make_inputs(np: Any, details: Sequence[Tuple[Sequence[Any], Any]], seed: int) -> List[Any]:
    """Random inputs in each input's dtype and shape, from a seed."""
    rng = np.random.default_rng(seed)
    arrays = []
    for dims, kind in details:
        dtype = np.dtype(kind)
        # Dynamic dimensions (None, -1, or a symbolic name) become 1.
        shape = [int(d) if isinstance(d, (int, np.integer)) and int(d) > 0 else 1 for d in dims]
        if dtype.kind == "f":
            arrays.append(rng.uniform(-1.0, 1.0, size=shape).astype(dtype))
        elif dtype.kind in "iu":
            info = np.iinfo(dtype)
            arrays.append(rng.integers(info.min, info.max, size=shape, dtype=dtype, endpoint=True))
        elif dtype.kind == "b":
            arrays.append(rng.integers(0, 1, size=shape, endpoint=True).astype(dtype))
        else:
            raise ValueError(f"input dtype {dtype} is not supported by the agent")
    return arrays


def timed_loop(step: Callable[[], Any], run: RunSpec, mark: Optional[Mark] = None) -> Timing:
    """First inference, warmups, then one sample per inference until min_runs and min_seconds, or max_seconds.

    One clock read per inference: sample i is the time between consecutive reads, so it also
    holds the loop's own few tens of nanoseconds, like a bare loop timed as a whole. The common
    case costs a single comparison.
    """
    clock = time.perf_counter_ns
    t0 = clock()
    step()
    first_ms = (clock() - t0) / 1e6
    for _ in range(run.warmup_runs):
        step()
    min_runs = run.min_runs
    window_start_unix = time.time()
    if mark is not None:
        mark("window_start")  # telemetry edge, on the sampler's clock, outside the timed loop
    cpu_before = _cpu_clock()
    start = clock()
    min_end = start + int(run.min_seconds * 1e9)
    max_end = start + int(run.max_seconds * 1e9)
    stamps = [start]
    append = stamps.append
    while True:
        step()
        t = clock()
        append(t)
        if t >= min_end and (len(stamps) > min_runs or t >= max_end):
            break
    cpu_after = _cpu_clock()
    if mark is not None:
        mark("window_end")
    return Timing(
        first_inference_ms=first_ms,
        samples_ns=tuple(b - a for a, b in zip(stamps, stamps[1:])),
        window_ns=stamps[-1] - start,
        window_start_unix=window_start_unix,
        window_end_unix=time.time(),
        other_cpu=other_cpu_share(cpu_before, cpu_after, (stamps[-1] - start) / 1e9),
    )
