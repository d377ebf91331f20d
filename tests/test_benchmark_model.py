"""The benchmark_model agent: its parser on real outputs, its command lines, its battery samples,
and the whole phone path through the stand-in phone."""

from __future__ import annotations

import os
import sqlite3
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from adbd import StandinPhone
from conftest import embench, markdown_row, write_inventory
from meter import command as meter_command
from procs import alive, cmdline, descendants

from embench import fidelity
from embench.agents.benchmark_model import command_line, profiling_command_line, to_result
from embench.agents.bm_parse import clean_lines, parse_output, status_of
from embench.agents.phone import parse_getprop
from embench.telemetry import summarize_telemetry
from embench.zoo import Zoo
from embench_agent.protocol import Aggregate, DelegateSpec, Delegation, Job, ModelRef, Result, RunSpec, SourceSpec
from embench_agent.telemetry.units import battery_watts, current_unit

FIXTURES = Path(__file__).parent / "fixtures" / "benchmark_model"


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text()


# -- the parser, on real outputs ------------------------------------------------------------------


def test_cpu_run_on_a_phone() -> None:
    parsed = parse_output(fixture("android_cpu_gr802.txt"), "cpu")
    assert parsed.timed == Aggregate(
        **{
            "count": 1000,
            "first": 1040,
            "curr": 1018,
            "min": 1012,
            "max": 1190,
            "avg": 1039.66,
            "std": 22,
        }
    )
    assert parsed.warmup is not None and parsed.warmup.count == 478
    assert parsed.init_ms == pytest.approx(17.851)
    assert parsed.timings["first inference"] == 2104
    assert status_of(parsed, "cpu") == ("ok", None)


def test_gpu_fully_delegated() -> None:
    parsed = parse_output(fixture("android_gpu_full_tf43541.txt"), "gpu")
    assert parsed.delegation.actual == "full"
    assert parsed.timed is not None and parsed.timed.avg == 119375 and parsed.timed.count == 50
    assert parsed.init_ms == pytest.approx(870.557)
    assert status_of(parsed, "gpu") == ("ok", None)


def test_partial_delegation_is_fallback() -> None:
    nnapi = parse_output(fixture("android_nnapi_partial_notes.txt"), "nnapi")
    assert nnapi.delegation == Delegation(requested="nnapi", actual="partial", delegate_kernels=11)
    # No count= line in that excerpt: timings come from the summary line, but no aggregate -> failed.
    assert nnapi.timings["inference (avg)"] == 143630
    xnn = parse_output(fixture("pi_xnnpack_partial_devicefarm.txt"), "xnnpack")
    status, message = status_of(xnn, "xnnpack")
    assert status == "fallback" and "22 delegate kernels" in str(message)
    assert xnn.memory is not None and xnn.memory.kind == "peak"
    assert xnn.memory.overall_mb == pytest.approx(64.8633)
    # The same output asked about the GPU: its only line about the GPU is a refusal -> unsupported.
    gpu_status, gpu_message = status_of(parse_output(fixture("pi_xnnpack_partial_devicefarm.txt"), "gpu"), "gpu")
    assert gpu_status == "unsupported" and "GPU acceleration is unsupported" in str(gpu_message)


def test_replacing_lines_count_nodes_of_the_requested_delegate_only() -> None:
    parsed = parse_output(fixture("app_gpu_partial_replacing_forum.txt"), "gpu")
    assert parsed.delegation.delegated_nodes == 29 and parsed.delegation.total_nodes == 65
    assert parsed.delegation.actual == "partial"
    xnn = parse_output(fixture("app_gpu_partial_replacing_forum.txt"), "xnnpack").delegation
    assert (xnn.delegated_nodes, xnn.total_nodes) == (25, 37)  # the last XNNPACK line wins


def test_logcat_output_and_a_delegate_that_took_nothing() -> None:
    text = fixture("android_nnapi_none_logcat_tf56301.txt")
    assert "Min num runs: [50]" in clean_lines(text)
    parsed = parse_output(text, "nnapi")
    assert parsed.delegation.actual == "none"
    assert status_of(parsed, "nnapi")[0] == "failed"  # that capture ends before any timing


