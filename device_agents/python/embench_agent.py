#!/usr/bin/env python3
"""embench on-device agent: times one inference job and prints one result JSON.

Runs on the device (a Linux board, or the host itself). Standard library plus the runtime it
times; must stay importable on Python 3.8, because boards run old Pythons. Never imports embench.

Usage:
    embench_agent.py run JOB.json|-     time the job, print the Result JSON on stdout
    embench_agent.py probe [--root DIR]... [NAME=LIB]...
                                        print device facts, the runtimes present, whether each
                                        delegate library NAME=LIB loads, and which telemetry
                                        sources are readable under / (and each DIR)
    embench_agent.py temp               read telemetry sources (JSON list on stdin), print the hottest
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import resource
import signal
import sys
import tempfile
import time
import traceback
import warnings

AGENT_VERSION = "1"
JOB_SCHEMA = 1
RESULT_SCHEMA = 1

# ONNX Runtime providers that place every node they accept on the CPU anyway.
CPU_PROVIDERS = ("CPUExecutionProvider",)


class Unsupported(Exception):
    """The requested runtime, delegate or provider is not available on this device."""


class ModelLoadError(Exception):
    """The runtime could not load the model file (corrupt, truncated, or an op it lacks)."""


@contextlib.contextmanager
def loading(path: str):
    try:
        yield
    except (ValueError, RuntimeError) as exc:
        raise ModelLoadError("cannot load model %s: %s" % (path, exc)) from exc


# ---------------------------------------------------------------------------- device facts


def _read_text(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return fh.read()
    except OSError:
        return None


def _cpu_model() -> str:
    text = _read_text("/proc/cpuinfo") or ""
    for key in ("model name", "Hardware", "Processor", "cpu model"):
        for line in text.splitlines():
            if line.startswith(key) and ":" in line:
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _mem_total_kb() -> int | None:
    for line in (_read_text("/proc/meminfo") or "").splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1])
    return None


def _os_name() -> str:
    for line in (_read_text("/etc/os-release") or "").splitlines():
        if line.startswith("PRETTY_NAME="):
            return line.split("=", 1)[1].strip().strip('"')
    return platform.system()


def device_facts() -> dict:
    """What this device is: CPU, cores, memory, OS, kernel, Python, board model."""
    board = _read_text("/proc/device-tree/model")
    governor = _read_text("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor")
    return {
        "hostname": platform.node(),
        "machine": platform.machine(),
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "mem_total_kb": _mem_total_kb(),
        "os": _os_name(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "board": board.strip("\x00\n ") if board else None,
        "cpu_governor": governor.strip() if governor else None,
    }


# ---------------------------------------------------------------------------- runtimes


def import_litert():
    """Return (module with Interpreter/load_delegate, package name, version) or raise Unsupported."""
    errors = []
    for name in ("ai_edge_litert.interpreter", "tflite_runtime.interpreter", "tensorflow.lite"):
        try:
            module = __import__(name, fromlist=["Interpreter"])
        except ImportError as exc:
            errors.append("%s: %s" % (name, exc))
            continue
        package = name.split(".")[0]
        return module, package, _version_of(package)
    raise Unsupported("no TFLite runtime importable (" + "; ".join(errors) + ")")


def import_onnxruntime():
    try:
        import onnxruntime  # noqa: PLC0415 - imported only for ONNX jobs
    except ImportError as exc:
        raise Unsupported("onnxruntime is not importable: %s" % exc) from exc
    return onnxruntime


def _version_of(package: str) -> str | None:
    dist = {"ai_edge_litert": "ai-edge-litert", "tflite_runtime": "tflite-runtime"}.get(package, package)
    try:
        from importlib import metadata  # noqa: PLC0415

        return metadata.version(dist)
    except Exception:  # noqa: BLE001 - any metadata failure just means "unknown"
        module = sys.modules.get(package)
        return getattr(module, "__version__", None)


def probe_library(library: str) -> dict:
    """Whether a delegate's shared library can be loaded here (dlopen), without creating a delegate."""
    import ctypes  # noqa: PLC0415

    try:
        ctypes.CDLL(library)
    except OSError as exc:
        return {"library": library, "loadable": False, "error": str(exc)}
    return {"library": library, "loadable": True}


