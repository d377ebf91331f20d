"""Read TFLite `benchmark_model` output: timings, memory, and how much of the graph the delegate took.

Checked against real outputs from public sources (tests/fixtures/benchmark_model/README.md). Pure:
no I/O. Output captured through `adb logcat` (the benchmark APK) or with `INFO:` prefixes is accepted.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any

from embench_agent.protocol import Aggregate, Delegation, Memory

_LOGCAT = re.compile(r"^\d\d-\d\d \d\d:\d\d:\d\d\.\d+\s+\d+\s+\d+ [VDIWEF] [^:]*:\s?")
_LEVEL = re.compile(r"^(?:INFO|WARNING|ERROR|VERBOSE): ")
_NUM = r"([-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)"
_COUNT = re.compile(r"^count=(\d+)((?:\s+\w+=" + _NUM + r")*)\s*$")
_KV = re.compile(r"(\w+)=" + _NUM)
_TIMINGS = re.compile(r"^(?:Average )?[Ii]nference timings in us: (.*)$")
_INIT = re.compile(r"^Initialized session in " + _NUM + r"\s*ms")
_MEMORY = re.compile(
    r"^(Peak memory footprint|Memory footprint delta from the start of the tool) \(MB\): init="
    + _NUM
    + r" overall="
    + _NUM
)
_APPLIED = re.compile(
    r"^Explicitly applied (\S+) delegate, and the model graph will be (completely|partially) executed by the delegate(?: w/ (\d+) delegate kernels)?"
)
_NOT_APPLIED = re.compile(
    r"^Though (\S+) delegate is explicitly applied, the model graph will not be executed by the delegate"
)
_REPLACING = re.compile(
    r"Replacing (\d+)(?: out of (\d+))? node\(s\) with delegate \((\w+)\) node, yielding (\d+) partitions"
)

# How benchmark_model and the TFLite runtime name each delegate embench asks for.
DELEGATE_NAMES = {
    "xnnpack": ("XNNPACK", "TfLiteXNNPackDelegate"),
    "gpu": ("GPU", "TfLiteGpuDelegateV2", "TfLiteGpuDelegate"),
    "nnapi": ("NNAPI", "TfLiteNnapiDelegate"),
    "hexagon": ("Hexagon", "HEXAGON", "TfLiteHexagonDelegate"),
}


def clean_lines(text: str) -> list[str]:
    """benchmark_model's lines without logcat or log-level prefixes."""
    return [_LEVEL.sub("", _LOGCAT.sub("", line.rstrip())).strip() for line in text.splitlines()]


@dataclass(frozen=True)
class BenchmarkOutput:
    """What benchmark_model printed about one run."""

    delegation: Delegation
    timed: Aggregate | None = None  # the last count= line: the timed runs (µs)
    warmup: Aggregate | None = None  # the one before it
    timings: dict[str, float] = field(default_factory=dict)  # "Inference timings in us": init, first inference, ...
    init_ms: float | None = None
    memory: Memory | None = None
    errors: tuple[str, ...] = ()

    @property
    def first_inference_ms(self) -> float | None:
        first = self.timings.get("first inference")
        return first / 1e3 if first is not None else None


def _aggregate(count: str, pairs: str) -> Aggregate:
    known = {f.name for f in dataclasses.fields(Aggregate)} - {"unit", "count"}
    values: dict[str, Any] = {k: float(v) for k, v in _KV.findall(pairs) if k in known}
    return Aggregate(count=float(count), **values)


def _delegation_line(line: str, names: tuple[str, ...], found: dict[str, Any]) -> None:
    """What one line says about the requested delegate, into `found` (Delegation's fields)."""
    if (m := _APPLIED.match(line)) and m.group(1) in names:
        found["actual"] = "full" if m.group(2) == "completely" else "partial"
        if m.group(3):
            found["delegate_kernels"] = int(m.group(3))
    elif (m := _NOT_APPLIED.match(line)) and m.group(1) in names:
        found["actual"] = "none"
    elif (m := _REPLACING.search(line)) and m.group(3) in names:
        replaced, total, partitions = int(m.group(1)), m.group(2), int(m.group(4))
        found.update(delegated_nodes=replaced, partitions=partitions)
        if total is not None:
            found["total_nodes"] = int(total)
        found.setdefault("actual", _from_nodes(replaced, int(total) if total else None, partitions))


def parse_output(text: str, delegate: str) -> BenchmarkOutput:
    """Everything benchmark_model says about one run, and what it means for `delegate`."""
    lines = clean_lines(text)
    counts: list[Aggregate] = []
    timings: dict[str, float] = {}
    init_ms, memory = None, None
    names = DELEGATE_NAMES.get(delegate, ())
    found: dict[str, Any] = {}
    for line in lines:
        if m := _COUNT.match(line):
            counts.append(_aggregate(m.group(1), m.group(2)))
        elif m := _TIMINGS.match(line):
            for key, value in re.findall(r"([A-Za-z ()]+?):\s*" + _NUM, m.group(1)):
                timings[key.strip().lower()] = float(value)
        elif m := _INIT.match(line):
            init_ms = float(m.group(1))
        elif m := _MEMORY.match(line):
            kind = "peak" if m.group(1).startswith("Peak") else "delta"
            memory = Memory(kind, float(m.group(2)), float(m.group(3)))
        else:
            _delegation_line(line, names, found)
    return BenchmarkOutput(
        delegation=Delegation(requested=delegate, **found),
        # The last count= line is the timed run; the one before it (if any) is the warmup.
        timed=counts[-1] if counts else None,
        warmup=counts[-2] if len(counts) > 1 else None,
        timings=timings,
        init_ms=timings["init"] / 1e3 if "init" in timings else init_ms,
        memory=memory,
        errors=tuple(ln for ln in lines if _is_error(ln)),
    )


def _from_nodes(replaced: int, total: int | None, partitions: int) -> str:
    if replaced == 0:
        return "none"
    if total is not None:
        return "full" if replaced >= total else "partial"
    return "partial" if partitions > 1 else "full"


def _is_error(line: str) -> bool:
    low = line.lower()
    return any(word in low for word in ("error", "failed", "unsupported", "not supported", "unable to"))


def status_of(parsed: BenchmarkOutput, delegate: str) -> tuple[str, str | None]:
    """The Result status and message that a parsed run gives for the requested delegate."""
    if parsed.timed is None:
        return "failed", (parsed.errors[-1] if parsed.errors else "benchmark_model printed no timings")
    if delegate == "cpu":
        return "ok", None
    actual = parsed.delegation.actual
    if delegate == "xnnpack" and actual is None:
        return "ok", None  # builds before 2.x print nothing for XNNPACK; the flag was accepted
    if actual == "full":
        return "ok", None
    if actual == "partial":
        d = parsed.delegation
        kernels = d.delegate_kernels if d.delegate_kernels is not None else "?"
        detail = f"{d.delegated_nodes} of {d.total_nodes} nodes" if d.total_nodes else f"{kernels} delegate kernels"
        return "fallback", f"{delegate} took part of the graph ({detail}); the rest ran on the CPU"
    why = f": {parsed.errors[-1]}" if parsed.errors else ""
    return "unsupported", f"benchmark_model did not run the graph on {delegate}{why}; the timings are the CPU's"
