"""The typed contract between host and agent (embench_agent.protocol), the bundled agent, and the
registries: a Result survives the wire and the store, a bad one is refused naming what is wrong, and
a runtime or power source added from outside is one class plus one registry line."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
from conftest import embench, write_inventory

from embench import runtimes as host_runtimes
from embench.agents.bundle import EPOCH, PACKAGE, agent_bytes, bundled_agent
from embench.inventory import load_inventory
from embench.plan import make_plan
from embench.runtimes.base import HostRuntime
from embench.telemetry import summarize_telemetry
from embench.yamlschema import SchemaError
from embench.zoo import Zoo
from embench_agent import runtimes as agent_runtimes
from embench_agent import telemetry as agent_telemetry
from embench_agent.job import run_job
from embench_agent.protocol import (
    SCHEMA_VERSION,
    STATUSES,
    Aggregate,
    Cooldown,
    DelegateSpec,
    Delegation,
    DeviceFacts,
    Edge,
    Job,
    Memory,
    ModelRef,
    ProtocolError,
    Repetition,
    Result,
    RunSpec,
    RuntimeInfo,
    RuntimeProbe,
    SourceSpec,
    SourceTrace,
    Telemetry,
)  # fmt: skip
from embench_agent.runtimes import Measurement
from embench_agent.telemetry.base import Reader
from embench_agent.timing import Mark, timed_loop


def full_result() -> Result:
    """A Result with every part filled in, as an agent and the host together would make it."""
    tel = Telemetry(
        edges={"window_start": Edge(1.0, 1700000001.0, {"rapl": 5.0}), "window_end": Edge(3.0, None, {"rapl": None})},
        sources=(SourceTrace("hwmon", "ina226", "power", "W", 20.0, {"a": 1}, {"trip_c": None}, ((1.0, 2.5), (2.0, 3.0))),),
        errors=("thermal: none",),
        sampler_cpu_seconds=0.01,
    )  # fmt: skip
    return Result(
        job_id="abc", status="fallback", message="took 3 of 4 nodes", runtime=RuntimeInfo("litert", "ai_edge_litert", "1.2"),
        delegation=Delegation("xnnpack", "xnnpack", 3, 4), init_ms=1.5, first_inference_ms=2.0, samples_ns=(10, 20, 30),
        window_ns=60, peak_rss_kb=1000, device_facts=DeviceFacts(cores=2, soc="SM8550"), telemetry=tel,
        aggregate=Aggregate(count=3, avg=20.0), memory=Memory("peak", 1.0, 2.0), attempts=2,
        cooldown=Cooldown("temperature", 1.5, 60.0, 45.0, 45.0),
    )  # fmt: skip


def test_a_result_survives_json_both_ways() -> None:
    result = full_result()
    again = Result.from_json(result.to_json())
    assert again == result
    assert json.loads(result.to_json())["schema"] == SCHEMA_VERSION
    job = Job("j", "pi", ModelRef("m", "tflite", "int8", "/x", "ab", 5), "litert", DelegateSpec("gpu", "lib.so", {"a": "b"}),
              2, RunSpec(1, 2, 0.5, 1.0), (SourceSpec("hwmon", "/r", 10.0, {"chip": "ina226"}),), 7)  # fmt: skip
    assert Job.from_json(job.to_json()) == job


@pytest.mark.parametrize(
    ("change", "field", "why"),
    [
        (lambda d: d.pop("status"), "status", "missing"),
        (lambda d: d.update(status="great"), "status", "'great' is not one of"),
        (lambda d: d.update(samples_ns=[1, "x", 3]), "samples_ns[1]", "expected an integer"),
        (lambda d: d.update(samples_ns=[1, -5]), "samples_ns[1]", "must be above 0"),
        (lambda d: d.update(samples_ns=[1, 10**20]), "samples_ns[1]", "is above"),
        (lambda d: d.update(samples_ns=[1, True]), "samples_ns[1]", "expected an integer"),
        (lambda d: d.update(init_ms=float("nan")), "init_ms", "finite"),
        (lambda d: d.update(init_ms=-1.0), "init_ms", "below 0"),
        (lambda d: d.update(attempts=0), "attempts", "below 1"),
        (lambda d: d.update(colour="red"), "(top level)", "unknown key 'colour'"),
        (lambda d: d.update(schema=99), "schema", "version 99 is not known"),
        (lambda d: d["delegation"].update(delegated_nodes="3"), "delegation.delegated_nodes", "expected an integer"),
        (lambda d: d["telemetry"]["sources"][0].update(samples=[[1.0]]), "telemetry.sources[0].samples[0]", "2 items"),
        (lambda d: d["device_facts"].update(cores="two"), "device_facts.cores", "expected an integer"),
        (lambda d: d.update(telemetry=[]), "telemetry", "expected an object"),
    ],
)
def test_a_bad_result_is_refused_naming_the_field(change: Any, field: str, why: str) -> None:
    raw = json.loads(full_result().to_json())
    change(raw)
    with pytest.raises(ProtocolError) as caught:
        Result.from_dict(raw)
    assert str(caught.value).startswith(f"{field}: ") and why in str(caught.value), str(caught.value)


def test_schema_1_results_still_load() -> None:
    """What sessions before the typed contract stored (benchmark_model's memory under its old names)."""
    old = {"schema": 1, "job_id": "j", "agent": "benchmark_model", "status": "ok", "message": None,
           "samples_ns": [], "aggregate": {"unit": "us", "count": 50.0, "avg": 900.0, "odd": 1.0},
           "memory": {"memory_kind": "peak", "memory_init_mb": 8.0, "memory_overall_mb": 64.8},
           "device_facts": None, "cooldown": {"gated_on": "fixed", "waited_s": 0.0}}  # fmt: skip
    result = Result.from_dict(old)
    assert result.memory == Memory("peak", 8.0, 64.8) and result.aggregate == Aggregate(count=50.0, avg=900.0)
    assert result.schema == SCHEMA_VERSION and result.device_facts == DeviceFacts()


def test_one_list_of_statuses_everywhere() -> None:
    from embench.report import pages  # noqa: PLC0415

    assert pages.STATUSES is STATUSES
    source = "\n".join(p.read_text() for p in Path(host_runtimes.__file__).parents[1].rglob("*.py"))
    assert source.count('"ok", "fallback", "unsupported"') == 0  # no second list hand-kept on the host


# ---------------------------------------------------------------------------- the bundled agent


def test_the_bundle_is_reproducible_and_runs(tmp_path: Path) -> None:
    first = agent_bytes()
    # Another checkout of the same source, made at another time (a file's date must not reach the zip)
    copy = tmp_path / "embench_agent"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    for path in copy.rglob("*.py"):
        os.utime(path, (1_000_000_000, 1_000_000_000))
    assert agent_bytes(copy) == first
    (copy / "protocol.py").write_text((copy / "protocol.py").read_text() + "\n")
    assert agent_bytes(copy) != first  # and a change in the source is a new bundle
    path, sha = bundled_agent()
    assert hashlib.sha256(path.read_bytes()).hexdigest() == sha == hashlib.sha256(first).hexdigest()
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        assert names[0] == "__main__.py" and names[1:] == sorted(names[1:])
        assert {i.date_time for i in zf.infolist()} == {EPOCH}
        assert "embench_agent/protocol.py" in names and "embench_agent/runtimes/litert.py" in names
        assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    out = subprocess.run([sys.executable, str(path), "probe"], capture_output=True, text=True, check=True, timeout=60)
    assert json.loads(out.stdout)["runtimes"]["litert"]["package"] == "ai_edge_litert"
    # run from elsewhere, with nothing on its path but the zip: it imports only itself
    out = subprocess.run(
        [sys.executable, "-I", str(path), "nonsense"], capture_output=True, text=True, timeout=60, check=False
    )
    assert out.returncode == 2 and "probe" in out.stderr


def test_a_bad_job_gets_a_failed_result_not_a_traceback() -> None:
    path, _ = bundled_agent()
    bad = {"schema": 2, "job_id": "j9", "device": "d", "runtime": "litert"}
    out = subprocess.run([sys.executable, str(path), "run", "-"], input=json.dumps(bad), capture_output=True,
                         text=True, timeout=60, check=True)  # fmt: skip
    result = Result.from_json(out.stdout)
    assert result.status == "failed" and result.job_id == "j9" and "model: missing" in str(result.message)


# ---------------------------------------------------------------------------- malformed agent output


AGENT_IMPOSTOR = """#!/bin/sh
# Probes are answered by the real agent; results are replaced by what the test asks for.
case "$2" in
  run) cat > /dev/null; printf '%s\\n' "$EMBENCH_TEST_OUTPUT";;
  *) exec {python} "$@";;
esac
"""


@pytest.mark.parametrize(
    ("output", "said"),
    [
        ('{{"schema": 2, "job_id": "{id}", "status": "great"}}', "status: 'great' is not one of"),
        ('{{"schema": 2, "job_id": "{id}", "agent": "python"}}', "status: missing"),
        ('{{"schema": 2, "job_id": "{id}", "status": "ok", "samples_ns": [5, "fast", -1]}}', "samples_ns[1]"),
        ("all good, trust me", "not JSON"),
    ],
)
def test_a_malformed_result_is_failed_and_the_sweep_goes_on(
    tmp_path: Path, zoo_path: Path, output: str, said: str
) -> None:
    impostor = tmp_path / "python"
    impostor.write_text(AGENT_IMPOSTOR.format(python=sys.executable))
    impostor.chmod(0o755)
    sweep = {"models": ["tiny"], "runtimes": ["litert"], "delegates": {"litert": ["cpu", "xnnpack"]}}
    inv = write_inventory(tmp_path, zoo_path, sweep, [{"name": "host", "python": str(impostor)}])
    plan = make_plan(load_inventory(inv), Zoo(zoo_path))
    ids = [job.job_id for job in plan.jobs]
    assert len(ids) == 2
    # every job gets the same output; its job_id matches the first job's, so the second is also a mismatch
    env = {"EMBENCH_TEST_OUTPUT": output.format(id=ids[0])}
    out = embench("sweep", str(inv), "--store", str(tmp_path / "s.sqlite"), "-q", cwd=tmp_path, env=env)
    assert out.returncode == 3, out.stderr
    assert "Traceback" not in out.stderr
    rows = sqlite3.connect(tmp_path / "s.sqlite").execute("SELECT job_id, status, message FROM results").fetchall()
    assert len(rows) == 2 and {status for _, status, _ in rows} == {"failed"}
    first = next(message for job_id, _, message in rows if job_id == ids[0])
    assert first.startswith("device host: the agent's output is not a valid result") and said in first
    second = next(message for job_id, _, message in rows if job_id == ids[1])
    assert "device host" in second


# ---------------------------------------------------------------------------- registries, used from outside


class ToyPower(Reader):
    """A power source that reads watts from a file: what a new board's reader looks like."""

    kind, unit, rate_hz = "power", "W", 50.0

    def __init__(self, root: str, options: Any) -> None:
        super().__init__(root, options)
        self.path = Path(root) / options.get("file", "watts")
        if not self.path.exists():
            raise LookupError(f"no {self.path}")
        self.label = "toy"

    def read(self) -> float | None:
        return float(self.path.read_text())


class ToyRuntime:
    """An agent-side runtime that 'infers' by sleeping: what a new runtime's agent half looks like."""

    NAME = "toyrt"

    def probe(self) -> RuntimeProbe:
        return RuntimeProbe(package="toyrt", version="0.1")

    def run(self, job: Job, mark: Mark | None) -> Measurement:
        import time  # noqa: PLC0415

        timing = timed_loop(lambda: time.sleep(0.001), job.run, mark)
        return Measurement(
            RuntimeInfo(self.NAME, "toyrt", "0.1"), Delegation(job.delegate.name, "cpu", 0, 1), 0.1, "", timing
        )


class ToyHost(HostRuntime):
    """The host half of the same runtime: it runs the zoo's ONNX files."""

    NAME = "toyrt"
    DELEGATES = ("cpu",)
    DEFAULT_DELEGATES = ("cpu",)
    BASELINE = ("cpu",)

    def file_format(self, delegate: str) -> str:
        return "onnx"


def test_a_toy_runtime_and_power_source_plug_in(
    tmp_path: Path, zoo_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(agent_telemetry.SOURCES, "toy", ToyPower)
    monkeypatch.setitem(agent_runtimes.RUNTIMES, "toyrt", ToyRuntime())
    monkeypatch.setitem(host_runtimes.RUNTIMES, "toyrt", ToyHost())
    (tmp_path / "watts").write_text("2.5\n")
    device = {"name": "host", "telemetry": [{"source": "toy", "root": str(tmp_path)}]}
    sweep = {"models": ["tiny"], "runtimes": ["toyrt"], "delegates": {"toyrt": ["cpu"]},
             "run": {"warmup_runs": 0, "min_runs": 5, "min_seconds": 0.3, "max_seconds": 1.0, "idle_seconds": 0.2}}  # fmt: skip
    inventory = load_inventory(write_inventory(tmp_path, zoo_path, sweep, [device]))  # both names are accepted
    (planned,) = make_plan(inventory, Zoo(zoo_path)).jobs
    assert (planned.runtime, planned.format) == ("toyrt", "onnx")
    assert ("toyrt", "cpu") in host_runtimes.baseline_order()
    job = Job(planned.job_id, "host", ModelRef("tiny", "onnx", "fp32"), "toyrt", DelegateSpec("cpu"), 1,
              planned.run.spec(), tuple(inventory.devices[0].telemetry))  # fmt: skip
    result = run_job(job)
    assert result.status == "ok" and result.runtime == RuntimeInfo("toyrt", "toyrt", "0.1")
    assert len(result.samples_ns) >= 5 and all(s >= 1_000_000 for s in result.samples_ns)
    energy = summarize_telemetry(Result.from_json(result.to_json()), len(result.samples_ns))
    assert energy.power_source == "toy:toy" and energy.watts == pytest.approx(2.5)


def test_unknown_registry_names_are_refused_with_a_suggestion(tmp_path: Path, zoo_path: Path) -> None:
    device = {"name": "host", "telemetry": [{"source": "hwmom"}]}
    with pytest.raises(
        SchemaError,
        match=r"devices\[0\]\.telemetry\[0\]\.source: unknown telemetry source 'hwmom'; did you mean 'hwmon'",
    ):
        load_inventory(write_inventory(tmp_path, zoo_path, {"models": ["tiny"]}, [device]))
    with pytest.raises(SchemaError, match=r"sweep\.runtimes\[0\]: unknown runtime 'litrt'; did you mean 'litert'"):
        load_inventory(write_inventory(tmp_path, zoo_path, {"models": ["tiny"], "runtimes": ["litrt"]}))
    with pytest.raises(SchemaError, match=r"devices\[0\]\.transport: unknown transport 'sshh'; did you mean 'ssh'"):
        load_inventory(write_inventory(tmp_path, zoo_path, {"models": ["tiny"]}, [{"name": "b", "transport": "sshh"}]))
    with pytest.raises(SchemaError, match=r"rate_hz: rate_hz must be > 0, not -4\.0; set it in "):
        load_inventory(write_inventory(tmp_path, zoo_path, {"models": ["tiny"]},
                                       [{"name": "h", "telemetry": [{"source": "hwmon", "rate_hz": -4}]}]))  # fmt: skip


def test_the_store_reads_results_back_through_the_contract(tmp_path: Path) -> None:
    from embench.errors import StoreError  # noqa: PLC0415
    from embench.store import PlanEntry, Store  # noqa: PLC0415

    store = Store(tmp_path / "s.sqlite")
    job = Job("j1", "pi", ModelRef("m", "tflite", "fp32"), "litert", DelegateSpec("cpu"), 1)
    run_id = store.begin_run("inv.yaml", [PlanEntry.of(job)], "0")
    assert store.plan(run_id) == [PlanEntry("pi", "m", "fp32", "tflite", "litert", "cpu", 1, "j1")]
    result = full_result()
    store.add_result(run_id, job, dataclasses.replace(result, job_id="j1"))
    (stored,) = store.results(run_id)
    assert stored.job == job and stored.result == dataclasses.replace(result, job_id="j1")
    # the samples live in their own table, not in the JSON
    (body,) = sqlite3.connect(tmp_path / "s.sqlite").execute("SELECT result_json FROM results").fetchone()
    assert json.loads(body)["samples_ns"] == []
    with sqlite3.connect(tmp_path / "s.sqlite") as db:  # a plan some other tool wrote: one line, not a KeyError
        db.execute("UPDATE runs SET plan_json = ?", (json.dumps([{"device": "pi", "threads": "two"}]),))
    with pytest.raises(StoreError, match=rf"run {run_id}: unreadable plan \(KeyError: 'model'\); the run's results"):
        store.plan(run_id)


STORE_V1 = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT INTO meta VALUES ('schema_version', '1');
CREATE TABLE runs (run_id TEXT PRIMARY KEY, started_unix REAL NOT NULL, ended_unix REAL, state TEXT NOT NULL,
    inventory TEXT NOT NULL, host TEXT NOT NULL, embench_version TEXT NOT NULL, planned INTEGER NOT NULL,
    plan_json TEXT NOT NULL);
CREATE TABLE results (run_id TEXT NOT NULL REFERENCES runs(run_id), job_id TEXT NOT NULL, device TEXT NOT NULL,
    model TEXT NOT NULL, precision TEXT NOT NULL, format TEXT NOT NULL, runtime TEXT NOT NULL, delegate TEXT NOT NULL,
    threads INTEGER NOT NULL, status TEXT NOT NULL, message TEXT, model_sha256 TEXT, runtime_version TEXT,
    init_ms REAL, first_inference_ms REAL, peak_rss_kb INTEGER, window_ns INTEGER, n_samples INTEGER NOT NULL,
    attempts INTEGER NOT NULL, started_unix REAL, ended_unix REAL, job_json TEXT NOT NULL, result_json TEXT NOT NULL,
    PRIMARY KEY (run_id, job_id));
CREATE TABLE samples (run_id TEXT NOT NULL, job_id TEXT NOT NULL, seq INTEGER NOT NULL, latency_ns INTEGER NOT NULL,
    PRIMARY KEY (run_id, job_id, seq)) WITHOUT ROWID;
"""


def test_a_store_of_the_previous_schema_is_upgraded_in_place(tmp_path: Path) -> None:
    """A lab's store from before repetitions (store schema 1): opened by this embench, its tables gain the
    repetition and label columns, and every result and sample it held reads back unchanged."""
    from embench.store import STORE_SCHEMA_VERSION, Store  # noqa: PLC0415

    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    db.executescript(STORE_V1)
    job = Job("j1", "pi", ModelRef("m", "tflite", "fp32"), "litert", DelegateSpec("cpu"), 1)
    body = dataclasses.replace(full_result(), job_id="j1", samples_ns=())
    db.execute("INSERT INTO runs VALUES ('r1', 1.0, 2.0, 'finished', 'inv.yaml', 'h', '0.1', 1, '[]')")
    db.execute("INSERT INTO results VALUES ('r1','j1','pi','m','fp32','tflite','litert','cpu',1,'fallback',NULL,NULL,"
               "NULL,NULL,NULL,NULL,NULL,3,1,NULL,NULL,?,?)", (job.to_json(), body.to_json()))  # fmt: skip
    db.executemany("INSERT INTO samples VALUES ('r1','j1',?,?)", [(0, 10), (1, 20), (2, 30)])
    db.commit()
    db.close()
    store = Store(path)
    (run,) = store.runs()
    assert run.run_id == "r1" and run.label is None and run.recorded == 1
    (stored,) = store.results("r1")
    assert stored.result == dataclasses.replace(full_result(), job_id="j1")
    check = sqlite3.connect(path)
    assert check.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0] == str(STORE_SCHEMA_VERSION)
    assert check.execute("SELECT repetition FROM samples ORDER BY seq").fetchall() == [(0,), (0,), (0,)]
    # and it takes new runs with repetitions
    new = store.begin_run("inv.yaml", [], "0", label="nightly")
    reps = dataclasses.replace(full_result(), job_id="j2", samples_ns=(5, 6, 7, 8),
                               repetitions=(Repetition(0, 1), Repetition(1, 3)))  # fmt: skip
    store.add_result(new, dataclasses.replace(job, job_id="j2"), reps)
    assert check.execute("SELECT repetition FROM samples WHERE run_id=? ORDER BY seq", (new,)).fetchall() == [
        (0,),
        (1,),
        (1,),
        (1,),
    ]
    assert store.runs()[-1].label == "nightly"