def probe(libraries: dict, roots: list | None = None) -> dict:
    """Device facts, which runtimes import, which delegates/providers exist, and which telemetry
    sources can be read (under / and under each of `roots`)."""
    runtimes = {}
    try:
        _, package, version = import_litert()
        runtimes["litert"] = {"package": package, "version": version}
    except Unsupported as exc:
        runtimes["litert"] = {"error": str(exc)}
    try:
        ort = import_onnxruntime()
        runtimes["onnxruntime"] = {
            "package": "onnxruntime",
            "version": ort.__version__,
            "providers": list(ort.get_available_providers()),
        }
    except Unsupported as exc:
        runtimes["onnxruntime"] = {"error": str(exc)}
    delegates = dict((name, probe_library(lib)) for name, lib in sorted(libraries.items()))
    return {
        "agent_version": AGENT_VERSION,
        "facts": device_facts(),
        "runtimes": runtimes,
        "delegates": delegates,
        "telemetry": dict((root, detect_sources(root)) for root in ["/"] + [r for r in roots or [] if r != "/"]),
    }


# ---------------------------------------------------------------------------- capture


@contextlib.contextmanager
def captured_stderr_fd():
    """Capture what native code writes to fd 2 (runtimes log there, not to sys.stderr)."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        os.dup2(tmp.fileno(), 2)
        box = {"text": ""}
        try:
            yield box
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            box["text"] = tmp.read().decode("utf-8", "replace")


# ---------------------------------------------------------------------------- telemetry
# Readers take `root` (normally "/") so tests can point them at a tree laid out like /sys.


def _read_number(path: str):
    text = _read_text(path)
    try:
        return float(text.strip()) if text is not None else None
    except ValueError:
        return None


def _glob_or_say(root: str, pattern: str, what: str) -> list:
    """The paths matching root/pattern, sorted; LookupError naming where it looked when none does."""
    import glob  # noqa: PLC0415

    found = sorted(glob.glob(os.path.join(root, pattern)))
    if not found:
        raise LookupError("%s under %s/%s" % (what, root.rstrip("/"), os.path.dirname(pattern)))
    return found


class HwmonPower:
    """INA219 / INA226 / INA260 under hwmon: power1_input (µW), else in1_input (mV) × curr1_input (mA)."""

    kind, unit, rate_hz = "power", "W", 20.0
    CHIPS = ("ina219", "ina226", "ina260", "ina209", "ina230", "ina231")

    def __init__(self, root: str, options: dict) -> None:
        import glob  # noqa: PLC0415

        wanted = options.get("chip")
        self.dir = None
        for name_file in sorted(glob.glob(os.path.join(root, "sys/class/hwmon/hwmon*/name"))):
            chip = (_read_text(name_file) or "").strip()
            if chip in self.CHIPS and (wanted is None or chip == wanted):
                self.dir, self.label = os.path.dirname(name_file), chip
                break
        if self.dir is None:
            raise LookupError("no INA2xx power monitor under %s/sys/class/hwmon" % root.rstrip("/"))

    def read(self):
        uw = _read_number(os.path.join(self.dir, "power1_input"))
        if uw is not None:
            return uw / 1e6
        mv = _read_number(os.path.join(self.dir, "in1_input"))
        ma = _read_number(os.path.join(self.dir, "curr1_input"))
        return None if mv is None or ma is None else mv * ma / 1e6


class Ina3221Power:
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

    def __init__(self, root: str, options: dict) -> None:
        rails = self.rails(root)
        where = "%s/sys/bus/i2c/drivers/ina3221{,x}" % root.rstrip("/")
        if not rails:
            raise LookupError("no INA3221 rails under %s" % where)
        found = ", ".join(sorted(rails))
        if options.get("rails"):
            wanted = [r.strip() for r in options["rails"].split(",") if r.strip()]
            totals = [r for r in wanted if r in self.TOTALS]
            if totals and len(wanted) > 1:
                raise LookupError(
                    "%s is the board's total: never add sub-rails to it (rails: %s)" % (totals[0], options["rails"])
                )
        elif options.get("rail"):
            wanted = [options["rail"]]
        else:
            wanted = [r for r in self.TOTALS if r in rails][:1]
            if not wanted:
                raise LookupError(
                    "no total rail (%s) among %s; set options.rails to the board's parallel rails"
                    % (" or ".join(self.TOTALS), found)
                )
        missing = [r for r in wanted if r not in rails]
        if missing:
            raise LookupError("no INA3221 rail %s under %s (found: %s)" % (", ".join(missing), where, found))
        self.channels = [channel for r in wanted for channel in rails[r]]
        self.label = "+".join(wanted)

    @classmethod
    def rails(cls, root: str) -> dict:
        """{rail name: [(layout, folder, channel)]} for every connected channel, both layouts."""
        import glob  # noqa: PLC0415

        out = {}
        for layout, pattern in (("hwmon", cls.HWMON), ("iio", cls.IIO)):
            for path in sorted(glob.glob(os.path.join(root, pattern))):
                name = (_read_text(path) or "").strip()
                if not name or name == "NC" or name.lower().startswith("sum of"):
                    continue
                base = os.path.basename(path)
                channel = base[2:].split("_")[0] if layout == "hwmon" else base.rsplit("_", 1)[1]
                out.setdefault(name, []).append((layout, os.path.dirname(path), channel))
        return out

    @staticmethod
    def _watts(layout: str, folder: str, n: str):
        if layout == "iio":
            mw = _read_number(os.path.join(folder, "in_power%s_input" % n))
            if mw is not None:
                return mw / 1e3
            mv = _read_number(os.path.join(folder, "in_voltage%s_input" % n))
            ma = _read_number(os.path.join(folder, "in_current%s_input" % n))
        else:
            mv = _read_number(os.path.join(folder, "in%s_input" % n))
            ma = _read_number(os.path.join(folder, "curr%s_input" % n))
        return None if mv is None or ma is None else mv * ma / 1e6

    def read(self):
        total = 0.0
        for channel in self.channels:
            watts = self._watts(*channel)
            if watts is None:
                return None
            total += watts
        return total


class BatteryPower:
    """Android / Linux battery: |current_now × voltage_now|; µA or mA (vendors differ), µV."""

    kind, unit, rate_hz = "power", "W", 4.0

    def __init__(self, root: str, options: dict) -> None:
        self.dir = os.path.join(root, "sys/class/power_supply", options.get("supply") or self.supply(root))
        if not os.path.exists(os.path.join(self.dir, "current_now")):
            raise LookupError("no %s/current_now" % self.dir)
        self.unit_override = options.get("current_unit")  # "uA" or "mA"
        self.label = os.path.basename(self.dir)

    def read(self):
        current = _read_number(os.path.join(self.dir, "current_now"))
        voltage = _read_number(os.path.join(self.dir, "voltage_now"))
        if current is None or voltage is None:
            return None
        unit = self.unit_override or ("mA" if abs(current) < 20000 else "uA")  # a phone draws > 20 mA
        amps = current / (1e3 if unit == "mA" else 1e6)
        return abs(amps * voltage / 1e6)

    def facts(self) -> dict:
        return {"status": (_read_text(os.path.join(self.dir, "status")) or "").strip() or None}

    @staticmethod
    def supply(root: str) -> str:
        """`battery` (phones), else the first supply of type Battery that has current_now (BAT0 on laptops)."""
        import glob  # noqa: PLC0415

        base = os.path.join(root, "sys/class/power_supply")
        if os.path.exists(os.path.join(base, "battery", "current_now")):
            return "battery"
        for current in sorted(glob.glob(os.path.join(base, "*", "current_now"))):
            folder = os.path.dirname(current)
            if (_read_text(os.path.join(folder, "type")) or "").strip() == "Battery":
                return os.path.basename(folder)
        return "battery"


class RaplCounter:
    """Intel/AMD RAPL package energy counter (µJ), read at the window edges; wraps at max_energy_range_uj."""

    kind, unit, rate_hz = "counter", "uJ", 0.0

    def __init__(self, root: str, options: dict) -> None:
        self.dir = os.path.join(root, "sys/class/powercap", options.get("domain", "intel-rapl:0"))
        if _read_number(os.path.join(self.dir, "energy_uj")) is None:
            raise LookupError("no readable %s/energy_uj" % self.dir)
        self.max_range = _read_number(os.path.join(self.dir, "max_energy_range_uj"))
        self.label = (_read_text(os.path.join(self.dir, "name")) or "rapl").strip()

    def read(self):
        return _read_number(os.path.join(self.dir, "energy_uj"))

    def facts(self) -> dict:
        return {"max_energy_range_uj": self.max_range}


class ThermalZones:
    """Every thermal zone's temperature (m°C → °C) and its lowest passive/hot trip point."""

    kind, unit, rate_hz = "temperature", "C", 2.0

    def __init__(self, root: str, options: dict) -> None:
        self.zones = _glob_or_say(root, "sys/class/thermal/thermal_zone*", "no thermal zones")
        self.label = ",".join((_read_text(os.path.join(z, "type")) or "?").strip() for z in self.zones)

    def read(self):
        temps = [_read_number(os.path.join(z, "temp")) for z in self.zones]
        known = [t / 1000.0 for t in temps if t is not None]
        return max(known) if known else None

    def facts(self) -> dict:
        import glob  # noqa: PLC0415

        trips = []
        for zone in self.zones:
            for trip in glob.glob(os.path.join(zone, "trip_point_*_type")):
                if (_read_text(trip) or "").strip() in ("passive", "hot", "critical"):
                    value = _read_number(trip.replace("_type", "_temp"))
                    if value is not None:
                        trips.append(value / 1000.0)
        cooling = {}
        for dev in sorted(glob.glob(os.path.join(os.path.dirname(self.zones[0]), "cooling_device*"))):
            state = _read_number(os.path.join(dev, "cur_state"))
            if state is not None:
                cooling[os.path.basename(dev)] = state
        return {"trip_c": min(trips) if trips else None, "cooling_states": cooling}


