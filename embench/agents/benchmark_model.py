"""Drive TFLite's official `benchmark_model` on a phone (device_agents/android): command lines per
delegate, the shell side's battery samples and window edges, and a Result like the Python agent's."""

from __future__ import annotations

import dataclasses
import posixpath
import shlex
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from embench_agent.ops import PROFILE_RUNS, PROFILE_SECONDS
from embench_agent.protocol import (
    DeviceFacts,
    Edge,
    Job,
    LibraryProbe,
    OpProfile,
    Probe,
    Result,
    RuntimeInfo,
    RuntimeProbe,
    SourceProbe,
    SourceSpec,
    SourceTrace,
    Telemetry,
)  # fmt: skip
from embench_agent.telemetry.units import battery_watts

from ..errors import TransportError
from ..inventory import EXTERNAL, Device
from ..runtimes import RUNTIMES
from ..telemetry.clock import parse_unix_time
from ..transports.base import Transport
from ..zoo import sha256_file
from .base import host_result
from .bm_checks import phone_outputs
from .bm_ops import parse_op_profile
from .bm_parse import parse_output, status_of
from .phone import board_facts, phone_facts
from .python_agent import parse_result

SHELL_SIDE = Path(__file__).resolve().parents[2] / "device_agents" / "android" / "embench_bm.sh"
AGENT_VERSION = "1"
DELEGATE_FLAGS = {
    "cpu": ["--use_xnnpack=false"],  # set explicitly: also turns off the default XNNPACK delegate
    "xnnpack": ["--use_xnnpack=true"],
    "gpu": ["--use_gpu=true"],
    "nnapi": ["--use_nnapi=true"],
    "hexagon": ["--use_hexagon=true"],
}
CLOCK_TICKS = 100  # USER_HZ on Android and Linux
MAX_SAMPLE_READ_S = 0.05  # a battery sample whose reads took longer was descheduled mid-read: its time is unknown


def command_line(job: Job, binary: str, cpu_mask: str | None = None) -> list[str]:
    """The benchmark_model argv for one job (with `taskset MASK` in front when pinned)."""
    delegate, run = job.delegate.name, job.run
    argv = [
        binary,
        f"--graph={job.model.path}",
        f"--num_threads={job.threads}",
        f"--warmup_runs={run.warmup_runs}",
        "--warmup_min_secs=0",
        f"--num_runs={run.min_runs}",
        f"--min_secs={run.min_seconds:g}",
        f"--max_secs={run.max_seconds:g}",
        *DELEGATE_FLAGS[delegate],
    ]
    options = dict(job.delegate.options)
    if delegate == "nnapi" and "accelerator_name" in options:
        argv.append(f"--nnapi_accelerator_name={options.pop('accelerator_name')}")
    argv += [f"--{key}={value}" for key, value in sorted(options.items())]
    argv.append("--report_peak_memory_footprint=true")
    return ["taskset", cpu_mask, *argv] if cpu_mask else argv


def profiling_command_line(job: Job, binary: str, cpu_mask: str | None = None) -> list[str]:
    """The separate, untimed op-profiling run (RunSpec.op_profiling): the profiler's own overhead never
    reaches the timed run's latency. One warm-up and PROFILE_RUNS inferences."""
    run = dataclasses.replace(job.run, warmup_runs=1, min_runs=PROFILE_RUNS, min_seconds=0.0,
                              max_seconds=PROFILE_SECONDS)  # fmt: skip
    argv = command_line(dataclasses.replace(job, run=run), binary, cpu_mask)
    argv.insert(-1, "--enable_op_profiling=true")
    return argv


