"""A device's repetitions in rounds (sweep.run.order: interleaved, embench/rounds.py): real sweeps of
real LiteRT and ONNX Runtime on the host, and the queue, the job sent and the join on their own."""

from __future__ import annotations

import dataclasses
import re
import signal
import sqlite3
from pathlib import Path

import pytest
import yaml
from conftest import embench, fast_run, interrupt, start_embench, write_inventory
from procs import wait_for

from embench.inventory import RunPolicy
from embench.plan import PlannedJob
from embench.rounds import Step, joined, round_job, steps
from embench.store import Store
from embench_agent.protocol import (
    BACK_TO_BACK,
    INTERLEAVED,
    CheckSpec,
    DelegateSpec,
    Edge,
    Job,
    ModelRef,
    Result,
    RunSpec,
    SourceTrace,
    Telemetry,
)

SWEEP = {"models": ["tiny", "squeezenet"], "precisions": ["fp32"], "runtimes": ["litert", "onnxruntime"],
         "delegates": {"litert": ["xnnpack"], "onnxruntime": ["CPUExecutionProvider"]}, "threads": [1],
         "fidelity": {"inputs": 2}}  # fmt: skip


def _planned(model: str, repetitions: int = 3, order: str = INTERLEAVED) -> PlannedJob:
    run = RunPolicy(repetitions=repetitions, order=order)  # type: ignore[arg-type]
    return PlannedJob("host", model, "fp32", "onnx", "onnxruntime", "CPUExecutionProvider", 1, run, 0)


def test_the_queue_runs_round_by_round_and_skips_what_is_kept() -> None:
    a, b, c = _planned("a"), _planned("b", repetitions=2), _planned("c", order=BACK_TO_BACK)
    queue = [(s.planned.model, s.repetition) for s in steps([a, b, c], "python")]
    assert queue == [("a", 0), ("b", 0), ("c", None), ("a", 1), ("b", 1), ("a", 2)]
    resumed = [(s.planned.model, s.repetition) for s in steps([a, b], "python", {a.job_id: {0, 1}})]
    assert resumed == [("b", 0), ("b", 1), ("a", 2)]
    # benchmark_model times a job in one process: a phone's jobs stay whole
    assert [s.repetition for s in steps([a, b], "benchmark_model")] == [None, None]
    assert Step(a, 1).timeout == a.run.timeout_seconds and Step(c).timeout == 3 * c.run.timeout_seconds


def test_the_job_sent_for_a_repetition() -> None:
    run = RunSpec(repetitions=3, op_profiling=True, idle_seconds=1.5)
    job = Job("j", "host", ModelRef("m", "onnx", "fp32"), "onnxruntime", DelegateSpec("cpu"), 1, run=run,
              checks=CheckSpec(fidelity_inputs=4, eval_path="/e.npz"))  # fmt: skip
    sent = [round_job(job, i) for i in range(3)]
    assert all(s.run.repetitions == 1 for s in sent)
    assert [s.run.idle_seconds for s in sent] == [1.5, 0.0, 0.0]  # the energy baseline: the first repetition's
    assert [s.run.op_profiling for s in sent] == [False, False, True]
    assert [(s.checks.fidelity_inputs, s.checks.eval_path) for s in sent] == [(0, None), (0, None), (4, "/e.npz")]


def _part(index: int, samples: tuple[int, ...], status: str = "ok", temps: tuple[float, ...] = (40.0,)) -> Result:
    trace = SourceTrace("thermal", "cpu", "temperature", "C", samples=tuple((index + i / 10, t) for i, t in
                        enumerate(temps)), facts={"trip_c": 90.0})  # fmt: skip
    edges = {"idle_start": Edge(t=float(index)), "window_start": Edge(t=index + 0.1)}
    return Result(job_id="j", status=status, message="boom" if status != "ok" else None, samples_ns=samples,
                  init_ms=10.0 + index, window_start_unix=100.0 + index, ended_unix=101.0 + index,
                  telemetry=Telemetry(edges=edges, sources=(trace,)), attempts=1 + index % 2, pushed_bytes=10)  # fmt: skip


