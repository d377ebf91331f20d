"""Where device queues run: threads in this process (the default). Adding one (a Dask lab): a class
with NAME and `run(runners, stop)` in a module here, plus one line in EXECUTORS."""

from __future__ import annotations

import threading
from typing import Protocol

from ..runner import DeviceRunner
from .threads import ThreadExecutor


class Executor(Protocol):
    NAME: str

    def run(self, runners: list[DeviceRunner], stop: threading.Event) -> None:
        """Run every device queue; on KeyboardInterrupt stop them, kill running agents, re-raise."""
        ...


EXECUTORS: dict[str, type[Executor]] = {ThreadExecutor.NAME: ThreadExecutor}

__all__ = ["EXECUTORS", "Executor", "ThreadExecutor"]
