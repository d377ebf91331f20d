"""A lab of many hosts: real Dask scheduler and `embench worker` processes on loopback, each driving its
own devices (the host itself, real sshd boards, the stand-in phone), writing into a real PostgreSQL
server and into SQLite."""

from __future__ import annotations

import contextlib
import dataclasses
import signal
import sqlite3
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from adbd import StandinPhone
from conftest import embench, fast_run, interrupt, start_embench, write_inventory
from labcluster import Process, Scheduler, start_worker
from postgres import Postgres, start_postgres
from procs import agent_pids, alive, wait_for
from sshd import keygen, make_board, world_readable_dir

import embench as embench_api
from embench.errors import EmbenchError
from embench.store import Store
from embench_agent.protocol import DEVICE_LOST, DelegateSpec, Job, ModelRef, Result

SWEEP = {"models": ["tiny"], "precisions": ["fp32", "int8"], "runtimes": ["litert"],
         "delegates": {"litert": ["xnnpack"]}, "threads": [1]}  # fmt: skip


@pytest.fixture(scope="module")
def postgres() -> Iterator[Postgres]:
    pg = start_postgres()
    yield pg
    pg.stop()


@pytest.fixture
def scheduler(tmp_path: Path) -> Iterator[Scheduler]:
    s = Scheduler(tmp_path)
    yield s
    s.stop()


@pytest.fixture
def workers() -> Iterator[list[Process]]:
    started: list[Process] = []
    yield started
    for w in started:
        w.stop()


def _rows(url_or_path: str | Path) -> list[dict[str, Any]]:
    store = Store(url_or_path, create=False)
    try:
        with store.engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT * FROM results ORDER BY job_id")).mappings().all()
            return [dict(r) for r in rows]
    finally:
        store.close()


@pytest.mark.slow
def test_a_sweep_across_lab_workers_into_postgresql_and_sqlite_alike(
    tmp_path: Path, zoo_path: Path, postgres: Postgres, scheduler: Scheduler, workers: list[Process],
    board_python_full: str,
) -> None:  # fmt: skip
    """Two lab hosts: one drives the host and a real sshd board, the other the stand-in phone. The same
    sweep through the cluster into PostgreSQL and into SQLite records the same jobs, each once, each
    with the worker that measured it; the PostgreSQL store reads back through every reading verb."""
    root = world_readable_dir("embench-labhosts-")
    key = tmp_path / "id_ed25519"
    board = make_board("lab-pi", root / "lab-pi", keygen(key))
    known = tmp_path / "known_hosts"
    known.write_text(board.known_hosts_line() + "\n")
    with StandinPhone(tmp_path / "phone", props={"ro.product.model": "Pixel 7"}) as phone:
        devices = [
            {"name": "host", "transport": "local", "host": "lab-a"},
            {"name": "lab-pi", "transport": "ssh", "python": board_python_full, "workdir": str(board.workdir),
             "host": "lab-a", "ssh": {"host": "127.0.0.1", "port": board.port, "user": board.user,
                                      "key_file": str(key), "known_hosts": str(known)}},
            {"name": "pixel", "transport": "adb", "python": sys.executable, "host": "lab-b",
             "workdir": str(phone.root / "data" / "local" / "tmp" / "embench"),
             "adb": {"serial": phone.serial, "key_file": str(tmp_path / "adbkey"), "agent": "python"}},
        ]  # fmt: skip
        inv = write_inventory(tmp_path, zoo_path, SWEEP, devices)
        workers.append(start_worker(inv, scheduler, "lab-a", ["host", "lab-pi"], tmp_path))
        workers.append(start_worker(inv, scheduler, "lab-b", ["pixel"], tmp_path))
        url = postgres.create_database("alike").replace("postgres@", "postgres:s3cret-pw@")  # trust: never checked
        into_pg = embench("sweep", str(inv), "--cluster", scheduler.address, "--store", url, cwd=tmp_path)
        into_sqlite = embench("sweep", str(inv), "--cluster", scheduler.address, "--store", "s.sqlite", "-q",
                              cwd=tmp_path)  # fmt: skip
    board.kill()
    assert into_pg.returncode == 0, into_pg.stderr
    assert into_sqlite.returncode == 0, into_sqlite.stderr
    pg_rows, sqlite_rows = _rows(url), _rows(tmp_path / "s.sqlite")
    assert len(pg_rows) == len(sqlite_rows) == 6
    same = ("job_id", "device", "model", "precision", "runtime", "delegate", "threads", "status", "model_sha256",
            "runtime_version", "measured_on")  # fmt: skip
    assert [[r[k] for k in same] for r in pg_rows] == [[r[k] for k in same] for r in sqlite_rows]
    assert {(r["device"], r["measured_on"]) for r in pg_rows} == {("host", "lab-a"), ("lab-pi", "lab-a"),
                                                                  ("pixel", "lab-b")}  # fmt: skip
    assert all(r["status"] in ("ok", "fallback") and r["n_samples"] >= 5 for r in pg_rows)
    # every raw sample is there, in both
    for rows, where in ((pg_rows, url), (sqlite_rows, tmp_path / "s.sqlite")):
        store = Store(where, create=False)
        (run,) = store.runs()
        assert {r.job.job_id: len(r.result.samples_ns) for r in store.results(run.run_id)} == {
            r["job_id"]: r["n_samples"] for r in rows
        }
    assert len(embench_api.results(url)) == 6 and len(embench_api.samples(url)) == sum(r["n_samples"] for r in pg_rows)
    # the reading verbs read PostgreSQL as they read SQLite; the password appears nowhere
    listed = embench("runs", "--store", url, cwd=tmp_path)
    report = embench("report", "--store", url, "--out", str(tmp_path / "r"), cwd=tmp_path)
    assert listed.returncode == 0 and report.returncode == 0, listed.stderr + report.stderr
    written = "".join(p.read_text(errors="replace") for p in (tmp_path / "r").rglob("*") if p.is_file())
    said = into_pg.stdout + into_pg.stderr + listed.stdout + report.stdout + "".join(w.output() for w in workers)
    assert "s3cret-pw" not in said + written and "postgres:***@" in into_pg.stdout
    stored = postgres.psql("alike", "SELECT string_agg(r::text, '') FROM runs r") + postgres.psql(
        "alike", "SELECT string_agg(x.result_json || x.job_json, '') FROM results x"
    )
    assert "s3cret" not in stored


