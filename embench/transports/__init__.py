"""Transports by name: adding one is a module plus a line in TRANSPORTS.

A transport's module is imported when a device of it is opened, not when an inventory is read:
paramiko and adb-shell are a fifth of every CLI start-up otherwise (`embench --help`, an error)."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module
from typing import TYPE_CHECKING

from .base import CommandResult, Transport

if TYPE_CHECKING:
    from ..inventory import Device


@dataclass(frozen=True)
class Registered:
    """Where a transport's class is, and the Device field holding its config (configs.py), if any."""

    module: str
    cls: str
    config_key: str | None = None

    def load(self) -> type[Transport]:
        found: type[Transport] = getattr(import_module(f"{__name__}.{self.module}"), self.cls)
        return found


TRANSPORTS: dict[str, Registered] = {
    "local": Registered("local", "LocalTransport"),
    "ssh": Registered("ssh", "SshTransport", "ssh"),
    "adb": Registered("adb", "AdbTransport", "adb"),
}

__all__ = ["TRANSPORTS", "CommandResult", "Registered", "Transport", "open_transport"]


def open_transport(device: Device) -> Transport:
    return TRANSPORTS[device.transport].load()(device)
