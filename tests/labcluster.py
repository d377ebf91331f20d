"""A lab of many hosts on loopback (test support): a real Dask scheduler process, and `embench worker`
processes as the lab hosts, each driving its own devices."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path

from procs import popen, wait_for


class Process:
    """A background process whose output lines are collected as they come (nothing blocks on a pipe)."""

    def __init__(self, argv: list[str], cwd: Path, env: dict[str, str] | None = None) -> None:
        env = {**os.environ, "EMBENCH_STORE": "", **(env or {})}
        self.proc = popen(argv, cwd=cwd, env=env, stderr=subprocess.STDOUT, start_new_session=True)
        self.lines: list[str] = []
        self._new: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))
            self._new.put(line)

    def wait_line(self, text: str, timeout: float = 120) -> str:
        """The first line (already said or still to come) that contains `text`."""

        def found() -> str | None:
            if self.proc.poll() is not None and not any(text in line for line in self.lines):
                raise AssertionError(f"ended (exit {self.proc.returncode}) before saying {text!r}: {self.output()}")
            return next((line for line in self.lines if text in line), None)

        return wait_for(f"{text!r} from {self.proc.args}", found, timeout=timeout)

    def output(self) -> str:
        return "\n".join(self.lines[-60:])

    def kill(self) -> None:
        """SIGKILL to its whole process group (the worker and the agents it started): a host that dies."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=60)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()


class Scheduler(Process):
    def __init__(self, folder: Path) -> None:
        self.file = folder / "scheduler.json"
        super().__init__([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port",
                          "0", "--no-dashboard", "--scheduler-file", str(self.file)], cwd=folder)  # fmt: skip

        def address() -> str | None:
            if self.proc.poll() is not None:
                raise AssertionError(f"the Dask scheduler ended: {self.output()}")
            try:
                return str(json.loads(self.file.read_text())["address"])
            except (OSError, ValueError, KeyError):
                return None

        self.address = wait_for("the Dask scheduler's address", address)


def start_worker(inventory: Path, scheduler: Scheduler, name: str, devices: list[str], cwd: Path,
                 hide: Path | None = None) -> Process:  # fmt: skip
    """`embench worker` as a lab host would run it, once it serves its devices; with `hide`, in a mount
    namespace of its own where that folder is an empty tmpfs (a lab host without the shared zoo folder)."""
    argv = [sys.executable, "-m", "embench", "worker", str(inventory), "--scheduler", scheduler.address,
            "--devices", ",".join(devices), "--name", name]  # fmt: skip
    if hide is not None:
        argv = ["unshare", "-m", "--propagation", "private", "sh", "-c",
                'mount -t tmpfs tmpfs "$0" && exec "$@"', str(hide), *argv]  # fmt: skip
    worker = Process(argv, cwd=cwd)
    worker.wait_line(f"embench worker {name}: serving")
    return worker
