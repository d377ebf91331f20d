"""Run the device queues on a lab's Dask cluster: each lab host runs `embench worker`, which offers one
resource per device it drives; this host submits every job there and stores each result as it arrives.

Built around what Dask does by design (docs/lab.md):
- a task asking for a resource no worker offers waits forever (`no-worker`): every device's wait for a
  worker is bounded (`worker_wait`), and a device nobody drives is said in one line, its jobs left for
  `--resume`; a lab host lost mid-sweep is the same for its devices once the wait runs out;
- a task can run twice (its worker died mid-job and Dask ran it again elsewhere, up to
  `distributed.scheduler.allowed-failures` times): a job's result is recorded once (store.add_results);
- a device runs one step at a time (a job, or one repetition of an interleaved job: rounds.py), in its
  queue's order: its next step is submitted when the one before it is back (never as a dependency: Dask
  would run a chain's finished steps again to rebuild results lost with a worker).
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from ..errors import EmbenchError
from ..lab import LabOutcome, LabTask, device_resource, end_sweep, run_task, stop_sweep
from ..rounds import Step, jobs_left
from ..runner import DeviceRunner

CONNECT_SECONDS = 15.0
WORKER_WAIT_SECONDS = 60.0  # how long a device's jobs wait for a worker that offers it
POLL_SECONDS = 0.5


class ClusterError(EmbenchError):
    """The Dask scheduler cannot be reached, or refused the sweep."""


@dataclass
class _Queue:
    """One device's queue as submitted: its steps in order, and where the results have got to."""

    runner: DeviceRunner
    sweep: str
    steps: list[Step] = field(default_factory=list)
    libraries: dict[str, str] = field(default_factory=dict)  # the delegate libraries its jobs load, once
    current: Any = None  # the future of the step running or waiting now
    done: int = 0  # steps taken back or left out (an interleaved job a repetition ended: runner.ended)
    closed: bool = False  # lost, failed, or no worker: the rest is left for --resume
    waiting_since: float | None = None  # since when no worker offers the device
    seen_worker: bool = False


