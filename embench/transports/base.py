"""What every transport offers: run a command with a timeout, and put files on the device."""

from __future__ import annotations

import signal
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import DeviceUnreachable

if TYPE_CHECKING:
    from ..inventory import Device


@dataclass(frozen=True)
class CommandResult:
    """How a device command ended. `returncode` < 0 means it was killed by signal -returncode."""

    returncode: int | None
    stdout: bytes
    stderr: bytes
    timed_out: bool
    seconds: float

    @property
    def signal_name(self) -> str | None:
        if self.returncode is None or self.returncode >= 0:
            return None
        try:
            return signal.Signals(-self.returncode).name
        except ValueError:
            return f"signal {-self.returncode}"

    def stderr_tail(self, chars: int = 2000) -> str:
        return self.stderr.decode("utf-8", "replace")[-chars:]


# The slowest board hashes about this fast (a Pi Zero: ~20 MB/s); checking a cached file waits this long.
HASH_BYTES_PER_SECOND = 5e6


def from_shell_status(status: int) -> int:
    """A remote shell's exit status as a returncode: 128+N (killed by signal N) becomes -N, like subprocess."""
    return -(status - 128) if 128 < status < 160 else status


PGID_LINE = b"embench-pgid "


def take_pgid(out: bytearray) -> int | None:
    """The process group a remote wrapper printed first (`echo "embench-pgid $$"`), taken off `out`;
    None until the whole line has arrived."""
    if not (out.startswith(PGID_LINE) and b"\n" in out):
        return None
    line, _, rest = bytes(out).partition(b"\n")
    out[:] = rest
    return int(line.split()[1])


class Transport(ABC):
    """One device's channel. Commands are argv lists; a transport quotes them for its shell."""

    NAME: str = ""
    DEFAULT_PYTHON = "python3"  # what runs the Python agent when the device names no `python:`

    def __init__(self, device: Device) -> None:
        self.device = device
        self.pushed_bytes = 0  # bytes sent to the device by ensure_file, for reports and tests
        self._verified: set[str] = set()  # cached files whose content was checked on this connection

    @abstractmethod
    def run(self, argv: list[str], *, stdin: bytes | None = None, timeout: float) -> CommandResult:
        """Run argv on the device; on timeout kill it (and its children) and say so."""

    @abstractmethod
    def ensure_file(self, local: Path, sha256: str) -> str:
        """Make `local` present on the device (content-addressed: sent once per sha256); return its path there."""

    def content_matches(self, remote: str, sha256: str, size: int) -> bool:
        """Whether a cached file on the device holds what its name says (`sha256sum` there), checked once
        per connection: a file damaged in place keeps its size, and would otherwise be trusted."""
        if remote in self._verified:
            return True
        timeout = 10.0 + size / HASH_BYTES_PER_SECOND
        res = self.run(["sha256sum", remote], timeout=timeout)
        if res.timed_out:
            raise DeviceUnreachable(
                f"device {self.device.name}: `sha256sum {remote}` did not finish within {timeout:.0f} s; the device"
                " is not answering"
            )
        words = res.stdout.split()
        if res.returncode != 0 or not words:
            return True  # no sha256sum on the device: its size is all there is to go on
        if words[0].decode("ascii", "replace") != sha256:
            return False
        self._verified.add(remote)
        return True

    def prune_cache(self, keep: set[str]) -> tuple[int, int]:
        """Delete cached files whose sha256 is not in `keep`; return (files, bytes) removed."""
        return 0, 0

    def cancel(self) -> None:
        """Kill the command now running, if any (the sweep is being interrupted)."""

    def close(self) -> None:
        """Release connections."""
