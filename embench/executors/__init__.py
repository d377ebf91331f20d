"""Where device queues run: threads in this process (the default), or a lab's Dask cluster
(`sweep --cluster`). Adding one: a class with NAME and `run(runners, stop)` in a module here, plus one
line in EXECUTORS; its constructor takes the sweep's executor options (`run_sweep(executor_options=)`)."""

from __future__ import annotations

import threading
from typing import Any, Protocol

from ..runner import DeviceRunner
from .dask import DaskExecutor
from .threads import ThreadExecutor


class Executor(Protocol):
    NAME: str

    def run(self, runners: list[DeviceRunner], stop: threading.Event) -> None:
        """Run every device queue; on KeyboardInterrupt stop them, kill running agents, re-raise."""
        ...


EXECUTORS: dict[str, Any] = {ThreadExecutor.NAME: ThreadExecutor, DaskExecutor.NAME: DaskExecutor}

__all__ = ["EXECUTORS", "DaskExecutor", "Executor", "ThreadExecutor"]
