"""Run each device's queue in its own thread of this process (the default executor)."""

from __future__ import annotations

import sys
import threading

from ..runner import DeviceRunner

# After an interrupt: how long each queue gets to stop its agent and clean up (`dumpsys battery reset`,
# external meters, connections) before the process exits anyway.
CLEANUP_SECONDS = 60.0


class ThreadExecutor:
    NAME = "threads"

    def run(self, runners: list[DeviceRunner], stop: threading.Event) -> None:
        """Run all device queues at once; on KeyboardInterrupt, stop them, kill running agents, wait for
        every queue's cleanup, re-raise."""
        errors: list[BaseException] = []
        finished = [threading.Event() for _ in runners]

        def guarded(runner: DeviceRunner, done: threading.Event) -> None:
            try:
                runner.run()
            except Exception as exc:  # noqa: BLE001 - handed to the main thread below, never dropped
                errors.append(exc)
                stop.set()  # e.g. the store's disk is full: stop every queue now, not after its job
                _cancel(runners)
            finally:
                done.set()

        for runner, done in zip(runners, finished):
            name = f"device-{runner.device.name}"
            threading.Thread(target=guarded, args=(runner, done), name=name, daemon=True).start()
        # Waiting is done on Events, never Thread.join: a KeyboardInterrupt landing inside join() marks
        # the still-running thread as stopped (CPython 3.11, 3.12), and a later join would return at once,
        # letting the process exit before the queue's `finally` (battery reset, meters) has run.
        try:
            for done in finished:
                while not done.wait(0.5):
                    pass
        except KeyboardInterrupt:
            stop.set()
            _cancel(runners)
            _wait_for_cleanup(runners, finished)
            raise
        if errors:
            raise errors[0]


def _cancel(runners: list[DeviceRunner]) -> None:
    for r in runners:
        if r.transport is not None:
            r.transport.cancel()


def _wait_for_cleanup(runners: list[DeviceRunner], finished: list[threading.Event]) -> None:
    """Every queue's cleanup, bounded; a queue that does not finish in time is named (a second Ctrl-C
    gives up waiting)."""
    for runner, done in zip(runners, finished):
        if not done.wait(CLEANUP_SECONDS):
            sys.stderr.write(f"embench: device {runner.device.name}: its queue did not stop within "
                             f"{CLEANUP_SECONDS:.0f} s of the interrupt; its agent may still run\n")  # fmt: skip
