"""Each transport's section of a device entry (`ssh:`, `adb:`), apart from its transport: reading an
inventory needs these, not paramiko or adb-shell (a fifth of a CLI start-up, imported only when a
device of that transport is opened)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ..yamlschema import bounded


@dataclass(frozen=True)
class AdbConfig:
    """Where a phone is reached over ADB (a device's `adb:` section)."""

    serial: str
    key_file: str | None = None
    agent: Literal["benchmark_model", "python"] = "benchmark_model"
    benchmark_model: str | None = None
    cpu_mask: str | None = None
    battery_unplug: bool = False
    connect_timeout: float = bounded(10.0, above=0, max=3600)
    auth_timeout: float = bounded(30.0, above=0, max=3600)


@dataclass(frozen=True)
class SshConfig:
    """Where a board is reached over SSH (a device's `ssh:` section)."""

    host: str
    port: int = bounded(22, min=1, max=65535)
    user: str | None = None
    key_file: str | None = None
    known_hosts: str | None = None
    accept_unknown_host_key: bool = False
    connect_timeout: float = bounded(10.0, above=0, max=3600)
    keepalive_seconds: int = bounded(15, min=0, max=86400)
    # A board that answers nothing for this long while a command's input, a file or its exit status
    # is on the way (sshd stopped, a hung kernel) is given up like a lost one.
    io_timeout: float = bounded(30.0, above=0, max=3600)
    # TFLite's benchmark_model instead of the Python agent (a board with no Python runtime, or to
    # compare): the board's own build of it, on this machine (pushed like a model), and an optional
    # taskset CPU mask (docs/devices/raspberry-pi.md).
    agent: Literal["python", "benchmark_model"] = "python"
    benchmark_model: str | None = None
    cpu_mask: str | None = None