def test_info_prefixed_output_with_percentiles() -> None:
    parsed = parse_output(fixture("am62x_xnnpack_info_prefix_ti.txt"), "xnnpack")
    assert parsed.timed is not None and parsed.timed.median == 899281 and parsed.timed.p95 == 904305
    assert parsed.warmup == Aggregate(count=1, curr=905463, p5=905463, median=905463, p95=905463)
    assert parsed.memory is not None and parsed.memory.kind == "delta"
    assert parsed.memory.overall_mb == pytest.approx(150.141)
    assert status_of(parsed, "xnnpack")[0] == "fallback"


def test_memory_delta_and_default_xnnpack() -> None:
    parsed = parse_output(fixture("pi_int8_xnnpack999.txt"), "cpu")
    assert parsed.memory is not None and parsed.memory.init_mb == pytest.approx(8.97656)
    assert parsed.timed is not None and parsed.timed.avg == pytest.approx(55043.2)


# -- command lines ----------------------------------------------------------------------------------


def _job(delegate: str, op_profiling: bool = False, **options: str) -> Job:
    return Job(
        job_id="j1",
        device="phone",
        model=ModelRef(name="m", path="/data/local/tmp/embench/cache/abc.tflite", format="tflite", precision="fp32"),
        runtime="litert",
        delegate=DelegateSpec(delegate, options=options),
        threads=4,
        run=RunSpec(warmup_runs=3, min_runs=50, min_seconds=1.5, max_seconds=20.0, idle_seconds=0.5,
                    op_profiling=op_profiling),
    )  # fmt: skip


@pytest.mark.parametrize(
    ("delegate", "options", "expected"),
    [
        ("cpu", {}, ["--use_xnnpack=false"]),
        ("xnnpack", {}, ["--use_xnnpack=true"]),
        ("gpu", {"gpu_precision_loss_allowed": "false"}, ["--use_gpu=true", "--gpu_precision_loss_allowed=false"]),
        ("nnapi", {"accelerator_name": "qti-dsp"}, ["--use_nnapi=true", "--nnapi_accelerator_name=qti-dsp"]),
        ("hexagon", {}, ["--use_hexagon=true"]),
    ],
)
def test_command_line_per_delegate(delegate: str, options: dict[str, str], expected: list[str]) -> None:
    argv = command_line(_job(delegate, **options), "/data/local/tmp/embench/cache/bm")
    assert argv[:8] == [
        "/data/local/tmp/embench/cache/bm",
        "--graph=/data/local/tmp/embench/cache/abc.tflite",
        "--num_threads=4",
        "--warmup_runs=3",
        "--warmup_min_secs=0",
        "--num_runs=50",
        "--min_secs=1.5",
        "--max_secs=20",
    ]
    assert argv[8:-1] == expected
    assert argv[-1] == "--report_peak_memory_footprint=true"


def test_command_line_pinning_and_op_profiling() -> None:
    """The profiler never runs in the timed run: it has a run of its own, after it."""
    argv = command_line(_job("cpu", op_profiling=True), "bm", cpu_mask="f0")
    assert argv[:3] == ["taskset", "f0", "bm"]
    assert "--enable_op_profiling=true" not in argv
    profiled = profiling_command_line(_job("cpu", op_profiling=True), "bm", cpu_mask="f0")
    assert profiled[:3] == ["taskset", "f0", "bm"] and "--enable_op_profiling=true" in profiled
    assert "--num_runs=20" in profiled and "--warmup_runs=1" in profiled and "--use_xnnpack=false" in profiled


# -- battery units, signs, and the shell side's output ---------------------------------------------


def test_battery_units_and_signs() -> None:
    assert current_unit(-450000) == "uA" and current_unit(450) == "mA"
    assert battery_watts(-450000, 3_900_000) == pytest.approx(1.755)  # Pixel: negative while discharging
    assert battery_watts(450000, 3_900_000) == pytest.approx(1.755)
    assert battery_watts(-450, 3_900_000) == pytest.approx(1.755)  # Samsung-style mA
    assert battery_watts(15000, 3_900_000, "uA") == pytest.approx(0.0585)  # the override wins


