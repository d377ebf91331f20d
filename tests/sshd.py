"""Real OpenSSH servers on loopback, each acting as a board (test support, not product)."""

from __future__ import annotations

import os
import pwd
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from procs import descendants

SSHD = "/usr/sbin/sshd"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def keygen(path: Path) -> str:
    """Make an ed25519 key pair; return the public key line."""
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    return path.with_suffix(".pub").read_text().strip()


def board_user(name: str) -> str:
    """A login of its own for each board: /bin/sh and no dotfiles, like a fresh board image
    (root's shell start-up files on a development machine must not leak into the tests)."""
    user = f"eb-{name}"[:32]
    try:
        pwd.getpwnam(user)
    except KeyError:
        subprocess.run(["useradd", "--create-home", "--shell", "/bin/sh", user], check=True)
    subprocess.run(["usermod", "-p", "*", user], check=True)  # no password, but not locked: keys work
    return user


SYSTEM_PYTHON = "/usr/bin/python3"  # Debian's, not this checkout's: boards bring their own Python


def board_python(folder: Path, packages: list[str]) -> str:
    """A board's own Python: a venv of the system python3 with just these runtimes installed."""
    subprocess.run([SYSTEM_PYTHON, "-m", "venv", str(folder)], check=True)
    subprocess.run([str(folder / "bin" / "python"), "-m", "pip", "install", "-q", *packages], check=True)
    return str(folder / "bin" / "python")


def world_readable_dir(prefix: str) -> Path:
    """A temp folder the board users can read (pytest's own tmp folders are private to root)."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    path.chmod(0o755)
    return path


@dataclass
class Board:
    """One sshd instance: its port, host key, login, and a working directory of its own."""

    name: str
    root: Path
    port: int
    host_key_line: str
    user: str
    proc: subprocess.Popen[bytes] | None = None

    @property
    def workdir(self) -> Path:
        return self.root / "work"

    def known_hosts_line(self) -> str:
        kind, key = self.host_key_line.split()[:2]
        return f"[127.0.0.1]:{self.port} {kind} {key}"

    def start(self) -> None:
        self.proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(self.root / "sshd_config")],
                                     stderr=open(self.root / "sshd.log", "ab"), start_new_session=True)  # fmt: skip
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"sshd for {self.name} did not start: {(self.root / 'sshd.log').read_text()}")

    def kill(self) -> None:
        """Kill sshd and every session under it: the board drops off the network."""
        if self.proc is None:
            return
        for pid in [self.proc.pid, *descendants(self.proc.pid)]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait()
        self.proc = None


def make_board(name: str, root: Path, authorized_key: str) -> Board:
    user = board_user(name)
    root.mkdir(parents=True)
    root.chmod(0o755)
    (root / "work").mkdir()
    entry = pwd.getpwnam(user)
    os.chown(root / "work", entry.pw_uid, entry.pw_gid)
    Path("/run/sshd").mkdir(parents=True, exist_ok=True)  # sshd's privilege-separation directory
    host_key = keygen(root / "host_ed25519")
    (root / "authorized_keys").write_text(authorized_key + "\n")
    port = free_port()
    (root / "sshd_config").write_text(
        f"""Port {port}
ListenAddress 127.0.0.1
HostKey {root}/host_ed25519
PidFile {root}/sshd.pid
AuthorizedKeysFile {root}/authorized_keys
StrictModes no
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
UsePAM no
Subsystem sftp internal-sftp
LogLevel ERROR
"""
    )
    (root / "authorized_keys").chmod(0o644)
    board = Board(name, root, port, host_key, user)
    board.start()
    return board


def freeze(board: Board, stop: bool = True) -> None:
    """Stop (or continue) the board's sshd and everything under it: a board that hangs, not one that dies."""
    assert board.proc is not None
    for pid in [board.proc.pid, *descendants(board.proc.pid)]:
        try:
            os.kill(pid, signal.SIGSTOP if stop else signal.SIGCONT)
        except ProcessLookupError:
            pass
