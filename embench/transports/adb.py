"""Android phones over ADB (adb-shell): TCP or USB, an RSA key, the shell v2 protocol for exit codes
where the phone offers it, sync push/pull, and the same content-addressed cache as the SSH path."""

from __future__ import annotations

import io
import os
import select
import shlex
import socket
import stat
import struct
import threading
import time
import uuid
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

import numpy as np
from adb_shell import adb_device, adb_message, constants, exceptions
from adb_shell.adb_device import AdbDevice, _AdbIOManager
from adb_shell.adb_message import AdbMessage
from adb_shell.auth.keygen import keygen, write_public_keyfile
from adb_shell.auth.sign_cryptography import CryptographySigner
from adb_shell.transport.tcp_transport import TcpTransport

from ..errors import DeviceUnreachable, TransportError
from .base import CommandResult, Transport, from_shell_status, take_pgid
from .configs import AdbConfig

if TYPE_CHECKING:
    from ..inventory import Device


DEFAULT_WORKDIR = "/data/local/tmp/embench"
DEFAULT_KEY = "~/.android/adbkey"
POLL_SECONDS = 0.5  # how often a running command checks its deadline and cancellation
# shell protocol v2 packet ids (adb's shell_protocol.h)
_STDOUT, _STDERR, _EXIT = 1, 2, 3
_ADB_ERRORS = (
    exceptions.AdbConnectionError,
    exceptions.AdbTimeoutError,
    exceptions.InvalidChecksumError,
    exceptions.InvalidCommandError,
    exceptions.InvalidResponseError,
    exceptions.TcpTimeoutException,
    exceptions.UsbReadFailedError,
    exceptions.UsbWriteFailedError,
    OSError,  # ConnectionError included
    struct.error,
)


def _fast_checksum(data: bytes | bytearray | str) -> int:
    """The ADB header's "crc32" (a byte sum), in C: adb-shell's sum() over a Python iterator
    cost 90 ms per 20 MiB, most of a push on loopback (benchmarks/adb_push.py)."""
    raw = data.encode() if isinstance(data, str) else data
    return int(np.frombuffer(raw, dtype=np.uint8).sum(dtype=np.uint64)) & 0xFFFFFFFF


adb_message.checksum = _fast_checksum  # used when packing what we send
adb_device.checksum = _fast_checksum  # used when checking what we receive


class _Tcp(TcpTransport):  # type: ignore[misc]
    """adb-shell's TCP transport, made safe: whole writes, no Nagle delay, EOF raised, not spun on."""

    def connect(self, transport_timeout_s: float | None) -> None:
        super().connect(transport_timeout_s)
        self._connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def bulk_read(self, numbytes: int, transport_timeout_s: float | None) -> bytes:
        data: bytes = super().bulk_read(numbytes, transport_timeout_s)
        if not data:
            raise ConnectionError(f"{self._host}:{self._port} closed the connection")
        return data

    def bulk_write(self, data: bytes, transport_timeout_s: float | None) -> int:
        view = memoryview(data)
        while view:
            _, writable, _ = select.select([], [self._connection], [], transport_timeout_s)
            if not writable:
                raise exceptions.TcpTimeoutException(f"sending to {self._host}:{self._port} timed out")
            view = view[self._connection.send(view) :]
        return len(data)


class _BannerIO(_AdbIOManager):  # type: ignore[misc]
    """Remembers the phone's CNXN banner (its features) and whether it asked for authorisation."""

    banner = b""
    asked_auth = False

    def _read_expected_packet_from_device(self, expected_cmds: list[bytes], adb_info: Any) -> Any:
        cmd, arg0, arg1, data = super()._read_expected_packet_from_device(expected_cmds, adb_info)
        if cmd == constants.CNXN:
            self.banner = bytes(data)
        elif cmd == constants.AUTH:
            self.asked_auth = True
        return cmd, arg0, arg1, data


