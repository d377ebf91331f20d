"""Raspberry Pi readers through the firmware's `vcgencmd`: Pi 5 PMIC rails, throttle bits, SoC
temperature. The parsers are checked on captured outputs (tests/fixtures/pi/README.md)."""

from __future__ import annotations

import re
from typing import Dict, Mapping, Optional, Tuple

from ..sysfs import run_text
from .base import Reader


def parse_pmic_adc(text: str) -> Dict[str, Tuple[float, float]]:
    """`vcgencmd pmic_read_adc` (Pi 5): rails as {name: (volts, amps)}, paired by name (X_V with X_A)."""
    volts: Dict[str, float] = {}
    amps: Dict[str, float] = {}
    for name, kind, value in re.findall(r"^\s*(\S+)_([VA])\s+(?:volt|current)\(\d+\)=([0-9.]+)[VA]\s*$", text, re.M):
        (volts if kind == "V" else amps)[name] = float(value)
    return dict((name, (volts[name], amps[name])) for name in sorted(set(volts) & set(amps)))


def parse_throttled(text: str) -> Optional[int]:
    """`vcgencmd get_throttled` → the bit mask (0x1 under-voltage, 0x2 capped, 0x4 throttled, 0x8 soft limit; +16: since boot)."""
    value = text.strip().split("=", 1)[-1]
    try:
        return int(value, 16) if value.lower().startswith("0x") else int(value)
    except ValueError:
        return None


def parse_measure_temp(text: str) -> Optional[float]:
    """`vcgencmd measure_temp` → °C ("temp=48.8'C")."""
    try:
        return float(text.strip().split("=", 1)[1].split("'", 1)[0])
    except (IndexError, ValueError):
        return None


class Vcgencmd(Reader):
    """A reader that runs `vcgencmd SUBCOMMAND` (path overridable with options.vcgencmd) and parses it."""

    SUBCOMMAND, LABEL = "", ""

    def __init__(self, root: str, options: Mapping[str, str]) -> None:
        super().__init__(root, options)
        self.cmd = [options.get("vcgencmd", "vcgencmd"), self.SUBCOMMAND]
        if self.read() is None:
            raise LookupError("`{}` gave no usable answer (a Raspberry Pi is needed)".format(" ".join(self.cmd)))
        self.label = self.LABEL

    def parse(self, text: str) -> Optional[float]:
        raise NotImplementedError

    def read(self) -> Optional[float]:
        text = run_text(self.cmd)
        return None if text is None else self.parse(text)


class PiPmicPower(Vcgencmd):
    """Raspberry Pi 5 PMIC: Σ V×A over the rails it measures. There is no total input rail (EXT5V has a
    voltage only), so this is the board's rails, not the wall. Each read costs ~23 ms: at most 10 Hz."""

    kind, unit, rate_hz = "power", "W", 5.0
    SUBCOMMAND, LABEL = "pmic_read_adc", "pi5-pmic"

    def parse(self, text: str) -> Optional[float]:
        rails = parse_pmic_adc(text)
        return sum(v * a for v, a in rails.values()) if rails else None


class PiThrottled(Vcgencmd):
    """Raspberry Pi firmware throttle bits (`vcgencmd get_throttled`); any bit set flags the run."""

    kind, unit, rate_hz = "throttle", "bits", 1.0
    SUBCOMMAND, LABEL = "get_throttled", "vcgencmd"

    def parse(self, text: str) -> Optional[float]:
        bits = parse_throttled(text)
        return None if bits is None else float(bits)


class PiTemp(Vcgencmd):
    """Raspberry Pi SoC temperature (`vcgencmd measure_temp`)."""

    kind, unit, rate_hz = "temperature", "C", 2.0
    SUBCOMMAND, LABEL = "measure_temp", "soc"

    def parse(self, text: str) -> Optional[float]:
        return parse_measure_temp(text)
