"""The results database: SQLite, versioned schema, raw samples kept, each result committed on arrival."""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from embench_agent.protocol import DEVICE_LOST, Job, ProtocolError, Result

from .errors import EXIT_STORE_FULL, StoreError

APPLICATION_ID = 0x656D6265  # "embe": `file` and sqlite3 tools show whose database it is
STORE_SCHEMA_VERSION = 2  # the tables; the Job/Result JSON has its own (embench_agent.protocol)
# How an older store's tables are brought up to this version, in place, when a sweep opens it.
_UPGRADES = {
    1: ("ALTER TABLE samples ADD COLUMN repetition INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE runs ADD COLUMN label TEXT"),
}  # fmt: skip
DEFAULT_STORE = Path("results") / "embench.sqlite"

_DDL = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    started_unix REAL NOT NULL,
    ended_unix REAL,
    state TEXT NOT NULL,            -- running | finished | interrupted
    inventory TEXT NOT NULL,
    host TEXT NOT NULL,
    embench_version TEXT NOT NULL,
    planned INTEGER NOT NULL,
    plan_json TEXT NOT NULL,
    label TEXT                      -- "nightly" for `embench nightly` runs
);
CREATE TABLE IF NOT EXISTS results (
    run_id TEXT NOT NULL REFERENCES runs(run_id),
    job_id TEXT NOT NULL,
    device TEXT NOT NULL,
    model TEXT NOT NULL,
    precision TEXT NOT NULL,
    format TEXT NOT NULL,
    runtime TEXT NOT NULL,
    delegate TEXT NOT NULL,
    threads INTEGER NOT NULL,
    status TEXT NOT NULL,
    message TEXT,
    model_sha256 TEXT,
    runtime_version TEXT,
    init_ms REAL,
    first_inference_ms REAL,
    peak_rss_kb INTEGER,
    window_ns INTEGER,
    n_samples INTEGER NOT NULL,
    attempts INTEGER NOT NULL,
    started_unix REAL,
    ended_unix REAL,
    job_json TEXT NOT NULL,
    result_json TEXT NOT NULL,
    PRIMARY KEY (run_id, job_id)
);
CREATE TABLE IF NOT EXISTS samples (
    run_id TEXT NOT NULL,
    job_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    latency_ns INTEGER NOT NULL,
    repetition INTEGER NOT NULL DEFAULT 0,  -- which fresh process timed it (sweep.run.repetitions)
    PRIMARY KEY (run_id, job_id, seq)
) WITHOUT ROWID;
"""


@contextlib.contextmanager
def _flocked(path: Path) -> Iterator[None]:
    """An exclusive flock on `path` for the block (waits for another process that holds it)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def resolve_store_path(cli: str | None, inventory_value: Path | None = None) -> Path:
    """--store beats $EMBENCH_STORE beats the inventory's store: beats results/embench.sqlite."""
    if cli:
        return Path(cli).expanduser()
    env = os.environ.get("EMBENCH_STORE")
    if env:
        return Path(env).expanduser()
    return inventory_value if inventory_value is not None else DEFAULT_STORE


def repetition_of_each(result: Result) -> list[int]:
    """The repetition index of each of result.samples_ns (all 0 for a job of one repetition)."""
    if not result.repetitions:
        return [0] * len(result.samples_ns)
    out = [rep.index for rep in result.repetitions for _ in range(rep.samples)]
    return out + [0] * (len(result.samples_ns) - len(out))


@dataclass(frozen=True)
class StoredResult:
    """One job of a run as stored: the Job as sent and its Result (with every raw sample)."""

    job: Job
    result: Result


@dataclass(frozen=True)
class RunInfo:
    run_id: str
    started_unix: float
    ended_unix: float | None
    state: str
    inventory: str
    planned: int
    recorded: int
    label: str | None = None


class StoreFull(StoreError):
    """The disk under the store filled up mid-sweep: what was stored is intact; --resume once there is room."""

    exit_code = EXIT_STORE_FULL