def test_result_from_shell_output_with_battery() -> None:
    lines = ["embench-battery Discharging", "embench-edge idle_start 100.00", "embench-edge idle_end 100.50"]
    lines += fixture("android_cpu_gr802.txt").splitlines()
    lines += ["embench-edge bm_end 102.00", "embench-sampler-ticks 3"]
    lines += [f"embench-sample {100 + 0.25 * i:.2f} -450000 3900000" for i in range(9)]
    lines += ["embench-battery Discharging", "embench-exit 0"]
    spec = SourceSpec("battery", "/", 4.0)
    result = to_result(_job("cpu"), "\n".join(lines), spec)
    assert result.status == "ok"
    assert result.aggregate is not None and result.aggregate.avg == 1039.66
    assert result.window_ns == pytest.approx(1000 * 1039.66 * 1e3)
    assert result.telemetry is not None
    assert result.telemetry.edges["window_start"].t == pytest.approx(102.0 - 1.03966)
    assert result.telemetry.sampler_cpu_seconds == pytest.approx(0.03)
    tel = summarize_telemetry(result, 1000)
    assert tel.watts == pytest.approx(1.755)
    assert tel.joules_per_inference == pytest.approx(1.755 * 1.03966 / 1000)


def test_edges_carry_the_wall_clock_for_an_external_meter() -> None:
    lines = ["embench-edge idle_start 100.00 1795389953.500000000", "embench-edge idle_end 100.50 1795389954.%N"]
    lines += [
        *fixture("android_cpu_gr802.txt").splitlines(),
        "embench-edge bm_end 102.00 1795389955.5",
        "embench-exit 0",
    ]
    # no battery source, but a meter on the host: edges only, no samples
    tel = to_result(_job("cpu"), "\n".join(lines), None, external=True).telemetry
    assert tel is not None and tel.sources == () and tel.edges["idle_start"].wall == pytest.approx(1795389953.5)
    assert tel.edges["idle_end"].wall is None  # a `date` without %N: that edge cannot align
    bm_end = tel.edges["bm_end"]
    assert bm_end.wall is not None and bm_end.wall - bm_end.t == pytest.approx(1795389853.5)
    assert to_result(_job("cpu"), "\n".join(lines), None).telemetry is None  # nothing measures power


def test_charging_phone_is_said_so() -> None:
    lines = ["embench-battery Charging", "embench-edge idle_start 1", "embench-edge idle_end 1.5"]
    lines += [*fixture("android_cpu_gr802.txt").splitlines(), "embench-edge bm_end 3", "embench-exit 0"]
    result = to_result(_job("cpu"), "\n".join(lines), SourceSpec("battery"))
    assert result.telemetry is not None and any("charging" in e for e in result.telemetry.errors)


def test_getprop_parsing() -> None:
    text = "[ro.product.model]: [Pixel 7]\n[ro.soc.model]: [GS201]\n[ro.build.version.sdk]: [34]\nnoise\n"
    assert parse_getprop(text) == {"ro.product.model": "Pixel 7", "ro.soc.model": "GS201", "ro.build.version.sdk": "34"}


# -- the whole phone path, through the stand-in phone ----------------------------------------------

# benchmark_model cannot run here (it is an Android binary), so the stand-in phone gets a stand-in
# that prints one of the real captured outputs above after as long as that run's timed window took.
# While it "runs" the battery current doubles, and drops back a little after it exits. Each value is
# written beside the file and renamed over it: a sysfs read never sees a half-written number, and
# `echo >` would let the host's meter read an empty file (seen once in CI beside a CPU hog).
FAKE_BM = """#!/bin/sh
case "$*" in *--use_gpu=true*) echo "ERROR: no OpenCL here" >&2; exit 1;; esac
case "$*" in *--enable_op_profiling=true*) cat {profile}; exit 0;; esac
{outputs}
bat="$EMBENCH_STANDIN_ROOT/sys/class/power_supply/battery"
echo -900000 > "$bat/current_now.new" && mv "$bat/current_now.new" "$bat/current_now"
sleep 1.2
cat {fixture}
(sleep 0.5; echo -450000 > "$bat/current_now.new" && mv "$bat/current_now.new" "$bat/current_now") > /dev/null 2>&1 &
"""


# A benchmark_model new enough for --output_filepath answers it for real (tests/bm_outputs.py).
OUTPUTS = (
    f'case "$*" in *--output_filepath=*) exec {sys.executable} {Path(__file__).parent / "bm_outputs.py"} "$@";; esac'
)