@pytest.mark.slow
def test_a_worker_killed_mid_job_has_the_job_run_again_and_recorded_once(
    tmp_path: Path, zoo_path: Path, scheduler: Scheduler, workers: list[Process]
) -> None:
    """Two lab hosts can both drive the device. The one running a job dies (SIGKILL to it and its agent):
    Dask runs that job again on the other, it is recorded once, and nothing else is lost."""
    sweep = {**SWEEP, "threads": [1, 2], "run": fast_run(min_seconds=1.5, max_seconds=3.0, min_runs=5)}
    inv = write_inventory(tmp_path, zoo_path, sweep)
    workers.append(start_worker(inv, scheduler, "lab-a", ["host"], tmp_path))
    workers.append(start_worker(inv, scheduler, "lab-b", ["host"], tmp_path))
    sweep_proc = start_embench("sweep", str(inv), "--cluster", scheduler.address, "--store", "s.sqlite", "-q",
                               cwd=tmp_path)  # fmt: skip
    # the second job, whichever worker has it: its worker dies while the job runs
    names = {"lab-a": workers[0], "lab-b": workers[1]}
    name, label = wait_for("a second job running on a worker", lambda: _running_second(names))
    names[name].kill()
    survivor = "lab-b" if name == "lab-a" else "lab-a"
    _, err = sweep_proc.communicate(timeout=300)
    assert sweep_proc.returncode == 0, err
    rows = _rows(tmp_path / "s.sqlite")
    assert len(rows) == len({r["job_id"] for r in rows}) == 4  # nothing lost, nothing twice
    by_label = {f"{r['device']}/{r['model']}/{r['precision']}/{r['runtime']}:{r['delegate']}/t{r['threads']}": r
                for r in rows}  # fmt: skip
    assert by_label[label]["measured_on"] == survivor
    assert sum(line.endswith(f"{label}: started") for line in names[survivor].lines) == 1  # run again once
    assert all(r["status"] in ("ok", "fallback") for r in rows)


