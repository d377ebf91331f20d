"""Read TFLite `benchmark_model` output: timings, memory, and how much of the graph the delegate took.

Checked against real outputs from public sources (tests/fixtures/benchmark_model/README.md). Pure:
no I/O. Output captured through `adb logcat` (the benchmark APK) or with `INFO:` prefixes is accepted.
"""

from __future__ import annotations

import re
from typing import Any

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


def parse_output(text: str, delegate: str) -> dict[str, Any]:
    """Everything benchmark_model says about one run, and what it means for `delegate`."""
    lines = clean_lines(text)
    counts: list[dict[str, float]] = []
    out: dict[str, Any] = {}
    names = DELEGATE_NAMES.get(delegate, ())
    delegation: dict[str, Any] = {"requested": delegate}
    for line in lines:
        if m := _COUNT.match(line):
            stats = {k: float(v) for k, v in _KV.findall(m.group(2))}
            counts.append({"count": float(m.group(1)), **stats})
        elif m := _TIMINGS.match(line):
            for key, value in re.findall(r"([A-Za-z ()]+?):\s*" + _NUM, m.group(1)):
                out[f"timing_{key.strip().lower()}"] = float(value)
        elif m := _INIT.match(line):
            out["init_ms"] = float(m.group(1))
        elif m := _MEMORY.match(line):
            out["memory_kind"] = "peak" if m.group(1).startswith("Peak") else "delta"
            out["memory_init_mb"], out["memory_overall_mb"] = float(m.group(2)), float(m.group(3))
        elif (m := _APPLIED.match(line)) and m.group(1) in names:
            delegation["actual"] = "full" if m.group(2) == "completely" else "partial"
            if m.group(3):
                delegation["delegate_kernels"] = int(m.group(3))
        elif (m := _NOT_APPLIED.match(line)) and m.group(1) in names:
            delegation["actual"] = "none"
        elif (m := _REPLACING.search(line)) and m.group(3) in names:
            replaced, total, partitions = int(m.group(1)), m.group(2), int(m.group(4))
            delegation.update(delegated_nodes=replaced, partitions=partitions)
            if total is not None:
                delegation["total_nodes"] = int(total)
            delegation.setdefault("actual", _from_nodes(replaced, int(total) if total else None, partitions))
    # The last count= line is the timed run; the one before it (if any) is the warmup.
    if counts:
        out["timed"] = counts[-1]
        if len(counts) > 1:
            out["warmup"] = counts[-2]
    if "timing_init" in out:
        out["init_ms"] = out["timing_init"] / 1e3
    out["delegation"] = delegation
    out["errors"] = [ln for ln in lines if _is_error(ln)]
    return out


def _from_nodes(replaced: int, total: int | None, partitions: int) -> str:
    if replaced == 0:
        return "none"
    if total is not None:
        return "full" if replaced >= total else "partial"
    return "partial" if partitions > 1 else "full"


def _is_error(line: str) -> bool:
    low = line.lower()
    return any(word in low for word in ("error", "failed", "unsupported", "not supported", "unable to"))


def status_of(parsed: dict[str, Any], delegate: str) -> tuple[str, str | None]:
    """The Result status and message that a parsed run gives for the requested delegate."""
    if "timed" not in parsed:
        errors = parsed.get("errors") or []
        return "failed", (errors[-1] if errors else "benchmark_model printed no timings")
    if delegate == "cpu":
        return "ok", None
    actual = parsed["delegation"].get("actual")
    if delegate == "xnnpack" and actual is None:
        return "ok", None  # builds before 2.x print nothing for XNNPACK; the flag was accepted
    if actual == "full":
        return "ok", None
    if actual == "partial":
        d = parsed["delegation"]
        detail = (
            f"{d['delegated_nodes']} of {d['total_nodes']} nodes"
            if d.get("total_nodes")
            else f"{d.get('delegate_kernels', '?')} delegate kernels"
        )
        return "fallback", f"{delegate} took part of the graph ({detail}); the rest ran on the CPU"
    errors = parsed.get("errors") or []
    why = f": {errors[-1]}" if errors else ""
    return "unsupported", f"benchmark_model did not run the graph on {delegate}{why}; the timings are the CPU's"
