"""Command line of the agent (what the host runs on the device):

python3 embench_agent.pyz run JOB.json|-   time the job, print the Result JSON on stdout (with checks:
                                           first without them, then the whole; the last line counts)
python3 embench_agent.pyz probe [--root DIR]... [NAME=LIB]...
                                           print the Probe JSON: device facts, runtimes, whether each
                                           delegate library NAME=LIB loads, and which telemetry
                                           sources are readable under / (and each DIR)
python3 embench_agent.pyz repeat INDEX checks|timing
                                           one repetition of the job on stdin, in this fresh
                                           interpreter (RunSpec.isolation: process)
python3 embench_agent.pyz temp             read telemetry sources (SourceSpec JSON list on stdin),
                                           print the hottest temperature
"""

from __future__ import annotations

import json
import signal
import sys
from typing import Any, List

from . import AGENT_VERSION
from .job import run_job
from .probe import probe
from .protocol import Job, ProtocolError, Result, SourceSpec
from .repeat import cmd_repeat
from .telemetry import read_temperature


def _bad_job(raw: Any, exc: ProtocolError) -> Result:
    job_id = "?"
    if isinstance(raw, dict) and isinstance(raw.get("job_id"), str):
        job_id = raw["job_id"]
    return Result(job_id=job_id, status="failed", agent_version=AGENT_VERSION,
                  message=f"the agent cannot read this job: {exc} (host and agent from different embench?)")  # fmt: skip


def cmd_run(source: str) -> int:
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    if source == "-":
        text = sys.stdin.read()
    else:
        with open(source, encoding="utf-8") as fh:
            text = fh.read()
    try:
        raw = json.loads(text)
    except ValueError as exc:
        raw = None
        result = _bad_job(raw, ProtocolError(f"not JSON: {exc}"))
    else:
        try:
            result = run_job(Job.from_dict(raw), _emit)
        except ProtocolError as exc:
            result = _bad_job(raw, exc)
    _emit(result)
    return 0


def _emit(result: Result) -> None:
    """One Result line on stdout; the host reads the last one (an early one stands if the agent dies)."""
    sys.stdout.write(result.to_json() + "\n")
    sys.stdout.flush()


def cmd_probe(argv: List[str]) -> int:
    roots = [argv[i + 1] for i, arg in enumerate(argv[:-1]) if arg == "--root"]
    libraries = dict(arg.split("=", 1) for arg in argv if "=" in arg and arg not in roots)
    print(probe(libraries, roots).to_json())
    return 0


def cmd_temp() -> int:
    specs = [SourceSpec.from_dict(item) for item in json.loads(sys.stdin.read() or "[]")]
    print(read_temperature(specs).to_json())
    return 0


def main(argv: List[str]) -> int:
    if argv[:1] == ["temp"]:
        return cmd_temp()
    if argv[:1] == ["probe"]:
        return cmd_probe(argv[1:])
    if len(argv) == 3 and argv[0] == "repeat":
        return cmd_repeat(argv[1:])
    if len(argv) == 2 and argv[0] == "run":
        return cmd_run(argv[1])
    sys.stderr.write(__doc__ or "")
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