class CpuFreq:
    """Current CPU frequencies (kHz → MHz, the lowest core) and the max-frequency caps."""

    kind, unit, rate_hz = "frequency", "MHz", 2.0

    def __init__(self, root: str, options: dict) -> None:
        self.cpus = _glob_or_say(root, "sys/devices/system/cpu/cpu[0-9]*/cpufreq", "no cpufreq")
        self.label = "%d cpus" % len(self.cpus)

    def read(self):
        values = []
        for cpu in self.cpus:
            v = _read_number(os.path.join(cpu, "scaling_cur_freq"))
            v = v if v is not None else _read_number(os.path.join(cpu, "cpuinfo_cur_freq"))
            if v is not None:
                values.append(v / 1000.0)
        return min(values) if values else None

    def facts(self) -> dict:
        caps = [_read_number(os.path.join(c, "scaling_max_freq")) for c in self.cpus]
        return {"max_mhz": [c / 1000.0 if c is not None else None for c in caps]}


class ApexTemp:
    """Coral Edge TPU temperature: /sys/class/apex/apex_0/temp (m°C)."""

    kind, unit, rate_hz = "temperature", "C", 2.0

    def __init__(self, root: str, options: dict) -> None:
        self.path = os.path.join(root, "sys/class/apex", options.get("device", "apex_0"), "temp")
        if _read_number(self.path) is None:
            raise LookupError("no readable %s" % self.path)
        self.label = "apex"

    def read(self):
        value = _read_number(self.path)
        return None if value is None else value / 1000.0