@pytest.mark.slow
def test_interleaved_repetitions_on_lab_workers_are_each_recorded_once(
    tmp_path: Path, zoo_path: Path, scheduler: Scheduler, workers: list[Process]
) -> None:
    """Rounds through the cluster: one task per repetition, round by round, on whichever lab host drives the
    device. The worker running the second step dies mid-repetition: Dask runs that repetition again on the
    other, and each job is recorded once with each of its repetitions once, in rounds."""
    inv = write_inventory(
        tmp_path, zoo_path, {**SWEEP, "run": fast_run(repetitions=3, min_seconds=1.0, max_seconds=2.0)}
    )
    workers.append(start_worker(inv, scheduler, "lab-a", ["host"], tmp_path))
    workers.append(start_worker(inv, scheduler, "lab-b", ["host"], tmp_path))
    sweep_proc = start_embench("sweep", str(inv), "--cluster", scheduler.address, "--store", "s.sqlite", "-q",
                               cwd=tmp_path)  # fmt: skip
    names = {"lab-a": workers[0], "lab-b": workers[1]}
    name, label = wait_for("a second step running on a worker", lambda: _running_second(names))
    assert label.endswith("/t1 (repetition 1/3)")  # the second job's first repetition
    names[name].kill()
    survivor = "lab-b" if name == "lab-a" else "lab-a"
    _, err = sweep_proc.communicate(timeout=300)
    assert sweep_proc.returncode == 0, err
    assert sum(line.endswith(f"{label}: started") for line in names[survivor].lines) == 1  # run again once
    store = Store(tmp_path / "s.sqlite", create=False)
    results = store.results(store.runs()[-1].run_id)
    assert len(results) == 2 and all(r.result.measured and len(r.result.repetitions) == 3 for r in results)
    ran = sorted((rep.window_start_unix or 0.0, rep.index) for r in results for rep in r.result.repetitions)
    assert [index for _, index in ran] == [0, 0, 1, 1, 2, 2]
    assert store.pending_repetitions(store.runs()[-1].run_id) == {}
    assert set(store.measured_on(store.runs()[-1].run_id).values()) == {survivor}  # the last repetitions' host


def _running_second(workers: dict[str, Process]) -> tuple[str, str] | None:
    """(worker, job label) once two jobs have started and the second is running on that worker."""
    started = [(n, line) for n, w in workers.items() for line in list(w.lines) if line.endswith(": started")]
    if len(started) < 2:
        return None
    for name, worker in workers.items():
        lines = list(worker.lines)
        for line in lines:
            if line.endswith(": started"):
                label = line.split(": ")[1]
                if not any(other.startswith(f"embench worker {name}: {label}: ") and not other.endswith(": started")
                           for other in lines):  # fmt: skip
                    return name, label
    return None


def _stored_on(store: Path, device: str) -> int:
    if not store.exists():
        return 0
    with contextlib.closing(sqlite3.connect(f"{store.as_uri()}?mode=ro", uri=True)) as db:
        try:
            return int(db.execute("SELECT COUNT(*) FROM results WHERE device=?", (device,)).fetchone()[0])
        except sqlite3.OperationalError:
            return 0


def _two_hosts(tmp_path: Path, zoo_path: Path, threads: list[int] | None = None, **run: Any) -> Path:
    sweep = {**SWEEP, "threads": threads or [1, 2], "run": fast_run(**run)}
    devices = [{"name": "bench-a", "transport": "local", "host": "lab-a"},
               {"name": "bench-b", "transport": "local", "host": "lab-b"}]  # fmt: skip
    return write_inventory(tmp_path, zoo_path, sweep, devices)


