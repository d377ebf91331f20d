"""Temperature and frequency readers: thermal zones (with trip points and cooling devices),
cpufreq (with max-frequency caps), and the Coral Edge TPU's apex temperature."""

from __future__ import annotations

import glob
import os
from typing import Any, Dict, Mapping, Optional

from ..sysfs import glob_or_say, read_number, read_text
from .base import Reader


class ThermalZones(Reader):
    """Every thermal zone's temperature (m°C → °C) and its lowest passive/hot trip point."""

    kind, unit, rate_hz = "temperature", "C", 2.0

    def __init__(self, root: str, options: Mapping[str, str]) -> None:
        super().__init__(root, options)
        self.zones = glob_or_say(root, "sys/class/thermal/thermal_zone*", "no thermal zones")
        self.label = ",".join((read_text(os.path.join(z, "type")) or "?").strip() for z in self.zones)

    def read(self) -> Optional[float]:
        temps = [read_number(os.path.join(z, "temp")) for z in self.zones]
        known = [t / 1000.0 for t in temps if t is not None]
        return max(known) if known else None

    def facts(self) -> Dict[str, Any]:
        trips = []
        for zone in self.zones:
            for trip in glob.glob(os.path.join(zone, "trip_point_*_type")):
                if (read_text(trip) or "").strip() in ("passive", "hot", "critical"):
                    value = read_number(trip.replace("_type", "_temp"))
                    if value is not None:
                        trips.append(value / 1000.0)
        cooling = {}
        for dev in sorted(glob.glob(os.path.join(os.path.dirname(self.zones[0]), "cooling_device*"))):
            state = read_number(os.path.join(dev, "cur_state"))
            if state is not None:
                cooling[os.path.basename(dev)] = state
        return {"trip_c": min(trips) if trips else None, "cooling_states": cooling}


class CpuFreq(Reader):
    """Current CPU frequencies (kHz → MHz, the lowest core) and the max-frequency caps."""

    kind, unit, rate_hz = "frequency", "MHz", 2.0

    def __init__(self, root: str, options: Mapping[str, str]) -> None:
        super().__init__(root, options)
        self.cpus = glob_or_say(root, "sys/devices/system/cpu/cpu[0-9]*/cpufreq", "no cpufreq")
        self.label = f"{len(self.cpus)} cpus"

    def read(self) -> Optional[float]:
        values = []
        for cpu in self.cpus:
            v = read_number(os.path.join(cpu, "scaling_cur_freq"))
            v = v if v is not None else read_number(os.path.join(cpu, "cpuinfo_cur_freq"))
            if v is not None:
                values.append(v / 1000.0)
        return min(values) if values else None

    def facts(self) -> Dict[str, Any]:
        caps = [read_number(os.path.join(c, "scaling_max_freq")) for c in self.cpus]
        return {"max_mhz": [c / 1000.0 if c is not None else None for c in caps]}


class ApexTemp(Reader):
    """Coral Edge TPU temperature: /sys/class/apex/apex_0/temp (m°C)."""

    kind, unit, rate_hz = "temperature", "C", 2.0

    def __init__(self, root: str, options: Mapping[str, str]) -> None:
        super().__init__(root, options)
        self.path = os.path.join(root, "sys/class/apex", options.get("device", "apex_0"), "temp")
        if read_number(self.path) is None:
            raise LookupError(f"no readable {self.path}")
        self.label = "apex"

    def read(self) -> Optional[float]:
        value = read_number(self.path)
        return None if value is None else value / 1000.0
