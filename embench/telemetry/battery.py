"""Battery current × voltage → watts, with the vendors' units and signs normalised. Pure: no I/O.

`current_now` is µA on most phones and mA on some (Samsung among them); it is negative while
discharging on some (Pixel) and positive on others. `voltage_now` is µV. The same rule as the
Python agent's BatteryPower reader: a phone draws more than 20 mA, so |current| < 20000 means mA.
"""

from __future__ import annotations

MA_BELOW = 20000


def current_unit(current: float, override: str | None = None) -> str:
    """'uA' or 'mA': the per-device override (adb telemetry options: current_unit) wins."""
    if override in ("uA", "mA"):
        return override
    return "mA" if abs(current) < MA_BELOW else "uA"


def battery_watts(current: float, voltage_uv: float, unit: str | None = None) -> float:
    """Power drawn from (or into) the battery, as a positive number of watts."""
    amps = current / (1e3 if current_unit(current, unit) == "mA" else 1e6)
    return abs(amps * voltage_uv / 1e6)
