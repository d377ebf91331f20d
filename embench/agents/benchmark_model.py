"""Drive TFLite's official `benchmark_model` on a phone (device_agents/android): command lines per
delegate, the shell side's battery samples and window edges, and a Result like the Python agent's."""

from __future__ import annotations

import shlex
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import TransportError
from ..inventory import EXTERNAL, Device
from ..telemetry.battery import battery_watts
from ..telemetry.clock import parse_unix_time
from ..transports.base import Transport
from ..zoo import sha256_file
from .bm_parse import parse_output, status_of
from .phone import phone_facts
from .python_agent import parse_result
from .results import RESULT_SCHEMA, host_result

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


def command_line(job: dict[str, Any], binary: str, cpu_mask: str | None = None) -> list[str]:
    """The benchmark_model argv for one job (with `taskset MASK` in front when pinned)."""
    delegate = job["delegate"]["name"]
    run = job["run"]
    argv = [
        binary,
        f"--graph={job['model']['path']}",
        f"--num_threads={int(job['threads'])}",
        f"--warmup_runs={int(run['warmup_runs'])}",
        "--warmup_min_secs=0",
        f"--num_runs={int(run['min_runs'])}",
        f"--min_secs={float(run['min_seconds']):g}",
        f"--max_secs={float(run['max_seconds']):g}",
        *DELEGATE_FLAGS[delegate],
    ]
    options = dict(job["delegate"].get("options") or {})
    if delegate == "nnapi" and "accelerator_name" in options:
        argv.append(f"--nnapi_accelerator_name={options.pop('accelerator_name')}")
    argv += [f"--{key}={value}" for key, value in sorted(options.items())]
    if run.get("op_profiling"):
        argv.append("--enable_op_profiling=true")
    argv.append("--report_peak_memory_footprint=true")
    return ["taskset", cpu_mask, *argv] if cpu_mask else argv


class BenchmarkModelAgent:
    """benchmark_model plus embench_bm.sh, pushed once into the phone's cache."""

    NAME = "benchmark_model"

    def __init__(self, transport: Transport, device: Device, binary: Path) -> None:
        self.transport, self.device, self.binary = transport, device, binary
        self._remote: tuple[str, str] | None = None
        self.facts: dict[str, Any] = {}

    def _paths(self) -> tuple[str, str]:
        if self._remote is None:
            if not self.binary.is_file():
                raise TransportError(
                    f"device {self.device.name}: benchmark_model binary {self.binary} not found; download the"
                    " android_aarch64 build (docs/devices/android.md) and set adb.benchmark_model to its path"
                )
            bm = self.transport.ensure_file(self.binary, sha256_file(self.binary))
            sh = self.transport.ensure_file(SHELL_SIDE, sha256_file(SHELL_SIDE))
            self._remote = (bm, sh)
        return self._remote

    def probe(
        self, libraries: dict[str, str] | None = None, timeout: float = 60.0, roots: Sequence[str] = ()
    ) -> dict[str, Any]:
        bm, _ = self._paths()
        res = self.transport.run(
            ["sh", "-c", f"chmod 755 {shlex.quote(bm)} && test -x {shlex.quote(bm)}"], timeout=timeout
        )
        if res.timed_out or res.returncode != 0:
            raise TransportError(
                f"device {self.device.name}: cannot make {bm} executable on the phone: {res.stderr_tail(200)}"
            )
        built_in = {"loadable": True, "library": "(built into benchmark_model)"}
        self.facts = phone_facts(self.transport)
        return {
            "agent_version": AGENT_VERSION,
            "facts": self.facts,
            "runtimes": {
                "litert": {"version": f"benchmark_model {self.binary.name}"},
                "onnxruntime": {
                    "error": "the benchmark_model agent times LiteRT only; set adb.agent: python for ONNX Runtime"
                },
            },
            "delegates": {
                **{name: built_in for name in ("gpu", "nnapi", "hexagon")},
                "edgetpu": {"loadable": False, "library": "libedgetpu.so.1", "error": "not a phone delegate"},
            },
            "telemetry": self.detect_sources(["/", *(r for r in roots if r != "/")], timeout),
        }

    def detect_sources(self, roots: list[str], timeout: float) -> dict[str, dict[str, Any]]:
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

    def temperature(self, sources: list[dict[str, Any]], timeout: float = 30.0) -> float | None:
        """The hottest thermal zone now (°C), read with the shell; None when none is readable."""
        roots = [s.get("root") or "/" for s in sources if s.get("source") == "thermal"]
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

    def run(self, job: dict[str, Any], timeout: float) -> dict[str, Any]:
        bm, sh = self._paths()
        battery = next((t for t in job.get("telemetry") or [] if t["source"] == "battery"), None)
        if battery is not None:
            options = battery.get("options") or {}
            bat_dir = (
                f"{(battery.get('root') or '/').rstrip('/')}/sys/class/power_supply/{options.get('supply', 'battery')}"
            )
            period = 1.0 / float(battery.get("rate_hz") or 4.0)
        else:
            bat_dir, period = "-", 1.0
        adb = self.device.adb
        argv = command_line(job, bm, adb.cpu_mask if adb else None)
        external = any(t["source"] == EXTERNAL for t in job.get("telemetry") or [])
        idle = float(job["run"].get("idle_seconds", 1.0)) if battery is not None or external else 0.0
        started = time.time()
        res = self.transport.run(["sh", sh, bat_dir, f"{period:g}", f"{idle:g}", "--", *argv], timeout=timeout)
        if res.timed_out or res.signal_name:
            result = parse_result(job, res, timeout)
        else:
            result = to_result(job, res.stdout.decode("utf-8", "replace"), battery, external)
        result.update(started_unix=started, ended_unix=time.time(), command_seconds=res.seconds)
        result["command_line"] = shlex.join(argv)
        result["device_facts"] = self.facts
        result.setdefault("stderr_tail", res.stderr_tail())
        return result


