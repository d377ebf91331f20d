"""The results database: one schema and one code path (SQLAlchemy Core) for an SQLite file (the embedded
default) and a PostgreSQL database (a lab's shared store); raw samples kept, each result committed on arrival,
exactly once."""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import os
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from embench_agent.protocol import DEVICE_LOST, MEASURED, Job, ProtocolError, Result

from . import store_schema as schema
from .errors import EXIT_STORE_FULL, StoreError
from .store_schema import STORE_SCHEMA_VERSION

APPLICATION_ID = 0x656D6265  # "embe": `file` and sqlite3 tools show whose database it is
DEFAULT_STORE = Path("results") / "embench.sqlite"
URL_SCHEMES = ("postgresql://", "postgresql+psycopg://", "postgres://")
CREATE_LOCK = 0x656D62  # the advisory lock that serialises creating or upgrading a PostgreSQL store
PG_DRIVER = "postgresql+psycopg"


def is_url(target: str | Path) -> bool:
    return isinstance(target, str) and target.startswith(URL_SCHEMES)


@contextlib.contextmanager
def _flocked(path: Path) -> Iterator[None]:
    """An exclusive flock on `path` for the block (waits for another process that holds it)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def resolve_store_path(cli: str | None, inventory_value: str | Path | None = None) -> str | Path:
    """--store beats $EMBENCH_STORE beats the inventory's store: beats results/embench.sqlite; a
    postgresql:// URL stays a URL, anything else is a file path."""
    for given in (cli, os.environ.get("EMBENCH_STORE"), inventory_value):
        if given:
            return given if is_url(given) else Path(given).expanduser()
    return DEFAULT_STORE


def shown_url(url: str) -> str:
    """The URL as it may be printed, logged or stored: any password replaced by ***."""
    try:
        return sa.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return "the --store URL (unparseable)"