class BenchmarkModelAgent:
    """benchmark_model plus embench_bm.sh, pushed once into the phone's cache."""

    NAME = "benchmark_model"

    def __init__(self, transport: Transport, device: Device) -> None:
        config = device.adb or device.ssh
        key = "adb" if device.adb is not None else "ssh"
        if config is None or not config.benchmark_model:
            raise TransportError(f"device {device.name}: the benchmark_model agent needs {key}.benchmark_model")
        self.transport, self.device, self.binary = transport, device, Path(config.benchmark_model)
        self.cpu_mask, self.key = config.cpu_mask, key
        self._remote: tuple[str, str] | None = None
        self.facts = DeviceFacts()

    def _paths(self) -> tuple[str, str]:
        if self._remote is None:
            if not self.binary.is_file():
                build, doc = (("android_aarch64", "android.md") if self.key == "adb"
                              else ("linux_aarch64 (or the board's) ", "raspberry-pi.md"))  # fmt: skip
                raise TransportError(
                    f"device {self.device.name}: benchmark_model binary {self.binary} not found; download the"
                    f" {build} build (docs/devices/{doc}) and set {self.key}.benchmark_model to its path"
                )
            bm = self.transport.ensure_file(self.binary, sha256_file(self.binary))
            sh = self.transport.ensure_file(SHELL_SIDE, sha256_file(SHELL_SIDE))
            self._remote = (bm, sh)
        return self._remote

    def probe(self, libraries: Mapping[str, str], timeout: float = 60.0, roots: Sequence[str] = ()) -> Probe:
        bm, _ = self._paths()
        res = self.transport.run(
            ["sh", "-c", f"chmod 755 {shlex.quote(bm)} && test -x {shlex.quote(bm)}"], timeout=timeout
        )
        if res.timed_out or res.returncode != 0:
            raise TransportError(
                f"device {self.device.name}: cannot make {bm} executable there: {res.stderr_tail(200)}"
            )
        built_in = LibraryProbe(library="(built into benchmark_model)", loadable=True)
        self.facts = phone_facts(self.transport) if self.key == "adb" else board_facts(self.transport)
        others = f"the benchmark_model agent times LiteRT only; drop {self.key}.agent: benchmark_model for %s"
        runtimes = {name: RuntimeProbe(error=others % name) for name in RUNTIMES if name != "litert"}
        runtimes["litert"] = RuntimeProbe(version=f"benchmark_model {self.binary.name}")
        return Probe(
            agent_version=AGENT_VERSION,
            facts=self.facts,
            runtimes=runtimes,
            delegates={
                **{name: built_in for name in (("gpu", "nnapi", "hexagon") if self.key == "adb" else ("gpu",))},
                "edgetpu": LibraryProbe(
                    library="libedgetpu.so.1",
                    loadable=False,
                    error="not through benchmark_model here: use the Python agent",
                ),
            },
            telemetry=self.detect_sources(["/", *(r for r in roots if r != "/")], timeout),
        )

    def detect_sources(self, roots: list[str], timeout: float) -> dict[str, dict[str, SourceProbe]]:
        """The sources this agent reads (battery, thermal) that the phone's shell finds under each root."""
        script = "".join(
            f"for f in {shlex.quote(r.rstrip('/'))}/sys/class/power_supply/*/current_now"
            f" {shlex.quote(r.rstrip('/'))}/sys/class/thermal/thermal_zone*/temp;"
            f' do [ -r "$f" ] && echo {i} "$f"; done; '
            for i, r in enumerate(roots)
        )
        res = self.transport.run(["sh", "-c", script + "true"], timeout=timeout)
        found: dict[int, list[str]] = {}
        for line in res.stdout.decode("utf-8", "replace").splitlines():
            index, _, path = line.partition(" ")
            if index.isdigit():
                found.setdefault(int(index), []).append(path)
        return {root: detect_from_paths(root, found.get(i, [])) for i, root in enumerate(roots)}

    def temperature(self, sources: Sequence[SourceSpec], timeout: float = 30.0) -> float | None:
        """The hottest thermal zone now (°C), read with the shell; None when none is readable."""
        roots = [s.root or "/" for s in sources if s.source == "thermal"]
        if not roots:
            return None
        globs = " ".join(f"{shlex.quote(r.rstrip('/'))}/sys/class/thermal/thermal_zone*/temp" for r in roots)
        res = self.transport.run(["sh", "-c", f"cat {globs} 2>/dev/null; true"], timeout=timeout)
        values = []
        for word in res.stdout.split():
            try:
                values.append(float(word) / 1000.0)
            except ValueError:
                continue
        return max(values) if values else None

    def run(self, job: Job, timeout: float, model_file: Path | None = None) -> Result:
        bm, sh = self._paths()
        battery = next((t for t in job.telemetry if t.source == "battery"), None)
        if battery is not None:
            supply = battery.options.get("supply", "battery")
            bat_dir = f"{(battery.root or '/').rstrip('/')}/sys/class/power_supply/{supply}"
            period = 1.0 / (battery.rate_hz or 4.0)
        else:
            bat_dir, period = "-", 1.0
        argv = command_line(job, bm, self.cpu_mask)
        external = any(t.source == EXTERNAL for t in job.telemetry)
        idle = job.run.idle_seconds if battery is not None or external else 0.0
        started = time.time()
        res = self.transport.run(["sh", sh, bat_dir, f"{period:g}", f"{idle:g}", "--", *argv], timeout=timeout)
        if res.timed_out or res.signal_name:
            result = parse_result(job, res, timeout)
        else:
            result = to_result(job, res.stdout.decode("utf-8", "replace"), battery, external)
        if result.measured:  # after the timed run, apart from it
            outputs = phone_outputs(job, self.transport, posixpath.dirname(bm),
                                    lambda j: command_line(j, bm, self.cpu_mask), model_file, timeout)  # fmt: skip
            ops = self._op_profile(job, bm, timeout) if job.run.op_profiling else None
            result = dataclasses.replace(result, outputs=outputs, ops=ops)
        return dataclasses.replace(
            result, started_unix=started, ended_unix=time.time(), command_seconds=res.seconds,
            command_line=shlex.join(argv), device_facts=self.facts, stderr_tail=result.stderr_tail or res.stderr_tail(),
        )  # fmt: skip

    def _op_profile(self, job: Job, bm: str, timeout: float) -> OpProfile:
        argv = profiling_command_line(job, bm, self.cpu_mask)
        res = self.transport.run(argv, timeout=timeout)
        text = res.stdout.decode("utf-8", "replace") + "\n" + res.stderr.decode("utf-8", "replace")
        if res.timed_out or res.returncode != 0:
            why = "timed out" if res.timed_out else f"exited with code {res.returncode}: {res.stderr_tail(200)}"
            return OpProfile(source="benchmark_model", note=f"the op-profiling run {why}")
        profile = parse_op_profile(text, job.delegate.name)
        if profile is None:
            return OpProfile(source="benchmark_model", note="the op-profiling run printed no per-op table")
        return profile


