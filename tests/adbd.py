"""A stand-in Android phone for tests (test support, not product): an ADB device daemon over TCP.

It speaks the real ADB wire protocol, as adbd does (system/core/adb/protocol.txt and
SYNC.TXT in AOSP): CNXN / AUTH / OPEN / OKAY / WRTE / CLSE, the `shell:` (v1) and `shell,v2`
services, `exec:`, and `sync:` with STAT / STA2 / LST2 / LIST / SEND / RECV / QUIT. It is checked
in the tests with the real `adb` client (Debian package `adb`) as well as with adb-shell.

Commands run under Debian's mksh, the shell Android's /system/bin/sh is (`sh` on the phone's PATH is
mksh too), in a sandbox directory (the phone's "root"), in a session of their own
so that closing the stream kills the whole process group, as adbd does. `getprop` answers from a
props file and `dumpsys` records its calls, through small scripts in <sandbox>/system/bin; the test
owns a battery sysfs tree under <sandbox>/sys/class/power_supply.

Known traps handled here: the header's "crc32" is a byte sum (adb-shell checks it); TCP_NODELAY and
TCP_QUICKACK, or split writes stall ~40 ms each; CLSE is echoed for streams still open; port 0.
"""

from __future__ import annotations

import base64
import os
import queue
import shutil
import signal
import socket
import struct
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa, utils

# Android's shell. scripts/test installs Debian's mksh; without it, the stand-in refuses to start.
MKSH = shutil.which("mksh") or "/bin/mksh"


def _cmd(name: bytes) -> int:
    return int(struct.unpack("<I", name)[0])


CNXN, AUTH, OPEN, OKAY, CLSE, WRTE = (_cmd(c) for c in (b"CNXN", b"AUTH", b"OPEN", b"OKAY", b"CLSE", b"WRTE"))
A_VERSION = 0x01000001
MAX_PAYLOAD = 256 * 1024
AUTH_TOKEN, AUTH_SIGNATURE, AUTH_RSAPUBLICKEY = 1, 2, 3
FEATURES = "shell_v2,stat_v2"
SYNC_DATA_MAX = 64 * 1024
# shell protocol v2 packet ids
ID_STDIN, ID_STDOUT, ID_STDERR, ID_EXIT, ID_CLOSE_STDIN = 0, 1, 2, 3, 4

GETPROP = """#!/bin/sh
# stand-in getprop: answers from the props file the test wrote
props="$EMBENCH_STANDIN_ROOT/props"
if [ $# -eq 0 ]; then sed 's/^\\([^=]*\\)=\\(.*\\)$/[\\1]: [\\2]/' "$props"; exit 0; fi
sed -n "s/^$1=//p" "$props" | head -n 1
"""
DUMPSYS = """#!/bin/sh
# stand-in dumpsys: records every call so tests can check what the host asked for
echo "$*" >> "$EMBENCH_STANDIN_ROOT/dumpsys.log"
"""

# stand-in date: the phone's wall clock runs clock_skew seconds away from the host's
DATE = """#!/bin/sh
skew=$(cat "$EMBENCH_STANDIN_ROOT/clock_skew" 2>/dev/null || echo 0)
case "$1" in
  +%s.%N) /bin/date +%s.%N | awk -v s="$skew" '{ printf "%.6f\\n", $1 + s }' ;;
  *) exec /bin/date "$@" ;;
esac
"""


def android_pubkey_to_rsa(line: bytes) -> rsa.RSAPublicKey:
    """Decode an Android-format RSA public key (base64 of RSAPublicKey struct, then ' user@host')."""
    blob = base64.b64decode(line.split(b" ", 1)[0].strip(b"\0\n "))
    words = struct.unpack_from("<I", blob, 0)[0]
    modulus = int.from_bytes(blob[8 : 8 + 4 * words], "little")
    exponent = struct.unpack_from("<I", blob, 8 + 8 * words)[0]
    return rsa.RSAPublicNumbers(exponent, modulus).public_key()


def _verify(key: rsa.RSAPublicKey, token: bytes, signature: bytes) -> bool:
    try:  # adbd: RSA_verify(NID_sha1, token, ...) -- the token stands in for a SHA-1 digest
        key.verify(signature, token, padding.PKCS1v15(), utils.Prehashed(hashes.SHA1()))
    except InvalidSignature:
        return False
    return True


