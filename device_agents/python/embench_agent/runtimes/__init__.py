"""The runtimes the agent can time. Adding one is a module here with a class that has NAME,
`probe()` and `run(job, mark)`, plus one line in RUNTIMES (and its host half: embench/runtimes/)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, Optional, Protocol, Tuple

from ..protocol import Accuracy, Delegation, Job, OpProfile, Outputs, RuntimeInfo, RuntimeProbe
from ..timing import Mark, Timing


@dataclass(frozen=True)
class Measurement:
    """What a runtime measured for one job; the agent turns it into the Result."""

    runtime: RuntimeInfo
    delegation: Optional[Delegation]
    init_ms: float
    runtime_log: str
    timing: Timing
    status: str = "ok"  # or "fallback": it ran, but not all of it where asked
    message: Optional[str] = None
    # The checks (checks.py), run by the agent once this measurement is safe on the host's side.
    checks: Optional[Callable[[], Tuple[Optional[Outputs], Optional[Accuracy]]]] = None
    # Each op's placement, and its time where the runtime profiled it after the window (ops.py).
    ops: Optional[OpProfile] = None


class Runtime(Protocol):
    NAME: str

    def probe(self) -> RuntimeProbe:
        """Its package and version (and what it offers), or why it cannot be imported here."""

    def run(self, job: Job, mark: Optional[Mark]) -> Measurement:
        """Load the model, check where it runs, time it; raise a JobProblem when it cannot."""


from .litert import LiteRT  # noqa: E402 - the registry needs the classes above first
from .onnxruntime import OnnxRuntime  # noqa: E402

RUNTIMES: Dict[str, Runtime] = {LiteRT.NAME: LiteRT(), OnnxRuntime.NAME: OnnxRuntime()}
