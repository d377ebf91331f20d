"""Drive the Python on-device agent: put it on the device, run a job, read its Result."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import TransportError
from ..transports.base import CommandResult, Transport
from ..zoo import sha256_file
from .phone import phone_facts
from .results import host_result

AGENT_FILE = Path(__file__).resolve().parents[2] / "device_agents" / "python" / "embench_agent.py"


class PythonAgent:
    """The agent in device_agents/python, run by the device's python3 through a transport."""

    NAME = "python"

    def __init__(self, transport: Transport, python: str = "python3") -> None:
        self.transport = transport
        self.python = python
        self._remote: str | None = None
        self.phone: dict[str, Any] = {}  # getprop facts when the device is a phone (ADB)

    def _path(self) -> str:
        if self._remote is None:
            if not AGENT_FILE.is_file():
                raise FileNotFoundError(f"the agent {AGENT_FILE} is missing; reinstall embench from its repository")
            self._remote = self.transport.ensure_file(AGENT_FILE, sha256_file(AGENT_FILE))
        return self._remote

    def probe(
        self, libraries: dict[str, str] | None = None, timeout: float = 60.0, roots: Sequence[str] = ()
    ) -> dict[str, Any]:
        """Device facts, the runtimes it has, whether each delegate library loads, and which telemetry
        sources are readable under / and under each of `roots`."""
        args = [arg for root in roots for arg in ("--root", root)]
        args += [f"{name}={lib}" for name, lib in sorted((libraries or {}).items())]
        try:
            res = self.transport.run([self.python, self._path(), "probe", *args], timeout=timeout)
        except FileNotFoundError as exc:  # the local transport could not even start the interpreter
            raise TransportError(self._no_python(str(exc))) from None
        if res.timed_out or res.returncode != 0:
            raise TransportError(self._no_python(_why(res, f"{self.python} running the agent")))
        try:
            info = dict(json.loads(res.stdout.decode("utf-8", "replace").strip().splitlines()[-1]))
        except (ValueError, IndexError):
            raise TransportError(
                self._no_python(f"the agent's probe printed no result: {res.stderr_tail(300)}")
            ) from None
        if self.transport.NAME == "adb":  # what the agent cannot see from Python on a phone: getprop
            self.phone = phone_facts(self.transport, timeout=timeout)
            info.setdefault("facts", {}).update(self.phone)
        return info

    def temperature(self, sources: list[dict[str, Any]], timeout: float = 30.0) -> float | None:
        """The device's hottest temperature source now, or None when none is readable."""
        res = self.transport.run(
            [self.python, self._path(), "temp"], stdin=json.dumps(sources).encode(), timeout=timeout
        )
        if res.timed_out or res.returncode != 0:
            return None
        try:
            value = json.loads(res.stdout.decode("utf-8", "replace").strip().splitlines()[-1]).get("temp_c")
        except (ValueError, IndexError):
            return None
        return float(value) if value is not None else None

    def _no_python(self, why: str) -> str:
        name = self.transport.device.name
        return f"device {name}: no usable Python ({why}); install python3 ≥ 3.8 on it or set python: for this device"

    def run(self, job: dict[str, Any], timeout: float) -> dict[str, Any]:
        """Run one job; always returns a Result (timeouts and crashes included)."""
        res = self.transport.run(
            [self.python, self._path(), "run", "-"], stdin=json.dumps(job).encode(), timeout=timeout
        )
        result = parse_result(job, res, timeout)
        result["command_seconds"] = res.seconds
        if self.phone:
            result["device_facts"] = {**(result.get("device_facts") or {}), **self.phone}
        return result


def parse_result(job: dict[str, Any], res: CommandResult, timeout: float) -> dict[str, Any]:
    """The agent's Result, or one made on the host saying how the agent ended."""
    tail = res.stderr_tail()
    if res.timed_out:
        return host_result(job, "timeout", f"no result within {timeout:g} s; the agent was killed", stderr_tail=tail)
    if res.signal_name:
        return host_result(job, "crashed", f"agent killed by {res.signal_name}", stderr_tail=tail)
    lines = res.stdout.decode("utf-8", "replace").strip().splitlines()
    if res.returncode == 0 and lines:
        try:
            result = json.loads(lines[-1])
        except ValueError:
            pass
        else:
            if isinstance(result, dict) and result.get("job_id") == job["job_id"]:
                result["stderr_tail"] = tail
                return result
    last = tail.strip().splitlines()[-1] if tail.strip() else "no output"
    return host_result(
        job, "crashed", f"agent exited with code {res.returncode} without a result: {last}", stderr_tail=tail
    )


def _why(res: CommandResult, what: str) -> str:
    if res.timed_out:
        return f"{what} timed out"
    tail = res.stderr_tail(400).strip().splitlines()
    return f"{what} exited with code {res.returncode}: {tail[-1] if tail else 'no output'}"