def test_repetitions_join_into_one_result_as_the_agent_joins_its_own() -> None:
    job = Job("j", "host", ModelRef("m", "onnx", "fp32"), "onnxruntime", DelegateSpec("cpu"), 1,
              run=RunSpec(repetitions=3))  # fmt: skip
    parts = [(0, _part(0, (1, 2))), (1, _part(1, (3,), temps=(95.0,))), (2, _part(2, (4, 5, 6)))]
    whole = joined(job, parts)
    assert whole.status == "ok" and whole.samples_ns == (1, 2, 3, 4, 5, 6)
    assert [(r.index, r.samples, r.init_ms) for r in whole.repetitions] == [(0, 2, 10.0), (1, 1, 11.0), (2, 3, 12.0)]
    assert whole.telemetry is not None and whole.telemetry.edges == parts[0][1].telemetry.edges  # type: ignore[union-attr]
    assert whole.telemetry.sources[0].values() == (40.0, 95.0, 40.0)  # the second repetition's trip point is seen
    assert whole.attempts == 2 and whole.pushed_bytes == 30 and whole.ended_unix == 103.0
    # a repetition that did not measure stops the job; what was measured before it stays
    cut = joined(job, [parts[0], (1, _part(1, (), status="crashed"))])
    assert cut.status == "crashed" and cut.message == "repetition 2 of 3: boom" and cut.samples_ns == (1, 2)
    assert [r.index for r in cut.repetitions] == [0]


def test_an_older_job_ran_its_repetitions_back_to_back() -> None:
    old = Job("j", "host", ModelRef("m", "onnx", "fp32"), "onnxruntime", DelegateSpec("cpu"), 1,
              run=RunSpec(repetitions=5)).to_dict()  # fmt: skip
    del old["run"]["order"]
    old["schema"] = 5
    assert Job.from_dict(old).run.order == BACK_TO_BACK
    assert Job.from_dict({**old, "run": {**old["run"], "order": INTERLEAVED}}).run.order == INTERLEAVED


def _windows(store: Path) -> list[tuple[float, str, int]]:
    """(window start, job id, repetition) of every repetition of the last run, in the order they ran."""
    s = Store(store, create=False)
    out = []
    for r in s.results(s.runs()[-1].run_id):
        out += [(rep.window_start_unix or 0.0, r.job.job_id, rep.index) for rep in r.result.repetitions]
    return sorted(out)


