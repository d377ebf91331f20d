"""Drive the Python on-device agent: put its bundle on the device, run a job, check its Result."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from pathlib import Path

from embench_agent.protocol import (
    Accuracy,
    DeviceFacts,
    Job,
    Outputs,
    Probe,
    ProtocolError,
    Result,
    SourceSpec,
    TempReading,
)

from ..errors import TransportError
from ..inventory import Device
from ..transports.base import CommandResult, Transport
from .base import host_result
from .bundle import bundled_agent
from .phone import phone_facts


class PythonAgent:
    """The agent package (device_agents/python/embench_agent), bundled into one .pyz and run by the
    device's python3 through a transport."""

    NAME = "python"

    def __init__(self, transport: Transport, device: Device) -> None:
        self.transport = transport
        self.python = device.python or transport.DEFAULT_PYTHON
        self._remote: str | None = None
        self.phone = DeviceFacts()  # getprop facts when the device is a phone (ADB)

    def _path(self) -> str:
        if self._remote is None:
            local, sha = bundled_agent()
            self._remote = self.transport.ensure_file(local, sha)
        return self._remote

    def probe(self, libraries: Mapping[str, str], timeout: float = 60.0, roots: Sequence[str] = ()) -> Probe:
        args = [arg for root in roots for arg in ("--root", root)]
        args += [f"{name}={lib}" for name, lib in sorted(libraries.items())]
        try:
            res = self.transport.run([self.python, self._path(), "probe", *args], timeout=timeout)
        except FileNotFoundError as exc:  # the local transport could not even start the interpreter
            raise TransportError(self._no_python(str(exc))) from None
        if res.timed_out or res.returncode != 0:
            raise TransportError(self._no_python(_why(res, f"{self.python} running the agent")))
        try:
            info = Probe.from_json(_last_line(res))
        except ProtocolError as exc:
            why = f"the agent's probe printed no probe ({exc}): {res.stderr_tail(300)}"
            raise TransportError(self._no_python(why)) from None
        if self.transport.NAME == "adb":  # what the agent cannot see from Python on a phone: getprop
            self.phone = phone_facts(self.transport, timeout=timeout)
            info = dataclasses.replace(info, facts=info.facts.merged(self.phone))
        return info

    def temperature(self, sources: Sequence[SourceSpec], timeout: float = 30.0) -> float | None:
        stdin = json.dumps([s.to_dict() for s in sources]).encode()
        res = self.transport.run([self.python, self._path(), "temp"], stdin=stdin, timeout=timeout)
        if res.timed_out or res.returncode != 0:
            return None
        try:
            return TempReading.from_json(_last_line(res)).temp_c
        except ProtocolError:
            return None

    def _no_python(self, why: str) -> str:
        name = self.transport.device.name
        return f"device {name}: no usable Python ({why}); install python3 ≥ 3.8 on it or set python: for this device"

    def run(self, job: Job, timeout: float, model_file: Path | None = None) -> Result:
        res = self.transport.run([self.python, self._path(), "run", "-"], stdin=job.to_json().encode(), timeout=timeout)
        result = parse_result(job, res, timeout)
        facts = result.device_facts.merged(self.phone)
        return dataclasses.replace(result, command_seconds=res.seconds, device_facts=facts)


def _last_line(res: CommandResult) -> str:
    lines = res.stdout.decode("utf-8", "replace").strip().splitlines()
    return lines[-1] if lines else ""


def parse_result(job: Job, res: CommandResult, timeout: float) -> Result:
    """The agent's Result checked against the contract, or one made on the host saying how the agent
    ended (timed out, killed, exited without a result, printed something that is not a Result)."""
    tail = res.stderr_tail()
    died = f"no result within {timeout:g} s" if res.timed_out else (res.signal_name and f"killed by {res.signal_name}")
    if died:
        early = _early_result(job, res)
        if early is not None:  # measured; what killed it were the checks after the timed window
            return _checks_cut_short(job, early, f"the agent was {died} after its timed window, in the checks;"
                                     " the timing stands", tail)  # fmt: skip
        if res.timed_out:
            return host_result(job, "timeout", f"{died}; the agent was killed", stderr_tail=tail)
        return host_result(job, "crashed", f"agent {died}", stderr_tail=tail)
    line = _last_line(res)
    if res.returncode != 0 or not line:
        last = tail.strip().splitlines()[-1] if tail.strip() else "no output"
        return host_result(
            job, "crashed", f"agent exited with code {res.returncode} without a result: {last}", stderr_tail=tail
        )
    try:
        result = Result.from_json(line)
    except ProtocolError as exc:
        return host_result(
            job, "failed", f"device {job.device}: the agent's output is not a valid result: {exc}; its last line:"
            f" {line[:200]!r}", stderr_tail=tail,
        )  # fmt: skip
    if result.job_id != job.job_id:
        return host_result(job, "failed", f"device {job.device}: the agent answered for job {result.job_id!r},"
                           f" not {job.job_id!r}", stderr_tail=tail)  # fmt: skip
    return dataclasses.replace(result, stderr_tail=tail)


def _early_result(job: Job, res: CommandResult) -> Result | None:
    """The Result the agent printed before its checks, when its process died after that; else None."""
    try:
        result = Result.from_json(_last_line(res))
    except ProtocolError:
        return None
    return result if result.job_id == job.job_id and result.measured else None


def _checks_cut_short(job: Job, result: Result, why: str, tail: str) -> Result:
    outputs = (
        Outputs(inputs=job.checks.fidelity_inputs, seed=job.seed, error=why) if job.checks.fidelity_inputs else None
    )
    accuracy = Accuracy(samples=0, error=why) if job.checks.eval_path else None
    return dataclasses.replace(result, outputs=outputs, accuracy=accuracy, stderr_tail=tail)


def _why(res: CommandResult, what: str) -> str:
    if res.timed_out:
        return f"{what} timed out"
    tail = res.stderr_tail(400).strip().splitlines()
    return f"{what} exited with code {res.returncode}: {tail[-1] if tail else 'no output'}"
