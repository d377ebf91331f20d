"""A /sys-like tree whose power follows a known curve (test support): an INA226 and a RAPL counter fed
from P(t) = 3 + sin(2πt/1.3) W on the system-wide monotonic clock, a thermal zone, and cpufreq."""

from __future__ import annotations

import contextlib
import math
import os
import queue
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PERIOD = 1.3
# 8 J: above a ~2 s window's ~6 J (a counter can only be un-wrapped below its range, which is why
# counters are read at the window edges), yet small enough that it usually wraps inside the window.
RAPL_RANGE_UJ = 8_000_000


def power(t: float) -> float:
    """The known power curve, in W, on the system-wide monotonic clock."""
    return 3.0 + math.sin(2 * math.pi * t / PERIOD)


def energy(t0: float, t1: float) -> float:
    """∫ power dt from t0 to t1, exactly."""
    k = 2 * math.pi / PERIOD
    return 3.0 * (t1 - t0) - (math.cos(k * t1) - math.cos(k * t0)) / k


def put(path: Path, value: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(f"{value}\n")
    os.replace(tmp, path)  # readers never see half a number


@contextmanager
def power_tree(root: Path, rapl_jumps: queue.SimpleQueue[int] | None = None) -> Iterator[Path]:
    """Lay out the tree under root and keep feeding it until the block ends. A value put on
    rapl_jumps sets the RAPL counter to it (µJ) from then on, as if the board had run that far."""
    hw = root / "sys/class/hwmon"
    put(hw / "hwmon0/name", "k10temp")  # not a power monitor: must be skipped
    put(hw / "hwmon1/name", "ina226")
    rapl = root / "sys/class/powercap/intel-rapl:0"
    put(rapl / "name", "package-0")
    put(rapl / "max_energy_range_uj", RAPL_RANGE_UJ)
    zone = root / "sys/class/thermal/thermal_zone0"
    put(zone / "type", "cpu-thermal")
    put(zone / "trip_point_0_type", "passive")
    put(zone / "trip_point_0_temp", 85000)
    for cpu in (0, 1):
        put(root / f"sys/devices/system/cpu/cpu{cpu}/cpufreq/scaling_cur_freq", 1800000)
        put(root / f"sys/devices/system/cpu/cpu{cpu}/cpufreq/scaling_max_freq", 2400000)
    stop = threading.Event()

    def feed() -> None:
        counter, last = 0.0, time.monotonic()
        while not stop.is_set():
            now = time.monotonic()
            counter = (counter + energy(last, now) * 1e6) % RAPL_RANGE_UJ
            if rapl_jumps is not None:
                with contextlib.suppress(queue.Empty):
                    counter = float(rapl_jumps.get_nowait())
            last = now
            put(hw / "hwmon1/power1_input", int(power(now) * 1e6))
            put(rapl / "energy_uj", int(counter))
            put(zone / "temp", int(45000 + 10000 * (power(now) - 2.0)))
            stop.wait(0.004)

    put(hw / "hwmon1/power1_input", int(power(time.monotonic()) * 1e6))
    put(rapl / "energy_uj", 0)
    put(zone / "temp", 45000)
    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    try:
        yield root
    finally:
        stop.set()
        writer.join()
