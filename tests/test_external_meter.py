"""An external power meter on the host: its line protocol, the host↔device clock maths, and a
sweep on the host whose meter follows the known power curve (SSH and ADB: test_ssh, test_adb)."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from conftest import embench, fast_run, write_inventory
from meter import command as meter_command
from powertree import energy, power_tree
from procs import wait_for

from embench.telemetry import integrate, summarize_telemetry
from embench.telemetry.clock import ClockOffset, best_offset, edge_shift, parse_unix_time, to_device_clock
from embench.telemetry.external import ExternalMeter, MeterError, parse_sample
from embench_agent.protocol import Edge, Result, SourceTrace, Telemetry

METER = Path(__file__).resolve().parent / "meter.py"


# ---------------------------------------------------------------------------- maths, by hand


def test_the_shortest_round_trip_gives_the_offset() -> None:
    # host before, device, host after: the second probe's round trip (3 ms) is the shortest
    probes = [(100.0, 1100.004, 100.010), (200.0, 1200.0015, 200.003), (300.0, 1300.02, 300.050)]
    got = best_offset(probes)
    assert got.offset_s == pytest.approx(1000.0) and got.uncertainty_s == pytest.approx(0.0015)
    assert got.probes == 3
    with pytest.raises(ValueError):
        best_offset([])


def test_samples_move_from_host_wall_time_onto_the_device_clock() -> None:
    # device wall − sampler clock, over the edges that carry both: (1005 − 5 + 1007.002 − 7) / 2
    edges = {"a": Edge(5.0, 1005.0), "b": Edge(7.0, 1007.002), "c": Edge(9.0)}
    shift = edge_shift(edges)
    assert shift == pytest.approx(1000.001)
    assert edge_shift({"a": Edge(5.0)}) is None
    moved = to_device_clock([(10.0, 2.0), (10.5, 3.0)], ClockOffset(990.0, 0.001, 5), 1000.001)
    assert moved == [pytest.approx((-0.001, 2.0)), pytest.approx((0.499, 3.0))]  # 10 + 990 − 1000.001


def test_date_output_must_have_a_fraction() -> None:
    assert parse_unix_time("1795389953.813585623\n") == pytest.approx(1795389953.813585623)
    for bad in ("1795389953.%N", "1795389953", "", "Sun Nov 22"):
        with pytest.raises(ValueError):
            parse_unix_time(bad)


def test_meter_lines() -> None:
    assert parse_sample("1.5\n", 42.0) == (42.0, 1.5)  # bare watts: stamped on arrival
    assert parse_sample("100.25,2.5", 42.0) == (100.25, 2.5)
    assert parse_sample("100.25 2.5", 42.0) == (100.25, 2.5)
    assert parse_sample("time_s,power_w", 42.0) is None
    assert parse_sample("1 2 3", 42.0) is None


def test_a_coarse_clock_alignment_is_not_used() -> None:
    samples = tuple((t / 10, 2.0) for t in range(0, 41))
    edges = {"idle_start": Edge(0.0), "idle_end": Edge(1.0), "window_start": Edge(2.0), "window_end": Edge(4.0)}

    def result(uncertainty: float) -> Result:
        source = SourceTrace(source="external", label="m", kind="power", unit="W", samples=samples,
                             facts={"clock_uncertainty_s": uncertainty})  # fmt: skip
        return Result(job_id="j", status="ok", telemetry=Telemetry(edges=edges, sources=(source,)))

    assert summarize_telemetry(result(0.030), 10).joules == pytest.approx(4.0)  # ±30 ms on a 2 s window: 1.5%
    s = summarize_telemetry(result(0.050), 10)
    assert not s.has_energy and s.energy_note == "external clock alignment ±50 ms is too coarse for a 2.00 s window"


# ---------------------------------------------------------------------------- the meter process


def test_command_meter_samples_skips_and_failures() -> None:
    meter = ExternalMeter(
        "host", {"command": meter_command("curve", "--header", "--rate", "100", "--exit-after", "0.6")}
    )
    assert meter.label == "meter.py"
    t0 = time.time()
    meter.start()
    wait_for("the meter to exit on its own", lambda: meter.ended, timeout=60)
    got = meter.take(t0, time.time())
    meter.stop()
    # 0.6 s at 100 Hz: at most 61 lines, and on a loaded machine fewer, never none
    assert 1 <= len(got) <= 61 and all(2.0 <= w <= 4.0 for _, w in got)
    assert meter.skipped_lines == 1  # the CSV header
    assert meter.drain_errors() == ["`" + meter.command + "` exited with code 4: meter: lost the USB connection"]
    assert meter.drain_errors() == []  # said once


def _collect(meter: ExternalMeter, since: float, count: int) -> list[tuple[float, float]]:
    """Samples taken from the meter until it has given `count` (start-up is not timed: it is waited for)."""
    seen: dict[float, float] = {}

    def enough() -> bool:
        seen.update(meter.take(since, time.time()))
        return len(seen) >= count

    wait_for(f"{count} samples from the meter", enough, timeout=60)
    return sorted(seen.items())


def test_bare_watts_are_stamped_on_arrival() -> None:
    meter = ExternalMeter("host", {"command": meter_command("curve", "--bare", "--rate", "50"), "label": "usb-meter"})
    t0 = time.time()
    meter.start()
    got = _collect(meter, 0.0, 10)  # from time 0: a sample stamped before t0 would be taken too
    t1 = time.time()
    meter.stop()
    assert all(t0 <= t <= t1 for t, _ in got) and meter.label == "usb-meter"  # each stamped when it arrived
    assert meter.drain_errors() == []  # stopped by us: not an error


def test_entry_point_meter(tmp_path: Path) -> None:
    meter = ExternalMeter("host", {"entry_point": "meter:samples", "cwd": str(METER.parent), "rate_hz": "100"})
    t0 = time.time()
    meter.start()
    got = _collect(meter, t0, 20)
    started = time.monotonic()
    meter.stop()
    # stop() waits up to 5 s for the reading thread: ending sooner means the stop event ended the generator
    assert time.monotonic() - started < 5.0 and meter.ended
    assert len(got) >= 20 and meter.label == "meter:samples"
    assert not [t for t in threading.enumerate() if t.name == "embench-meter-host"]


def test_meters_that_cannot_start_say_which_and_why(tmp_path: Path) -> None:
    with pytest.raises(MeterError, match=r"^external meter 'no-such-meter': cannot start `no-such-meter --port 1`"):
        ExternalMeter("pi", {"command": "no-such-meter --port 1"}).start()
    with pytest.raises(MeterError, match=r"entry point 'nomodule:read': cannot load it: ModuleNotFoundError"):
        ExternalMeter("pi", {"entry_point": "nomodule:read", "cwd": str(tmp_path)}).start()
    with pytest.raises(MeterError, match=r"'meter:nothing': cannot load it: AttributeError"):
        ExternalMeter("pi", {"entry_point": "meter:nothing", "cwd": str(METER.parent)}).start()


# ---------------------------------------------------------------------------- a sweep on the host


def _sweep(tmp_path: Path, zoo_path: Path, telemetry: list[dict[str, object]]) -> tuple[int, str, Result, int]:
    """Sweep one tiny model on the host; the exit code, stderr, and its result (with `n`: inferences)."""
    sweep = {"models": ["tiny"], "runtimes": ["litert"], "run": fast_run(min_seconds=2.0, max_seconds=2.2)}
    inv = write_inventory(tmp_path, zoo_path, sweep, [{"name": "host", "telemetry": telemetry}])
    out = embench("sweep", str(inv), "--store", str(tmp_path / "s.sqlite"), "-q", cwd=tmp_path)
    row = sqlite3.connect(str(tmp_path / "s.sqlite")).execute("SELECT result_json, n_samples FROM results").fetchone()
    return out.returncode, out.stderr, Result.from_json(row[0]), int(row[1])


def test_sweep_with_an_external_meter_beside_the_board_rail(zoo_path: Path, tmp_path: Path) -> None:
    with power_tree(tmp_path / "root") as root:
        telemetry = [{"source": "hwmon", "root": str(root)},
                     {"source": "external", "options": {"command": meter_command("curve", "--header")}}]  # fmt: skip
        code, stderr, result, n = _sweep(tmp_path, zoo_path, telemetry)
    assert code == 0, stderr
    tel = result.telemetry
    assert tel is not None
    external, hwmon = tel.sources
    assert external.source == "external" and hwmon.source == "hwmon"  # the meter at the supply comes first
    t0, t1 = tel.edges["window_start"].t, tel.edges["window_end"].t
    i0, i1 = tel.edges["idle_start"].t, tel.edges["idle_end"].t
    facts = external.facts
    # one clock on both sides: the true offset is 0, which a probe brackets within its uncertainty
    assert abs(facts["clock_offset_s"]) <= facts["clock_uncertainty_s"] + 1e-6 and facts["skipped_lines"] == 1
    s = summarize_telemetry(result, n)
    assert s.power_source == "external:meter.py"
    # stamped on the host's wall clock, moved onto the agent's monotonic clock: the known curve within 2%
    assert s.joules == pytest.approx(energy(t0, t1), rel=0.02)
    assert s.idle_watts == pytest.approx(energy(i0, i1) / (i1 - i0), rel=0.03)
    assert s.samples_in_window >= 80 and s.coverage > 0.97  # 50 Hz
    rail = integrate(list(hwmon.samples), t0, t1)
    assert rail.joules == pytest.approx(s.joules, rel=0.03)  # and the board's own rail agrees
    assert not tel.errors


def test_a_meter_that_cannot_start_is_a_warning_and_the_jobs_run(zoo_path: Path, tmp_path: Path) -> None:
    code, stderr, result, n = _sweep(
        tmp_path, zoo_path, [{"source": "external", "options": {"command": "no-such-meter"}}]
    )
    assert code == 0, stderr
    assert (
        "  device host: warning: external meter 'no-such-meter': cannot start `no-such-meter`: No such file" in stderr
    )
    assert result.status in ("ok", "fallback")
    assert summarize_telemetry(result, n).energy_note == "no power source"


def test_a_meter_that_dies_mid_sweep_is_recorded(zoo_path: Path, tmp_path: Path) -> None:
    command = meter_command("curve", "--exit-after", "0.5")
    code, stderr, result, n = _sweep(tmp_path, zoo_path, [{"source": "external", "options": {"command": command}}])
    assert code == 0, stderr
    assert result.telemetry is not None
    errors = result.telemetry.errors
    assert errors == (f"external meter.py: `{command}` exited with code 4: meter: lost the USB connection",)
    s = summarize_telemetry(result, n)
    assert not s.has_energy and s.energy_note.startswith("external power samples too sparse")


def test_a_device_clock_that_cannot_be_aligned(tmp_path: Path, zoo_path: Path) -> None:
    """A device whose `date` has no %N (busybox builds without it): the meter's samples cannot be put on
    its clock, which the result says; the sweep and the other figures go on."""
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "date").write_text('#!/bin/sh\necho "1700000000.%N"\n')
    (fake / "date").chmod(0o755)
    telemetry = [{"source": "external", "options": {"command": meter_command("curve")}}]
    sweep = {"models": ["tiny"], "runtimes": ["litert"], "run": fast_run(min_seconds=0.5)}
    inv = write_inventory(tmp_path, zoo_path, sweep, [{"name": "host", "telemetry": telemetry}])
    out = embench("sweep", str(inv), "--store", str(tmp_path / "s.sqlite"), "-q", cwd=tmp_path,
                  env={"PATH": f"{fake}:{os.environ['PATH']}"})  # fmt: skip
    assert out.returncode == 0, out.stderr
    (row,) = sqlite3.connect(str(tmp_path / "s.sqlite")).execute("SELECT result_json FROM results")
    result = Result.from_json(row[0])
    assert result.status in ("ok", "fallback") and result.telemetry is not None
    assert result.telemetry.errors == ("external meter.py: cannot align the device's clock: `date +%s.%N` printed "
                                       "'1700000000.%N', not seconds with a fraction",)  # fmt: skip
    assert not summarize_telemetry(result, 10).has_energy


def test_an_entry_point_that_raises_mid_run(tmp_path: Path, zoo_path: Path) -> None:
    options = {"entry_point": "meter:failing", "cwd": str(METER.parent), "after_s": "0.5"}
    code, stderr, result, _ = _sweep(tmp_path, zoo_path, [{"source": "external", "options": options}])
    assert code == 0, stderr  # a meter's failure is the meter's, not the job's
    assert result.status in ("ok", "fallback") and result.telemetry is not None
    assert (
        "external meter:failing: meter:failing raised RuntimeError: meter: USB read failed" in result.telemetry.errors
    )
