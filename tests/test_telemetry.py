"""Telemetry: readers on sysfs-layout trees, and energy end to end on the host with a known power curve."""

from __future__ import annotations

import contextlib
import json
import queue
import random
import sqlite3
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from adbd import StandinPhone
from conftest import embench, fast_run, write_inventory
from meter import command as meter_command
from powertree import RAPL_RANGE_UJ, energy, power_tree, put
from procs import agent_pids

from embench.telemetry import NO_POWER, drift_note, summarize_telemetry, throttle_flags
from embench_agent.protocol import Cooldown, Repetition, Result, SourceProbe, SourceSpec, SourceTrace, Telemetry
from embench_agent.telemetry import detect_sources
from embench_agent.telemetry.power import BatteryPower, HwmonPower, Ina3221Power
from embench_agent.telemetry.sampler import Sampler
from embench_agent.telemetry.thermal import ApexTemp
from embench_agent.telemetry.vcgencmd import parse_measure_temp, parse_pmic_adc, parse_throttled


@pytest.fixture
def board_tree(tmp_path: Path) -> Iterator[Path]:
    with power_tree(tmp_path / "root") as root:
        yield root


def _run(zoo_path: Path, tmp_path: Path, telemetry: list[dict[str, object]] | None) -> tuple[Result, int]:
    device: dict[str, object] = {"name": "host", "transport": "local"}
    if telemetry is not None:
        device["telemetry"] = telemetry
    sweep = {
        "models": ["tiny"],
        "runtimes": ["litert"],
        "run": fast_run(min_seconds=2.0, max_seconds=2.2, idle_seconds=1.0),
    }
    inv = write_inventory(tmp_path, zoo_path, sweep, [device])
    out = embench("sweep", str(inv), "--store", str(tmp_path / "s.sqlite"), "-q", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    row = sqlite3.connect(str(tmp_path / "s.sqlite")).execute("SELECT result_json, n_samples FROM results").fetchone()
    return Result.from_json(row[0]), int(row[1])


def test_energy_matches_the_known_power_curve(zoo_path: Path, tmp_path: Path, board_tree: Path) -> None:
    telemetry = [{"source": "hwmon", "root": str(board_tree)}, {"source": "thermal", "root": str(board_tree)},
                 {"source": "cpufreq", "root": str(board_tree)}]  # fmt: skip
    result, n = _run(zoo_path, tmp_path, telemetry)
    tel = result.telemetry
    assert tel is not None
    t0, t1 = tel.edges["window_start"].t, tel.edges["window_end"].t
    i0, i1 = tel.edges["idle_start"].t, tel.edges["idle_end"].t
    assert 2.0 <= t1 - t0 < 2.5 and 0.9 <= i1 - i0 < 1.5 and i1 <= t0
    s = summarize_telemetry(result, n)
    # gross energy over the device-clock window vs the exact integral: within 2%
    assert s.joules == pytest.approx(energy(t0, t1), rel=0.02)
    assert s.watts == pytest.approx(energy(t0, t1) / (t1 - t0), rel=0.02)
    assert s.idle_watts == pytest.approx(energy(i0, i1) / (i1 - i0), rel=0.03)
    exact_idle_j = energy(i0, i1) / (i1 - i0) * (t1 - t0)
    # net = gross − idle × window; its error is bounded by the two tolerances above
    tolerance = 0.02 * energy(t0, t1) + 0.03 * exact_idle_j
    exact_net = energy(t0, t1) - exact_idle_j
    assert s.net_joules == pytest.approx(exact_net, abs=tolerance)
    # per inference: net of idle when the run drew more than idle, else gross (checked against the
    # exact curve, the basis where the exact energies decide it)
    if exact_net > tolerance:
        assert s.per_inference_basis == "net of idle"
    elif exact_net < -tolerance:
        assert s.per_inference_basis == "gross: the idle baseline was above the run"
    exact = exact_net if s.per_inference_basis == "net of idle" else energy(t0, t1)
    slack = tolerance if s.per_inference_basis == "net of idle" else 0.02 * energy(t0, t1)
    assert s.joules_per_inference == pytest.approx(exact / n, abs=slack / n)
    assert s.samples_in_window >= 30 and s.coverage > 0.97  # INA2xx at 20 Hz
    assert 45.0 <= s.max_c["thermal"] <= 65.0 and s.trip_c == 85.0
    assert s.freq_min_mhz == 1800.0
    assert s.sampler_cpu_seconds is not None and 0 < s.sampler_cpu_seconds < 0.25 * (
        t1 - i0
    )  # the sampler's own cost, measured
    out = embench("report", "--store", str(tmp_path / "s.sqlite"), "--out", str(tmp_path / "r"), cwd=tmp_path)
    paths = dict(line.split(None, 1) for line in out.stdout.splitlines())
    assert Path(paths["energy"]).read_bytes()[:4] == b"\x89PNG"
    assert Path(paths["html"]).read_text().count("data:image/png;base64,") == 3
    lines = Path(paths["markdown"]).read_text().splitlines()
    header = next(x for x in lines if x.startswith("| device |")).split("|")
    row = next(x for x in lines if x.startswith("| host | tiny |")).split("|")
    cell = row[header.index(" mJ / inference ")].strip()
    assert float(cell) == pytest.approx(s.joules_per_inference * 1e3, rel=0.01, abs=1e-3)  # as computed from samples


def test_rapl_counter_with_wraparound(zoo_path: Path, tmp_path: Path) -> None:
    """The counter's range (8 J) is just above a window's energy (5.6–7.1 J). Before each run the
    counter jumps to a uniformly random value, so wherever the window falls in time the counter at its
    start is uniform on the range and the window wraps it with probability energy / range (≥ 0.7),
    independently run to run; runs repeat until one did (eight runs all missing it: p < 1e-4).
    Without the jumps the counter's phase at the window follows the machine's timing, which can
    line up run after run (it once missed six times in a row)."""
    jumps: queue.SimpleQueue[int] = queue.SimpleQueue()
    rng = random.Random()  # unseeded on purpose: the bound above needs phases independent of timing
    wrapped = 0
    with power_tree(tmp_path / "root", rapl_jumps=jumps) as board:
        for attempt in range(8):
            folder = tmp_path / f"run{attempt}"
            folder.mkdir()
            jumps.put(rng.randrange(RAPL_RANGE_UJ))
            result, n = _run(zoo_path, folder, [{"source": "rapl", "root": str(board)}])
            assert result.telemetry is not None
            edges = result.telemetry.edges
            t0, t1 = edges["window_start"].t, edges["window_end"].t
            start, end = edges["window_start"].counters["rapl"], edges["window_end"].counters["rapl"]
            assert start is not None and end is not None
            assert energy(t0, t1) * 1e6 < RAPL_RANGE_UJ
            s = summarize_telemetry(result, n)
            # read at the two edges, wrapped or not (end < start), the delta is the window's energy: within 3%
            assert s.joules == pytest.approx(energy(t0, t1), rel=0.03)
            assert s.power_source == "rapl:package-0" and s.per_inference_basis == "gross"
            if end < start:
                wrapped += 1
                break
    assert wrapped, "the counter never wrapped inside a window: the wrap path was not exercised"


def test_a_counter_going_backwards_with_no_known_range(zoo_path: Path, tmp_path: Path) -> None:
    """A RAPL counter whose range file is missing, read lower at the window's end than at its start
    (reset, or wrapped at a range nobody knows): no energy from it, said in the report, which still
    renders."""
    rapl = tmp_path / "root/sys/class/powercap/intel-rapl:0"
    put(rapl / "name", "package-0")
    put(rapl / "energy_uj", 10**12)
    stop = threading.Event()

    def count_down() -> None:
        value = 10**12
        while not stop.wait(0.01):
            value -= 30_000
            put(rapl / "energy_uj", value)

    feeder = threading.Thread(target=count_down, daemon=True)
    feeder.start()
    try:
        result, n = _run(zoo_path, tmp_path, [{"source": "rapl", "root": str(tmp_path / "root")}])
    finally:
        stop.set()
        feeder.join()
    s = summarize_telemetry(result, n)
    assert not s.has_energy and "counter went backwards" in s.energy_note and "its range is unknown" in s.energy_note
    out = embench("report", "--store", str(tmp_path / "s.sqlite"), "--out", str(tmp_path / "r"), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    md = Path(dict(line.split(None, 1) for line in out.stdout.splitlines())["markdown"]).read_text()
    row = next(line for line in md.splitlines() if line.startswith("| host | tiny |"))
    assert "rapl:package-0: counter went backwards" in row


def test_no_telemetry_says_no_power_source(zoo_path: Path, tmp_path: Path) -> None:
    result, _ = _run(zoo_path, tmp_path, None)
    assert result.telemetry is None
    s = summarize_telemetry(result, 10)
    assert s.energy_note == NO_POWER and not s.has_energy
    out = embench("report", "--store", str(tmp_path / "s.sqlite"), "--out", str(tmp_path / "r"), cwd=tmp_path)
    md = Path(dict(line.split(None, 1) for line in out.stdout.splitlines())["markdown"]).read_text()
    assert "| no power source |" not in md and "mJ / inference" not in md  # not a column of one word in every row
    assert "Energy: no power source on any device of this run" in md


# ---------------------------------------------------------------------------- readers on real layouts


def test_battery_units_and_sign(tmp_path: Path) -> None:
    bat = tmp_path / "sys/class/power_supply/battery"
    put(bat / "voltage_now", 3_900_000)  # µV
    put(bat / "status", "Discharging")
    put(bat / "current_now", -450_000)  # µA, negative while discharging (Pixel-style sign)
    reader = BatteryPower(str(tmp_path), {})
    assert reader.read() == pytest.approx(0.45 * 3.9)
    put(bat / "current_now", 450)  # mA, positive (vendors differ)
    assert reader.read() == pytest.approx(0.45 * 3.9)
    forced = BatteryPower(str(tmp_path), {"current_unit": "uA"})
    assert forced.read() == pytest.approx(0.00045 * 3.9)  # the per-device override wins
    assert reader.facts() == {"status": "Discharging"}


def test_jetson_ina3221_uses_vdd_in_only(tmp_path: Path) -> None:
    # JetPack 5/6 layout: /sys/bus/i2c/drivers/ina3221/1-0040/hwmon/hwmonN/in{1,2,3,7}_label
    hw = tmp_path / "sys/bus/i2c/drivers/ina3221/1-0040/hwmon/hwmon3"
    for n, label, mv, ma in ((1, "VDD_IN", 5000, 1200), (2, "VDD_CPU_GPU_CV", 5000, 400), (3, "VDD_SOC", 5000, 300)):
        put(hw / f"in{n}_label", label)
        put(hw / f"in{n}_input", mv)
        put(hw / f"curr{n}_input", ma)
    put(hw / "in7_label", "sum of shunt voltages")
    reader = Ina3221Power(str(tmp_path), {})
    assert reader.read() == pytest.approx(6.0)  # VDD_IN alone: 5 V × 1.2 A, sub-rails not added
    cpu = Ina3221Power(str(tmp_path), {"rail": "VDD_CPU_GPU_CV"})
    assert cpu.read() == pytest.approx(2.0)
    with pytest.raises(LookupError):
        Ina3221Power(str(tmp_path), {"rail": "NC"})


# JetPack 4 (L4T 32) layout of NVIDIA's own ina3221x IIO driver: rail names per channel and power in mW.
# Rail names and I2C addresses per board from energymon's JetsonPowerRails.md (L4T 32.6.1 device trees)
# and its jetson/ina3221x.c reader (github.com/energymon/energymon); the Nano's 6-0040 bus address
# from github.com/Pablouc/jetson-gpu-benchmarking Monitoring/gpu_power.sh.
JP4_BOARDS = {
    "nano": {"6-0040/iio:device0": ("POM_5V_IN", "POM_5V_GPU", "POM_5V_CPU")},
    "xavier-nx": {"7-0040/iio:device0": ("VDD_IN", "VDD_CPU_GPU_CV", "VDD_SOC")},
    "tx2": {"0-0040/iio:device0": ("VDD_SYS_GPU", "VDD_SYS_SOC", "VDD_4V0_WIFI"),
            "0-0041/iio:device1": ("VDD_IN", "VDD_SYS_CPU", "VDD_SYS_DDR")},
    "agx-xavier": {"1-0040/iio:device0": ("GPU", "CPU", "SOC"), "1-0041/iio:device1": ("CV", "VDDRQ", "SYS5V")},
}  # fmt: skip


def jp4_tree(root: Path, board: str) -> dict[str, float]:
    """Lay out a JetPack 4 board's INA3221 channels; each rail draws a different known power (W)."""
    watts = {}
    for i, (device, rails) in enumerate(JP4_BOARDS[board].items()):
        folder = root / "sys/bus/i2c/drivers/ina3221x" / device
        for ch, rail in enumerate(rails):
            w = watts[rail] = 1.0 + i * 3 + ch + (4.0 if rail in ("VDD_IN", "POM_5V_IN") else 0.0)
            put(folder / f"rail_name_{ch}", rail)
            put(folder / f"in_power{ch}_input", int(w * 1000))  # mW
            put(folder / f"in_voltage{ch}_input", 5000)  # mV
            put(folder / f"in_current{ch}_input", int(w * 200))  # mA at 5 V
            put(folder / f"polling_delay_{ch}", "0 ms")
    return watts


@pytest.mark.parametrize("board,total", [("nano", "POM_5V_IN"), ("xavier-nx", "VDD_IN"), ("tx2", "VDD_IN")])
def test_jetson_jetpack4_iio_reads_the_total_rail_alone(tmp_path: Path, board: str, total: str) -> None:
    watts = jp4_tree(tmp_path, board)
    reader = Ina3221Power(str(tmp_path), {})
    assert reader.label == total and reader.read() == pytest.approx(watts[total])  # sub-rails not added
    # in_power missing (some L4T releases): voltage × current of the same channel
    for power_file in tmp_path.glob("sys/bus/i2c/drivers/ina3221x/*/iio:device*/in_power*_input"):
        power_file.unlink()
    assert reader.read() == pytest.approx(watts[total])


def test_jetson_without_a_total_rail_needs_its_parallel_rails_named(tmp_path: Path) -> None:
    watts = jp4_tree(tmp_path, "agx-xavier")
    with pytest.raises(
        LookupError, match=r"no total rail \(VDD_IN or POM_5V_IN\) among CPU, CV, GPU, SOC, SYS5V, VDDRQ"
    ):
        Ina3221Power(str(tmp_path), {})
    rails = "GPU,CPU,SOC,CV,VDDRQ,SYS5V"
    reader = Ina3221Power(str(tmp_path), {"rails": rails})
    assert reader.read() == pytest.approx(sum(watts.values())) and reader.label == rails.replace(",", "+")
    with pytest.raises(LookupError, match="no INA3221 rail VDD_GPU"):
        Ina3221Power(str(tmp_path), {"rails": "VDD_GPU,CPU"})


def test_jetson_total_rail_is_never_summed_with_sub_rails(tmp_path: Path) -> None:
    jp4_tree(tmp_path, "xavier-nx")
    with pytest.raises(LookupError, match="VDD_IN is the board's total: never add sub-rails to it"):
        Ina3221Power(str(tmp_path), {"rails": "VDD_IN,VDD_SOC"})


def test_telemetry_sources_are_detected(tmp_path: Path) -> None:
    jp4_tree(tmp_path / "jetson", "xavier-nx")
    with power_tree(tmp_path / "board") as board:
        found = detect_sources(str(board))
    assert {name for name, info in found.items() if info.found} == {"hwmon", "rapl", "thermal", "cpufreq"}
    assert found["hwmon"].label == "ina226" and "no INA3221 rails" in str(found["ina3221"].why)
    jetson = detect_sources(str(tmp_path / "jetson"))
    assert jetson["ina3221"] == SourceProbe(found=True, kind="power", label="VDD_IN")
    laptop = tmp_path / "laptop/sys/class/power_supply"
    put(laptop / "AC/type", "Mains")
    put(laptop / "BAT0/type", "Battery")
    put(laptop / "BAT0/current_now", 1_200_000)
    put(laptop / "BAT0/voltage_now", 11_400_000)
    battery = detect_sources(str(tmp_path / "laptop"))["battery"]
    assert battery == SourceProbe(found=True, kind="power", label="BAT0", supply="BAT0")


def test_devices_lists_the_sources_it_finds_and_the_yaml_to_add(zoo_path: Path, tmp_path: Path) -> None:
    with power_tree(tmp_path / "board") as board:
        empty = tmp_path / "empty"
        empty.mkdir()
        device = {"name": "host", "telemetry": [
            {"source": "thermal", "root": str(board)}, {"source": "rapl", "root": str(empty)},
            {"source": "external", "options": {"command": meter_command("curve")}},
            {"source": "external", "options": {"command": "./meters/joulescope.sh"}}]}  # fmt: skip
        inv = write_inventory(tmp_path, zoo_path, {"models": ["tiny"]}, [device])
        out = embench("devices", str(inv), cwd=tmp_path)
        as_json = json.loads(embench("devices", str(inv), "--json", cwd=tmp_path).stdout)
    assert out.returncode == 0, out.stderr
    lines = [line.strip() for line in out.stdout.splitlines()]
    found = next(line for line in lines if line.startswith("telemetry found:"))
    assert f"hwmon (ina226) under {board}" in found and f"thermal (cpu-thermal) under {board}" in found
    # configured where there is none: said, with the reader's reason
    assert f"telemetry NOT readable: rapl: no readable {empty}/sys/class/powercap/intel-rapl:0/energy_uj" in lines
    add = next(line for line in lines if line.startswith("to use them, add to this device:"))
    assert f"{{source: hwmon, root: {board}}}" in add and f"{{source: thermal, root: {board}}}" not in add
    cpufreq = {"found": True, "kind": "frequency", "label": "2 cpus", "supply": None, "why": None}
    assert as_json["telemetry"][str(board)]["cpufreq"] == cpufreq
    assert "telemetry on the host: external meter 'meter.py'" in lines
    assert ("telemetry on the host: external meter 'joulescope.sh': `./meters/joulescope.sh` is not an executable"
            " program on this host") in lines  # fmt: skip


def test_hwmon_ina_without_power_input_and_apex(tmp_path: Path) -> None:
    hw = tmp_path / "sys/class/hwmon/hwmon0"
    put(hw / "name", "ina219")
    put(hw / "in1_input", 5100)  # mV
    put(hw / "curr1_input", 800)  # mA
    assert HwmonPower(str(tmp_path), {}).read() == pytest.approx(4.08)
    put(tmp_path / "sys/class/apex/apex_0/temp", 52300)
    assert ApexTemp(str(tmp_path), {}).read() == pytest.approx(52.3)
    with pytest.raises(LookupError, match="no INA2xx"):
        HwmonPower(str(tmp_path / "empty"), {})


def test_missing_source_is_reported_not_fatal(tmp_path: Path) -> None:
    sampler = Sampler([SourceSpec("rapl", str(tmp_path)), SourceSpec("nope")])
    out = sampler.stop()
    assert out.sources == () and len(out.errors) == 2 and "energy_uj" in out.errors[0]


# ---------------------------------------------------------------------------- throttling


def _src(kind: str, source: str, values: list[float], start: dict[str, object], end: dict[str, object]) -> Result:
    trace = SourceTrace(source=source, label=source, kind=kind, unit="", facts_start=start, facts=end,
                        samples=tuple((i * 0.1, v) for i, v in enumerate(values)))  # fmt: skip
    return Result(job_id="j", status="ok", telemetry=Telemetry(sources=(trace,)))


NOTHING = Result(job_id="j", status="ok")


def test_throttle_flags_each_sign() -> None:
    hot = _src("temperature", "thermal", [60.0, 86.5], {"trip_c": 85.0}, {"trip_c": 85.0})
    assert throttle_flags(hot) == ["thermal reached its 85 °C trip point (86.5 °C)"]
    cool = _src("temperature", "thermal", [50.0], {"cooling_states": {"cooling_device0": 0}},
                {"cooling_states": {"cooling_device0": 2}})  # fmt: skip
    assert throttle_flags(cool) == ["cooling engaged: cooling_device0"]
    capped = _src("frequency", "cpufreq", [1800.0], {"max_mhz": [2400.0, 2400.0]}, {"max_mhz": [2400.0, 1500.0]})
    assert throttle_flags(capped) == ["max CPU frequency lowered during the run on cpu 1"]
    assert throttle_flags(NOTHING) == []  # no telemetry: never "throttled", whatever the latency did


def test_drift_is_a_significant_slowdown_only() -> None:
    """Issue 12: a host with no sensor got 16 of 42 runs called throttled, 10 because latency went *down*.
    Drift is now its own note: only a rise, only over 10%, only when a rank test says it is real."""
    rng = np.random.default_rng(3)
    steady = [1_000_000 + (i % 7) * 3000 for i in range(200)]
    slowing = steady[:100] + [int(v * 1.2) for v in steady[100:]]
    assert drift_note(NOTHING, slowing) == "latency rose +20% from the first to the last tenth of the window"
    assert drift_note(NOTHING, steady) == "" and drift_note(NOTHING, [1, 2, 3]) == ""
    assert drift_note(NOTHING, [int(v / 1.2) for v in slowing[::-1]]) == ""  # faster: warm-up, not a problem
    # a few slow outliers in the last tenth: over 10% in the median of 5? no: not significant either way
    noisy = list(rng.lognormal(np.log(1e6), 0.3, 60).astype(int))
    assert drift_note(NOTHING, noisy) == ""
    reps = Result(job_id="j", status="ok", repetitions=(Repetition(0, 200), Repetition(1, 200)))
    assert drift_note(reps, steady + slowing) == (
        "latency rose +20% from the first to the last tenth of the window in 1 of 2 repetitions"
    )


def test_hot_run_is_flagged_in_every_table(zoo_path: Path, tmp_path: Path, board_tree: Path) -> None:
    put(board_tree / "sys/class/thermal/thermal_zone0/trip_point_0_temp", 50000)  # the curve peaks at 65 °C
    result, _ = _run(zoo_path, tmp_path, [{"source": "thermal", "root": str(board_tree)}])
    assert result.telemetry is not None and result.telemetry.sources[0].source == "thermal"
    out = embench("report", "--store", str(tmp_path / "s.sqlite"), "--out", str(tmp_path / "r"), cwd=tmp_path)
    md = Path(dict(line.split(None, 1) for line in out.stdout.splitlines())["markdown"]).read_text()
    results, compat = md.split("## Compatibility")
    row = next(line for line in results.splitlines() if line.startswith("| host | tiny |"))
    assert "| yes |" in row and "THROTTLED: thermal reached its 50 °C trip point" in row
    assert "(throttled)" in compat


# ---------------------------------------------------------------------------- cooldown


@contextlib.contextmanager
def heater(root: Path, hold_s: float) -> Iterator[Path]:
    """A thermal zone at 41 °C that reads 70 °C while one of this test's agents runs a job (on the host
    or on the stand-in phone: both are this process's descendants) and for `hold_s` after."""
    zone = root / "sys/class/thermal/thermal_zone0"
    put(zone / "type", "cpu-thermal")
    put(zone / "temp", 41000)
    stop = threading.Event()

    def heat() -> None:
        hot_until = 0.0
        while not stop.is_set():
            if agent_pids():
                hot_until = time.monotonic() + hold_s
            put(zone / "temp", 70000 if time.monotonic() < hot_until else 41000)
            stop.wait(0.05)

    thread = threading.Thread(target=heat, daemon=True)
    thread.start()
    try:
        yield root
    finally:
        stop.set()
        thread.join()


def _cooldowns(tmp_path: Path, zoo_path: Path, device: dict[str, Any], **run: Any) -> list[Cooldown | None]:
    sweep = {"models": ["tiny"], "runtimes": ["litert"], "threads": [1, 2],
             "run": fast_run(min_seconds=0.5, idle_seconds=0.0, cooldown_margin_c=2.0, **run)}  # fmt: skip
    inv = write_inventory(tmp_path, zoo_path, sweep, [device])
    out = embench("sweep", str(inv), "--store", str(tmp_path / "s.sqlite"), "-q", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    rows = sqlite3.connect(str(tmp_path / "s.sqlite")).execute("SELECT result_json FROM results ORDER BY started_unix")
    return [Result.from_json(r[0]).cooldown for r in rows]


@pytest.mark.parametrize("where", ["host", "phone"])
def test_cooldown_waits_for_the_temperature(zoo_path: Path, tmp_path: Path, where: str) -> None:
    """The device heats while a job runs and for 2 s after; the next job waits until it is back (on the
    host, and on a phone over ADB)."""
    with contextlib.ExitStack() as stack:
        if where == "phone":
            phone = stack.enter_context(StandinPhone(tmp_path / "phone"))
            root = stack.enter_context(heater(phone.root, 2.0))
            device = {"name": "pixel", "transport": "adb", "python": sys.executable,
                      "workdir": str(phone.root / "data/local/tmp/embench"),
                      "adb": {"serial": phone.serial, "key_file": str(tmp_path / "adbkey"), "agent": "python"}}  # fmt: skip
        else:
            root = stack.enter_context(heater(tmp_path / "root", 2.0))
            device = {"name": "host"}
        device["telemetry"] = [{"source": "thermal", "root": str(root)}]
        first, cool = _cooldowns(tmp_path, zoo_path, device, cooldown_max_seconds=20)
    assert first is None
    assert cool is not None and cool.gated_on == "temperature" and cool.target_c == pytest.approx(43.0)
    assert cool.start_c == pytest.approx(70.0) and cool.end_c is not None and cool.end_c <= 43.0
    assert 1.0 <= cool.waited_s and not cool.capped  # ended by the temperature, not by cooldown_max_seconds


@pytest.mark.slow
def test_cooldown_is_capped_and_honours_an_absolute_target(zoo_path: Path, tmp_path: Path) -> None:
    with heater(tmp_path / "root", 600.0) as root:  # hot from the first job on, for good
        device = {"name": "host", "telemetry": [{"source": "thermal", "root": str(root)}]}
        (tmp_path / "capped").mkdir()
        _, capped = _cooldowns(tmp_path / "capped", zoo_path, device, cooldown_max_seconds=1.5)
        (tmp_path / "below").mkdir()
        _, below = _cooldowns(tmp_path / "below", zoo_path, device, cooldown_max_seconds=20, cooldown_below_c=75.0)
    # still 70 °C after cooldown_max_seconds: capped, and the next job started warm, saying so
    assert capped is not None and capped.capped and capped.waited_s >= 1.5 and capped.end_c == pytest.approx(70.0)
    # cooldown_below_c above the idle + margin target: 70 °C is cool enough, nobody waits
    assert below is not None and below.target_c == pytest.approx(75.0) and not below.capped
    assert below.start_c == pytest.approx(70.0) and below.end_c == pytest.approx(70.0)


def test_cooldown_falls_back_to_a_fixed_pause(zoo_path: Path, tmp_path: Path) -> None:
    sweep = {"models": ["tiny"], "runtimes": ["litert"], "threads": [1, 2], "run": fast_run(cooldown_seconds=0.4)}
    inv = write_inventory(tmp_path, zoo_path, sweep)
    assert embench("sweep", str(inv), "--store", str(tmp_path / "s.sqlite"), "-q", cwd=tmp_path).returncode == 0
    rows = [Result.from_json(r[0]) for r in sqlite3.connect(str(tmp_path / "s.sqlite")).execute(
        "SELECT result_json FROM results ORDER BY started_unix")]  # fmt: skip
    cool = rows[1].cooldown
    assert cool is not None and cool.gated_on == "fixed" and cool.waited_s >= 0.4


# ---------------------------------------------------------------------------- Raspberry Pi (vcgencmd)

PI = Path(__file__).parent / "fixtures" / "pi"  # captured outputs; README.md there says where each came from


def test_pmic_read_adc_real_pi5_output() -> None:
    rails = parse_pmic_adc((PI / "pmic_read_adc_pi5.txt").read_text())
    assert len(rails) == 12  # every rail with both a voltage and a current
    assert rails["VDD_CORE"] == (0.90659250, 1.42880000)
    assert "EXT5V" not in rails and "BATT" not in rails  # voltage only: there is no total input rail
    # Σ V×A by hand over the 12 pairs (VDD_CORE 1.2953 W, 0V8_SW 0.2527 W, 1V1_SYS 0.2671 W, ...)
    assert sum(v * a for v, a in rails.values()) == pytest.approx(2.94798, abs=1e-5)


def test_get_throttled_and_measure_temp() -> None:
    bits = parse_throttled((PI / "get_throttled.txt").read_text())
    assert bits == 0x50005  # under-voltage now + throttled now + both since boot
    assert parse_throttled("throttled=0x0") == 0
    assert parse_measure_temp("temp=48.8'C") == 48.8
    assert bits is not None
    flags = throttle_flags(_src("throttle", "pi_throttled", [0.0, bits], {}, {}))
    assert flags == ["throttle bits set: 0x50005"]


def test_pi_sources_end_to_end_with_a_stand_in_vcgencmd(zoo_path: Path, tmp_path: Path) -> None:
    """vcgencmd exists only on a Pi; this stand-in answers each subcommand with the captured outputs."""
    stand_in = tmp_path / "vcgencmd"
    script = (
        "#!/bin/sh\n"
        'case "$1" in\n'
        f'  pmic_read_adc) cat "{PI / "pmic_read_adc_pi5.txt"}";;\n'
        f'  get_throttled) cat "{PI / "get_throttled.txt"}";;\n'
        '  measure_temp) echo "temp=48.8\'C";;\n'
        "  *) exit 1;;\n"
        "esac\n"
    )
    stand_in.write_text(script)
    stand_in.chmod(0o755)
    opts = {"vcgencmd": str(stand_in)}
    got = _run(zoo_path, tmp_path, [{"source": "pi_pmic", "options": opts}, {"source": "pi_throttled", "options": opts},
                                    {"source": "pi_temp", "options": opts}])  # fmt: skip
    result, n = got
    assert result.telemetry is not None and not result.telemetry.errors
    s = summarize_telemetry(result, n)
    assert s.power_source == "pi_pmic:pi5-pmic" and s.watts == pytest.approx(2.94798, rel=1e-4)
    assert s.max_c["pi_temp"] == 48.8
    assert "throttle bits set: 0x50005" in throttle_flags(result)