def _phone_inventory(tmp_path: Path, zoo_path: Path, phone: StandinPhone, meter: bool = False, outputs: bool = False,
                     sweep: dict[str, object] | None = None, **adb: object) -> Path:  # fmt: skip
    bm = tmp_path / "benchmark_model"
    bm.write_text(FAKE_BM.format(fixture=FIXTURES / "android_cpu_gr802.txt", outputs=OUTPUTS if outputs else "",
                                 profile=FIXTURES / "riscv_cpu_op_profiling_mobilenet_v1.txt"))  # fmt: skip
    bm.chmod(0o755)
    battery = phone.root / "sys" / "class" / "power_supply" / "battery"
    battery.mkdir(parents=True, exist_ok=True)
    (battery / "current_now").write_text("-450000\n")
    (battery / "voltage_now").write_text("3900000\n")
    (battery / "status").write_text("Discharging\n")
    command = meter_command("battery", str(battery), "--rate", "20")
    external = [{"source": "external", "options": {"command": command}}] if meter else []
    device = {
        "name": "phone",
        "transport": "adb",
        "workdir": str(phone.root / "data" / "local" / "tmp" / "embench"),
        "telemetry": [{"source": "battery", "root": str(phone.root), "rate_hz": 10}, *external],
        "adb": {
            "serial": phone.serial,
            "key_file": str(tmp_path / "adbkey"),
            "benchmark_model": "benchmark_model",
            **adb,
        },
    }
    sweep = sweep or {
        "models": ["tiny"],
        "runtimes": ["litert"],
        "delegates": {"litert": ["cpu", "gpu"]},
        "threads": [2],
    }
    return write_inventory(tmp_path, zoo_path, sweep, [device], store=str(tmp_path / "results.db"))


def test_sweep_with_benchmark_model_on_the_standin_phone(tmp_path: Path, zoo_path: Path) -> None:
    with StandinPhone(tmp_path / "phone", props={"ro.soc.model": "SM8550"}) as phone:
        inv = _phone_inventory(tmp_path, zoo_path, phone, battery_unplug=True, cpu_mask="1")
        res = embench("sweep", str(inv), "-q", cwd=tmp_path)
        calls = phone.dumpsys_calls()
    assert res.returncode == 3, res.stderr  # the gpu job failed on purpose: EXIT_JOBS_FAILED
    assert "benchmark_model exited with code 1: ERROR: no OpenCL here" in res.stderr
    # dumpsys battery unplug before the jobs, reset after them although one failed.
    assert calls == ["battery unplug", "battery reset"]
    db = sqlite3.connect(tmp_path / "results.db")
    query = "SELECT delegate, status, result_json FROM results"
    rows = {r[0]: (r[1], Result.from_json(r[2])) for r in db.execute(query)}
    status, result = rows["cpu"]
    assert status == "ok" and result.agent == "benchmark_model"
    assert result.command_line and result.command_line.startswith("taskset 1 ")
    assert "--use_xnnpack=false" in result.command_line and "--num_threads=2" in result.command_line
    assert result.device_facts.soc == "SM8550"
    # Idle 0.45 A × 3.9 V = 1.755 W; running 3.51 W; the window is benchmark_model's 1000 × 1039.66 µs.
    assert result.aggregate is not None
    tel = summarize_telemetry(result, int(result.aggregate.count))
    assert tel.idle_watts == pytest.approx(1.755, rel=0.01)
    assert tel.watts == pytest.approx(3.51, rel=0.02)
    assert tel.per_inference_basis == "net of idle"
    assert tel.joules_per_inference == pytest.approx(1.755 * 1.03966 / 1000, rel=0.05)
    assert result.telemetry is not None and result.telemetry.sampler_cpu_seconds is not None
    assert rows["gpu"][0] == "failed"
    report = embench("report", "--store", str(tmp_path / "results.db"), "--out", str(tmp_path / "r"), cwd=tmp_path)
    assert report.returncode == 0, report.stderr
    md = next((tmp_path / "r").glob("*/report.md")).read_text()
    row = markdown_row(md, "phone", "tiny", "fp32", "litert", "cpu", "2")
    assert (row["status"], row["median ms"]) == ("ok", "1.04"), row  # benchmark_model's mean of 1000 runs


