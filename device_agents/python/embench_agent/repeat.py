"""Repetitions (RunSpec.repetitions > 1): each one loads the model and times it in a fresh process,
so process-level effects (memory layout, delegate set-up, thread placement) vary between them as
they vary between nights. docs/nightly.md says why and what it costs.

- `process` (the default): a new interpreter per repetition (`python3 agent.pyz repeat INDEX`, the
  job on stdin): the import is paid every time, and every repetition varies what a fresh process varies.
- `fork` (where os.fork exists): the agent imports the runtime once, then forks a child per
  repetition; the child loads the model, times it, and exits. Cheaper, but the children share the
  parent's memory layout: measured, they show about half the between-repetition spread.

A child writes one Result line (its timing; telemetry edges only), and the last child, after it,
a second line with the checks' outputs. The parent keeps the telemetry sampler running, stitches
the repetitions into one Result, and stops at the first repetition that does not measure.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import traceback
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from .errors import JobProblem, Unsupported
from .facts import peak_rss_kb
from .protocol import MEASURED, Job, ProtocolError, Repetition, Result, Telemetry
from .runtimes import RUNTIMES, Measurement, Runtime
from .telemetry.sampler import Sampler


def runtime_for(job: Job) -> Runtime:
    runtime = RUNTIMES.get(job.runtime)
    if runtime is None:
        raise Unsupported(
            "runtime {!r} is not known to this agent ({})".format(job.runtime, ", ".join(sorted(RUNTIMES)))
        )
    return runtime


def measured_fields(m: Measurement) -> Dict[str, Any]:
    t = m.timing
    return dict(
        status=m.status, message=m.message, runtime=m.runtime, delegation=m.delegation, init_ms=m.init_ms,
        runtime_log=m.runtime_log, first_inference_ms=t.first_inference_ms, samples_ns=t.samples_ns,
        window_ns=t.window_ns, window_start_unix=t.window_start_unix, window_end_unix=t.window_end_unix,
        other_cpu=t.other_cpu, ops=m.ops,
    )  # fmt: skip


def problem_fields(exc: BaseException) -> Dict[str, Any]:
    if isinstance(exc, JobProblem):
        return dict(status=exc.status, message=str(exc), error=exc.error, runtime=exc.runtime,
                    delegation=exc.delegation)  # fmt: skip
    return dict(status="failed", message=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc()[-4000:])


def one_repetition(job: Job, write: Callable[[str], None], with_checks: bool) -> None:
    """The child's whole work: time the job once, write its Result line; then the checks' line. Only
    the last repetition (the one with the checks) runs the op-profiling pass."""
    if not with_checks and job.run.op_profiling:
        job = dataclasses.replace(job, run=dataclasses.replace(job.run, op_profiling=False))
    marks = Sampler(job.telemetry)  # not started: it only reads counters at the window's edges
    checks = None
    try:
        measurement = runtime_for(job).run(job, marks.edge)
        fields, checks = measured_fields(measurement), measurement.checks
    except Exception as exc:  # noqa: BLE001 - every job-level error becomes a result line
        fields = problem_fields(exc)
    edges = Telemetry(edges=dict(marks.edges)) if marks.edges else None
    write(Result(job_id=job.job_id, telemetry=edges, peak_rss_kb=peak_rss_kb(), **fields).to_json() + "\n")
    if with_checks and checks is not None:
        outputs, accuracy = checks()
        write(Result(job_id=job.job_id, status="ok", outputs=outputs, accuracy=accuracy).to_json() + "\n")


def _fork(job: Job, index: int, with_checks: bool) -> Tuple[List[str], int, int]:
    """Fork a child for one repetition: (its lines, its pid, its wait status)."""
    read_fd, write_fd = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        code = 0
        try:
            os.close(read_fd)
            with os.fdopen(write_fd, "w", encoding="utf-8") as out:

                def write(line: str) -> None:
                    out.write(line)
                    out.flush()

                one_repetition(job, write, with_checks)
        except BaseException:  # noqa: BLE001 - the parent reads what was written and the exit status
            traceback.print_exc()
            code = 1
        finally:
            os._exit(code)
    os.close(write_fd)
    with os.fdopen(read_fd, encoding="utf-8") as lines:
        text = lines.read()
    _, status = os.waitpid(pid, 0)
    return text.splitlines(), pid, status


def _agent_command() -> List[str]:
    main = sys.argv[0] if sys.argv else ""
    if main.endswith(".pyz"):
        return [sys.executable, main]
    return [sys.executable, "-m", "embench_agent"]


def _spawn(job: Job, index: int, with_checks: bool) -> Tuple[List[str], int, int]:
    """A fresh interpreter for one repetition: (its lines, its pid, a wait-like status)."""
    env = dict(os.environ)
    package_parent = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if not package_parent.endswith(".pyz"):
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_parent, env.get("PYTHONPATH")) if p)
    argv = [*_agent_command(), "repeat", str(index), "checks" if with_checks else "timing"]
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, universal_newlines=True)
    out, _ = proc.communicate(job.to_json())
    code = proc.returncode
    status = (-code & 0x7F) if code < 0 else (code << 8)  # as os.waitpid would have said it
    return out.splitlines(), proc.pid, status


def _death(status: int) -> str:
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = str(sig)
        return f"killed by {name}"
    return f"exit status {os.WEXITSTATUS(status)}"


def _read(lines: List[str], index: int) -> Tuple[Optional[Result], Optional[Result], Optional[str]]:
    """(the timing line, the checks line, what was wrong) from a child's output."""
    parsed: List[Result] = []
    for line in lines:
        try:
            parsed.append(Result.from_dict(json.loads(line)))
        except (ValueError, ProtocolError) as exc:
            return None, None, f"repetition {index + 1} wrote an unreadable line ({exc})"
    return (parsed[0] if parsed else None), (parsed[1] if len(parsed) > 1 else None), None