def _lock_key(name: str) -> int:
    """A PostgreSQL advisory-lock key (a signed 64-bit integer) for a name."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


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


@dataclass(frozen=True)
class JobFields:
    """What a planned job is, in the words a report groups by: model × precision (its file's format)
    × runtime × delegate × threads on one device. plan.PlannedJob adds how it is run; PlanEntry its id."""

    device: str
    model: str
    precision: str
    format: str
    runtime: str
    delegate: str
    threads: int


@dataclass(frozen=True)
class PlanEntry(JobFields):
    """One job a run was planned with, as the store keeps it (runs.plan_json): its fields and its id.
    What a nightly reads to name the series that never ran."""

    job_id: str

    @classmethod
    def of(cls, job: Job) -> PlanEntry:
        """The entry of a job as the agent gets it (a tool or test writing a store of its own)."""
        m = job.model
        return cls(job.device, m.name, m.precision, m.format, job.runtime, job.delegate.name, job.threads, job.job_id)

    @classmethod
    def from_json(cls, row: dict[str, Any]) -> PlanEntry:
        return cls(str(row["device"]), str(row["model"]), str(row["precision"]), str(row["format"]),
                   str(row["runtime"]), str(row["delegate"]), int(row["threads"]), str(row["job_id"]))  # fmt: skip


class StoreFull(StoreError):
    """The disk under the store filled up mid-sweep: what was stored is intact; --resume once there is room."""

    exit_code = EXIT_STORE_FULL


class RunBusy(StoreError):
    """Another embench process is sweeping this run right now."""


class Store:
    """A results database: an SQLite file or a PostgreSQL database, the same tables and code for both;
    safe to share between the threads of one process, and between processes (and, for PostgreSQL, hosts).

    Nothing is written into a database before it is known to be empty or an embench store. Creating or
    upgrading the tables is serialised between processes, and a run is held by one sweep at a time
    (`hold_run`): for SQLite with flock on files in `<store>.locks/`, for PostgreSQL with session advisory
    locks; the kernel or the server releases either when its holder dies.
    """

    def __init__(self, target: str | Path, create: bool = True, upgrade: bool | None = None) -> None:
        """Open the store at `target` (a path, or a postgresql:// URL). With create=False (every verb that
        only reads) a missing store is an error rather than a new, empty one. An older store's tables are
        upgraded in place when `upgrade` (default: for an SQLite file that is opened to write; a shared
        PostgreSQL store is upgraded by `embench store upgrade`)."""
        self.url: str | None = str(target) if is_url(target) else None
        self.path = Path(target) if self.url is None else None
        self.where = shown_url(self.url) if self.url is not None else str(self.path)
        self._lock = threading.Lock()
        self._held: dict[str, Any] = {}
        self.upgraded_from: int | None = None
        self.stale: int | None = None  # an older schema it still has (a reader may read it; a writer may not)
        if upgrade is None:
            upgrade = self.url is None
        if self.url is not None:
            self._open_postgresql(create, upgrade)
        else:
            self._open_sqlite(create, upgrade)

    # -- opening ---------------------------------------------------------------------------

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @property
    def locks(self) -> Path:
        assert self.path is not None, "only an SQLite store keeps lock files"
        return self.path.with_name(self.path.name + ".locks")

    def _open_sqlite(self, create: bool, upgrade: bool) -> None:
        path = self.path
        assert path is not None
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
                with contextlib.closing(sqlite3.connect(str(path), timeout=30)) as db:
                    version = self._sqlite_version(db)  # reads only
                self.engine = sa.create_engine(f"sqlite+pysqlite:///{path}", connect_args={"timeout": 30,
                                               "check_same_thread": False})  # fmt: skip
                sa.event.listen(self.engine, "connect", _sqlite_connected)
                sa.event.listen(self.engine, "begin", _sqlite_begin)
                self._migrate(version, upgrade)
        except sa.exc.DBAPIError as exc:
            raise self._unusable(exc.orig) from None
        except sqlite3.DatabaseError as exc:
            raise self._unusable(exc) from None
        except OSError as exc:
            raise StoreError(
                f"cannot use the results database {path}: {exc.strerror or exc}; pass --store PATH (or set EMBENCH_STORE)"
                " to a writable place"
            ) from None

    def _open_postgresql(self, create: bool, upgrade: bool) -> None:
        assert self.url is not None
        try:
            url = sa.make_url(self.url)
        except sa.exc.ArgumentError as exc:
            raise StoreError(
                f"--store {self.where}: not a database URL ({exc}); e.g. postgresql://user@host/db"
            ) from None
        if url.drivername in ("postgresql", "postgres"):
            url = url.set(drivername=PG_DRIVER)
        # application_name: which embench holds a lock or a connection, as pg_stat_activity shows it
        try:
            self.engine = sa.create_engine(url, pool_pre_ping=True, connect_args={"application_name": "embench",
                                           "connect_timeout": 10})  # fmt: skip
        except ImportError:
            raise StoreError(f"--store {self.where}: a PostgreSQL store needs psycopg 3, which is not installed;"
                             " install embench's lab extra (pip install -e '.[lab]')") from None  # fmt: skip
        try:
            with self.engine.begin() as conn:
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": CREATE_LOCK})
                tables = set(sa.inspect(conn).get_table_names())
                version = self._known_version(tables, lambda: conn.execute(
                    sa.select(schema.meta.c.value).where(schema.meta.c.key == "schema_version")).scalar())  # fmt: skip
                if version is None and not create:
                    raise StoreError(
                        f"{self.where} holds no embench store yet: nothing was measured into it; run"
                        f" `embench sweep INVENTORY --store URL` first"
                    )
            self._migrate(version, upgrade)
        except sa.exc.OperationalError as exc:
            first = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
            raise StoreError(
                f"cannot use the results database {self.where}: {first}; check that the server is up and the"
                " user may log in (a password belongs in ~/.pgpass or PGPASSWORD, not in the URL)"
            ) from None
        except sa.exc.DBAPIError as exc:
            raise self._unusable(exc.orig) from None

    def _sqlite_version(self, db: sqlite3.Connection) -> int | None:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}

        def read() -> str | None:
            row = db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            return row[0] if row else None

        return self._known_version(tables, read)

    def _known_version(self, tables: set[str], read: Callable[[], str | None]) -> int | None:
        """The store schema version of an existing store (None: new or empty, ours to set up); refuses,
        before writing anything, a database that belongs to another program or a newer embench."""
        tables -= {"alembic_version"}
        if not tables:
            return None
        version = read() if "meta" in tables else None
        if version is None or not {"runs", "results", "samples"} <= tables:
            shown = ", ".join(sorted(tables)[:5])
            kind = "an SQLite database" if self.url is None else "a database"
            raise StoreError(
                f"{self.where} is {kind} of another program (tables: {shown}); embench will not write"
                " into it; pass --store a new " + ("file" if self.url is None else "database")
            )
        if not str(version).isdigit() or int(version) > STORE_SCHEMA_VERSION:
            raise StoreError(
                f"{self.where} has store schema version {version}; this embench reads {STORE_SCHEMA_VERSION}; use"
                " the embench that wrote it, or pass --store a new " + ("file" if self.url is None else "database")
            )
        return int(version)

    def _migrate(self, version: int | None, upgrade: bool) -> None:
        """Set up a new store, or bring an older one to this schema (Alembic, in one transaction)."""
        if version == STORE_SCHEMA_VERSION:
            return
        if version is not None and not upgrade:
            self.stale = version
            return
        from alembic import command  # noqa: PLC0415 - only a new or older store needs Alembic
        from alembic.config import Config  # noqa: PLC0415

        config = Config()
        config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
        with self.engine.begin() as conn:
            if self.url is not None:
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": CREATE_LOCK})
            config.attributes["connection"] = conn
            if version is not None and not sa.inspect(conn).has_table("alembic_version"):
                command.stamp(config, schema.REVISIONS[version])  # a store from before Alembic: its version
            command.upgrade(config, "head")
            conn.execute(schema.meta.delete().where(schema.meta.c.key == "schema_version"))
            conn.execute(schema.meta.insert().values(key="schema_version", value=str(STORE_SCHEMA_VERSION)))
            if self.url is None:
                conn.exec_driver_sql(f"PRAGMA application_id = {APPLICATION_ID}")
        self.upgraded_from = version

    def _writable(self) -> None:
        if self.stale is not None:
            raise StoreError(
                f"{self.where} has store schema version {self.stale}; this embench writes {STORE_SCHEMA_VERSION}:"
                f" upgrade it in place first with `embench store upgrade --store {self.where}` (every embench"
                " of the lab then needs this version)"
            )

    def _unusable(self, exc: BaseException | None) -> StoreError:
        text = str(exc)
        if "not a database" in text or "malformed" in text:
            return StoreError(f"{self.where} is not an SQLite database (or is damaged); pass --store a new file")
        if "full" in text or "No space left" in text:
            return StoreFull(f"{self.where}: the disk is full; free some space, or pass --store a place with room")
        first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
        return StoreError(f"cannot use the results database {self.where}: {first}; pass --store a writable store")

    def close(self) -> None:
        with self._lock:
            for held in self._held.values():
                if isinstance(held, int):
                    os.close(held)  # releases the run's flock
                else:
                    held.close()  # a PostgreSQL session: its advisory locks go with it
            self._held.clear()
            self.engine.dispose()

    def hold_run(self, run_id: str) -> None:
        """Hold the run for this process until close() (or its death); RunBusy when another holds it."""
        if not self.try_hold(f"run-{run_id}"):
            raise RunBusy(
                f"run {run_id} in {self.where} is being swept by another embench process right now (a cron"
                " overlap, another terminal, another lab host); wait for it to end, or stop it (it keeps what it"
                " measured)"
            ) from None

    def try_hold(self, name: str, note: str = "") -> bool:
        """Take the named lock until close() (or this process's death), if nobody holds it; `note` (e.g. the
        pid) is left in an SQLite store's lock file for the message of whoever finds it taken."""
        if self.url is not None:
            conn = self.engine.connect()
            got = conn.execute(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": _lock_key(name)}).scalar()
            conn.commit()
            if not got:
                conn.close()
                return False
            self._held[name] = conn
            return True
        fd = os.open(self.locks / name, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        if note:
            os.ftruncate(fd, 0)
            os.pwrite(fd, note.encode(), 0)
        self._held[name] = fd
        return True

    def release_run(self, run_id: str) -> None:
        """The run's sweep is over (finished or interrupted): another may resume it, a reader sees it idle."""
        self.release(f"run-{run_id}")

    def being_swept(self, run_id: str) -> bool:
        """Whether another process, or another Store of this one, holds the run (a sweep of it under way)."""
        name = f"run-{run_id}"
        if name in self._held:
            return False
        if not self.try_hold(name):
            return True
        self.release(name)
        return False

    def release(self, name: str) -> None:
        held = self._held.pop(name, None)
        if isinstance(held, int):
            os.close(held)
        elif held is not None:
            held.close()

    def holder_note(self, name: str) -> str:
        """What the holder of an SQLite lock left in it ("" for PostgreSQL)."""
        if self.url is not None:
            return ""
        with contextlib.suppress(OSError):
            return (self.locks / name).read_text(errors="replace").strip()
        return ""

    # -- runs ------------------------------------------------------------------------------

    def begin_run(self, inventory: str, plan: list[PlanEntry], version: str, label: str | None = None) -> str:
        run_id = time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:6]
        with self._writing() as conn:
            conn.execute(schema.runs.insert().values(
                run_id=run_id, started_unix=time.time(), ended_unix=None, state="running", inventory=inventory,
                host=socket.gethostname(), embench_version=version, planned=len(plan), plan_json=_plan_json(plan),
                label=label))  # fmt: skip
        return run_id

    def resume_run(self, run_id: str, planned: int, plan: list[PlanEntry]) -> None:
        runs = schema.runs
        with self._writing() as conn:
            conn.execute(runs.update().where(runs.c.run_id == run_id).values(
                state="running", ended_unix=None, planned=planned, plan_json=_plan_json(plan)))  # fmt: skip

    def end_run(self, run_id: str, state: str) -> None:
        runs = schema.runs
        with self._writing() as conn:
            conn.execute(runs.update().where(runs.c.run_id == run_id).values(state=state, ended_unix=time.time()))

    def _read(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        """Rows of one query (`?` placeholders), straight from the database's own cursor: a lab's report
        reads a million samples, and SQLAlchemy's rows would cost twice the fetch itself. A broken or
        vanished store is said in one line."""
        if self.url is not None:
            sql = sql.replace("?", "%s")  # psycopg's placeholder; no query here has a literal ? or %
        try:
            with self.engine.connect() as conn:
                cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
                try:
                    cursor.execute(sql, params)
                    return list(cursor.fetchall())
                finally:
                    cursor.close()
        except sa.exc.DBAPIError as exc:
            raise self._unusable(exc.orig) from None
        except (sqlite3.Error, _pg_errors()) as exc:
            raise self._unusable(exc) from None

    def runs(self) -> list[RunInfo]:
        rows = self._read(
            "SELECT r.run_id, r.started_unix, r.ended_unix, r.state, r.inventory, r.planned,"
            " (SELECT COUNT(*) FROM results x WHERE x.run_id = r.run_id), r.label"
            " FROM runs r ORDER BY r.started_unix"
        )
        return [RunInfo(*row) for row in rows]

    def find_run(self, run_id: str | None) -> RunInfo:
        """The named run, or the latest one; a unique prefix of a run id is enough."""
        runs = self.runs()
        if not runs:
            raise StoreError(f"{self.where} holds no runs yet; run `embench sweep inventory.yaml` first")
        if run_id is None:
            return runs[-1]
        hits = [r for r in runs if r.run_id.startswith(run_id)]
        if len(hits) != 1:
            known = ", ".join(r.run_id for r in runs[-5:])
            what = "matches no run" if not hits else "matches several runs"
            raise StoreError(f"run {run_id!r} {what} in {self.where}; recent runs: {known}")
        return hits[0]

    def plan(self, run_id: str) -> list[PlanEntry]:
        """The jobs the run was planned with, in plan order."""
        rows = self._read("SELECT plan_json FROM runs WHERE run_id = ?", (run_id,))
        try:
            return [PlanEntry.from_json(row) for row in json.loads(rows[0][0])] if rows else []
        except (ValueError, TypeError, KeyError) as exc:
            raise StoreError(f"{self.where}: run {run_id}: unreadable plan ({type(exc).__name__}: {exc}); the run's"
                             f" results are intact: `embench report --run {run_id}` reads them") from None  # fmt: skip

    # -- results ---------------------------------------------------------------------------

    def measured_series(self, label: str) -> dict[str, set[tuple[str, str, str, str, str, int]]]:
        """run id → the series (device, model, precision, runtime, delegate, threads) each run of `label`
        measured: which nights can be a series' baseline, read without loading a sample."""
        rows = self._read("SELECT r.run_id, r.device, r.model, r.precision, r.runtime, r.delegate, r.threads"
                          " FROM results r JOIN runs u ON u.run_id = r.run_id WHERE u.label = ?"
                          f" AND r.status IN ({', '.join('?' * len(MEASURED))})", (label, *MEASURED))  # fmt: skip
        out: dict[str, set[tuple[str, str, str, str, str, int]]] = {}
        for run_id, device, model, precision, runtime, delegate, threads in rows:
            out.setdefault(run_id, set()).add((device, model, precision, runtime, delegate, int(threads)))
        return out

    def done_job_ids(self, run_id: str) -> set[str]:
        return {r[0] for r in self._read("SELECT job_id FROM results WHERE run_id=?", (run_id,))}

    def add_result(self, run_id: str, job: Job, result: Result, measured_on: str | None = None) -> bool:
        """Store one result and all its samples in one transaction (the samples in their own table);
        False when the run already holds this job's result (a lab task that ran twice): kept as it was."""
        return self.add_results(run_id, [(job, result)], measured_on) == 1

    def add_results(self, run_id: str, items: Iterable[tuple[Job, Result]], measured_on: str | None = None) -> int:
        """Store results and all their samples in one transaction: all of them or none. Each job's result
        is recorded exactly once: one the run already holds is left as it was, and not counted."""
        host = measured_on or socket.gethostname()
        insert = _insert_ignoring_duplicates(self.dialect)
        added = 0
        with self._writing() as conn:
            for job, result in items:
                samples = result.samples_ns
                body = dataclasses.replace(result, samples_ns=())
                runtime_version = result.runtime.version if result.runtime is not None else None
                row = dict(
                    run_id=run_id, job_id=job.job_id, device=job.device, model=job.model.name,
                    precision=job.model.precision, format=job.model.format, runtime=job.runtime,
                    delegate=job.delegate.name, threads=job.threads, status=result.status, message=result.message,
                    model_sha256=job.model.sha256, runtime_version=runtime_version, init_ms=result.init_ms,
                    first_inference_ms=result.first_inference_ms, peak_rss_kb=result.peak_rss_kb,
                    window_ns=result.window_ns, n_samples=len(samples), attempts=result.attempts,
                    started_unix=result.started_unix, ended_unix=result.ended_unix, job_json=job.to_json(),
                    result_json=body.to_json(), error=result.error, measured_on=host,
                )  # fmt: skip
                stored = conn.execute(insert(schema.results).values(**row).returning(schema.results.c.job_id))
                if stored.first() is None:
                    continue  # already recorded: the first record stands, its samples with it
                added += 1
                if result.error != DEVICE_LOST:  # an interleaved job's repetitions are in its result now
                    reps = schema.repetitions
                    conn.execute(reps.delete().where(reps.c.run_id == run_id, reps.c.job_id == job.job_id))
                if samples:
                    rows = [(run_id, job.job_id, i, int(ns), rep)
                            for i, (ns, rep) in enumerate(zip(samples, repetition_of_each(result)))]  # fmt: skip
                    _insert_samples(conn, rows)
        return added

    def add_repetition(self, run_id: str, job_id: str, index: int, result: Result,
                       measured_on: str | None = None) -> bool:  # fmt: skip
        """Keep one repetition of an interleaved job (its Result, samples included) until the job's result
        is recorded (add_results deletes it then); False when the run holds it, or the job's result,
        already (a lab task that ran twice): kept as it was."""
        row = dict(run_id=run_id, job_id=job_id, repetition=index, result_json=result.to_json(),
                   measured_on=measured_on or socket.gethostname())  # fmt: skip
        results = schema.results
        with self._writing() as conn:
            if conn.execute(sa.select(results.c.job_id).where(results.c.run_id == run_id,
                                                              results.c.job_id == job_id)).first():  # fmt: skip
                return False
            stored = conn.execute(_insert_ignoring_duplicates(self.dialect)(schema.repetitions).values(**row)
                                  .returning(schema.repetitions.c.job_id))  # fmt: skip
            return stored.first() is not None

    def kept_repetitions(self, run_id: str, job_id: str) -> list[int]:
        """The indices of a job's repetitions kept so far, in order (their Results are not read)."""
        rows = self._read("SELECT repetition FROM repetitions WHERE run_id=? AND job_id=? ORDER BY repetition",
                          (run_id, job_id))  # fmt: skip
        return [int(i) for (i,) in rows]

    def repetitions_of(self, run_id: str, job_id: str) -> list[tuple[int, Result]]:
        """The repetitions of a job kept so far (index, Result), in index order."""
        rows = self._read("SELECT repetition, result_json FROM repetitions WHERE run_id=? AND job_id=?"
                          " ORDER BY repetition", (run_id, job_id))  # fmt: skip
        try:
            return [(int(i), Result.from_json(body)) for i, body in rows]
        except ProtocolError as exc:
            raise StoreError(
                f"{self.where}: run {run_id}, job {job_id}: unreadable stored repetition ({exc})"
            ) from None

    def pending_repetitions(self, run_id: str) -> dict[str, set[int]]:
        """job id → the indices of its repetitions kept, for the run's jobs with no result yet (an
        interrupted or a lost device's interleaved jobs: --resume runs only the rest)."""
        rows = self._read("SELECT p.job_id, p.repetition FROM repetitions p WHERE p.run_id=? AND NOT EXISTS"
                          " (SELECT 1 FROM results r WHERE r.run_id = p.run_id AND r.job_id = p.job_id)", (run_id,))  # fmt: skip
        out: dict[str, set[int]] = {}
        for job_id, index in rows:
            out.setdefault(job_id, set()).add(int(index))
        return out

    @contextlib.contextmanager
    def _writing(self) -> Iterator[sa.Connection]:
        """One transaction: all of it or none of it, and a full disk or a broken store said in one line."""
        self._writable()
        with self._lock:
            try:
                with self.engine.begin() as conn:
                    yield conn
            except sa.exc.DBAPIError as exc:
                raise self._unusable(exc.orig) from None

    def forget_lost(self, run_id: str) -> int:
        """Delete the run's results that failed only because their device was unreachable, so a resume
        measures them again; how many."""
        results, samples = schema.results, schema.samples
        with self._writing() as conn:
            lost = [r[0] for r in conn.execute(sa.select(results.c.job_id).where(
                results.c.run_id == run_id, results.c.error == DEVICE_LOST))]  # fmt: skip
            for job_id in lost:
                conn.execute(samples.delete().where(samples.c.run_id == run_id, samples.c.job_id == job_id))
                conn.execute(results.delete().where(results.c.run_id == run_id, results.c.job_id == job_id))
        return len(lost)

    def delete_run(self, run_id: str) -> None:
        """A run and everything stored of it, in one transaction (retention: nightly.keep)."""
        with self._writing() as conn:
            for table in (schema.samples, schema.repetitions, schema.results, schema.runs):
                conn.execute(table.delete().where(table.c.run_id == run_id))

    def status_counts(self, run_id: str) -> dict[str, int]:
        """How many of the run's stored results have each status (every sweep of it, resumes included)."""
        rows = self._read("SELECT status, COUNT(*) FROM results WHERE run_id=? GROUP BY status", (run_id,))
        return {status: int(n) for status, n in rows}

    def results(self, run_id: str) -> list[StoredResult]:
        """Every stored result of a run, read back through the contract's classes, samples included."""
        samples = self.samples(run_id)
        out = []
        rows = self._read(
            "SELECT job_id, job_json, result_json FROM results WHERE run_id=? ORDER BY started_unix, job_id", (run_id,)
        )
        for job_id, job_json, result_json in rows:
            try:
                job, result = Job.from_json(job_json), Result.from_json(result_json)
            except ProtocolError as exc:
                raise StoreError(
                    f"{self.where}: run {run_id}, job {job_id}: unreadable stored result ({exc})"
                ) from None
            out.append(StoredResult(job, dataclasses.replace(result, samples_ns=tuple(samples.get(job_id, ())))))
        return out

    def measured_on(self, run_id: str) -> dict[str, str | None]:
        """job id → the host whose embench drove the device (a lab worker, or the sweeping host)."""
        return dict(self._read("SELECT job_id, measured_on FROM results WHERE run_id=?", (run_id,)))

    def sample_frame(self, run_id: str) -> Any:
        """Every raw sample of a run with its job's configuration, as a pandas DataFrame (long format)."""
        import pandas as pd  # noqa: PLC0415 - only the Python API reads samples this way

        rows = self._read(
            "SELECT s.job_id, r.device, r.model, r.precision, r.runtime, r.delegate, r.threads, s.repetition, s.seq,"
            " s.latency_ns FROM samples s JOIN results r ON r.run_id = s.run_id AND r.job_id = s.job_id"
            " WHERE s.run_id=? ORDER BY r.started_unix, s.job_id, s.seq",
            (run_id,),
        )
        columns = ["job_id", "device", "model", "precision", "runtime", "delegate", "threads", "repetition", "seq",
                   "latency_ns"]  # fmt: skip
        return pd.DataFrame.from_records(rows, columns=columns)

    def get_meta(self, key: str) -> str | None:
        rows = self._read("SELECT value FROM meta WHERE key=?", (key,))
        return str(rows[0][0]) if rows else None

    def set_meta(self, key: str, value: str | None) -> None:
        meta = schema.meta
        with self._writing() as conn:
            conn.execute(meta.delete().where(meta.c.key == key))
            if value is not None:
                conn.execute(meta.insert().values(key=key, value=value))

    def samples(self, run_id: str) -> dict[str, list[int]]:
        out: dict[str, list[int]] = {}
        rows = self._read("SELECT job_id, latency_ns FROM samples WHERE run_id=? ORDER BY job_id, seq", (run_id,))
        for job_id, ns in rows:
            out.setdefault(job_id, []).append(ns)
        return out


def _plan_json(plan: list[PlanEntry]) -> str:
    return json.dumps([dataclasses.asdict(entry) for entry in plan])


def _pg_errors() -> type[Exception]:
    """psycopg's base error, when psycopg is installed (a PostgreSQL store needs it; SQLite does not)."""
    try:
        import psycopg  # noqa: PLC0415

        return psycopg.Error
    except ImportError:
        return sqlite3.Error


def _insert_ignoring_duplicates(dialect: str) -> Any:
    """INSERT … ON CONFLICT DO NOTHING, as the store's database spells it."""
    from sqlalchemy.dialects import postgresql, sqlite  # noqa: PLC0415

    insert: Any = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return lambda table: insert(table).on_conflict_do_nothing()


_SAMPLE_COLUMNS = "run_id, job_id, seq, latency_ns, repetition"


def _insert_samples(conn: sa.Connection, rows: list[tuple[str, str, int, int, int]]) -> None:
    """A result's raw samples, in its transaction, the fastest way each database takes many rows: COPY
    for PostgreSQL (3× SQLAlchemy's batched INSERTs at 2,000 samples), executemany for SQLite."""
    if conn.dialect.name == "postgresql":
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        with cursor.copy(f"COPY samples ({_SAMPLE_COLUMNS}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
    else:
        conn.exec_driver_sql(f"INSERT INTO samples ({_SAMPLE_COLUMNS}) VALUES (?, ?, ?, ?, ?)", rows)


def _sqlite_connected(dbapi_conn: sqlite3.Connection, _record: Any) -> None:
    """Each new SQLite connection: WAL (readers never wait on the sweep), every commit on disk, and
    transactions begun by SQLAlchemy (so an upgrade's ALTER TABLEs are inside one, too)."""
    dbapi_conn.isolation_level = None
    dbapi_conn.execute("PRAGMA journal_mode=WAL")
    dbapi_conn.execute("PRAGMA synchronous=FULL")


def _sqlite_begin(conn: sa.Connection) -> None:
    conn.exec_driver_sql("BEGIN")