def detect_from_paths(root: str, paths: list[str]) -> dict[str, SourceProbe]:
    """Detection in the Python agent's shape from the readable files the phone's shell listed."""
    supplies = [p.split("/")[-2] for p in paths if p.endswith("/current_now")]
    zones = [p for p in paths if p.endswith("/temp")]
    base = root.rstrip("/")
    out: dict[str, SourceProbe] = {}
    if supplies:
        supply = "battery" if "battery" in supplies else supplies[0]
        out["battery"] = SourceProbe(found=True, kind="power", label=supply, supply=supply)
    else:
        out["battery"] = SourceProbe(found=False, why=f"no readable {base}/sys/class/power_supply/*/current_now")
    if zones:
        out["thermal"] = SourceProbe(found=True, kind="temperature", label=f"{len(zones)} zones")
    else:
        out["thermal"] = SourceProbe(found=False, why=f"no readable {base}/sys/class/thermal/thermal_zone*/temp")
    return out


class ShellOutput:
    """The shell side's lines sorted out: edges, battery samples and states, ticks, exit, and the rest
    (benchmark_model's own output)."""

    def __init__(self, text: str) -> None:
        self.edges: dict[str, float] = {}
        self.walls: dict[str, float] = {}
        self.samples: list[tuple[float, float, float]] = []
        self.statuses: list[str] = []
        self.exit_code: int | None = None
        self.ticks: int | None = None
        self.bm_lines: list[str] = []
        for line in text.splitlines():
            self._take(line)

    def _take(self, line: str) -> None:
        word = line.split()
        if line.startswith("embench-edge ") and len(word) in (3, 4):
            self.edges[word[1]] = float(word[2])
            if len(word) == 4:
                try:
                    self.walls[word[1]] = parse_unix_time(word[3])
                except ValueError:
                    pass  # a `date` without %N: no wall clock, so no external meter alignment
        elif line.startswith("embench-sample ") and len(word) in (4, 5):
            self._sample(word)
        elif line.startswith("embench-battery "):
            self.statuses.append(line.split(" ", 1)[1].strip())
        elif line.startswith("embench-sampler-ticks ") and len(word) == 2:
            self.ticks = int(word[1])
        elif line.startswith("embench-exit ") and len(word) == 2:
            self.exit_code = int(word[1])
        else:
            self.bm_lines.append(line)

    def _sample(self, word: list[str]) -> None:
        """A battery sample, stamped with the clock read after its values (so a value read after the
        model started is never stamped before it); dropped when the two clock reads are far apart."""
        try:
            t0, current, voltage = float(word[1]), float(word[2]), float(word[3])
            t1 = float(word[4]) if len(word) == 5 else t0
        except ValueError:
            return
        if t1 - t0 <= MAX_SAMPLE_READ_S:
            self.samples.append((t1, current, voltage))

    @property
    def output_tail(self) -> str:
        return "\n".join(self.bm_lines)[-4000:]