def run_repetitions(job: Job, sampler: Optional[Sampler]) -> Tuple[Dict[str, Any], Optional[Result]]:
    """Every repetition in turn; (the Result fields they add up to, the checks' line)."""
    runtime = runtime_for(job)
    runtime.probe()  # imports the runtime once, here: every forked child starts with it loaded
    launch = _fork if job.run.isolation == "fork" and hasattr(os, "fork") else _spawn
    count = job.run.repetitions
    timings: List[Result] = []
    pids: List[int] = []
    checks_line: Optional[Result] = None
    problem: Optional[Dict[str, Any]] = None
    for index in range(count):
        last = index == count - 1
        lines, pid, status = launch(job, index, last)
        timing, checks_line, unreadable = _read(lines, index)
        if timing is None:
            why = unreadable or f"repetition {index + 1} of {count} ended with no result ({_death(status)})"
            problem = dict(status="crashed" if os.WIFSIGNALED(status) else "failed", message=why)
            break
        if timing.status not in MEASURED:
            problem = stopped_by(timing, index, count, first=not timings)
            break
        timings.append(timing)
        pids.append(pid)
        if last and checks_line is None and (job.checks.fidelity_inputs or job.checks.eval_path):
            checks_line = Result(job_id=job.job_id, status="ok",
                                 message=f"the checks did not finish ({_death(status)})")  # fmt: skip
    if sampler is not None and timings and timings[0].telemetry is not None:
        sampler.edges.update(timings[0].telemetry.edges)  # energy: over the first repetition's window
    return stitched(timings, pids, problem), checks_line


def stopped_by(timing: Result, index: int, count: int, first: bool) -> Dict[str, Any]:
    """The Result fields that say repetition `index` of `count` did not measure (`timing`, its Result)
    and stopped the job there; the first one's runtime and delegation say what was tried."""
    problem: Dict[str, Any] = dict(status=timing.status, message=f"repetition {index + 1} of {count}: {timing.message}",
                                   error=timing.error, traceback=timing.traceback)  # fmt: skip
    if first:
        problem.update(runtime=timing.runtime, delegation=timing.delegation)
    return problem


def stitched(
    timings: Sequence[Result], pids: Sequence[Optional[int]], problem: Optional[Dict[str, Any]]
) -> Dict[str, Any]:
    """The Result fields of one job whose repetitions are `timings` (each one repetition's Result, in
    order; `pids` the processes that ran them, None where unknown), `problem` what stopped it."""
    if not timings:
        return problem or dict(status="failed", message="no repetition ran")
    first = timings[0]
    fields: Dict[str, Any] = dict(
        status="fallback" if any(t.status == "fallback" for t in timings) else first.status,
        message=first.message, runtime=first.runtime, delegation=first.delegation, init_ms=first.init_ms,
        runtime_log=first.runtime_log, first_inference_ms=first.first_inference_ms,
        samples_ns=tuple(ns for t in timings for ns in t.samples_ns),
        window_ns=sum(t.window_ns or 0 for t in timings), window_start_unix=first.window_start_unix,
        window_end_unix=timings[-1].window_end_unix, peak_rss_kb=max(t.peak_rss_kb or 0 for t in timings),
        other_cpu=_median([t.other_cpu for t in timings if t.other_cpu is not None]),
        ops=next((t.ops for t in reversed(timings) if t.ops is not None), None),
        repetitions=tuple(
            Repetition(index=i, samples=len(t.samples_ns), init_ms=t.init_ms, first_inference_ms=t.first_inference_ms,
                       window_ns=t.window_ns, window_start_unix=t.window_start_unix, pid=pid, other_cpu=t.other_cpu)
            for i, (t, pid) in enumerate(zip(timings, pids))
        ),
    )  # fmt: skip
    if problem is not None:  # what the finished repetitions measured stays; the status says what stopped it
        fields.update(problem)
    return fields


def _median(values: List[float]) -> Optional[float]:
    if not values:
        return None
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def cmd_repeat(argv: List[str]) -> int:
    """`repeat INDEX checks|timing`, the job on stdin: one repetition in this fresh interpreter."""
    job = Job.from_dict(json.loads(sys.stdin.read()))

    def write(line: str) -> None:
        sys.stdout.write(line)
        sys.stdout.flush()

    one_repetition(job, write, argv[1:2] == ["checks"])
    return 0