def _run_text(argv: list, timeout: float = 2.0):
    import subprocess  # noqa: PLC0415

    try:
        out = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, timeout=timeout, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.decode("utf-8", "replace") if out.returncode == 0 else None


def parse_pmic_adc(text: str) -> dict:
    """`vcgencmd pmic_read_adc` (Pi 5): rails as {name: (volts, amps)}, paired by name (X_V with X_A)."""
    import re  # noqa: PLC0415

    volts, amps = {}, {}
    for name, kind, value in re.findall(r"^\s*(\S+)_([VA])\s+(?:volt|current)\(\d+\)=([0-9.]+)[VA]\s*$", text, re.M):
        (volts if kind == "V" else amps)[name] = float(value)
    return dict((name, (volts[name], amps[name])) for name in sorted(set(volts) & set(amps)))


def parse_throttled(text: str):
    """`vcgencmd get_throttled` → the bit mask (0x1 under-voltage, 0x2 capped, 0x4 throttled, 0x8 soft limit; +16: since boot)."""
    value = text.strip().split("=", 1)[-1]
    try:
        return int(value, 16) if value.lower().startswith("0x") else int(value)
    except ValueError:
        return None


def parse_measure_temp(text: str):
    """`vcgencmd measure_temp` → °C ("temp=48.8'C")."""
    try:
        return float(text.strip().split("=", 1)[1].split("'", 1)[0])
    except (IndexError, ValueError):
        return None