def _split_v2(raw: bytearray, out: bytearray, err: bytearray, code: int | None) -> int | None:
    """Move every whole shell,v2 packet off `raw` into stdout or stderr; return the exit code once sent."""
    while len(raw) >= 5:
        ident, length = struct.unpack_from("<BI", raw)
        if len(raw) < 5 + length:
            break
        payload = bytes(raw[5 : 5 + length])
        del raw[: 5 + length]
        if ident == _STDOUT:
            out += payload
        elif ident == _STDERR:
            err += payload
        elif ident == _EXIT and payload:
            code = payload[0]
    return code


class AdbTransport(Transport):
    NAME = "adb"

    def __init__(self, device: Device) -> None:
        super().__init__(device)
        assert device.adb is not None
        self.cfg: AdbConfig = device.adb
        self.workdir = PurePosixPath(device.workdir or DEFAULT_WORKDIR)
        self._dev: AdbDevice | None = None
        self._io: _BannerIO | None = None
        self._lock = threading.RLock()
        self._made_dirs: set[str] = set()  # mkdir -p once per folder, not before every push
        self._running: set[threading.Event] = set()  # one per command now running: cancel() sets them

    # -- connection --------------------------------------------------------------------------

    @property
    def serial(self) -> str:
        return self.cfg.serial

    @property
    def features(self) -> set[str]:
        banner = self._io.banner.decode("utf-8", "replace") if self._io else ""
        for part in banner.split(";"):
            if "features=" in part:
                return set(part.split("features=", 1)[1].split(","))
        return set()

    def _connect(self) -> AdbDevice:
        if self._dev is not None and self._dev.available:
            return self._dev
        self.close()
        name, cfg = self.device.name, self.cfg
        signer = _signer(cfg.key_file or DEFAULT_KEY)
        if ":" in cfg.serial:
            host, _, port = cfg.serial.rpartition(":")
            transport: Any = _Tcp(host, int(port))
        else:
            transport = _usb_transport(name, cfg.serial)
        dev = AdbDevice(transport, default_transport_timeout_s=cfg.connect_timeout, banner="embench")
        self._io = dev._io_manager = _BannerIO(transport)
        try:
            dev.connect(rsa_keys=[signer], auth_timeout_s=cfg.auth_timeout, read_timeout_s=cfg.connect_timeout)
        except exceptions.DeviceAuthError:
            raise TransportError(self._auth_message()) from None
        except _ADB_ERRORS as exc:
            if self._io.asked_auth:
                raise TransportError(self._auth_message()) from None
            raise DeviceUnreachable(
                f"device {name}: cannot connect to phone {cfg.serial}: {_why(exc)}; check that it is on and reachable"
                " (ADB over TCP is off again after a reboot: `adb tcpip 5555` over USB turns it back on)"
            ) from None
        except exceptions.UsbDeviceNotFoundError:
            raise DeviceUnreachable(f"device {name}: no USB phone with serial {cfg.serial} is attached") from None
        self._dev = dev
        return dev

    def _auth_message(self) -> str:
        key = os.path.expanduser(self.cfg.key_file or DEFAULT_KEY)
        return (
            f"device {self.device.name}: phone {self.cfg.serial} did not accept the key {key}; unlock the phone and"
            " tap 'Allow' on the 'Allow USB debugging?' prompt (tick 'Always allow'), or set adb.key_file to a key"
            " it already trusts"
        )

    def close(self) -> None:
        with self._lock:
            if self._dev is not None:
                try:
                    self._dev.close()
                except _ADB_ERRORS:
                    pass
            self._dev = None

    # -- commands ----------------------------------------------------------------------------

    def run(self, argv: list[str], *, stdin: bytes | None = None, timeout: float) -> CommandResult:
        start = time.monotonic()
        command = shlex.join(argv)
        cleanup = ""
        if stdin is not None:
            path = str(self.workdir / "tmp" / f"stdin-{uuid.uuid4().hex}")
            self.put_bytes(stdin, path)
            command += f" < {shlex.quote(path)}"
            cleanup = f"; rm -f {shlex.quote(path)}"
        # adbd starts the shell in a session of its own, so $$ is the process group to kill on timeout.
        body = f'echo "embench-pgid $$"; {command}'
        cancelled = threading.Event()
        self._running.add(cancelled)
        try:
            with self._lock:
                dev = self._connect()
                v2 = "shell_v2" in self.features
                if v2:
                    script = f"{body}; s=$?{cleanup}; exit $s" if cleanup else body
                else:  # v1 has no exit status and mixes stderr in: say the status in-band
                    script = f'({body}) 2>&1; s=$?{cleanup}; echo; echo "embench-exit $s"'
                service = b"shell,v2,raw:" if v2 else b"shell:"
                info = dev._open(service + script.encode(), POLL_SECONDS, POLL_SECONDS, None)
            out, err, code, pgid, timed_out = self._collect(dev, info, v2, start + timeout, cancelled)
        except _ADB_ERRORS as exc:
            self.close()
            raise DeviceUnreachable(
                f"device {self.device.name}: connection to phone {self.serial} lost: {_why(exc)}"
            ) from None
        finally:
            self._running.discard(cancelled)
        if timed_out:
            self._kill(pgid)
            return CommandResult(None, out, err, True, time.monotonic() - start)
        if code is None:
            raise DeviceUnreachable(
                f"device {self.device.name}: phone {self.serial} closed the command without an exit status"
            )
        return CommandResult(from_shell_status(code), out, err, False, time.monotonic() - start)

    def _collect(
        self, dev: AdbDevice, info: Any, v2: bool, deadline: float, cancelled: threading.Event
    ) -> tuple[bytes, bytes, int | None, int | None, bool]:
        """Read the stream to CLSE (or the deadline); split v2 packets; take the pgid line off stdout."""
        raw, out, err = bytearray(), bytearray(), bytearray()
        code: int | None = None
        pgid: int | None = None
        while True:
            if time.monotonic() >= deadline or cancelled.is_set():
                self._close_stream(dev, info)
                return bytes(out), bytes(err), None, pgid, True
            try:
                with self._lock:
                    cmd, data = dev._read_until([constants.CLSE, constants.WRTE], info)
            except (exceptions.TcpTimeoutException, exceptions.AdbTimeoutError):
                continue  # nothing yet: check the deadline again
            if cmd == constants.CLSE:
                with self._lock:
                    dev._io_manager.send(AdbMessage(constants.CLSE, info.local_id, info.remote_id), info)
                break
            if not v2:
                out += data
            else:
                raw += data
                code = _split_v2(raw, out, err, code)
            if pgid is None:
                pgid = take_pgid(out)
        if not v2:
            text, _, status = bytes(out).rstrip(b"\n").rpartition(b"\nembench-exit ")
            if status.strip().isdigit():  # the extra echo's newline was the separator: text is the output
                out, code = bytearray(text), int(status)
        return bytes(out), bytes(err), code, pgid, False

    def _close_stream(self, dev: AdbDevice, info: Any) -> None:
        try:
            with self._lock:
                dev._io_manager.send(AdbMessage(constants.CLSE, info.local_id, info.remote_id), info)
        except _ADB_ERRORS:
            pass

    def _kill(self, pgid: int | None) -> None:
        if pgid is None:
            return
        try:
            with self._lock:
                self._connect().shell(f"kill -KILL -{int(pgid)} 2>/dev/null", read_timeout_s=10)
        except (*_ADB_ERRORS, TransportError):
            pass  # the phone is gone: nothing left to kill from here

    def cancel(self) -> None:
        """Kill the commands running now (their readers see it within POLL_SECONDS); commands started
        later, such as the `dumpsys battery reset` of the queue's cleanup, run as usual."""
        for cancelled in list(self._running):
            cancelled.set()

    # -- files -------------------------------------------------------------------------------

    def _sync(self, what: str, fn: Any) -> Any:
        """fn(device), with adb-shell's errors turned into ours (a lost phone: DeviceUnreachable)."""
        try:
            with self._lock:
                return fn(self._connect())
        except (exceptions.PushFailedError, exceptions.AdbCommandFailureException) as exc:
            raise TransportError(
                f"device {self.device.name}: {what} failed on phone {self.serial}: {_why(exc)}"
            ) from None
        except _ADB_ERRORS as exc:
            self.close()
            raise DeviceUnreachable(
                f"device {self.device.name}: {what} on phone {self.serial} failed: {_why(exc)}"
            ) from None

    def _mkdir(self, path: PurePosixPath) -> None:
        if str(path) in self._made_dirs:
            return
        res = self.run_plain(f"mkdir -p {shlex.quote(str(path))}")
        if res.strip():
            raise TransportError(
                f"device {self.device.name}: cannot create {path} on phone {self.serial}: {res.strip()};"
                " set the device's workdir: to a folder the shell can write (e.g. /data/local/tmp/embench)"
            )
        self._made_dirs.add(str(path))

    def run_plain(self, command: str) -> str:
        """A quick command through the plain shell service; its output (stderr mixed in)."""
        return str(self._sync(command, lambda dev: dev.shell(command, read_timeout_s=30)))

    def put_bytes(self, data: bytes, remote: str) -> None:
        self._mkdir(PurePosixPath(remote).parent)
        self._sync(f"writing {remote}", lambda dev: dev.push(io.BytesIO(data), remote, st_mode=0o100600))

    def ensure_file(self, local: Path, sha256: str) -> str:
        """Push `local` into {workdir}/cache/<sha256><suffix> unless it is already there."""
        remote = str(self.workdir / "cache" / f"{sha256}{local.suffix}")
        size = local.stat().st_size
        mode, remote_size, _ = self._sync(f"checking {remote}", lambda dev: dev.stat(remote))
        if mode and remote_size == size & 0xFFFFFFFF and self.content_matches(remote, sha256, size):
            return remote
        self._mkdir(self.workdir / "cache")
        partial = f"{remote}.part-{os.getpid()}"
        self._sync(f"copying {local.name}", lambda dev: dev.push(str(local), partial, st_mode=0o100755))
        out = self.run_plain(f"mv -f {shlex.quote(partial)} {shlex.quote(remote)}")
        if out.strip():
            raise TransportError(
                f"device {self.device.name}: cannot place {remote} on phone {self.serial}: {out.strip()}"
            )
        self.pushed_bytes += size
        return remote

    def pull(self, remote: str, local: Path) -> None:
        self._sync(f"copying {remote} back", lambda dev: dev.pull(remote, str(local)))

    def prune_cache(self, keep: set[str]) -> tuple[int, int]:
        cache = str(self.workdir / "cache")
        entries = self._sync(f"listing {cache}", lambda dev: dev.list(cache))
        doomed, freed = [], 0
        for entry in entries:
            raw = entry.filename
            name = bytes(raw).decode("utf-8", "surrogateescape") if isinstance(raw, (bytes, bytearray)) else str(raw)
            if name.split(".", 1)[0] in keep or not stat.S_ISREG(entry.mode):
                continue
            doomed.append(f"{cache}/{name}")
            freed += entry.size
        if doomed:  # one shell round trip for all of them
            self.run_plain("rm -f " + shlex.join(doomed))
        return len(doomed), freed


