"""Transports by name: adding one is a module plus a line in TRANSPORTS."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .adb import AdbTransport
from .base import CommandResult, Transport
from .local import LocalTransport
from .ssh import SshTransport

TRANSPORTS: dict[str, type[Transport]] = {
    LocalTransport.NAME: LocalTransport,
    SshTransport.NAME: SshTransport,
    AdbTransport.NAME: AdbTransport,
}

if TYPE_CHECKING:
    from ..inventory import Device

__all__ = ["TRANSPORTS", "CommandResult", "Transport", "open_transport"]


def open_transport(device: Device) -> Transport:
    return TRANSPORTS[device.transport](device)