class _Vcgencmd:
    """A reader that runs `vcgencmd SUBCOMMAND` (path overridable with options.vcgencmd) and parses it."""

    SUBCOMMAND, LABEL = "", ""

    def __init__(self, root: str, options: dict) -> None:
        self.cmd = [options.get("vcgencmd", "vcgencmd"), self.SUBCOMMAND]
        if self.read() is None:
            raise LookupError("`%s` gave no usable answer (a Raspberry Pi is needed)" % " ".join(self.cmd))
        self.label = self.LABEL

    def parse(self, text: str):
        raise NotImplementedError

    def read(self):
        text = _run_text(self.cmd)
        return None if text is None else self.parse(text)


class PiPmicPower(_Vcgencmd):
    """Raspberry Pi 5 PMIC: Σ V×A over the rails it measures. There is no total input rail (EXT5V has a
    voltage only), so this is the board's rails, not the wall. Each read costs ~23 ms: at most 10 Hz."""

    kind, unit, rate_hz = "power", "W", 5.0
    SUBCOMMAND, LABEL = "pmic_read_adc", "pi5-pmic"

    def parse(self, text: str):
        rails = parse_pmic_adc(text)
        return sum(v * a for v, a in rails.values()) if rails else None


class PiThrottled(_Vcgencmd):
    """Raspberry Pi firmware throttle bits (`vcgencmd get_throttled`); any bit set flags the run."""

    kind, unit, rate_hz = "throttle", "bits", 1.0
    SUBCOMMAND, LABEL = "get_throttled", "vcgencmd"

    def parse(self, text: str):
        return parse_throttled(text)


class PiTemp(_Vcgencmd):
    """Raspberry Pi SoC temperature (`vcgencmd measure_temp`)."""

    kind, unit, rate_hz = "temperature", "C", 2.0
    SUBCOMMAND, LABEL = "measure_temp", "soc"

    def parse(self, text: str):
        return parse_measure_temp(text)


SOURCES = {
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


# Sources the host reads (an external meter): the agent only marks the window edges for them.
HOST_SOURCES = ("external",)


def detect_sources(root: str = "/") -> dict:
    """Which sources can be read here with their default options: {name: {found, label, kind} | {found, why}}."""
    out = {}
    for name, cls in sorted(SOURCES.items()):
        try:
            source = cls(root, {})
        except (LookupError, OSError) as exc:
            out[name] = {"found": False, "why": str(exc)}
            continue
        out[name] = {"found": True, "kind": cls.kind, "label": getattr(source, "label", name)}
        if name == "battery":
            out[name]["supply"] = source.label
    return out


def read_temperature(specs: list) -> dict:
    """The hottest reading of the temperature sources among `specs` (for cooldown between jobs)."""
    temps, errors = [], []
    for spec in specs:
        cls = SOURCES.get(spec.get("source"))
        if cls is None or cls.kind != "temperature":
            continue
        try:
            value = cls(spec.get("root") or "/", spec.get("options") or {}).read()
        except (LookupError, OSError) as exc:
            errors.append("%s: %s" % (spec.get("source"), exc))
            continue
        if value is not None:
            temps.append(value)
    return {"temp_c": max(temps) if temps else None, "errors": errors}


class Sampler:
    """Samples the job's telemetry sources on a thread, on the monotonic clock."""

    def __init__(self, specs: list) -> None:
        import threading  # noqa: PLC0415

        self.sources, self.errors, self.facts_start = [], [], {}
        for spec in specs:
            if spec.get("source") in HOST_SOURCES:
                continue  # read on the host, beside this agent (the edges below let the host align it)
            try:
                cls = SOURCES[spec["source"]]
                source = cls(spec.get("root") or "/", spec.get("options") or {})
                rate = float(spec.get("rate_hz") or cls.rate_hz)
                self.sources.append((spec["source"], source, rate, []))
                self.facts_start[spec["source"]] = source.facts() if hasattr(source, "facts") else {}
            except (KeyError, LookupError, OSError) as exc:
                self.errors.append("%s: %s" % (spec.get("source"), exc))
        self.edges = {}
        self.cpu_seconds = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="embench-sampler", daemon=True)

    def start(self) -> None:
        if any(rate > 0 for _, _, rate, _ in self.sources):
            self._thread.start()

    def _loop(self) -> None:
        cpu0 = time.thread_time()
        due = [time.monotonic()] * len(self.sources)
        while not self._stop.is_set():
            now = time.monotonic()
            for i, (_, source, rate, out) in enumerate(self.sources):
                if rate > 0 and now >= due[i]:
                    value = source.read()
                    if value is not None:
                        out.append((time.monotonic(), value))
                    due[i] = now + 1.0 / rate
            self._stop.wait(max(0.0, min(due) - time.monotonic()) if due else 0.1)
        self.cpu_seconds = time.thread_time() - cpu0

    def edge(self, name: str) -> None:
        """Mark a window edge on the sampler's clock; read counter sources exactly there."""
        reads = {}
        for key, source, rate, _ in self.sources:
            if source.kind == "counter":
                reads[key] = source.read()
        self.edges[name] = {"t": time.monotonic(), "wall": time.time(), "counters": reads}

    def stop(self) -> dict:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)
        return {
            "clock": "monotonic",
            "edges": self.edges,
            "sources": [
                {
                    "source": key,
                    "label": getattr(source, "label", key),
                    "kind": source.kind,
                    "unit": source.unit,
                    "rate_hz": rate,
                    "facts_start": self.facts_start.get(key, {}),
                    "facts": source.facts() if hasattr(source, "facts") else {},
                    "samples": out,
                }
                for key, source, rate, out in self.sources
            ],
            "errors": self.errors,
            "sampler_cpu_seconds": self.cpu_seconds,
        }