def _signer(key_file: str) -> CryptographySigner:
    """The RSA key the phone will be asked to trust, generated once (like adb does) if absent."""
    path = Path(os.path.expanduser(key_file))
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        keygen(str(path))
    elif not path.with_name(path.name + ".pub").exists():
        write_public_keyfile(str(path), str(path) + ".pub")
    try:
        return CryptographySigner(str(path))
    except (ValueError, OSError) as exc:
        raise TransportError(f"cannot read the ADB key {path}: {exc}; delete it to have a new one made") from None


def _usb_transport(name: str, serial: str) -> Any:
    try:
        from adb_shell.transport.usb_transport import UsbTransport  # noqa: PLC0415 - needs libusb1
    except ImportError as exc:
        raise TransportError(
            f"device {name}: USB phones need libusb ({exc}); install embench with its default dependencies and"
            " the libusb-1.0-0 Debian package, or use ADB over TCP (serial: host:port)"
        ) from None
    try:
        return UsbTransport.find_adb(serial=serial)
    except exceptions.UsbDeviceNotFoundError:
        raise DeviceUnreachable(
            f"device {name}: no USB phone with serial {serial}; check the cable, and stop a running adb server"
            " (`adb kill-server`), which holds the phone's USB interface"
        ) from None


def _why(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
