"""Where device queues run: threads in this process (default); a Dask lab later."""

from .threads import ThreadExecutor

EXECUTORS = {ThreadExecutor.NAME: ThreadExecutor}

__all__ = ["EXECUTORS", "ThreadExecutor"]
