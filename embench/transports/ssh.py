"""Linux boards over SSH (paramiko): strict host keys, key auth, quoted commands, a content-addressed cache."""

from __future__ import annotations

import contextlib
import getpass
import logging
import os
import select
import shlex
import socket
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

import paramiko

from ..errors import DeviceUnreachable, TransportError
from .base import CommandResult, Transport, from_shell_status, take_pgid
from .configs import SshConfig

# paramiko logs a multi-line traceback for a port that never speaks SSH, through logging's last-resort
# handler onto the user's terminal; embench says each failure in its own one line instead.
logging.getLogger("paramiko").addHandler(logging.NullHandler())

if TYPE_CHECKING:
    from ..inventory import Device


# Runs argv in a session of its own (so a timeout kills the whole group), prints the group id
# first, and turns "killed by signal N" into exit status 128+N (paramiko drops exit-signal).
_WRAPPER = 'echo "embench-pgid $$"; "$@"; exit $?'


class SshTransport(Transport):
    NAME = "ssh"

    def __init__(self, device: Device) -> None:
        super().__init__(device)
        assert device.ssh is not None
        self.cfg: SshConfig = device.ssh
        self.workdir = _remote_dir(device.workdir or ".cache/embench")
        self._client: paramiko.SSHClient | None = None
        self._sftp: paramiko.SFTPClient | None = None
        self._lock = threading.Lock()
        self._running: set[int] = set()

    # -- connection --------------------------------------------------------------------------

    @property
    def where(self) -> str:
        user = self.cfg.user or getpass.getuser()
        return f"{user}@{self.cfg.host}:{self.cfg.port}"

    def _connect(self) -> paramiko.SSHClient:
        if self._client is not None and self._client.get_transport() and self._client.get_transport().is_active():  # type: ignore[union-attr]
            return self._client
        self._client, self._sftp = None, None
        cfg = self.cfg
        known = Path(os.path.expanduser(cfg.known_hosts or "~/.ssh/known_hosts"))
        client = paramiko.SSHClient()
        if known.is_file():
            client.load_host_keys(str(known))
        client.set_missing_host_key_policy(
            paramiko.AutoAddPolicy() if cfg.accept_unknown_host_key else paramiko.RejectPolicy()
        )
        self._open(client, known)
        if cfg.accept_unknown_host_key:
            known.parent.mkdir(parents=True, exist_ok=True)
            client.save_host_keys(str(known))  # accept-new: pinned from now on
        transport = client.get_transport()
        assert transport is not None
        transport.set_keepalive(cfg.keepalive_seconds)
        # Without it, Nagle's algorithm holds each small SSH packet for the peer's delayed ACK: a
        # command took ~45 ms on loopback instead of ~4 ms (benchmarks/ssh_command_latency.py).
        if isinstance(transport.sock, socket.socket):
            transport.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._client = client
        return client

    def _open(self, client: paramiko.SSHClient, known: Path) -> None:
        """Connect and authenticate; every way it can fail becomes one line saying what to do."""
        cfg = self.cfg
        key_file = os.path.expanduser(cfg.key_file) if cfg.key_file else None
        try:
            client.connect(
                cfg.host,
                port=cfg.port,
                username=cfg.user or getpass.getuser(),
                key_filename=key_file,
                allow_agent=key_file is None,
                look_for_keys=False,
                timeout=cfg.connect_timeout,
                banner_timeout=cfg.connect_timeout,
                auth_timeout=cfg.connect_timeout,
            )
        except paramiko.BadHostKeyException:
            raise TransportError(
                f"device {self.device.name}: the host key of {_host_label(cfg)} has CHANGED since it was stored in {known};"
                f" if the board was reinstalled, remove the old key with `ssh-keygen -f {known} -R {_host_label(cfg)!r}`"
                " and add the new one; otherwise someone may be intercepting the connection"
            ) from None
        except paramiko.AuthenticationException as exc:
            raise TransportError(
                f"device {self.device.name}: {self.where} refused the key {key_file or '(from ssh-agent)'} ({exc});"
                " add its public key to ~/.ssh/authorized_keys on the board, or set ssh.key_file"
            ) from None
        except paramiko.SSHException as exc:
            if "not found in known_hosts" in str(exc):
                raise TransportError(
                    f"device {self.device.name}: the host key of {_host_label(cfg)} is not in {known}; check the board's"
                    f" fingerprint, then add it with `ssh-keyscan -p {cfg.port} {cfg.host} >> {known}`,"
                    " or set ssh.accept_unknown_host_key: true for this device"
                ) from None
            if any(word in str(exc) for word in ("banner", "No existing session", "Error reading SSH")):
                raise DeviceUnreachable(
                    f"device {self.device.name}: {self.where} accepted the connection but did not speak SSH within"
                    f" {cfg.connect_timeout:g} s (sshd frozen or overloaded, or another service on that port);"
                    " check the board and ssh.port"
                ) from None
            raise DeviceUnreachable(f"device {self.device.name}: ssh to {self.where} failed: {exc}") from None
        except paramiko.ssh_exception.NoValidConnectionsError:  # every address refused the connection
            raise DeviceUnreachable(
                f"device {self.device.name}: cannot connect to {self.where}: connection refused (is sshd running"
                f" on the board, and is ssh.port {cfg.port} right?)"
            ) from None
        except (OSError, EOFError) as exc:
            raise DeviceUnreachable(f"device {self.device.name}: cannot connect to {self.where}: {exc}") from None

    @contextlib.contextmanager
    def _watchdog(self) -> Iterator[None]:
        """Drop the connection when the block takes longer than io_timeout: paramiko waits for the
        answer to a command or subsystem request with no timeout, and a frozen board never sends it.
        Dropping it wakes the waiter with an SSHException, which says the device is lost."""
        client = self._client
        timer = threading.Timer(self.cfg.io_timeout, client.close if client is not None else (lambda: None))
        timer.daemon = True
        timer.start()
        try:
            yield
        finally:
            timer.cancel()

    def _sftp_client(self) -> paramiko.SFTPClient:
        transport = self._connect().get_transport()
        assert transport is not None
        if self._sftp is None:
            # Bounded, unlike paramiko's open_sftp(): a board that stops answering mid-transfer (sshd
            # stopped, a hung kernel) raises socket.timeout here instead of hanging the sweep.
            chan = transport.open_session(timeout=self.cfg.connect_timeout)
            chan.settimeout(self.cfg.io_timeout)
            with self._watchdog():
                chan.invoke_subsystem("sftp")
            self._sftp = paramiko.SFTPClient(chan)
        return self._sftp

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
        self._client, self._sftp = None, None

    # -- commands ----------------------------------------------------------------------------

    def run(self, argv: list[str], *, stdin: bytes | None = None, timeout: float) -> CommandResult:
        command = "exec setsid -w sh -c " + shlex.quote(_WRAPPER) + " embench " + shlex.join(argv)
        start = time.monotonic()
        try:
            with self._lock:
                chan = self._connect().get_transport().open_session(timeout=self.cfg.connect_timeout)  # type: ignore[union-attr]
            chan.settimeout(self.cfg.io_timeout)
            with self._watchdog():
                chan.exec_command(command)
            if stdin:
                chan.sendall(stdin)
            chan.shutdown_write()
            out, err, pgid, timed_out = _collect(chan, start + timeout, self._running)
            if not timed_out and not chan.status_event.wait(self.cfg.io_timeout):
                raise TimeoutError(f"no exit status within {self.cfg.io_timeout:g} s")
        except (paramiko.SSHException, OSError, EOFError) as exc:
            self.close()
            raise DeviceUnreachable(
                f"device {self.device.name}: connection to {self.where} lost: {exc or type(exc).__name__}"
            ) from None
        if timed_out:
            self._kill(pgid)
            chan.close()
            return CommandResult(None, out, err, True, time.monotonic() - start)
        status = chan.recv_exit_status()
        chan.close()
        self._running.discard(pgid or -1)
        code = from_shell_status(status)
        return CommandResult(code, out, err, False, time.monotonic() - start)

    def _kill(self, pgid: int | None) -> None:
        if pgid is None:
            return
        self._running.discard(pgid)
        try:
            chan = self._connect().get_transport().open_session(timeout=self.cfg.connect_timeout)  # type: ignore[union-attr]
            chan.settimeout(self.cfg.io_timeout)
            with self._watchdog():
                chan.exec_command(f"kill -KILL -{int(pgid)} 2>/dev/null")  # dash, bash and BusyBox all take this form
            chan.status_event.wait(self.cfg.io_timeout)  # a frozen board never answers: give up, not hang
            chan.close()
        except (paramiko.SSHException, OSError, EOFError, TransportError):
            pass  # the board is gone: nothing left to kill from here

    def cancel(self) -> None:
        for pgid in list(self._running):
            self._kill(pgid)

    # -- files -------------------------------------------------------------------------------

    def ensure_file(self, local: Path, sha256: str) -> str:
        """Push `local` into {workdir}/cache/<sha256><suffix> unless it is already there (same size, and
        the same content: checked once per connection)."""
        remote = str(self.workdir / "cache" / f"{sha256}{local.suffix}")
        size = local.stat().st_size
        try:
            with self._lock:
                try:
                    cached = self._sftp_client().stat(remote).st_size == size
                except FileNotFoundError:
                    cached = False
            if cached and self.content_matches(remote, sha256, size):
                return remote
            with self._lock:
                sftp = self._sftp_client()
                _makedirs(sftp, str(self.workdir / "cache"))
                partial = f"{remote}.part-{os.getpid()}"
                sftp.put(str(local), partial, confirm=True)
                sftp.posix_rename(partial, remote)
                self.pushed_bytes += size
                return remote
        except PermissionError:
            raise TransportError(
                f"device {self.device.name}: cannot write {remote}: permission denied for {self.where};"
                " set the device's workdir: to a folder that login can write"
            ) from None
        except (paramiko.SSHException, EOFError, OSError) as exc:
            self.close()
            raise DeviceUnreachable(
                f"device {self.device.name}: copying {local.name} to {self.where} failed: {exc}"
            ) from None

    def prune_cache(self, keep: set[str]) -> tuple[int, int]:
        """Delete cached files whose sha256 is not in `keep`; return (files, bytes) removed."""
        sftp = self._sftp_client()
        cache = str(self.workdir / "cache")
        try:
            entries = sftp.listdir_attr(cache)
        except FileNotFoundError:
            return 0, 0
        files = freed = 0
        for entry in entries:
            sha = entry.filename.split(".", 1)[0]
            if sha in keep or not stat.S_ISREG(entry.st_mode or 0):
                continue
            sftp.remove(f"{cache}/{entry.filename}")
            files += 1
            freed += entry.st_size or 0
        return files, freed


