"""Battery current × voltage → watts, with the vendors' units and signs normalised. Pure: no I/O.

`current_now` is µA on most phones and mA on some (Samsung among them); it is negative while
discharging on some (Pixel) and positive on others. `voltage_now` is µV. A phone draws more than
20 mA, so |current| < 20000 means mA. The host applies the same rule to the samples the phone's
shell side reads (embench/agents/benchmark_model.py).
"""

from __future__ import annotations

from typing import Optional

MA_BELOW = 20000


def current_unit(current: float, override: Optional[str] = None) -> str:
    """'uA' or 'mA': the per-device override (telemetry options: current_unit) wins."""
    if override in ("uA", "mA"):
        return override
    return "mA" if abs(current) < MA_BELOW else "uA"


def battery_watts(current: float, voltage_uv: float, unit: Optional[str] = None) -> float:
    """Power drawn from (or into) the battery, as a positive number of watts."""
    amps = current / (1e3 if current_unit(current, unit) == "mA" else 1e6)
    return abs(amps * voltage_uv / 1e6)