# ---------------------------------------------------------------------------- inputs


def make_inputs(np, details, seed: int) -> list:
    """Random inputs in each input's dtype and shape, from a seed."""
    rng = np.random.default_rng(seed)
    arrays = []
    for shape, dtype in details:
        dtype = np.dtype(dtype)
        # Dynamic dimensions (None, -1, or a symbolic name) become 1.
        shape = [int(d) if isinstance(d, (int, np.integer)) and int(d) > 0 else 1 for d in shape]
        if dtype.kind == "f":
            arrays.append(rng.uniform(-1.0, 1.0, size=shape).astype(dtype))
        elif dtype.kind in "iu":
            info = np.iinfo(dtype)
            arrays.append(rng.integers(info.min, info.max, size=shape, dtype=dtype, endpoint=True))
        elif dtype.kind == "b":
            arrays.append(rng.integers(0, 1, size=shape, endpoint=True).astype(dtype))
        else:
            raise ValueError("input dtype %s is not supported by the agent" % dtype)
    return arrays


# ---------------------------------------------------------------------------- timing


def timed_loop(step, run_policy: dict, result: dict, mark=None) -> None:
    """First inference, warmups, then one sample per inference until min_runs and min_seconds, or max_seconds.

    One clock read per inference: sample i is the time between consecutive reads, so it also
    holds the loop's own few tens of nanoseconds, like a bare loop timed as a whole. The common
    case costs a single comparison.
    """
    clock = time.perf_counter_ns
    t0 = clock()
    step()
    result["first_inference_ms"] = (clock() - t0) / 1e6
    for _ in range(int(run_policy["warmup_runs"])):
        step()
    min_runs = int(run_policy["min_runs"])
    result["window_start_unix"] = time.time()
    if mark is not None:
        mark("window_start")  # telemetry edge, on the sampler's clock, outside the timed loop
    start = clock()
    min_end = start + int(float(run_policy["min_seconds"]) * 1e9)
    max_end = start + int(float(run_policy["max_seconds"]) * 1e9)
    stamps = [start]
    append = stamps.append
    while True:
        step()
        t = clock()
        append(t)
        if t >= min_end and (len(stamps) > min_runs or t >= max_end):
            break
    if mark is not None:
        mark("window_end")
    result["window_end_unix"] = time.time()
    result["window_ns"] = stamps[-1] - start
    result["samples_ns"] = [b - a for a, b in zip(stamps, stamps[1:])]


# ---------------------------------------------------------------------------- LiteRT


def _delegated_node_counts(ops: list) -> tuple:
    """(delegated, total) original nodes, walking each DELEGATE node's partition backwards."""
    originals = [op for op in ops if op.get("op_name") != "DELEGATE"]
    delegates = [op for op in ops if op.get("op_name") == "DELEGATE"]
    producer = {}
    for op in originals:
        for tensor in op.get("outputs", []):
            producer[int(tensor)] = op["index"]
    by_index = {op["index"]: op for op in originals}
    delegated = set()
    for node in delegates:
        boundary = set(int(t) for t in node.get("inputs", []))
        stack = [int(t) for t in node.get("outputs", [])]
        seen = set()
        while stack:
            tensor = stack.pop()
            if tensor in seen or tensor in boundary:
                continue
            seen.add(tensor)
            index = producer.get(tensor)
            if index is None or index in delegated:
                continue
            delegated.add(index)
            stack.extend(int(t) for t in by_index[index].get("inputs", []) if int(t) >= 0)
    return len(delegated), len(originals)