class RunBusy(StoreError):
    """Another embench process is sweeping this run right now."""


class Store:
    """One SQLite file; safe to share between the threads of one process.

    Nothing is written into a file before it is known to be empty or an embench store of this
    schema version. Creating the tables is serialised between processes (two sweeps starting on
    the same new store), and a run is held by one sweep at a time (`hold_run`): both with flock
    on files in `<store>.locks/`, which the kernel releases when the holder dies.
    """

    def __init__(self, path: Path, create: bool = True) -> None:
        """Open the store at `path`; with create=False (every verb that only reads) a missing file is
        an error rather than a new, empty database."""
        self.path = path
        self.locks = path.with_name(path.name + ".locks")
        self._lock = threading.Lock()
        self._held: dict[str, int] = {}
        if not create and not path.is_file():
            what = (
                "is a folder, not a results database"
                if path.is_dir()
                else "does not exist: nothing was measured into it"
            )
            raise StoreError(
                f"{path} {what}; run `embench sweep INVENTORY` first, or pass --store the file a sweep wrote"
                " (also: $EMBENCH_STORE, the inventory's store:, --inventory)"
            )
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.locks.mkdir(exist_ok=True)
            with _flocked(self.locks / "create"):
                self._db = sqlite3.connect(str(path), check_same_thread=False, timeout=30)
                old = self._check_existing()  # reads only
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=FULL")
                with self._db:
                    self._upgrade(old)
                    self._db.executescript(_DDL)
                    self._db.execute(
                        "INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(STORE_SCHEMA_VERSION),)
                    )
                    self._db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        except sqlite3.DatabaseError as exc:
            raise self._unusable(exc) from None
        except OSError as exc:
            raise StoreError(
                f"cannot use the results database {path}: {exc.strerror or exc}; pass --store PATH (or set EMBENCH_STORE)"
                " to a writable place"
            ) from None

    def _unusable(self, exc: sqlite3.Error) -> StoreError:
        if "not a database" in str(exc) or "malformed" in str(exc):
            return StoreError(f"{self.path} is not an SQLite database (or is damaged); pass --store a new file")
        if "full" in str(exc):
            return StoreFull(f"{self.path}: the disk is full; free some space, or pass --store a place with room")
        return StoreError(f"cannot use the results database {self.path}: {exc}; pass --store a writable file")

    def _upgrade(self, version: int | None) -> None:
        """Bring an older store's tables to this version, in the transaction that opens it."""
        while version is not None and version != STORE_SCHEMA_VERSION:
            for statement in _UPGRADES[version]:
                self._db.execute(statement)
            version += 1
            self._db.execute("UPDATE meta SET value=? WHERE key='schema_version'", (str(version),))

    def _check_existing(self) -> int | None:
        """Refuse, before writing anything, a file that belongs to another program or a newer embench;
        the version of an older store this embench upgrades (None: nothing to upgrade)."""
        tables = {r[0] for r in self._db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if not tables:
            return None  # new or empty: ours to set up
        version = None
        if "meta" in tables:
            row = self._db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            version = row[0] if row else None
        if version is None or not {"runs", "results", "samples"} <= tables:
            shown = ", ".join(sorted(tables)[:5])
            raise StoreError(
                f"{self.path} is an SQLite database of another program (tables: {shown}); embench will not write"
                " into it; pass --store a new file"
            )
        if str(version) in {str(v) for v in _UPGRADES}:
            return int(version)
        if str(version) != str(STORE_SCHEMA_VERSION):
            raise StoreError(
                f"{self.path} has store schema version {version}; this embench reads {STORE_SCHEMA_VERSION}; use"
                " the embench that wrote it, or pass --store a new file"
            )
        return None

    def close(self) -> None:
        with self._lock:
            for fd in self._held.values():
                os.close(fd)  # releases the run's flock
            self._held.clear()
            self._db.close()

    def hold_run(self, run_id: str) -> None:
        """Hold the run for this process until close() (or its death); RunBusy when another holds it."""
        fd = os.open(self.locks / f"run-{run_id}", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise RunBusy(
                f"run {run_id} in {self.path} is being swept by another embench process right now (a cron"
                " overlap, or another terminal); wait for it to end, or stop it (it keeps what it measured)"
            ) from None
        self._held[run_id] = fd

    # -- runs ------------------------------------------------------------------------------

    def begin_run(self, inventory: str, plan: list[dict[str, Any]], version: str, label: str | None = None) -> str:
        run_id = time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:6]
        with self._writing():
            self._db.execute(
                "INSERT INTO runs VALUES (?,?,?,?,?,?,?,?,?,?)",
                (
                    run_id,
                    time.time(),
                    None,
                    "running",
                    inventory,
                    socket.gethostname(),
                    version,
                    len(plan),
                    json.dumps(plan),
                    label,
                ),
            )
        return run_id

    def resume_run(self, run_id: str, planned: int, plan: list[dict[str, Any]]) -> None:
        with self._writing():
            self._db.execute(
                "UPDATE runs SET state='running', ended_unix=NULL, planned=?, plan_json=? WHERE run_id=?",
                (planned, json.dumps(plan), run_id),
            )

    def end_run(self, run_id: str, state: str) -> None:
        with self._writing():
            self._db.execute("UPDATE runs SET state=?, ended_unix=? WHERE run_id=?", (state, time.time(), run_id))

    def runs(self) -> list[RunInfo]:
        rows = self._db.execute(
            "SELECT r.run_id, r.started_unix, r.ended_unix, r.state, r.inventory, r.planned,"
            " (SELECT COUNT(*) FROM results x WHERE x.run_id = r.run_id), r.label"
            " FROM runs r ORDER BY r.started_unix"
        ).fetchall()
        return [RunInfo(*row) for row in rows]

    def find_run(self, run_id: str | None) -> RunInfo:
        """The named run, or the latest one; a unique prefix of a run id is enough."""
        runs = self.runs()
        if not runs:
            raise StoreError(f"{self.path} holds no runs yet; run `embench sweep inventory.yaml` first")
        if run_id is None:
            return runs[-1]
        hits = [r for r in runs if r.run_id.startswith(run_id)]
        if len(hits) != 1:
            known = ", ".join(r.run_id for r in runs[-5:])
            what = "matches no run" if not hits else "matches several runs"
            raise StoreError(f"run {run_id!r} {what} in {self.path}; recent runs: {known}")
        return hits[0]

    # -- results ---------------------------------------------------------------------------

    def done_job_ids(self, run_id: str) -> set[str]:
        return {r[0] for r in self._db.execute("SELECT job_id FROM results WHERE run_id=?", (run_id,))}

    def add_result(self, run_id: str, job: Job, result: Result) -> None:
        """Store one result and all its samples in one transaction (the samples in their own table)."""
        self.add_results(run_id, [(job, result)])

    def add_results(self, run_id: str, items: Iterable[tuple[Job, Result]]) -> None:
        """Store results and all their samples in one transaction: all of them or none."""
        with self._writing():
            for job, result in items:
                samples = result.samples_ns
                body = dataclasses.replace(result, samples_ns=())
                repetition = repetition_of_each(result)
                runtime_version = result.runtime.version if result.runtime is not None else None
                row = (
                    run_id, job.job_id, job.device, job.model.name, job.model.precision, job.model.format, job.runtime,
                    job.delegate.name, job.threads, result.status, result.message, job.model.sha256, runtime_version,
                    result.init_ms, result.first_inference_ms, result.peak_rss_kb, result.window_ns, len(samples),
                    result.attempts, result.started_unix, result.ended_unix, job.to_json(), body.to_json(),
                )  # fmt: skip
                self._db.execute(f"INSERT INTO results VALUES ({','.join('?' * len(row))})", row)
                self._db.executemany(
                    "INSERT INTO samples VALUES (?,?,?,?,?)",
                    ((run_id, job.job_id, i, int(ns), rep) for i, (ns, rep) in enumerate(zip(samples, repetition))),
                )

    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        """One transaction: all of it or none of it, and a full disk or a broken file said in one line."""
        with self._lock:
            try:
                with self._db:
                    yield
            except sqlite3.Error as exc:
                raise self._unusable(exc) from None

    def forget_lost(self, run_id: str) -> int:
        """Delete the run's results that failed only because their device was unreachable, so a resume
        measures them again; how many."""
        with self._writing():
            lost = [r[0] for r in self._db.execute(
                "SELECT job_id FROM results WHERE run_id=? AND json_extract(result_json, '$.error')=?",
                (run_id, DEVICE_LOST))]  # fmt: skip
            for job_id in lost:
                self._db.execute("DELETE FROM samples WHERE run_id=? AND job_id=?", (run_id, job_id))
                self._db.execute("DELETE FROM results WHERE run_id=? AND job_id=?", (run_id, job_id))
        return len(lost)

    def delete_run(self, run_id: str) -> None:
        """A run and everything stored of it, in one transaction (retention: nightly.keep)."""
        with self._writing():
            for table in ("samples", "results", "runs"):
                self._db.execute(f"DELETE FROM {table} WHERE run_id=?", (run_id,))

    def status_counts(self, run_id: str) -> dict[str, int]:
        """How many of the run's stored results have each status (every sweep of it, resumes included)."""
        rows = self._db.execute("SELECT status, COUNT(*) FROM results WHERE run_id=? GROUP BY status", (run_id,))
        return {status: int(n) for status, n in rows}

    def results(self, run_id: str) -> list[StoredResult]:
        """Every stored result of a run, read back through the contract's classes, samples included."""
        samples = self.samples(run_id)
        out = []
        rows = self._db.execute(
            "SELECT job_id, job_json, result_json FROM results WHERE run_id=? ORDER BY started_unix", (run_id,)
        )
        for job_id, job_json, result_json in rows:
            try:
                job, result = Job.from_json(job_json), Result.from_json(result_json)
            except ProtocolError as exc:
                raise StoreError(f"{self.path}: run {run_id}, job {job_id}: unreadable stored result ({exc})") from None
            out.append(StoredResult(job, dataclasses.replace(result, samples_ns=tuple(samples.get(job_id, ())))))
        return out

    def sample_frame(self, run_id: str) -> Any:
        """Every raw sample of a run with its job's configuration, as a pandas DataFrame (long format)."""
        import pandas as pd  # noqa: PLC0415 - only the Python API reads samples this way

        rows = self._db.execute(
            "SELECT s.job_id, r.device, r.model, r.precision, r.runtime, r.delegate, r.threads, s.repetition, s.seq,"
            " s.latency_ns FROM samples s JOIN results r ON r.run_id = s.run_id AND r.job_id = s.job_id"
            " WHERE s.run_id=? ORDER BY r.started_unix, s.job_id, s.seq",
            (run_id,),
        ).fetchall()
        columns = ["job_id", "device", "model", "precision", "runtime", "delegate", "threads", "repetition", "seq",
                   "latency_ns"]  # fmt: skip
        return pd.DataFrame.from_records(rows, columns=columns)

    def get_meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return str(row[0]) if row else None

    def set_meta(self, key: str, value: str | None) -> None:
        with self._writing():
            if value is None:
                self._db.execute("DELETE FROM meta WHERE key=?", (key,))
            else:
                self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def samples(self, run_id: str) -> dict[str, list[int]]:
        out: dict[str, list[int]] = {}
        for job_id, ns in self._db.execute(
            "SELECT job_id, latency_ns FROM samples WHERE run_id=? ORDER BY job_id, seq", (run_id,)
        ):
            out.setdefault(job_id, []).append(ns)
        return out