def detect_from_paths(root: str, paths: list[str]) -> dict[str, dict[str, Any]]:
    """Detection in the Python agent's shape from the readable files the phone's shell listed."""
    supplies = [p.split("/")[-2] for p in paths if p.endswith("/current_now")]
    zones = [p for p in paths if p.endswith("/temp")]
    base = root.rstrip("/")
    out: dict[str, dict[str, Any]] = {}
    if supplies:
        supply = "battery" if "battery" in supplies else supplies[0]
        out["battery"] = {"found": True, "kind": "power", "label": supply, "supply": supply}
    else:
        out["battery"] = {"found": False, "why": f"no readable {base}/sys/class/power_supply/*/current_now"}
    if zones:
        out["thermal"] = {"found": True, "kind": "temperature", "label": f"{len(zones)} zones"}
    else:
        out["thermal"] = {"found": False, "why": f"no readable {base}/sys/class/thermal/thermal_zone*/temp"}
    return out


def to_result(job: dict[str, Any], text: str, battery: dict[str, Any] | None, external: bool = False) -> dict[str, Any]:
    """A Result from the shell side's output: benchmark_model's lines plus embench-* lines. With a
    battery source or an external meter it has telemetry: the edges, and the battery's samples."""
    edges: dict[str, float] = {}
    walls: dict[str, float] = {}
    raw_samples: list[tuple[float, float, float]] = []
    statuses: list[str] = []
    exit_code: int | None = None
    ticks = None
    bm_lines = []
    for line in text.splitlines():
        word = line.split()
        if line.startswith("embench-edge ") and len(word) in (3, 4):
            edges[word[1]] = float(word[2])
            if len(word) == 4:
                try:
                    walls[word[1]] = parse_unix_time(word[3])
                except ValueError:
                    pass  # a `date` without %N: no wall clock, so no external meter alignment
        elif line.startswith("embench-sample ") and len(word) == 4:
            try:
                raw_samples.append((float(word[1]), float(word[2]), float(word[3])))
            except ValueError:
                continue
        elif line.startswith("embench-battery "):
            statuses.append(line.split(" ", 1)[1].strip())
        elif line.startswith("embench-sampler-ticks ") and len(word) == 2:
            ticks = int(word[1])
        elif line.startswith("embench-exit ") and len(word) == 2:
            exit_code = int(word[1])
        else:
            bm_lines.append(line)
    delegate = job["delegate"]["name"]
    parsed = parse_output("\n".join(bm_lines), delegate)
    if exit_code not in (0, None) and "timed" not in parsed:
        last = (parsed["errors"] or [ln for ln in bm_lines if ln.strip()] or ["no output"])[-1]
        return host_result(job, "failed", f"benchmark_model exited with code {exit_code}: {last}",
                           output_tail="\n".join(bm_lines)[-4000:])  # fmt: skip
    status, message = status_of(parsed, delegate)
    timed = parsed.get("timed") or {}
    result: dict[str, Any] = {
        "schema": RESULT_SCHEMA,
        "job_id": job["job_id"],
        "agent": "benchmark_model",
        "agent_version": AGENT_VERSION,
        "status": status,
        "message": message,
        "runtime": {"name": "litert", "version": "benchmark_model"},
        "delegation": parsed["delegation"],
        "samples_ns": [],  # benchmark_model prints aggregates only; they are kept under "aggregate"
        "aggregate": {"unit": "us", **timed},
        "warmup": parsed.get("warmup"),
        "init_ms": parsed.get("init_ms"),
        "first_inference_ms": parsed["timing_first inference"] / 1e3 if "timing_first inference" in parsed else None,
        "memory": {k: parsed[k] for k in ("memory_kind", "memory_init_mb", "memory_overall_mb") if k in parsed},
        "output_tail": "\n".join(bm_lines)[-4000:],
    }
    if "memory_overall_mb" in parsed:
        result["peak_rss_kb"] = int(parsed["memory_overall_mb"] * 1024)
    if timed.get("count") and timed.get("avg") is not None and "bm_end" in edges:
        window_s = timed["count"] * timed["avg"] / 1e6
        result["window_ns"] = int(window_s * 1e9)
        edges["window_end"] = edges["bm_end"]
        edges["window_start"] = edges["bm_end"] - window_s  # estimated: benchmark_model marks no edges
    if battery is not None or external:
        result["telemetry"] = _telemetry(edges, walls, raw_samples, statuses, ticks, battery)
    return result