def test_a_sweep_runs_each_devices_repetitions_in_rounds(zoo_path: Path, tmp_path: Path) -> None:
    sweep = {**SWEEP, "run": fast_run(repetitions=3, op_profiling=True)}
    inv = write_inventory(tmp_path, zoo_path, sweep)
    store = tmp_path / "s.sqlite"
    out = embench("sweep", str(inv), "--store", str(store), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    # each repetition said on the log as it ends, each job once when its last is in
    assert out.stderr.count("[repetition 1/3] ") == 3 and out.stderr.count("[repetition 3/3] ") == 0
    jobs = [line.split(" ", 1)[0] for line in out.stderr.splitlines() if re.match(r"\[\d+/3\] host/", line)]
    assert jobs == ["[1/3]", "[2/3]", "[3/3]"]
    # round by round: repetition r of every job (tiny on LiteRT and ORT, squeezenet) before r + 1 of any
    order = [index for _, _, index in _windows(store)]
    assert order == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    s = Store(store, create=False)
    run = s.runs()[-1].run_id
    results = {f"{r.job.model.name}/{r.job.runtime}": r for r in s.results(run)}
    assert len(results) == 3
    for r in results.values():
        assert r.job.run.repetitions == 3 and r.job.run.order == INTERLEAVED and r.result.measured
        assert len(r.result.repetitions) == 3 and r.result.outputs is not None and r.result.outputs.error is None
    ops = results["squeezenet/onnxruntime"].result.ops
    assert ops is not None and ops.timed  # the last repetition's profiled pass
    frame = s.sample_frame(run)
    assert sorted(set(frame["repetition"])) == [0, 1, 2]
    assert s.pending_repetitions(run) == {} and s._read("SELECT COUNT(*) FROM repetitions") == [(0,)]
    report = embench("report", "--store", str(store), "--out", str(tmp_path / "r"), cwd=tmp_path)
    assert report.returncode == 0, report.stderr
    assert "3 repetitions (interleaved, process)" in next((tmp_path / "r").rglob("report.md")).read_text()


def _kept(store: Path) -> dict[tuple[str, int], float]:
    """(job id, repetition) → its window's start, for the repetitions the store keeps of unfinished jobs."""
    try:
        with sqlite3.connect(f"{store.as_uri()}?mode=ro", uri=True) as db:
            rows = db.execute("SELECT job_id, repetition, result_json FROM repetitions").fetchall()
    except sqlite3.Error:
        return {}
    return {(j, i): Result.from_json(body).window_start_unix or 0.0 for j, i, body in rows}


@pytest.mark.slow
def test_an_interrupt_mid_round_keeps_every_repetition_and_resume_runs_only_the_rest(
    zoo_path: Path, tmp_path: Path
) -> None:
    sweep = {**SWEEP, "models": ["tiny"], "precisions": ["fp32", "int8"], "runtimes": ["litert"],
             "fidelity": {"inputs": 0}, "run": fast_run(repetitions=3, min_seconds=0.5)}  # fmt: skip
    inv = write_inventory(tmp_path, zoo_path, sweep)
    store = tmp_path / "s.sqlite"
    proc = start_embench("sweep", str(inv), "--store", str(store), "-q", cwd=tmp_path)
    kept = wait_for("the first round stored", lambda: (k := _kept(store)) and len(k) >= 2 and k, timeout=120)
    err = interrupt(proc, signal.SIGINT)
    assert proc.returncode == 130 and "--resume" in err, err
    before = _kept(store)
    assert kept.items() <= before.items() and len(before) < 6  # nothing measured is lost; not everything ran
    said = re.search(r"(\d+) repetition\(s\) of (\d+) unfinished interleaved job\(s\) are stored too", err)
    assert said and len(kept) <= int(said[1]) <= len(before), err  # "nothing new" is not all it says
    assert int(said[2]) == len({job for job, _ in before}), err
    assert Store(store, create=False).results(Store(store, create=False).runs()[-1].run_id) == []
    again = embench("sweep", str(inv), "--store", str(store), "--resume", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert f"2 interleaved job(s) go on from the {len(before)} repetition(s) kept of them" in again.stderr
    s = Store(store, create=False)
    final = s.results(s.runs()[-1].run_id)
    assert len(final) == 2 and all(len(r.result.repetitions) == 3 for r in final)
    starts = {(r.job.job_id, rep.index): rep.window_start_unix for r in final for rep in r.result.repetitions}
    assert all(starts[key] == start for key, start in before.items())  # the kept repetitions were not redone
    assert _kept(store) == {}


def test_a_repetition_that_fails_ends_its_job_there(zoo_path: Path, tmp_path: Path) -> None:
    sweep = {**SWEEP, "models": ["corrupt", "tiny"], "runtimes": ["litert"], "fidelity": {"inputs": 0},
             "run": fast_run(repetitions=3)}  # fmt: skip
    inv = write_inventory(tmp_path, zoo_path, sweep)
    out = embench("sweep", str(inv), "--store", str(tmp_path / "s.sqlite"), cwd=tmp_path)
    assert out.returncode == 3, out.stderr
    assert "[repetition 1/3] host/tiny/" in out.stderr and "] host/corrupt/" not in out.stderr.replace(
        "[1/2] host/corrupt/", "")  # its first repetition ended it: said once, as the job  # fmt: skip
    assert _kept(tmp_path / "s.sqlite") == {}  # no later repetition of it ran (it would be kept there)
    s = Store(tmp_path / "s.sqlite", create=False)
    by_model = {r.job.model.name: r.result for r in s.results(s.runs()[-1].run_id)}
    assert by_model["corrupt"].status == "failed" and by_model["corrupt"].message.startswith("repetition 1 of 3: ")  # type: ignore[union-attr]
    assert by_model["corrupt"].error == "model_load" and by_model["corrupt"].repetitions == ()
    assert "; replace " in out.stderr and "with a model that loads" in out.stderr  # the model's fix is still said
    assert by_model["tiny"].measured and len(by_model["tiny"].repetitions) == 3


def test_fork_with_interleaved_repetitions_is_one_line(zoo_path: Path, tmp_path: Path) -> None:
    inv = write_inventory(tmp_path, zoo_path, {**SWEEP, "run": fast_run(repetitions=3, isolation="fork")})
    out = embench("sweep", str(inv), cwd=tmp_path)
    assert out.returncode == 1 and len(out.stderr.strip().splitlines()) == 1, out.stderr
    line = yaml.safe_load(inv.read_text()) and next(
        n for n, text in enumerate(inv.read_text().splitlines(), 1) if "isolation" in text)  # fmt: skip
    assert f"{inv}:{line}" in out.stderr and "sweep.run.isolation" in out.stderr
    assert "set sweep.run.order: back-to-back beside isolation: fork" in out.stderr
    doc = yaml.safe_load(inv.read_text())
    doc["sweep"]["run"]["order"] = "back-to-back"
    inv.write_text(yaml.safe_dump(doc))
    dry = embench("sweep", str(inv), "--dry-run", cwd=tmp_path)
    assert dry.returncode == 0, dry.stderr


def test_a_result_carries_its_order_through_the_store(tmp_path: Path) -> None:
    """A stored job says how its repetitions ran; `compare` names a change of order in what changed."""
    from embench.compare import what_changed  # noqa: PLC0415
    from embench.store import StoredResult  # noqa: PLC0415

    job = Job("j", "host", ModelRef("m", "onnx", "fp32"), "onnxruntime", DelegateSpec("cpu"), 1,
              run=RunSpec(repetitions=5, order=BACK_TO_BACK))  # fmt: skip
    result = Result(job_id="j", status="ok", samples_ns=(1, 2))
    store = Store(tmp_path / "s.sqlite")
    run = store.begin_run("inv.yaml", [], "test")
    store.add_result(run, job, result)
    (stored,) = store.results(run)
    assert stored.job.run.order == BACK_TO_BACK
    tonight = dataclasses.replace(job, run=dataclasses.replace(job.run, order=INTERLEAVED))
    assert what_changed(stored, StoredResult(tonight, result)) == ["repetition order back-to-back → interleaved"]


def test_a_job_is_recorded_once_from_its_repetitions_and_a_lost_one_keeps_them(zoo_path: Path, tmp_path: Path) -> None:
    """What the sweep's recorder does with each repetition: kept until the last, which goes straight into
    the job's result (never a job with every repetition kept and no result); a repetition that arrives
    twice (a lab task run twice) counts once; a lost device's repetition ends the job as lost and keeps
    what was measured for --resume."""
    from embench.events import SweepListener  # noqa: PLC0415
    from embench.sweep import Recorder, SweepOutcome  # noqa: PLC0415
    from embench.zoo import Zoo  # noqa: PLC0415

    store = Store(tmp_path / "s.sqlite")
    run = store.begin_run("inv.yaml", [], "test")
    outcome = SweepOutcome(run, 2, 0)
    recorder = Recorder(store, Zoo(zoo_path), outcome, SweepListener(), "embench sweep inv.yaml --resume")
    planned = _planned("a")
    job = Job(planned.job_id, "host", ModelRef("a", "onnx", "fp32"), "onnxruntime", DelegateSpec("cpu"), 1,
              run=RunSpec(repetitions=3))  # fmt: skip
    for index in (0, 1, 1):
        recorder.repetition_finished(planned, job, _part(index, (index + 1,)), index)
    assert store.pending_repetitions(run) == {job.job_id: {0, 1}} and store.results(run) == []
    recorder.repetition_finished(planned, job, _part(2, (3,)), 2)
    recorder.repetition_finished(planned, job, _part(2, (3,)), 2)  # again: the job has its result
    (whole,) = store.results(run)
    assert whole.result.samples_ns == (1, 2, 3) and [r.index for r in whole.result.repetitions] == [0, 1, 2]
    assert store.pending_repetitions(run) == {} and _kept(tmp_path / "s.sqlite") == {}
    assert outcome.counts == {"ok": 1}

    other = _planned("b")
    job_b = dataclasses.replace(job, job_id=other.job_id, model=ModelRef("b", "onnx", "fp32"))
    recorder.repetition_finished(other, job_b, _part(0, (7,)), 0)
    lost = Result(job_id=job_b.job_id, status="failed", message="device host: gone", error="device_lost")
    recorder.repetition_finished(other, job_b, lost, 1)
    stored_b = next(s for s in store.results(run) if s.job.job_id == job_b.job_id)
    assert stored_b.result.error == "device_lost" and stored_b.result.message == "repetition 2 of 3: device host: gone"
    assert store.forget_lost(run) == 1 and store.pending_repetitions(run) == {job_b.job_id: {0}}
