"""Run each device's queue in its own thread of this process (the default executor)."""

from __future__ import annotations

import threading

from ..runner import DeviceRunner


class ThreadExecutor:
    NAME = "threads"

    def run(self, runners: list[DeviceRunner], stop: threading.Event) -> None:
        """Run all device queues at once; on KeyboardInterrupt, stop them and kill running agents."""
        errors: list[BaseException] = []

        def guarded(runner: DeviceRunner) -> None:
            try:
                runner.run()
            except Exception as exc:  # noqa: BLE001 - handed to the main thread below, never dropped
                errors.append(exc)
                stop.set()  # e.g. the store's disk is full: stop every queue now, not after its job
                for r in runners:
                    if r.transport is not None:
                        r.transport.cancel()

        threads = [
            threading.Thread(target=guarded, args=(r,), name=f"device-{r.device.name}", daemon=True) for r in runners
        ]
        for t in threads:
            t.start()
        try:
            while any(t.is_alive() for t in threads):
                for t in threads:
                    t.join(timeout=0.2)
        except KeyboardInterrupt:
            stop.set()
            for r in runners:
                if r.transport is not None:
                    r.transport.cancel()
            for t in threads:
                t.join(timeout=30)
            raise
        if errors:
            raise errors[0]