def _remote_dir(workdir: str) -> PurePosixPath:
    # SFTP paths are relative to the login directory; "~/x" means the same as "x" there.
    if workdir.startswith("~/"):
        workdir = workdir[2:]
    return PurePosixPath(workdir)


def _host_label(cfg: SshConfig) -> str:
    return cfg.host if cfg.port == 22 else f"[{cfg.host}]:{cfg.port}"


def _makedirs(sftp: paramiko.SFTPClient, path: str) -> None:
    parts = PurePosixPath(path).parts
    current = ""
    for part in parts:
        current = part if not current else f"{current.rstrip('/')}/{part}"
        try:
            sftp.stat(current)
        except FileNotFoundError:
            sftp.mkdir(current)


def _collect(chan: paramiko.Channel, deadline: float, running: set[int]) -> tuple[bytes, bytes, int | None, bool]:
    """Read stdout and stderr to EOF (or the deadline); take the wrapper's pgid line off stdout."""
    out, err = bytearray(), bytearray()
    pgid: int | None = None
    chan.setblocking(False)
    out_open = err_open = True
    while out_open or err_open or not chan.exit_status_ready():
        if time.monotonic() >= deadline:
            return bytes(out), bytes(err), pgid, True
        if not chan.transport.is_active():
            raise EOFError("the SSH connection dropped")
        select.select([chan], [], [], 0.2)
        if chan.recv_ready():
            data = chan.recv(65536)
            out += data
            out_open = bool(data)
        elif out_open and chan.eof_received:
            out_open = False
        if chan.recv_stderr_ready():
            err += chan.recv_stderr(65536)
        elif chan.eof_received and not chan.recv_stderr_ready():
            err_open = False
        if pgid is None:
            pgid = take_pgid(out)
            if pgid is not None:
                running.add(pgid)
        if chan.closed and not chan.exit_status_ready():
            raise EOFError("the channel closed without an exit status")
    return bytes(out), bytes(err), pgid, False