@pytest.mark.slow
def test_a_lab_host_lost_mid_sweep_leaves_its_devices_for_resume(
    tmp_path: Path, zoo_path: Path, scheduler: Scheduler, workers: list[Process]
) -> None:
    """lab-b dies after its device's first job: bench-a's jobs all finish, bench-b's wait a bounded time
    for a worker, then are left for --resume (one line, exit 3); a new lab-b and --resume complete the run."""
    inv = _two_hosts(tmp_path, zoo_path, min_seconds=0.8, max_seconds=1.5)
    workers.append(start_worker(inv, scheduler, "lab-a", ["bench-a"], tmp_path))
    lab_b = start_worker(inv, scheduler, "lab-b", ["bench-b"], tmp_path)
    workers.append(lab_b)
    args = ["sweep", str(inv), "--cluster", scheduler.address, "--store", "s.sqlite", "--worker-wait", "3", "-q"]
    sweep_proc = start_embench(*args, cwd=tmp_path)
    wait_for("a result of bench-b stored", lambda: _stored_on(tmp_path / "s.sqlite", "bench-b"))
    lab_b.kill()
    _, err = sweep_proc.communicate(timeout=300)
    assert sweep_proc.returncode == 3, err
    assert "device bench-b: no embench worker connected to" in err and "no longer offers it" in err
    assert f"start `embench worker --scheduler {scheduler.address} INVENTORY --devices bench-b`" in err
    rows = _rows(tmp_path / "s.sqlite")
    on = {d: [r for r in rows if r["device"] == d] for d in ("bench-a", "bench-b")}
    assert len(on["bench-a"]) == 4 and 1 <= len(on["bench-b"]) < 4, rows
    workers.append(start_worker(inv, scheduler, "lab-b", ["bench-b"], tmp_path))  # the host is back
    resumed = embench(*args, "--resume", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    rows = _rows(tmp_path / "s.sqlite")
    assert len(rows) == len({r["job_id"] for r in rows}) == 8


def test_a_device_no_worker_offers_is_one_line_after_a_bounded_wait(
    tmp_path: Path, zoo_path: Path, scheduler: Scheduler, workers: list[Process]
) -> None:
    inv = _two_hosts(tmp_path, zoo_path)
    workers.append(start_worker(inv, scheduler, "lab-a", ["bench-a"], tmp_path))
    started = time.monotonic()
    out = embench("sweep", str(inv), "--cluster", scheduler.address, "--store", "s.sqlite", "--worker-wait", "2",
                  "-q", cwd=tmp_path)  # fmt: skip
    assert out.returncode == 3, out.stderr
    assert time.monotonic() - started < 120  # bounded: Dask alone would wait for ever
    (line,) = [x for x in out.stderr.splitlines() if "bench-b" in x]
    assert f"device bench-b: no embench worker connected to {scheduler.address} offers it; waited 2 s" in line
    assert "4 of its jobs not run" in line
    assert {r["device"] for r in _rows(tmp_path / "s.sqlite")} == {"bench-a"}
    workers[0].proc.send_signal(signal.SIGTERM)  # systemctl stop: leaves the scheduler cleanly
    assert workers[0].proc.wait(timeout=60) == 143
    assert "embench worker lab-a: stopped by SIGTERM" in workers[0].output()
    assert "Traceback" not in workers[0].output()
    nowhere = embench("sweep", str(inv), "--cluster", "tcp://127.0.0.1:9", "--store", "t.sqlite", cwd=tmp_path)
    assert nowhere.returncode == 1
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in nowhere.stderr
    assert len(nowhere.stderr.strip().splitlines()) == 1 and not (tmp_path / "t.sqlite").exists()


def test_a_lab_host_without_the_model_files_fails_those_jobs_in_one_line(
    tmp_path: Path, zoo_path: Path, scheduler: Scheduler, workers: list[Process]
) -> None:
    inv = write_inventory(tmp_path, zoo_path, {**SWEEP, "precisions": ["fp32"]})
    build = zoo_path.parent / "build"
    workers.append(start_worker(inv, scheduler, "lab-a", ["host"], tmp_path, hide=build))
    out = embench("sweep", str(inv), "--cluster", scheduler.address, "--store", "s.sqlite", "-q", cwd=tmp_path)
    assert out.returncode == 3, out.stderr
    (row,) = _rows(tmp_path / "s.sqlite")
    assert row["status"] == "failed" and row["measured_on"] == "lab-a"
    assert f"lab worker lab-a cannot read the model file {build}/" in row["message"]
    assert "share the zoo's build folder at the same path on every lab host" in out.stderr


@pytest.mark.slow
def test_two_sweeps_write_one_postgresql_store_while_it_is_read(
    tmp_path: Path, zoo_path: Path, postgres: Postgres
) -> None:
    """Two sweeps start at once on a new PostgreSQL database (both set it up: one does, one waits) and
    write into it together while `embench runs` reads it."""
    url = postgres.create_database("shared")
    inv = write_inventory(tmp_path, zoo_path, {**SWEEP, "threads": [1, 2]})
    procs = [start_embench("sweep", str(inv), "--store", url, "-q", cwd=tmp_path) for _ in range(2)]
    reads = 0
    while any(p.poll() is None for p in procs):
        listed = embench("runs", "--store", url, cwd=tmp_path)
        assert listed.returncode == 0 or "holds no embench store yet" in listed.stderr, listed.stderr
        reads += 1
    outs = [p.communicate() for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [e for _, e in outs]
    assert reads >= 1
    store = Store(url, create=False)
    runs = store.runs()
    assert len(runs) == 2 and all(r.recorded == r.planned == 4 and r.state == "finished" for r in runs)


def _store_at(target: str | Path, revision: str) -> sa.Engine:
    """A store as an older embench left it: its tables at `revision` (the migrations' own)."""
    from alembic import command  # noqa: PLC0415
    from alembic.config import Config  # noqa: PLC0415

    import embench  # noqa: PLC0415

    url = (
        str(target).replace("postgresql://", "postgresql+psycopg://") if "://" in str(target) else f"sqlite:///{target}"
    )
    engine = sa.create_engine(url)
    config = Config()
    config.set_main_option("script_location", str(Path(embench.__file__).parent / "migrations"))
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, revision)
        conn.execute(sa.text("INSERT INTO meta VALUES ('schema_version', :v)"), {"v": str(int(revision))})
    return engine


def _v2_rows(engine: sa.Engine) -> None:
    """Two results as store schema 2 held them: one lost with its device, one measured with samples."""
    job = Job("j1", "pi", ModelRef("m", "tflite", "fp32"), "litert", DelegateSpec("cpu"), 1)
    lost = Result(job_id="j1", status="failed", message="device pi: gone", error=DEVICE_LOST)
    ok = Result(job_id="j2", status="ok", samples_ns=())
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO runs VALUES ('r1', 1.0, 2.0, 'finished', 'inv.yaml', 'old-host', '0.1', 2,"
                             " '[]', 'nightly')"))  # fmt: skip
        for j, r, n in ((job, lost, 0), (dataclasses.replace(job, job_id="j2"), ok, 3)):
            conn.execute(sa.text(
                "INSERT INTO results VALUES ('r1', :j, 'pi', 'm', 'fp32', 'tflite', 'litert', 'cpu', 1, :s, NULL,"
                " NULL, NULL, NULL, NULL, NULL, NULL, :n, 1, NULL, NULL, :job, :res)"),
                {"j": j.job_id, "s": r.status, "n": n, "job": j.to_json(), "res": r.to_json()})  # fmt: skip
        conn.execute(sa.text("INSERT INTO samples VALUES ('r1', 'j2', :i, :ns, :rep)"),
                     [{"i": i, "ns": 1000 + i, "rep": i % 2} for i in range(3)])  # fmt: skip
    engine.dispose()