def run_litert(job: dict, result: dict, mark=None) -> None:
    module, package, version = import_litert()
    import numpy as np  # noqa: PLC0415 - the runtime needs it anyway

    result["runtime"] = {"name": "litert", "package": package, "version": version}
    delegate = job["delegate"]
    name = delegate["name"]
    kwargs = {"model_path": job["model"]["path"], "num_threads": int(job["threads"])}
    resolver = getattr(module, "OpResolverType", None)
    if name == "cpu":
        if resolver is None:
            raise Unsupported("%s has no OpResolverType; cannot disable default delegates" % package)
        kwargs["experimental_op_resolver_type"] = resolver.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    elif name != "xnnpack":
        library = delegate.get("library")
        if not library:
            raise Unsupported("delegate %r needs a library path (set delegates.%s.library)" % (name, name))
        try:
            loaded = module.load_delegate(library, delegate.get("options") or {})
        except (OSError, ValueError, RuntimeError) as exc:
            raise Unsupported("cannot load delegate %r from %s: %s" % (name, library, exc)) from exc
        kwargs["experimental_delegates"] = [loaded]

    with captured_stderr_fd() as log:
        t0 = time.perf_counter_ns()
        with loading(kwargs["model_path"]):
            interpreter = module.Interpreter(**kwargs)
            interpreter.allocate_tensors()
        result["init_ms"] = (time.perf_counter_ns() - t0) / 1e6
    result["runtime_log"] = log["text"][-4000:]

    ops = interpreter._get_ops_details() if hasattr(interpreter, "_get_ops_details") else None
    delegation = {"requested": name, "actual": None, "delegated_nodes": None, "total_nodes": None}
    if ops is not None:
        delegated, total = _delegated_node_counts(ops)
        delegation.update(delegated_nodes=delegated, total_nodes=total)
        if name == "cpu":
            delegation["actual"] = "cpu" if delegated == 0 else "delegate"
        else:
            delegation["actual"] = name if delegated else "cpu"
    result["delegation"] = delegation

    inputs = interpreter.get_input_details()
    arrays = make_inputs(np, [(list(d["shape"]), d["dtype"]) for d in inputs], int(job.get("seed", 0)))
    for detail, array in zip(inputs, arrays):
        interpreter.set_tensor(detail["index"], array)

    if ops is not None and name not in ("cpu",):
        delegated, total = delegation["delegated_nodes"], delegation["total_nodes"]
        if delegated == 0 and name != "xnnpack":
            raise Unsupported("delegate %r took none of the %d nodes" % (name, total))
        if delegated < total:
            result["status"] = "fallback"
            result["message"] = "delegate %r took %d of %d nodes; the rest ran on the CPU" % (
                name,
                delegated,
                total,
            )
    timed_loop(interpreter.invoke, job["run"], result, mark)


# ---------------------------------------------------------------------------- ONNX Runtime


def run_onnxruntime(job: dict, result: dict, mark=None) -> None:
    ort = import_onnxruntime()
    import numpy as np  # noqa: PLC0415

    result["runtime"] = {"name": "onnxruntime", "package": "onnxruntime", "version": ort.__version__}
    provider = job["delegate"]["name"]
    available = list(ort.get_available_providers())
    options = ort.SessionOptions()
    options.intra_op_num_threads = int(job["threads"])
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    providers = [(provider, job["delegate"].get("options") or {})]
    with warnings.catch_warnings(record=True) as caught, captured_stderr_fd() as log:
        warnings.simplefilter("always")
        t0 = time.perf_counter_ns()
        with loading(job["model"]["path"]):
            session = ort.InferenceSession(job["model"]["path"], sess_options=options, providers=providers)
        result["init_ms"] = (time.perf_counter_ns() - t0) / 1e6
    messages = [str(w.message) for w in caught]
    result["runtime_log"] = ("\n".join(messages) + "\n" + log["text"])[-4000:]
    actual = list(session.get_providers())
    result["delegation"] = {
        "requested": provider,
        "actual": actual[0] if actual else None,
        "actual_providers": actual,
        "available_providers": available,
        "delegated_nodes": None,
        "total_nodes": None,
    }
    # ORT warns and silently runs on the CPU when a provider is missing: never trust the request.
    if provider not in actual:
        why = messages[0] if messages else "provider %r not in session providers %s" % (provider, actual)
        raise Unsupported(why)

    feeds = {}
    details = [(list(i.shape), _ort_dtype(np, i.type)) for i in session.get_inputs()]
    for meta, array in zip(session.get_inputs(), make_inputs(np, details, int(job.get("seed", 0)))):
        feeds[meta.name] = array
    run = session.run
    timed_loop(lambda: run(None, feeds), job["run"], result, mark)


