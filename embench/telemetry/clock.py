"""Host ↔ device clocks, for power samples taken on the host (an external meter). Pure: no I/O.

A host meter stamps its samples with the host's wall clock (Unix seconds). The device marks its
window edges on its own sampler clock (monotonic, or /proc/uptime on phones) and, beside each, its
wall clock. The two wall clocks are compared by probes (host time before, device time, host time
after: the device read its clock somewhere inside that round trip), and the edges then carry a
sample from device wall time onto the sampler clock:

    t_device = t_host + (device wall − host wall) − (edge wall − edge t)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from embench_agent.protocol import Edge


@dataclass(frozen=True)
class ClockOffset:
    """Device wall clock minus host wall clock, from the probe with the shortest round trip."""

    offset_s: float
    uncertainty_s: float  # half that round trip: the device read its clock somewhere inside it
    probes: int


def best_offset(probes: Sequence[tuple[float, float, float]]) -> ClockOffset:
    """NTP-style: each probe is (host before, device, host after); the shortest round trip wins."""
    if not probes:
        raise ValueError("no clock probes")
    before, device, after = min(probes, key=lambda p: p[2] - p[0])
    return ClockOffset(device - (before + after) / 2, (after - before) / 2, len(probes))


def parse_unix_time(text: str) -> float:
    """`date +%s.%N` output → seconds. Raises ValueError when the fraction is missing (a `date`
    without %N prints it literally or not at all: a whole second is too coarse to align with)."""
    word = text.strip().split()[-1] if text.strip() else ""
    whole, dot, fraction = word.partition(".")
    if not (whole.isdigit() and dot and fraction.isdigit()):
        raise ValueError(f"`date +%s.%N` printed {text.strip()[:40]!r}, not seconds with a fraction")
    return float(word)


def edge_shift(edges: Mapping[str, Edge]) -> float | None:
    """Device wall time minus sampler-clock time, averaged over the edges that carry both."""
    shifts = [e.wall - e.t for e in edges.values() if e.wall is not None]
    return sum(shifts) / len(shifts) if shifts else None


def to_device_clock(
    samples: Sequence[tuple[float, float]], offset: ClockOffset, shift: float
) -> list[tuple[float, float]]:
    """Host-wall-clock samples onto the device's sampler clock (see the module docstring)."""
    move = offset.offset_s - shift
    return [(t + move, value) for t, value in samples]