@pytest.mark.slow
def test_fidelity_on_a_phone_through_output_filepath(tmp_path: Path, zoo_path: Path) -> None:
    """No Python on the phone: the seeded inputs go as raw tensor files, benchmark_model runs each
    once with --output_filepath, and the outputs come back exactly as LiteRT gives them for the same
    inputs; int8 is compared with the phone's own fp32. A benchmark_model too old for the flag says so."""
    from test_fidelity import litert_outputs  # noqa: PLC0415

    sweep = {"models": ["tiny"], "precisions": ["fp32", "int8"], "runtimes": ["litert"],
             "delegates": {"litert": ["cpu"]}, "threads": [1]}  # fmt: skip
    with StandinPhone(tmp_path / "phone") as phone:
        inv = _phone_inventory(tmp_path, zoo_path, phone, outputs=True, sweep=sweep)
        res = embench("sweep", str(inv), "-q", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    db = sqlite3.connect(tmp_path / "results.db")
    rows = {p: (Job.from_json(j), Result.from_json(r)) for p, j, r in
            db.execute("SELECT precision, job_json, result_json FROM results")}  # fmt: skip
    job, result = rows["fp32"]
    assert result.agent == "benchmark_model" and result.outputs is not None and result.outputs.error is None
    checks = job.checks
    xs = np.random.default_rng([job.seed, 7919]).uniform(
        checks.input_low, checks.input_high, size=(checks.fidelity_inputs, 1, 32, 32, 3)
    )
    tiny = Zoo(zoo_path).artifact("tiny", "tflite", "fp32")
    expected = litert_outputs(tiny.path, xs, builtin=True)  # type: ignore[union-attr]
    assert np.array_equal(fidelity.decode(result.outputs)[0], expected.astype(np.float32))  # the same kernels
    report = embench("report", "--store", str(tmp_path / "results.db"), "--out", str(tmp_path / "r"), cwd=tmp_path)
    assert report.returncode == 0, report.stderr
    md = next((tmp_path / "r").glob("*/report.md")).read_text()
    assert markdown_row(md, "phone", "tiny", "fp32", "litert", "cpu", "1")["fidelity vs fp32 CPU"] == "reference"
    assert markdown_row(md, "phone", "tiny", "int8", "litert", "cpu", "1")["fidelity vs fp32 CPU"].startswith(
        ("cos ", "LOW · cos ")
    )

    old = tmp_path / "old"
    old.mkdir()
    with StandinPhone(old / "phone") as phone:
        inv = _phone_inventory(old, zoo_path, phone, outputs=False, sweep={**sweep, "precisions": ["fp32"]})
        res = embench("sweep", str(inv), "-q", cwd=old)
    assert res.returncode == 0, res.stderr
    (result_json,) = sqlite3.connect(old / "results.db").execute("SELECT result_json FROM results").fetchone()
    result = Result.from_json(result_json)
    assert result.status == "ok" and result.outputs is not None  # the timing stands
    assert result.outputs.error and "--output_filepath" in result.outputs.error


def test_external_meter_on_a_phone_whose_clock_is_far_off(tmp_path: Path, zoo_path: Path) -> None:
    """A meter on the host (say a Monsoon at the battery terminals) while benchmark_model runs on a
    phone whose wall clock is 1000 s ahead: its samples land on the phone's uptime clock."""
    with StandinPhone(tmp_path / "phone", clock_skew_s=1000.0) as phone:
        inv = _phone_inventory(tmp_path, zoo_path, phone, meter=True)
        res = embench("sweep", str(inv), "-q", cwd=tmp_path)
    assert res.returncode == 3, res.stderr  # the gpu job fails on purpose, as above
    db = sqlite3.connect(tmp_path / "results.db")
    (result_json,) = db.execute("SELECT result_json FROM results WHERE delegate='cpu'").fetchone()
    result = Result.from_json(result_json)
    tel = result.telemetry
    assert tel is not None and result.aggregate is not None
    external, battery = tel.sources
    assert external.source == "external" and battery.source == "battery"
    # the phone read its skewed clock inside the probe's round trip: 1000 s within that uncertainty
    assert abs(external.facts["clock_offset_s"] - 1000.0) <= external.facts["clock_uncertainty_s"] + 1e-5
    assert all(edge.wall - edge.t > 1000 for edge in tel.edges.values() if edge.wall is not None)
    s = summarize_telemetry(result, int(result.aggregate.count))
    # the same profile as the battery's own samples: idle 1.755 W, running 3.51 W
    assert s.power_source == "external:meter.py"
    assert s.idle_watts == pytest.approx(1.755, rel=0.01)
    assert s.watts == pytest.approx(3.51, rel=0.02)
    assert s.joules_per_inference == pytest.approx(1.755 * 1.03966 / 1000, rel=0.05)
    assert not tel.errors


def test_devices_detects_the_phones_battery(tmp_path: Path, zoo_path: Path) -> None:
    with StandinPhone(tmp_path / "phone") as phone:
        inv = _phone_inventory(tmp_path, zoo_path, phone)
        zone = phone.root / "sys" / "class" / "thermal" / "thermal_zone3"
        zone.mkdir(parents=True)
        (zone / "temp").write_text("41000\n")
        out = embench("devices", str(inv), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    lines = [line.strip() for line in out.stdout.splitlines()]
    found = next(line for line in lines if line.startswith("telemetry found:"))  # also what this host's / has
    assert f"battery (battery) under {phone.root}, thermal (1 zones) under {phone.root}" in found
    add = next(line for line in lines if line.startswith("to use them, add to this device:"))
    assert f"{{source: thermal, root: {phone.root}}}" in add and "source: battery, root" not in add


def test_battery_samples_are_stamped_after_their_reads() -> None:
    """A sample whose value was read after the model started must not land in the idle baseline:
    it is stamped with the clock read after the value, and one read across a long stall is dropped."""
    lines = ["embench-edge idle_start 100.00", "embench-edge idle_end 101.00"]
    lines += [f"embench-sample {100 + 0.1 * i:.2f} -450000 3900000 {100 + 0.1 * i:.2f}" for i in range(10)]
    lines += ["embench-sample 100.99 -900000 3900000 101.01"]  # read across idle_end: it belongs after it
    lines += ["embench-sample 100.55 -900000 3900000 100.85"]  # stalled 0.3 s between its reads: no time
    lines += [*fixture("android_cpu_gr802.txt").splitlines(), "embench-edge bm_end 103.00", "embench-exit 0"]
    result = to_result(_job("cpu"), "\n".join(lines), SourceSpec("battery", "/", 10.0))
    assert result.telemetry is not None
    times = [t for t, _ in result.telemetry.sources[0].samples]
    assert times[-1] == pytest.approx(101.01) and 100.85 not in times and len(times) == 11
    idle = [w for t, w in result.telemetry.sources[0].samples if t <= 101.0]
    assert len(idle) == 10 and all(w == pytest.approx(1.755) for w in idle)  # the baseline holds idle power only


@pytest.mark.parametrize("binary", ["missing", "not-a-program", "hangs"])
def test_a_benchmark_model_that_is_missing_cannot_run_or_hangs(tmp_path: Path, zoo_path: Path, binary: str) -> None:
    """Each is one clear line and exit 3: a path that is no file (before anything is pushed), a file the
    phone cannot execute (a wrong build), and a benchmark_model that never returns (the job's timeout
    kills it on the phone)."""
    with StandinPhone(tmp_path / "phone") as phone:
        inv = _phone_inventory(tmp_path, zoo_path, phone)
        doc = yaml.safe_load(inv.read_text())
        doc["sweep"]["delegates"] = {"litert": ["cpu"]}
        doc["sweep"]["run"]["timeout_seconds"] = 3
        bm = tmp_path / "benchmark_model"
        if binary == "missing":
            bm.unlink()
        elif binary == "not-a-program":
            bm.write_bytes(b"\x7fELF\x02\x01\x01" + bytes(200))  # an ELF header for no machine this phone runs
        else:
            bm.write_text("#!/bin/sh\nexec sleep 300\n")
        inv.write_text(yaml.safe_dump(doc, sort_keys=False))
        res = embench("sweep", str(inv), "-q", cwd=tmp_path)
        left = [p for p in descendants(os.getpid()) if b"sleep\x00300" in b"\x00".join(cmdline(p))]
    assert res.returncode == 3, res.stderr
    assert "Traceback" not in res.stderr
    rows = sqlite3.connect(tmp_path / "results.db").execute("SELECT status, message FROM results").fetchall()
    if binary == "missing":
        assert f"benchmark_model binary {bm} not found; download the android_aarch64 build" in res.stderr
        assert rows == []  # the device could not be used: nothing ran, --resume runs it once fixed
    elif binary == "not-a-program":
        ((status, message),) = rows
        assert status == "failed" and "benchmark_model exited with code" in message, message
    else:
        ((status, message),) = rows
        assert status == "timeout" and "3 s" in message
        assert not [p for p in left if alive(p)], "benchmark_model still runs on the phone"
