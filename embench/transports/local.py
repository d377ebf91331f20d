"""The host itself as a device: commands run as local processes, files are already there."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from .base import CommandResult, Transport

if TYPE_CHECKING:
    from ..inventory import Device


class LocalTransport(Transport):
    NAME = "local"
    # The interpreter embench runs in: a cron job's .venv/bin/embench has no activated venv on PATH.
    DEFAULT_PYTHON = sys.executable

    def __init__(self, device: Device) -> None:
        super().__init__(device)
        self._running: set[int] = set()

    def run(self, argv: list[str], *, stdin: bytes | None = None, timeout: float) -> CommandResult:
        start = time.monotonic()
        # A session of its own, so a timeout kills the agent and anything it started.
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        self._running.add(proc.pid)
        try:
            out, err = proc.communicate(stdin, timeout=timeout)
            return CommandResult(proc.returncode, out, err, False, time.monotonic() - start)
        except subprocess.TimeoutExpired:
            _kill_group(proc.pid)
            out, err = proc.communicate()
            return CommandResult(proc.returncode, out, err, True, time.monotonic() - start)
        except BaseException:
            _kill_group(proc.pid)
            proc.wait()
            raise
        finally:
            self._running.discard(proc.pid)

    def cancel(self) -> None:
        for pid in list(self._running):
            _kill_group(pid)

    def ensure_file(self, local: Path, sha256: str) -> str:
        return str(local.resolve())


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
