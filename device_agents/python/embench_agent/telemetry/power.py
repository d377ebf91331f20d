"""Power readers: INA2xx under hwmon, Jetson INA3221, a battery, and RAPL energy counters."""

from __future__ import annotations

import glob
import os
from typing import Any, Dict, List, Mapping, Optional, Tuple

from ..sysfs import read_number, read_text
from .base import Reader
from .units import battery_watts


class HwmonPower(Reader):
    """INA219 / INA226 / INA260 under hwmon: power1_input (µW), else in1_input (mV) × curr1_input (mA)."""

    kind, unit, rate_hz = "power", "W", 20.0
    CHIPS = ("ina219", "ina226", "ina260", "ina209", "ina230", "ina231")

    def __init__(self, root: str, options: Mapping[str, str]) -> None:
        super().__init__(root, options)
        wanted = options.get("chip")
        self.dir = ""
        for name_file in sorted(glob.glob(os.path.join(root, "sys/class/hwmon/hwmon*/name"))):
            chip = (read_text(name_file) or "").strip()
            if chip in self.CHIPS and (wanted is None or chip == wanted):
                self.dir, self.label = os.path.dirname(name_file), chip
                break
        if not self.dir:
            raise LookupError("no INA2xx power monitor under {}/sys/class/hwmon".format(root.rstrip("/")))

    def read(self) -> Optional[float]:
        uw = read_number(os.path.join(self.dir, "power1_input"))
        if uw is not None:
            return uw / 1e6
        mv = read_number(os.path.join(self.dir, "in1_input"))
        ma = read_number(os.path.join(self.dir, "curr1_input"))
        return None if mv is None or ma is None else mv * ma / 1e6


Channel = Tuple[str, str, str]  # (layout, folder, channel number)


class Ina3221Power(Reader):
    """Jetson INA3221. The board's total rail (VDD_IN; POM_5V_IN on a Nano) is read alone: sub-rails
    are never added to it. Boards without a total rail (AGX Xavier, AGX Orin) name their parallel
    rails in options.rails ("GPU,CPU,SOC,CV,VDDRQ,SYS5V"), which are summed.

    Layouts: JetPack 5/6 hwmon (`ina3221/*/hwmon/hwmon*/inN_label`, inN_input mV × currN_input mA);
    JetPack 4 IIO (`ina3221x/*/iio:device*/rail_name_N`, in_powerN_input mW, else in_voltageN_input mV
    × in_currentN_input mA). Unconnected channels ("NC") and the shunt-sum channel are skipped.
    """

    kind, unit, rate_hz = "power", "W", 20.0
    TOTALS = ("VDD_IN", "POM_5V_IN")
    HWMON = "sys/bus/i2c/drivers/ina3221/*/hwmon/hwmon*/in*_label"
    IIO = "sys/bus/i2c/drivers/ina3221x/*/iio:device*/rail_name_*"

    def __init__(self, root: str, options: Mapping[str, str]) -> None:
        super().__init__(root, options)
        rails = self.rails(root)
        where = "{}/sys/bus/i2c/drivers/ina3221{{,x}}".format(root.rstrip("/"))
        if not rails:
            raise LookupError(f"no INA3221 rails under {where}")
        wanted = self._wanted(rails, options)
        missing = [r for r in wanted if r not in rails]
        if missing:
            raise LookupError(
                "no INA3221 rail {} under {} (found: {})".format(", ".join(missing), where, ", ".join(sorted(rails)))
            )
        self.channels = [channel for r in wanted for channel in rails[r]]
        self.label = "+".join(wanted)

    def _wanted(self, rails: Dict[str, List[Channel]], options: Mapping[str, str]) -> List[str]:
        if options.get("rails"):
            wanted = [r.strip() for r in options["rails"].split(",") if r.strip()]
            totals = [r for r in wanted if r in self.TOTALS]
            if totals and len(wanted) > 1:
                raise LookupError(
                    "{} is the board's total: never add sub-rails to it (rails: {})".format(totals[0], options["rails"])
                )
            return wanted
        if options.get("rail"):
            return [options["rail"]]
        wanted = [r for r in self.TOTALS if r in rails][:1]
        if not wanted:
            raise LookupError(
                "no total rail ({}) among {}; set options.rails to the board's parallel rails".format(
                    " or ".join(self.TOTALS), ", ".join(sorted(rails))
                )
            )
        return wanted

    @classmethod
    def rails(cls, root: str) -> Dict[str, List[Channel]]:
        """{rail name: [(layout, folder, channel)]} for every connected channel, both layouts."""
        out: Dict[str, List[Channel]] = {}
        for layout, pattern in (("hwmon", cls.HWMON), ("iio", cls.IIO)):
            for path in sorted(glob.glob(os.path.join(root, pattern))):
                name = (read_text(path) or "").strip()
                if not name or name == "NC" or name.lower().startswith("sum of"):
                    continue
                base = os.path.basename(path)
                channel = base[2:].split("_")[0] if layout == "hwmon" else base.rsplit("_", 1)[1]
                out.setdefault(name, []).append((layout, os.path.dirname(path), channel))
        return out

    @staticmethod
    def _watts(layout: str, folder: str, n: str) -> Optional[float]:
        if layout == "iio":
            mw = read_number(os.path.join(folder, f"in_power{n}_input"))
            if mw is not None:
                return mw / 1e3
            mv = read_number(os.path.join(folder, f"in_voltage{n}_input"))
            ma = read_number(os.path.join(folder, f"in_current{n}_input"))
        else:
            mv = read_number(os.path.join(folder, f"in{n}_input"))
            ma = read_number(os.path.join(folder, f"curr{n}_input"))
        return None if mv is None or ma is None else mv * ma / 1e6

    def read(self) -> Optional[float]:
        total = 0.0
        for channel in self.channels:
            watts = self._watts(*channel)
            if watts is None:
                return None
            total += watts
        return total