def byte_sum(data: bytes) -> int:
    """The header's "crc32" field: a plain sum of the payload bytes (summed in C here)."""
    return int(np.frombuffer(data, dtype=np.uint8).sum(dtype=np.uint64)) & 0xFFFFFFFF


def packet(command: int, arg0: int, arg1: int, data: bytes = b"") -> bytes:
    checksum = byte_sum(data)
    return struct.pack("<6I", command, arg0, arg1, len(data), checksum, command ^ 0xFFFFFFFF) + data


@dataclass
class Stream:
    local_id: int
    remote_id: int
    inbox: queue.Queue[bytes | None] = field(default_factory=queue.Queue)
    okay: threading.Semaphore = field(default_factory=lambda: threading.Semaphore(0))
    closed: threading.Event = field(default_factory=threading.Event)
    proc: subprocess.Popen[bytes] | None = None


class Connection:
    """One host connection: reads packets, dispatches services, writes with flow control."""

    def __init__(self, phone: StandinPhone, sock: socket.socket) -> None:
        self.phone, self.sock = phone, sock
        self.send_lock = threading.Lock()
        self.streams: dict[int, Stream] = {}
        self.next_id = 1
        self.maxdata = MAX_PAYLOAD
        self.token = os.urandom(20)

    # -- wire ----------------------------------------------------------------------------------

    def send(self, command: int, arg0: int, arg1: int, data: bytes = b"") -> None:
        self.phone.thawed.wait()  # a frozen phone says nothing
        with self.send_lock:
            try:
                self.sock.sendall(packet(command, arg0, arg1, data))
            except OSError:
                if not self.phone.stopped:
                    raise  # stopped (unplugged) while a stream still had something to say: nobody to hear it

    def _recv_exact(self, n: int) -> bytes:
        buf = bytearray()
        while len(buf) < n:
            self.phone.thawed.wait()  # and reads nothing: the connection stays open, unanswered
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("host closed the connection")
            buf += chunk
            self.phone.quickack(self.sock)
        return bytes(buf)

    def recv(self) -> tuple[int, int, int, bytes]:
        command, arg0, arg1, length, checksum, magic = struct.unpack("<6I", self._recv_exact(24))
        if magic != command ^ 0xFFFFFFFF:
            raise ConnectionError("bad packet magic")
        data = self._recv_exact(length) if length else b""
        if checksum and checksum != byte_sum(data):  # 0: the host skips it (protocol ≥ 0x01000001)
            raise ConnectionError("bad packet checksum")
        return command, arg0, arg1, data

    def write(self, stream: Stream, data: bytes) -> bool:
        """WRTE `data` in payload-sized pieces, each waiting for the host's OKAY; False once closed."""
        for start in range(0, len(data), self.maxdata):
            if stream.closed.is_set():
                return False
            self.send(WRTE, stream.local_id, stream.remote_id, data[start : start + self.maxdata])
            while not stream.okay.acquire(timeout=0.2):
                if stream.closed.is_set():
                    return False
        return True

    def close_stream(self, stream: Stream) -> None:
        if not stream.closed.is_set():
            stream.closed.set()
            self.send(CLSE, stream.local_id, stream.remote_id)
        stream.inbox.put(None)
        _kill_group(stream.proc)

    # -- main loop -----------------------------------------------------------------------------

    def serve(self) -> None:
        try:
            if not self._handshake():
                return
            while True:
                command, arg0, arg1, data = self.recv()
                if command == OPEN:
                    self._open(arg0, data.rstrip(b"\0").decode("utf-8", "replace"))
                elif command in (OKAY, WRTE, CLSE):
                    stream = self.streams.get(arg1)
                    if stream is None:
                        continue
                    if command == OKAY:
                        stream.okay.release()
                    elif command == WRTE:
                        stream.inbox.put(data)
                        self.send(OKAY, stream.local_id, stream.remote_id)
                    else:  # the host closed it: echo CLSE if it was still open, kill what runs
                        self.close_stream(stream)
                        self.streams.pop(arg1, None)
        except (ConnectionError, OSError, struct.error):
            pass
        finally:
            for stream in list(self.streams.values()):
                stream.closed.set()
                stream.inbox.put(None)
                _kill_group(stream.proc)
            self.sock.close()

    def _handshake(self) -> bool:
        phone = self.phone
        command, _, maxdata, _ = self.recv()
        if command != CNXN:
            return False
        self.maxdata = min(maxdata, MAX_PAYLOAD)
        if phone.auth:
            self.send(AUTH, AUTH_TOKEN, 0, self.token)
            while True:
                command, kind, _, data = self.recv()
                if command != AUTH:
                    return False
                if kind == AUTH_SIGNATURE:
                    if any(_verify(key, self.token, data) for key in phone.authorized_keys):
                        break
                    self.token = os.urandom(20)
                    self.send(AUTH, AUTH_TOKEN, 0, self.token)
                elif kind == AUTH_RSAPUBLICKEY:
                    phone.offered_keys.append(data.rstrip(b"\0"))
                    if not phone.accept_new_keys:
                        continue  # "Allow USB debugging?" is never tapped: the host waits
                    phone.authorized_keys.append(android_pubkey_to_rsa(data.rstrip(b"\0")))
                    break
        banner = f"device::ro.product.name={phone.name};ro.product.model=Stand-in;ro.product.device={phone.name};"
        self.send(CNXN, A_VERSION, self.maxdata, (banner + f"features={phone.features}").encode())
        return True

    def _open(self, remote_id: int, service: str) -> None:
        handler = None
        if service.startswith("shell,v2") or service.startswith("shell:") or service.startswith("exec:"):
            handler = self._shell
        elif service == "sync:":
            handler = self._sync
        if handler is None or service in ("shell:", "shell,v2,raw:", "shell,v2:"):  # no interactive shells
            self.send(CLSE, 0, remote_id)
            return
        stream = Stream(self.next_id, remote_id)
        self.next_id += 1
        self.streams[stream.local_id] = stream
        self.send(OKAY, stream.local_id, remote_id)
        threading.Thread(target=self._run_service, args=(handler, stream, service), daemon=True).start()

    def _run_service(self, handler: object, stream: Stream, service: str) -> None:
        try:
            handler(stream, service)  # type: ignore[operator]
        except (OSError, ConnectionError):
            pass
        finally:
            try:
                self.close_stream(stream)
            except OSError:
                pass

    # -- shell ---------------------------------------------------------------------------------

    def _shell(self, stream: Stream, service: str) -> None:
        name, _, command = service.partition(":")
        v2 = name.startswith("shell,v2")
        merge = name == "shell"  # v1 mixes stderr into stdout, like the pty adbd gives it
        proc = subprocess.Popen(
            [MKSH, "-c", command],
            cwd=self.phone.root,
            env=self.phone.env(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT if merge else subprocess.PIPE,
            start_new_session=True,
        )
        stream.proc = proc
        self.phone.processes.append(proc)
        threading.Thread(target=self._stdin_pump, args=(stream, proc, v2), daemon=True).start()
        pumps = [threading.Thread(target=self._out_pump, args=(stream, proc.stdout, ID_STDOUT, v2), daemon=True)]
        if not merge:
            pumps.append(
                threading.Thread(target=self._out_pump, args=(stream, proc.stderr, ID_STDERR, v2), daemon=True)
            )
        for t in pumps:
            t.start()
        for t in pumps:
            t.join()
        code = proc.wait()
        if v2 and not stream.closed.is_set():
            status = code if code >= 0 else 128 - code
            self.write(stream, struct.pack("<BI", ID_EXIT, 1) + bytes([status & 0xFF]))

    def _out_pump(self, stream: Stream, pipe: object, ident: int, v2: bool) -> None:
        while True:
            chunk = os.read(pipe.fileno(), 65536)  # type: ignore[attr-defined]
            if not chunk:
                return
            if not self.write(stream, struct.pack("<BI", ident, len(chunk)) + chunk if v2 else chunk):
                return

    def _stdin_pump(self, stream: Stream, proc: subprocess.Popen[bytes], v2: bool) -> None:
        assert proc.stdin is not None
        buf = b""
        while True:
            data = stream.inbox.get()
            if data is None:
                break
            if not v2:
                _try(proc.stdin.write, data)
                _try(proc.stdin.flush)
                continue
            buf += data
            while len(buf) >= 5:
                ident, length = struct.unpack_from("<BI", buf)
                if len(buf) < 5 + length:
                    break
                payload, buf = buf[5 : 5 + length], buf[5 + length :]
                if ident == ID_STDIN:
                    _try(proc.stdin.write, payload)
                    _try(proc.stdin.flush)
                elif ident == ID_CLOSE_STDIN:
                    _try(proc.stdin.close)
        _try(proc.stdin.close)

    # -- sync ----------------------------------------------------------------------------------

    def _sync(self, stream: Stream, service: str) -> None:
        reader = _InboxReader(stream)
        while True:
            head = reader.read(8)
            if head is None:
                return
            ident, length = head[:4], struct.unpack("<I", head[4:])[0]
            if ident in (b"DATA", b"DONE"):  # out of order: SEND handles these
                return
            arg = reader.read(length) if length else b""
            if arg is None:
                return
            path = arg.decode("utf-8", "surrogateescape")
            if ident == b"QUIT":
                return
            if ident == b"STAT":
                self.write(stream, b"STAT" + _stat_v1(path))
            elif ident in (b"STA2", b"LST2"):
                self.write(stream, ident + _stat_v2(path, follow=ident == b"STA2"))
            elif ident == b"LIST":
                self._sync_list(stream, path)
            elif ident == b"RECV":
                self._sync_recv(stream, path)
            elif ident == b"SEND":
                if not self._sync_send(stream, reader, path):
                    return
            else:
                self.write(stream, _fail(f"unknown sync request {ident!r}"))
                return

    def _sync_list(self, stream: Stream, path: str) -> None:
        try:
            names = os.listdir(path)
        except OSError:
            names = []
        for name in names:
            try:
                st = os.lstat(os.path.join(path, name))
            except OSError:
                continue
            raw = name.encode("utf-8", "surrogateescape")
            entry = struct.pack("<4I", st.st_mode, st.st_size & 0xFFFFFFFF, int(st.st_mtime), len(raw))
            self.write(stream, b"DENT" + entry + raw)
        self.write(stream, b"DONE" + bytes(16))

    def _sync_recv(self, stream: Stream, path: str) -> None:
        try:
            with open(path, "rb") as fh:
                while chunk := fh.read(SYNC_DATA_MAX):
                    if not self.write(stream, b"DATA" + struct.pack("<I", len(chunk)) + chunk):
                        return
        except OSError as exc:
            self.write(stream, _fail(f"remote object '{path}' does not exist ({exc.strerror})"))
            return
        self.write(stream, b"DONE" + bytes(4))

    def _sync_send(self, stream: Stream, reader: _InboxReader, spec: str) -> bool:
        path, _, mode_text = spec.rpartition(",")
        mode = int(mode_text or "0o644") & 0o7777 if mode_text.isdigit() else 0o644
        error = None
        tmp = f"{path}.adbd-{os.getpid()}-{stream.local_id}"
        fh = None
        try:
            os.makedirs(os.path.dirname(path) or ".", exist_ok=True)  # fixed_push_mkdir
            fh = open(tmp, "wb")
        except OSError as exc:
            error = f"couldn't create file: {exc.strerror}"
        while True:
            head = reader.read(8)
            if head is None:
                return False
            ident, value = head[:4], struct.unpack("<I", head[4:])[0]
            if ident == b"DATA":
                chunk = reader.read(value)
                if chunk is None:
                    return False
                if fh is not None:
                    fh.write(chunk)
            elif ident == b"DONE":
                break
            else:
                error = f"bad SEND stream: {ident!r}"
                break
        if fh is not None:
            fh.close()
            if error is None:
                os.chmod(tmp, mode or 0o644)
                os.replace(tmp, path)
                if value:
                    os.utime(path, (value, value))
            else:
                os.unlink(tmp)
        self.write(stream, _fail(error) if error else b"OKAY" + bytes(4))
        self.phone.pushed.append(path)
        return error is None


class _InboxReader:
    """Byte-exact reads over a stream's WRTE payloads."""

    def __init__(self, stream: Stream) -> None:
        self.stream, self.buf = stream, bytearray()

    def read(self, n: int) -> bytes | None:
        while len(self.buf) < n:
            data = self.stream.inbox.get()
            if data is None:
                return None
            self.buf += data
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out


def _fail(message: str) -> bytes:
    raw = message.encode()
    return b"FAIL" + struct.pack("<I", len(raw)) + raw


def _stat_v1(path: str) -> bytes:
    try:
        st = os.stat(path)
    except OSError:
        return bytes(12)
    return struct.pack("<3I", st.st_mode, st.st_size & 0xFFFFFFFF, int(st.st_mtime))


def _stat_v2(path: str, follow: bool) -> bytes:
    try:
        st = os.stat(path) if follow else os.lstat(path)
    except OSError as exc:
        return struct.pack("<I", exc.errno or 2) + bytes(64)
    return struct.pack(
        "<IQQIIIIQqqq", 0, st.st_dev, st.st_ino, st.st_mode, st.st_nlink, st.st_uid, st.st_gid,
        st.st_size, int(st.st_atime), int(st.st_mtime), int(st.st_ctime),
    )  # fmt: skip


def _try(fn: object, *args: object) -> None:
    try:
        fn(*args)  # type: ignore[operator]
    except (OSError, ValueError):
        pass


def _kill_group(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    for sig in (signal.SIGHUP, signal.SIGKILL):  # adbd hangs up the session; make sure it is gone
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            return


class StandinPhone:
    """A stand-in phone listening on 127.0.0.1:<port> (port 0: the kernel picks a free one)."""

    def __init__(
        self,
        root: Path,
        *,
        name: str = "standin",
        props: dict[str, str] | None = None,
        auth: bool = False,
        authorized_keys: list[bytes] | None = None,
        accept_new_keys: bool = False,
        features: str = FEATURES,
        port: int = 0,
        clock_skew_s: float = 0.0,
    ) -> None:
        if not Path(MKSH).exists():
            raise RuntimeError("the stand-in phone runs commands under mksh, as Android does: apt-get install mksh")
        self.root, self.name, self.features = Path(root), name, features
        self.auth, self.accept_new_keys = auth, accept_new_keys
        self.authorized_keys = [android_pubkey_to_rsa(k) for k in authorized_keys or []]
        self.offered_keys: list[bytes] = []
        self.pushed: list[str] = []
        self.processes: list[subprocess.Popen[bytes]] = []
        self.connections: list[socket.socket] = []
        bin_dir = self.root / "system" / "bin"
        bin_dir.mkdir(parents=True, exist_ok=True)
        for script, text in (("getprop", GETPROP), ("dumpsys", DUMPSYS), ("date", DATE)):
            (bin_dir / script).write_text(text)
            (bin_dir / script).chmod(0o755)
        if not (bin_dir / "sh").exists():
            (bin_dir / "sh").symlink_to(MKSH)
        (self.root / "data" / "local" / "tmp").mkdir(parents=True, exist_ok=True)
        self.set_props(props or {})
        (self.root / "clock_skew").write_text(f"{clock_skew_s}\n")  # read by the stand-in `date`
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", port))  # 0: the kernel picks (ports near 5555 collide)
        self.listener.listen(8)
        self.port = int(self.listener.getsockname()[1])
        self._stopped = threading.Event()
        self.thawed = threading.Event()  # cleared by freeze(): adbd hung, not gone
        self.thawed.set()
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def serial(self) -> str:
        return f"127.0.0.1:{self.port}"

    def set_props(self, props: dict[str, str]) -> None:
        base = {"ro.product.model": "Stand-in", "ro.build.version.sdk": "34", "ro.product.cpu.abi": "x86_64"}
        lines = [f"{k}={v}" for k, v in {**base, **props}.items()]
        (self.root / "props").write_text("\n".join(lines) + "\n")

    def env(self) -> dict[str, str]:
        path = f"{self.root / 'system' / 'bin'}:/usr/local/bin:/usr/bin:/bin"
        return {"PATH": path, "HOME": str(self.root), "EMBENCH_STANDIN_ROOT": str(self.root), "LANG": "C.UTF-8"}

    def dumpsys_calls(self) -> list[str]:
        log = self.root / "dumpsys.log"
        return log.read_text().splitlines() if log.exists() else []

    @staticmethod
    def quickack(sock: socket.socket) -> None:
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)  # re-armed after every read
        except OSError:
            pass

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.quickack(sock)
            self.connections.append(sock)
            threading.Thread(target=Connection(self, sock).serve, daemon=True).start()

    @property
    def stopped(self) -> bool:
        return self._stopped.is_set()

    def freeze(self, frozen: bool = True) -> None:
        """Hang like a wedged adbd: connections stay open and nothing is read or answered (False: thaw)."""
        if frozen:
            self.thawed.clear()
        else:
            self.thawed.set()

    def stop(self) -> None:
        """Vanish like an unplugged phone: stop listening, drop connections, kill what runs."""
        self._stopped.set()
        self.thawed.set()  # let frozen connection threads see their sockets close
        try:
            self.listener.shutdown(socket.SHUT_RDWR)  # close() alone leaves a blocked accept() running
        except OSError:
            pass
        self.listener.close()
        for sock in self.connections:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
        for proc in self.processes:
            _kill_group(proc)

    def __enter__(self) -> StandinPhone:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