def to_result(job: Job, text: str, battery: SourceSpec | None, external: bool = False) -> Result:
    """A Result from the shell side's output: benchmark_model's lines plus embench-* lines. With a
    battery source or an external meter it has telemetry: the edges, and the battery's samples."""
    out = ShellOutput(text)
    delegate = job.delegate.name
    parsed = parse_output("\n".join(out.bm_lines), delegate)
    if out.exit_code not in (0, None) and parsed.timed is None:
        last = (parsed.errors or [ln for ln in out.bm_lines if ln.strip()] or ["no output"])[-1]
        return host_result(job, "failed", f"benchmark_model exited with code {out.exit_code}: {last}",
                           output_tail=out.output_tail)  # fmt: skip
    status, message = status_of(parsed, delegate)
    aggregate = parsed.timed
    window_ns = None
    if aggregate is not None and aggregate.count and aggregate.avg is not None and "bm_end" in out.edges:
        window_s = aggregate.count * aggregate.avg / 1e6
        window_ns = int(window_s * 1e9)
        out.edges["window_end"] = out.edges["bm_end"]
        out.edges["window_start"] = out.edges["bm_end"] - window_s  # estimated: benchmark_model marks no edges
    memory = parsed.memory
    return Result(
        job_id=job.job_id, agent="benchmark_model", agent_version=AGENT_VERSION, status=status, message=message,
        runtime=RuntimeInfo("litert", None, "benchmark_model"), delegation=parsed.delegation, aggregate=aggregate,
        warmup=parsed.warmup, init_ms=parsed.init_ms, first_inference_ms=parsed.first_inference_ms, memory=memory,
        output_tail=out.output_tail, window_ns=window_ns,
        peak_rss_kb=int(memory.overall_mb * 1024) if memory is not None and memory.overall_mb is not None else None,
        telemetry=_telemetry(out, battery) if battery is not None or external else None,
    )  # fmt: skip


def _telemetry(out: ShellOutput, spec: SourceSpec | None) -> Telemetry:
    edges = {name: Edge(t=t, wall=out.walls.get(name)) for name, t in out.edges.items()}
    cpu = out.ticks / CLOCK_TICKS if out.ticks is not None else None
    if spec is None:
        return Telemetry(clock="uptime", edges=edges, sampler_cpu_seconds=cpu)
    errors = []
    if not out.samples:
        errors.append("battery: no samples (current_now unreadable on the phone?)")
    if any(s.lower().startswith("charging") for s in out.statuses):
        errors.append(
            "battery: charging during the run; battery power is not the phone's draw (unplug, or set battery_unplug)"
        )
    unit = spec.options.get("current_unit")
    trace = SourceTrace(
        source="battery",
        label=spec.options.get("supply", "battery"),
        kind="power",
        unit="W",
        rate_hz=spec.rate_hz or 4.0,
        facts_start={"status": out.statuses[0] if out.statuses else None},
        facts={"status": out.statuses[-1] if out.statuses else None},
        samples=tuple((t, battery_watts(c, v, unit)) for t, c, v in out.samples),
    )
    return Telemetry(clock="uptime", edges=edges, sources=(trace,), errors=tuple(errors), sampler_cpu_seconds=cpu)