def _telemetry(edges: dict[str, float], walls: dict[str, float], raw: list[tuple[float, float, float]],
               statuses: list[str], ticks: int | None, spec: dict[str, Any] | None) -> dict[str, Any]:  # fmt: skip
    tel: dict[str, Any] = {
        "clock": "uptime",
        "edges": {name: {"t": t, "wall": walls.get(name), "counters": {}} for name, t in edges.items()},
        "sources": [],
        "errors": [],
        "sampler_cpu_seconds": ticks / CLOCK_TICKS if ticks is not None else None,
    }
    if spec is None:
        return tel
    options = spec.get("options") or {}
    unit = options.get("current_unit")
    if not raw:
        tel["errors"].append("battery: no samples (current_now unreadable on the phone?)")
    if any(s.lower().startswith("charging") for s in statuses):
        tel["errors"].append(
            "battery: charging during the run; battery power is not the phone's draw (unplug, or set battery_unplug)"
        )
    tel["sources"].append(
        {
            "source": "battery",
            "label": options.get("supply", "battery"),
            "kind": "power",
            "unit": "W",
            "rate_hz": float(spec.get("rate_hz") or 4.0),
            "facts_start": {"status": statuses[0] if statuses else None},
            "facts": {"status": statuses[-1] if statuses else None},
            "samples": [[t, battery_watts(c, v, unit)] for t, c, v in raw],
        }
    )
    return tel