class BatteryPower(Reader):
    """Android / Linux battery: |current_now × voltage_now|; µA or mA (units.py), µV."""

    kind, unit, rate_hz = "power", "W", 4.0

    def __init__(self, root: str, options: Mapping[str, str]) -> None:
        super().__init__(root, options)
        self.dir = os.path.join(root, "sys/class/power_supply", options.get("supply") or self.supply(root))
        if not os.path.exists(os.path.join(self.dir, "current_now")):
            raise LookupError(f"no {self.dir}/current_now")
        self.unit_override = options.get("current_unit")  # "uA" or "mA"
        self.label = os.path.basename(self.dir)

    def read(self) -> Optional[float]:
        current = read_number(os.path.join(self.dir, "current_now"))
        voltage = read_number(os.path.join(self.dir, "voltage_now"))
        if current is None or voltage is None:
            return None
        return battery_watts(current, voltage, self.unit_override)

    def facts(self) -> Dict[str, Any]:
        return {"status": (read_text(os.path.join(self.dir, "status")) or "").strip() or None}

    @staticmethod
    def supply(root: str) -> str:
        """`battery` (phones), else the first supply of type Battery that has current_now (BAT0 on laptops)."""
        base = os.path.join(root, "sys/class/power_supply")
        if os.path.exists(os.path.join(base, "battery", "current_now")):
            return "battery"
        for current in sorted(glob.glob(os.path.join(base, "*", "current_now"))):
            folder = os.path.dirname(current)
            if (read_text(os.path.join(folder, "type")) or "").strip() == "Battery":
                return os.path.basename(folder)
        return "battery"


class RaplCounter(Reader):
    """Intel/AMD RAPL package energy counter (µJ), read at the window edges; wraps at max_energy_range_uj."""

    kind, unit, rate_hz = "counter", "uJ", 0.0

    def __init__(self, root: str, options: Mapping[str, str]) -> None:
        super().__init__(root, options)
        self.dir = os.path.join(root, "sys/class/powercap", options.get("domain", "intel-rapl:0"))
        if read_number(os.path.join(self.dir, "energy_uj")) is None:
            raise LookupError(f"no readable {self.dir}/energy_uj")
        self.max_range = read_number(os.path.join(self.dir, "max_energy_range_uj"))
        self.label = (read_text(os.path.join(self.dir, "name")) or "rapl").strip()

    def read(self) -> Optional[float]:
        return read_number(os.path.join(self.dir, "energy_uj"))

    def facts(self) -> Dict[str, Any]:
        return {"max_energy_range_uj": self.max_range}
