"""An external power meter on the host (a Monsoon, a Joulescope, a USB power meter, a smart plug):
a command whose stdout lines are samples, or a Python entry point that yields them. It runs for a
device's whole queue; each job takes its slice, moved onto the device's clock (clock.py).

A sample is `WATTS` (stamped by embench when the line arrives) or `UNIX_SECONDS WATTS` (stamped
by the meter on the host's wall clock), separated by spaces or a comma. Other lines are skipped
and counted. An entry point `module:function` is called as `function(options, stop)` and yields
`(unix_seconds, watts)` pairs (or bare watts) until the `threading.Event` `stop` is set.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import IO, Any

from embench_agent.protocol import Result, SourceTrace
from embench_agent.telemetry import HOST_SOURCES

from ..errors import TransportError
from ..transports.base import Transport
from .clock import ClockOffset, best_offset, edge_shift, parse_unix_time, to_device_clock

Sample = tuple[float, float]
EXTERNAL = HOST_SOURCES[0]
KEEP_BEHIND_S = 5.0  # samples older than this before a job's end are dropped once it has taken its slice


class MeterError(Exception):
    """The meter cannot be started: one line saying which meter and what to do."""


def parse_sample(text: str, arrived: float) -> Sample | None:
    """One stdout line → (unix seconds, watts), or None for a line that is not a sample."""
    fields = text.replace(",", " ").split()
    try:
        if len(fields) == 1:
            return arrived, float(fields[0])
        if len(fields) == 2:
            return float(fields[0]), float(fields[1])
    except ValueError:
        pass
    return None


class ExternalMeter:
    """One meter of one device (inventory: `{source: external, options: {command | entry_point}}`)."""

    def __init__(self, device: str, options: Mapping[str, str]) -> None:
        self.device, self.options = device, dict(options)
        self.command = self.options.get("command")
        self.entry_point = self.options.get("entry_point")
        self.label = self.options.get("label") or _label(self.command, self.entry_point)
        self._errors: list[str] = []
        self.skipped_lines = 0
        self._samples: list[Sample] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._proc: subprocess.Popen[bytes] | None = None
        self._stderr: IO[bytes] | None = None
        self._thread: threading.Thread | None = None

    def _say(self, why: str) -> str:
        return f"external meter {self.label!r}: {why}"

    def check(self) -> str | None:
        """Why this meter could not start (its program is not found, its entry point does not load),
        or None; for `embench devices`, without starting it."""
        if self.command:
            program = shlex.split(self.command)[0]
            if os.sep in program:  # relative to the folder it runs in, as when it starts
                found = os.access(os.path.join(self.options.get("cwd") or "", program), os.X_OK)
            else:
                found = shutil.which(program) is not None
            return None if found else self._say(f"`{program}` is not an executable program on this host")
        try:
            load_entry_point(str(self.entry_point), self.options.get("cwd"))
        except MeterError as exc:
            return str(exc)
        return None

    def start(self) -> None:
        """Start reading; MeterError when the command or entry point cannot even start."""
        cwd = self.options.get("cwd") or None
        if self.command:
            self._stderr = tempfile.TemporaryFile()
            try:
                self._proc = subprocess.Popen(
                    shlex.split(self.command), cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                    stderr=self._stderr, start_new_session=True,
                )  # fmt: skip
            except OSError as exc:
                raise MeterError(self._say(f"cannot start `{self.command}`: {exc.strerror or exc}")) from None
            target: Callable[[], None] = self._read_command
        else:
            function = load_entry_point(str(self.entry_point), cwd)
            target = lambda: self._read_entry_point(function)  # noqa: E731
        self._thread = threading.Thread(target=target, name=f"embench-meter-{self.device}", daemon=True)
        self._thread.start()

    def _error(self, why: str) -> None:
        with self._lock:
            self._errors.append(why)

    @property
    def ended(self) -> bool:
        """The meter stopped producing samples: its command exited or its entry point returned."""
        return self._thread is not None and not self._thread.is_alive()

    def drain_errors(self) -> list[str]:
        """What went wrong since the last call (the meter exited, raised, or stopped yielding)."""
        with self._lock:
            out, self._errors = self._errors, []
        return out

    def _add(self, sample: Sample | None) -> None:
        if sample is None:
            self.skipped_lines += 1
            return
        with self._lock:
            self._samples.append(sample)

    def _read_command(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        for raw in self._proc.stdout:
            self._add(parse_sample(raw.decode("utf-8", "replace"), time.time()) if raw.strip() else None)
        code = self._proc.wait()
        if not self._stop.is_set():
            self._error(f"`{self.command}` exited with code {code}: {self._stderr_tail()}")

    def _stderr_tail(self) -> str:
        if self._stderr is None:
            return ""
        self._stderr.seek(0)
        lines = self._stderr.read().decode("utf-8", "replace").strip().splitlines()
        return lines[-1] if lines else "no output"

    def _read_entry_point(self, function: Callable[..., Iterable[Any]]) -> None:
        try:
            for item in function(self.options, self._stop):
                if isinstance(item, (int, float)):
                    self._add((time.time(), float(item)))
                else:
                    t, watts = item
                    self._add((float(t), float(watts)))
                if self._stop.is_set():
                    break
        except Exception as exc:  # noqa: BLE001 - a meter's own failure is reported, never fatal
            self._error(f"{self.entry_point} raised {type(exc).__name__}: {exc}")
            return
        if not self._stop.is_set():
            self._error(f"{self.entry_point} stopped yielding samples")

    def take(self, t0: float, t1: float) -> list[Sample]:
        """The samples stamped within [t0, t1] (host wall clock); older ones are then let go."""
        with self._lock:
            out = [s for s in self._samples if t0 <= s[0] <= t1]
            self._samples = [s for s in self._samples if s[0] >= t1 - KEEP_BEHIND_S]
        return sorted(out)

    def stop(self) -> None:
        self._stop.set()
        if self._proc is not None and self._proc.poll() is None:
            for sig, wait in ((signal.SIGTERM, 3.0), (signal.SIGKILL, 3.0)):
                try:
                    os.killpg(self._proc.pid, sig)
                    self._proc.wait(wait)
                    break
                except ProcessLookupError:
                    break
                except subprocess.TimeoutExpired:
                    continue
        if self._thread is not None:
            self._thread.join(5.0)
        if self._stderr is not None:
            self._stderr.close()


def _label(command: str | None, entry_point: str | None) -> str:
    """The program's name (the script's, when an interpreter runs one), or the entry point."""
    if not command:
        return entry_point or "meter"
    words = [os.path.basename(w) for w in shlex.split(command)]
    if words[0].startswith(("python", "node", "perl", "ruby", "bash", "sh")):
        scripts = [w for w in words[1:] if not w.startswith("-")]
        return scripts[0] if scripts else words[0]
    return words[0]


def load_entry_point(spec: str, cwd: str | None) -> Callable[..., Iterable[Any]]:
    """`module:function`, importable as installed or from `cwd` (the inventory's folder)."""
    module_name, _, attr = spec.partition(":")
    if cwd and cwd not in sys.path:
        sys.path.insert(0, cwd)
    try:
        module = importlib.import_module(module_name)
        function = getattr(module, attr)
    except Exception as exc:  # noqa: BLE001 - whatever importing the user's module raised
        raise MeterError(f"external meter entry point {spec!r}: cannot load it: {type(exc).__name__}: {exc}") from None
    if not callable(function):
        raise MeterError(f"external meter entry point {spec!r} is not callable")
    return function  # type: ignore[no-any-return]


def measure_offset(transport: Transport, probes: int = 5, timeout: float = 10.0) -> ClockOffset:
    """Device wall clock − host wall clock, from `date +%s.%N` run `probes` times over the transport."""
    out = []
    for _ in range(probes):
        before = time.time()
        res = transport.run(["date", "+%s.%N"], timeout=timeout)
        after = time.time()
        if res.returncode != 0:
            raise ValueError(f"`date +%s.%N` exited with {res.returncode}: {res.stderr_tail(200).strip()}")
        out.append((before, parse_unix_time(res.stdout.decode("utf-8", "replace")), after))
    return best_offset(out)


def attach(result: Result, meters: list[ExternalMeter], transport: Transport, t0: float, t1: float) -> Result:
    """The result with each meter's samples from the job's host-time span [t0, t1] in its telemetry,
    on the device's clock, first among the power sources (a meter at the supply measures the whole
    device). Anything that stops it is recorded as a telemetry error, never raised."""
    tel = result.telemetry
    if tel is None:
        return result  # the agent ended before marking any edge: there is no window to put samples in
    errors = list(tel.errors)
    shift = edge_shift(tel.edges)
    try:
        if shift is None:
            raise ValueError("the agent marked no wall-clock edges (update the agent)")
        offset = measure_offset(transport)
    except (ValueError, TransportError) as exc:
        errors.extend(f"external {m.label}: cannot align the device's clock: {exc}" for m in meters)
        return dataclasses.replace(result, telemetry=dataclasses.replace(tel, errors=tuple(errors)))
    traces = []
    for meter in meters:
        raw = meter.take(t0, t1)
        rate = (len(raw) - 1) / (raw[-1][0] - raw[0][0]) if len(raw) > 1 and raw[-1][0] > raw[0][0] else 0.0
        traces.append(SourceTrace(
            source=EXTERNAL, label=meter.label, kind="power", unit="W", rate_hz=rate,
            facts={"clock_offset_s": offset.offset_s, "clock_uncertainty_s": offset.uncertainty_s,
                   "clock_shift_s": shift, "skipped_lines": meter.skipped_lines},
            samples=tuple(to_device_clock(raw, offset, shift)),
        ))  # fmt: skip
        errors.extend(f"external {meter.label}: {e}" for e in meter.drain_errors())
    telemetry = dataclasses.replace(tel, sources=(*traces, *tel.sources), errors=tuple(errors))
    return dataclasses.replace(result, telemetry=telemetry)
