"""Job-level problems the agent turns into a Result status (never a traceback)."""

from __future__ import annotations

from typing import Optional

from .protocol import MODEL_LOAD, Delegation, RuntimeInfo


class JobProblem(Exception):
    """A job that cannot be measured; carries what was learnt before it stopped."""

    status = "failed"
    error: Optional[str] = None

    def __init__(
        self, message: str, runtime: Optional[RuntimeInfo] = None, delegation: Optional[Delegation] = None
    ) -> None:
        super().__init__(message)
        self.runtime, self.delegation = runtime, delegation


class Unsupported(JobProblem):
    """The requested runtime, delegate or provider is not available on this device."""

    status = "unsupported"


class ModelLoadError(JobProblem):
    """The runtime could not load the model file (corrupt, truncated, or an op it lacks)."""

    error = MODEL_LOAD