@pytest.mark.parametrize("kind", ["postgresql", "sqlite"])
def test_a_store_of_the_previous_schema_is_upgraded_in_place(
    tmp_path: Path, zoo_path: Path, postgres: Postgres, kind: str
) -> None:
    """Store schema 2 → 4 with no data lost: a shared PostgreSQL store by `embench store upgrade` (a sweep
    refuses it until then, readers still read it); an SQLite file by the first sweep that opens it."""
    target = postgres.create_database(f"old_{tmp_path.name[-20:].lower()}") if kind == "postgresql" else str(
        tmp_path / "old.sqlite")  # fmt: skip
    _v2_rows(_store_at(target, "0002"))
    inv = write_inventory(tmp_path, zoo_path, {**SWEEP, "precisions": ["fp32"]})
    listed = embench("runs", "--store", target, cwd=tmp_path)
    assert listed.returncode == 0 and "r1" in listed.stdout, listed.stderr
    if kind == "postgresql":  # (an SQLite file is upgraded by whatever opens it, `store version` aside)
        said = embench("store", "version", "--store", target, cwd=tmp_path)
        assert said.returncode == 0 and "store schema 2; this embench writes 4" in said.stdout, said.stderr
    if kind == "postgresql":
        refused = embench("sweep", str(inv), "--store", target, cwd=tmp_path)
        assert refused.returncode == 1
        assert "has store schema version 2; this embench writes 4: upgrade it in place first with `embench store" \
               " upgrade --store" in refused.stderr  # fmt: skip
        upgraded = embench("store", "upgrade", "--store", target, cwd=tmp_path)
        assert upgraded.returncode == 0 and "upgraded from store schema 2 to 4, every run kept" in upgraded.stdout
    swept = embench("sweep", str(inv), "--store", target, "-q", cwd=tmp_path)
    assert swept.returncode == 0, swept.stderr
    again = embench("store", "upgrade", "--store", target, cwd=tmp_path)
    assert "already at store schema 4; nothing to do" in again.stdout
    store = Store(target, create=False)
    first = store.runs()[0]
    assert first.run_id == "r1" and first.label == "nightly"
    kept = {s.job.job_id: s.result for s in store.results("r1")}
    assert kept["j2"].samples_ns == (1000, 1001, 1002) and kept["j1"].error == DEVICE_LOST
    assert store.measured_on("r1") == {"j1": "old-host", "j2": "old-host"}  # before schema 3: the sweeping host
    assert store.sample_frame("r1")["repetition"].tolist() == [0, 1, 0]
    assert store.forget_lost("r1") == 1 and store.done_job_ids("r1") == {"j2"}  # the error column, back-filled


