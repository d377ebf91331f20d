"""The timed loop and its inputs: the measurement rules of docs/architecture.md, in one place."""

from __future__ import annotations

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
    if mark is not None:
        mark("window_end")
    return Timing(
        first_inference_ms=first_ms,
        samples_ns=tuple(b - a for a, b in zip(stamps, stamps[1:])),
        window_ns=stamps[-1] - start,
        window_start_unix=window_start_unix,
        window_end_unix=time.time(),
    )