@dataclass
class DaskExecutor:
    """The executor `sweep --cluster tcp://scheduler:8786` picks (executors.EXECUTORS["dask"])."""

    address: str
    worker_wait: float = WORKER_WAIT_SECONDS
    client: Any = field(default=None, init=False)
    _back: threading.Event = field(default_factory=threading.Event, init=False)  # set as each job comes back
    NAME = "dask"

    def __post_init__(self) -> None:
        try:
            from distributed import Client  # noqa: PLC0415 - only a lab sweep imports Dask
        except ImportError:
            raise ClusterError("--cluster needs Dask distributed, which is not installed; install embench's lab"
                               " extra (pip install -e '.[lab]')") from None  # fmt: skip

        try:
            self.client = Client(self.address, timeout=CONNECT_SECONDS, set_as_default=False)
        except (OSError, TimeoutError, ValueError) as exc:
            raise ClusterError(
                f"cannot reach the Dask scheduler at {self.address}: {str(exc).splitlines()[0] if str(exc) else exc};"
                " start it (`dask scheduler`) and a worker on each lab host (`embench worker --scheduler"
                f" {self.address} INVENTORY`), see docs/lab.md"
            ) from None

    def close(self) -> None:
        with contextlib.suppress(Exception):  # closing a client of a scheduler that is gone
            self.client.close(timeout=5)

    def run(self, runners: list[DeviceRunner], stop: threading.Event) -> None:
        """Submit every device's queue, store each result as it arrives (through the runners' listener),
        give up on a device no worker offers within `worker_wait`; on KeyboardInterrupt stop the
        workers' agents and re-raise."""
        sweep = uuid.uuid4().hex[:12]
        queues = {r.device.name: _Queue(r, sweep, r.steps(), r.delegate_libraries()) for r in runners}
        try:
            self._collect(queues, stop)
            self.client.run(end_sweep, sweep, wait=True)
        except BaseException:
            stop.set()
            self._stop(sweep, queues)
            raise
        finally:
            self.close()

    def _submit(self, queue: _Queue) -> None:
        """Submit the device's next step (queue.done is its index)."""
        runner, n = queue.runner, queue.done
        step = queue.steps[n]
        planned = step.planned
        key = planned.artifact_key
        task = LabTask(
            sweep=queue.sweep, device=runner.device, planned=planned, n=n,
            last=not jobs_left(queue.steps[n + 1 :], runner.ended), libraries=queue.libraries,
            artifacts={key: runner.artifacts[key]} if key in runner.artifacts else {},
            unavailable={key: runner.unavailable[key]} if key in runner.unavailable else {},
            checks={planned.model: runner.checks[planned.model]} if planned.model in runner.checks else {},
            eval_sets={planned.model: runner.eval_sets[planned.model]} if planned.model in runner.eval_sets else {},
            repetition=step.repetition,
        )  # fmt: skip
        rep = f"-r{step.repetition}" if step.repetition is not None else ""
        queue.current = self.client.submit(
            run_task, task, key=f"embench-{queue.sweep}-{planned.job_id}{rep}", pure=False,
            resources={device_resource(runner.device.name): 1},
        )  # fmt: skip
        queue.current.add_done_callback(lambda _: self._back.set())
        runner.events.started(planned, step.repetition)

    def _collect(self, queues: dict[str, _Queue], stop: threading.Event) -> None:
        for queue in queues.values():
            if queue.steps:
                self._submit(queue)
        while True:
            running = [q for q in queues.values() if not q.closed and q.done < len(q.steps)]
            if not running:
                return
            self._back.wait(POLL_SECONDS)  # a job is back, or time to look at the workers again
            self._back.clear()
            for queue in running:
                if queue.current.done():
                    self._take(queue)
            self._check_workers([q for q in running if not q.closed and not q.current.done()])

    def _take(self, queue: _Queue) -> None:
        """The device's step that is back: stored (the runner's listener) and the next one submitted, or
        the device given up."""
        runner, future = queue.runner, queue.current
        step = queue.steps[queue.done]
        planned = step.planned
        name = runner.device.name
        left = jobs_left(queue.steps[queue.done :], runner.ended)
        queue.done += 1
        if future.status == "error":
            exc = future.exception()
            self._give_up(queue, f"device {name}: job {planned.label} was lost with the lab worker running it"
                                 f" ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})", left)  # fmt: skip
            return
        if future.status == "cancelled":
            self._give_up(queue, f"device {name}: its job {planned.label} was cancelled on the cluster", left)
            return
        outcome: LabOutcome = future.result()
        future.release()
        for line in outcome.warnings:
            runner.events.warning(name, f"{line} (on lab worker {outcome.worker})")
        if outcome.job is not None and outcome.result is not None:
            runner.deliver(step, outcome.job, outcome.result, measured_on=outcome.worker)
        if outcome.lost:
            recorded = {planned.job_id} if outcome.result is not None else set()
            self._give_up(queue, outcome.lost, jobs_left(queue.steps[queue.done - 1 :], runner.ended | recorded))
            return
        while queue.done < len(queue.steps) and queue.steps[queue.done].planned.job_id in runner.ended:
            queue.done += 1  # the rest of an interleaved job a repetition ended
        if queue.done < len(queue.steps):
            self._submit(queue)

    def _give_up(self, queue: _Queue, message: str, not_run: int) -> None:
        queue.closed = True
        if queue.current is not None and not queue.current.done():
            self.client.cancel([queue.current])
        queue.runner.events.device_failed(queue.runner.device.name, message, not_run)

    def _check_workers(self, open_queues: list[_Queue]) -> None:
        """Give up on a device whose jobs have waited `worker_wait` seconds with no worker offering it."""
        if not open_queues:
            return
        offered = self._offered()
        now = time.monotonic()
        for queue in open_queues:
            name = queue.runner.device.name
            if offered.get(device_resource(name)):
                queue.waiting_since, queue.seen_worker = None, True
                continue
            if queue.waiting_since is None:
                queue.waiting_since = now
            elif now - queue.waiting_since >= self.worker_wait:
                what = "no longer offers it (its lab host was lost)" if queue.seen_worker else "offers it"
                self._give_up(queue, f"device {name}: no embench worker connected to {self.address} {what}; waited"
                                     f" {self.worker_wait:.0f} s; start `embench worker --scheduler {self.address}"
                                     f" INVENTORY --devices {name}` on the host it hangs off",
                              jobs_left(queue.steps[queue.done :], queue.runner.ended))  # fmt: skip

    def _offered(self) -> dict[str, float]:
        """Every resource the connected workers offer, summed."""
        info = self.client.scheduler_info(n_workers=-1)
        out: dict[str, float] = {}
        for worker in info.get("workers", {}).values():
            for resource, amount in (worker.get("resources") or {}).items():
                out[resource] = out.get(resource, 0) + amount
        return out

    def _stop(self, sweep: str, queues: dict[str, _Queue]) -> None:
        """The sweep was interrupted: cancel what has not run, and kill the agents the workers are running."""
        with contextlib.suppress(Exception):  # a scheduler already gone has nothing to stop
            self.client.cancel([q.current for q in queues.values() if q.current is not None])
            self.client.run(stop_sweep, sweep, wait=True)