def _ort_dtype(np, type_name: str):
    table = {
        "tensor(float)": np.float32,
        "tensor(float16)": np.float16,
        "tensor(double)": np.float64,
        "tensor(int8)": np.int8,
        "tensor(uint8)": np.uint8,
        "tensor(int32)": np.int32,
        "tensor(int64)": np.int64,
        "tensor(bool)": np.bool_,
    }
    if type_name not in table:
        raise ValueError("input type %s is not supported by the agent" % type_name)
    return table[type_name]


# ---------------------------------------------------------------------------- job


RUNNERS = {"litert": run_litert, "onnxruntime": run_onnxruntime}


def peak_rss_kb() -> int:
    """This process's peak resident memory.

    VmHWM first: on Linux, ru_maxrss is inherited across fork+exec, so an agent started by a big
    parent (a sweep that just loaded TensorFlow) would report the parent's peak as its own.
    """
    for line in (_read_text("/proc/self/status") or "").splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak // 1024) if sys.platform == "darwin" else int(peak)


def run_job(job: dict) -> dict:
    """Run one job and return its Result; never raises for a job-level problem."""
    result = {
        "schema": RESULT_SCHEMA,
        "job_id": job.get("job_id"),
        "agent": "python",
        "agent_version": AGENT_VERSION,
        "status": "ok",
        "message": None,
        "started_unix": time.time(),
        "device_facts": device_facts(),
    }
    sampler = Sampler(job["telemetry"]) if job.get("telemetry") else None
    try:
        if job.get("schema") != JOB_SCHEMA:
            raise ValueError("job schema %r; this agent speaks %d" % (job.get("schema"), JOB_SCHEMA))
        runner = RUNNERS.get(job["runtime"])
        if runner is None:
            raise Unsupported("runtime %r is not known to this agent (%s)" % (job["runtime"], sorted(RUNNERS)))
        if sampler is not None:
            sampler.start()
            sampler.edge("idle_start")  # idle baseline: before the model is even loaded
            time.sleep(float(job["run"].get("idle_seconds", 1.0)))
            sampler.edge("idle_end")
        runner(job, result, sampler.edge if sampler is not None else None)
    except Unsupported as exc:
        result["status"] = "unsupported"
        result["message"] = str(exc)
    except ModelLoadError as exc:
        result["status"] = "failed"
        result["message"] = str(exc)
        result["error"] = "model_load"
    except Exception as exc:  # noqa: BLE001 - every job-level error becomes a `failed` result
        result["status"] = "failed"
        result["message"] = "%s: %s" % (type(exc).__name__, exc)
        result["traceback"] = traceback.format_exc()[-4000:]
    finally:
        if sampler is not None:
            result["telemetry"] = sampler.stop()
    result["peak_rss_kb"] = peak_rss_kb()
    result["ended_unix"] = time.time()
    return result


def main(argv: list) -> int:
    if len(argv) >= 1 and argv[0] == "temp":
        print(json.dumps(read_temperature(json.loads(sys.stdin.read() or "[]"))))
        return 0
    if len(argv) >= 1 and argv[0] == "probe":
        roots = [argv[i + 1] for i, arg in enumerate(argv[:-1]) if arg == "--root"]
        libraries = dict(arg.split("=", 1) for arg in argv[1:] if "=" in arg and arg not in roots)
        print(json.dumps(probe(libraries, roots)))
        return 0
    if len(argv) != 2 or argv[0] != "run":
        sys.stderr.write(__doc__ or "")
        return 2
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    text = sys.stdin.read() if argv[1] == "-" else open(argv[1], encoding="utf-8").read()
    result = run_job(json.loads(text))
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