def test_the_migrations_build_exactly_the_tables_embench_uses(tmp_path: Path, postgres: Postgres) -> None:
    """From nothing, Alembic's migrations give the tables of store_schema, on both databases."""
    from alembic.autogenerate import compare_metadata  # noqa: PLC0415
    from alembic.migration import MigrationContext  # noqa: PLC0415

    from embench.store_schema import metadata  # noqa: PLC0415

    for target in (str(tmp_path / "new.sqlite"), postgres.create_database("fresh")):
        store = Store(target)
        with store.engine.connect() as conn:
            diffs = compare_metadata(MigrationContext.configure(conn), metadata)
        assert diffs == [], (target, diffs)
        store.close()
    sqlite = sqlite3.connect(tmp_path / "new.sqlite")
    assert sqlite.execute("PRAGMA application_id").fetchone()[0] == 0x656D6265
    assert sqlite.execute("SELECT version_num FROM alembic_version").fetchone()[0] == "0004"
    assert sqlite.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0] == "4"


def test_nightly_through_the_cluster_into_postgresql_and_its_lock(
    tmp_path: Path, zoo_path: Path, postgres: Postgres, scheduler: Scheduler, workers: list[Process]
) -> None:
    """`embench nightly --cluster` sweeps on the lab's workers into the shared store and judges there; a
    second nightly on the same PostgreSQL store, from any host, is refused while one runs (exit 6)."""
    url = postgres.create_database("nightly")
    inv = write_inventory(tmp_path, zoo_path, {**SWEEP, "precisions": ["fp32"]})
    workers.append(start_worker(inv, scheduler, "lab-a", ["host"], tmp_path))
    args = ["nightly", str(inv), "--cluster", scheduler.address, "--store", url, "--out", str(tmp_path / "n"), "-q"]
    first = embench(*args, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    holder = Store(url)
    assert holder.try_hold("nightly")  # another host's nightly is running
    busy = embench(*args, cwd=tmp_path)
    assert busy.returncode == 6 and "another `embench nightly` on postgresql://postgres@/nightly" in busy.stderr
    holder.close()  # its connection gone: the lock with it
    second = embench(*args, cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    runs = Store(url, create=False).runs()
    assert [r.label for r in runs] == ["nightly", "nightly"] and all(r.state == "finished" for r in runs)
    assert set(Store(url, create=False).measured_on(runs[-1].run_id).values()) == {"lab-a"}
    assert (tmp_path / "n" / runs[-1].run_id / "junit.xml").is_file()


@pytest.mark.slow
def test_ctrl_c_of_a_lab_sweep_stops_the_workers_agents_and_resume_completes(
    tmp_path: Path, zoo_path: Path, scheduler: Scheduler, workers: list[Process]
) -> None:
    """Ctrl-C on the sweeping host while both lab workers run a 20-second job: exit 130, the agents on
    the workers are killed there (not left running on the devices), and `--resume` completes the run."""
    inv = _two_hosts(tmp_path, zoo_path, threads=[1], min_seconds=20.0, max_seconds=25.0)
    for name, device in (("lab-a", "bench-a"), ("lab-b", "bench-b")):
        workers.append(start_worker(inv, scheduler, name, [device], tmp_path))
    args = ["sweep", str(inv), "--cluster", scheduler.address, "--store", "s.sqlite", "-q"]
    proc = start_embench(*args, cwd=tmp_path)
    running = wait_for("agents running on both workers", lambda: [agent_pids(w.proc.pid) for w in workers]
                       if all(agent_pids(w.proc.pid) for w in workers) else None)  # fmt: skip
    stopped = time.monotonic()
    err = interrupt(proc)
    assert proc.returncode == 130, err
    assert "interrupted: finished results are stored; continue with `embench sweep" in err and "--cluster" in err
    pids = [pid for each in running for pid in each]
    wait_for("the workers' agents killed", lambda: not any(alive(pid) for pid in pids), timeout=60)
    assert time.monotonic() - stopped < 20  # killed, not finished: each job times for 20 s at least
    store = Store(tmp_path / "s.sqlite", create=False)
    (run,) = store.runs()
    assert run.state == "interrupted" and run.recorded == 0
    resumed = embench(*args, "--resume", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    rows = _rows(tmp_path / "s.sqlite")
    assert len(rows) == len({r["job_id"] for r in rows}) == 4


def test_a_worker_serves_the_devices_whose_host_is_its_name(tmp_path: Path, zoo_path: Path) -> None:
    from embench.inventory import load_inventory  # noqa: PLC0415
    from embench.worker import worker_devices  # noqa: PLC0415

    devices = [{"name": "pixel7", "transport": "local", "host": "usb-host-1"},
               {"name": "s24", "transport": "local", "host": "usb-host-1"},
               {"name": "pi5", "transport": "local", "host": "board-host"}]  # fmt: skip
    inv = load_inventory(str(write_inventory(tmp_path, zoo_path, SWEEP, devices)))
    assert [d.name for d in worker_devices(inv, None, "usb-host-1")] == ["pixel7", "s24"]
    assert [d.name for d in worker_devices(inv, "pi5, s24", "anything")] == ["pi5", "s24"]
    with pytest.raises(EmbenchError, match=r"no device named jetson; its devices: pixel7, s24, pi5"):
        worker_devices(inv, "pi5,jetson", "usb-host-1")
    with pytest.raises(EmbenchError, match=r"no device has host: lab-9; name this host's devices with --devices"):
        worker_devices(inv, None, "lab-9")
    out = embench("worker", str(tmp_path / "inventory.yaml"), "--scheduler", "tcp://127.0.0.1:9", "--name", "lab-9",
                  cwd=tmp_path)  # fmt: skip
    assert (
        out.returncode == 1 and out.stderr.startswith("embench: error: ") and "no device has host: lab-9" in out.stderr
    )


def test_without_the_lab_extra_each_lab_verb_says_what_to_install(tmp_path: Path, zoo_path: Path) -> None:
    """A host that installed embench without the lab extra: psycopg and distributed do not import."""
    hidden = tmp_path / "hidden"
    hidden.mkdir()
    for module in ("psycopg", "distributed"):
        (hidden / f"{module}.py").write_text("raise ImportError('not installed here')\n")
    env = {"PYTHONPATH": str(hidden)}
    inv = write_inventory(tmp_path, zoo_path, SWEEP)
    for args, what in (
        (["runs", "--store", "postgresql://embench@/lab?host=/nonexistent"], "a PostgreSQL store needs psycopg 3"),
        (["sweep", str(inv), "--cluster", "tcp://127.0.0.1:9", "--store", "s.sqlite"], "--cluster needs Dask distributed"),
        (["worker", str(inv), "--scheduler", "tcp://127.0.0.1:9", "--devices", "host"], "embench worker needs Dask"),
    ):  # fmt: skip
        out = embench(*args, cwd=tmp_path, env=env)
        assert out.returncode == 1, out.stderr
        (line,) = out.stderr.strip().splitlines()
        assert what in line and "pip install -e '.[lab]'" in line
