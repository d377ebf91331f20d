"""A real PostgreSQL server for the tests (Debian's `postgresql`, installed by scripts/test): its own
cluster in a temp folder, listening only on a Unix socket there, trusting local logins."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

PORT = 5499  # only names the socket file (.s.PGSQL.5499) in the server's own folder: no TCP port is opened


def pg_bin(tool: str) -> str:
    """A PostgreSQL server program: Debian keeps them in /usr/lib/postgresql/<version>/bin, off PATH."""
    found = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{tool}"), key=lambda p: int(p.parts[-3]))
    if found:
        return str(found[-1])
    on_path = shutil.which(tool)
    if on_path:
        return on_path
    raise AssertionError(f"no PostgreSQL {tool}: install Debian's postgresql (scripts/test does)")


def _as_owner(argv: list[str], owner: str | None) -> list[str]:
    """initdb and postgres refuse to run as root: as the `postgres` login, when the tests are root."""
    return ["runuser", "-u", owner, "--", *argv] if owner else argv


@dataclass
class Postgres:
    root: Path
    owner: str | None

    @property
    def socket_dir(self) -> Path:
        return self.root / "sock"

    def url(self, database: str, driver: str = "postgresql") -> str:
        return f"{driver}://postgres@/{database}?host={self.socket_dir}&port={PORT}"

    def psql(self, database: str, sql: str) -> str:
        out = subprocess.run(_as_owner([pg_bin("psql"), "-h", str(self.socket_dir), "-p", str(PORT), "-U", "postgres",
                                        "-d", database, "-At", "-c", sql], self.owner),
                             capture_output=True, text=True, check=True)  # fmt: skip
        return out.stdout.strip()

    def create_database(self, name: str) -> str:
        """A new, empty database; its URL."""
        self.psql("postgres", f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        subprocess.run(_as_owner([pg_bin("pg_ctl"), "-D", str(self.root / "data"), "-m", "immediate", "stop"],
                                 self.owner), capture_output=True, check=False)  # fmt: skip
        shutil.rmtree(self.root, ignore_errors=True)


def start_postgres(fsync: bool = False) -> Postgres:
    """fsync off for the tests (a crash of the test machine loses nothing of value); on for benchmarks."""
    root = Path(tempfile.mkdtemp(prefix="embench-pg-", dir="/tmp"))
    owner = None
    if os.geteuid() == 0:
        owner = "postgres"
        entry = pwd.getpwnam(owner)
        os.chown(root, entry.pw_uid, entry.pw_gid)
    root.chmod(0o755)
    pg = Postgres(root, owner)
    run = lambda argv: subprocess.run(_as_owner(argv, owner), capture_output=True, text=True, check=False)  # noqa: E731
    init = run([pg_bin("initdb"), "-D", str(root / "data"), "-U", "postgres", "--auth=trust", "-E", "UTF8"])
    assert init.returncode == 0, init.stderr
    run(["mkdir", "-p", str(pg.socket_dir)])
    options = f"-k {pg.socket_dir} -p {PORT} -c listen_addresses='' -c fsync={'on' if fsync else 'off'} -c max_connections=200"
    started = run([pg_bin("pg_ctl"), "-D", str(root / "data"), "-o", options, "-l", str(root / "log"), "-w", "-t",
                   "120", "start"])  # fmt: skip
    assert started.returncode == 0, f"{started.stderr} {(root / 'log').read_text(errors='replace')[-2000:]}"
    return pg
