"""Telemetry readers by name. Adding a power or thermal source is one Reader subclass (base.py) and
one line in SOURCES; the inventory accepts the names listed here (embench/inventory.py reads them)."""

from __future__ import annotations

from typing import Dict, List, Mapping, Sequence, Type

from ..protocol import SourceProbe, SourceSpec, TempReading
from .base import Reader
from .power import BatteryPower, HwmonPower, Ina3221Power, RaplCounter
from .thermal import ApexTemp, CpuFreq, ThermalZones
from .vcgencmd import PiPmicPower, PiTemp, PiThrottled

SOURCES: Dict[str, Type[Reader]] = {
    "hwmon": HwmonPower,
    "ina3221": Ina3221Power,
    "battery": BatteryPower,
    "rapl": RaplCounter,
    "thermal": ThermalZones,
    "cpufreq": CpuFreq,
    "apex": ApexTemp,
    "pi_pmic": PiPmicPower,
    "pi_throttled": PiThrottled,
    "pi_temp": PiTemp,
}

# Sources read on the host (an external meter): the agent only marks the window edges for them.
HOST_SOURCES = ("external",)


def detect_sources(root: str = "/") -> Dict[str, SourceProbe]:
    """Which sources can be read here with their default options."""
    out = {}
    for name, cls in sorted(SOURCES.items()):
        try:
            reader = cls(root, {})
        except (LookupError, OSError) as exc:
            out[name] = SourceProbe(found=False, why=str(exc))
            continue
        supply = reader.label if name == "battery" else None
        out[name] = SourceProbe(found=True, kind=cls.kind, label=reader.label or name, supply=supply)
    return out


def detect_all(roots: Sequence[str]) -> Dict[str, Dict[str, SourceProbe]]:
    """detect_sources under / and under each other root."""
    return dict((root, detect_sources(root)) for root in ["/"] + [r for r in roots if r != "/"])


def read_temperature(specs: Sequence[SourceSpec]) -> TempReading:
    """The hottest reading of the temperature sources among `specs` (for cooldown between jobs)."""
    temps: List[float] = []
    errors: List[str] = []
    for spec in specs:
        cls = SOURCES.get(spec.source)
        if cls is None or cls.kind != "temperature":
            continue
        try:
            value = cls(spec.root or "/", spec.options).read()
        except (LookupError, OSError) as exc:
            errors.append(f"{spec.source}: {exc}")
            continue
        if value is not None:
            temps.append(value)
    return TempReading(temp_c=max(temps) if temps else None, errors=tuple(errors))


def source_names() -> Mapping[str, str]:
    """Every source name the inventory may use, with its kind ('host' for the host-side ones)."""
    names = dict((name, cls.kind) for name, cls in SOURCES.items())
    names.update((name, "host") for name in HOST_SOURCES)
    return names
