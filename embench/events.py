"""The one callback interface of a sweep: what it reports while it runs.

Every method is a no-op here; the progress display (progress.py) and the sweep's recorder
(sweep.py, which stores each result before passing it on) override what they need. The runner calls
these from its device threads.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from embench_agent.protocol import Job, Result

    from .plan import PlannedJob


class SweepListener:
    def __enter__(self) -> SweepListener:
        return self

    def __exit__(self, *exc: object) -> None: ...

    def building(self, step: str, done: int, total: int) -> None:
        """A zoo model file is being built (step `done` of `total`)."""

    def planned(self, total: int, already_done: int) -> None:
        """The run has `total` jobs, `already_done` of them stored by an earlier sweep (--resume)."""

    def started(self, planned: PlannedJob, repetition: int | None = None) -> None:
        """A device began a job (or, for an interleaved job, its repetition `repetition`: rounds.py)."""

    def finished(self, planned: PlannedJob, job: Job, result: Result, measured_on: str | None = None) -> None:
        """A job ended with a result (stored before the display hears of it); `measured_on`: the lab host whose
        worker drove the device (None: this host)."""

    def repetition_finished(self, planned: PlannedJob, job: Job, result: Result, repetition: int,
                            measured_on: str | None = None) -> None:  # fmt: skip
        """One repetition of an interleaved job ended (`result`: that repetition's alone). The sweep's
        recorder stores it and, once the job's last repetition is in, reports the job through `finished`."""

    def device_failed(self, device: str, message: str, not_run: int) -> None:
        """A device cannot be used (or was lost); `not_run` of its jobs stay unrecorded for --resume."""

    def warning(self, device: str, message: str) -> None:
        """Something the user should know that does not stop the device's queue."""
