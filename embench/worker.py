"""`embench worker`: this lab host's Dask worker, offering one resource per device it drives."""

from __future__ import annotations

import asyncio
import signal

from . import lab
from .errors import EXIT_OK, EmbenchError
from .inventory import Device, Inventory

QUIET = {"distributed.worker.profile.enabled": False, "distributed.admin.system-monitor.gil.enabled": False}


def worker_devices(inventory: Inventory, names: str | None, host: str) -> list[Device]:
    """The devices this worker drives: those named (--devices), else every device whose host: is `host`."""
    if names:
        wanted = [n.strip() for n in names.split(",") if n.strip()]
        known = {d.name: d for d in inventory.devices}
        unknown = [n for n in wanted if n not in known]
        if unknown:
            raise EmbenchError(f"{inventory.path}: no device named {', '.join(unknown)}; its devices:"
                               f" {', '.join(known) or 'none'}")  # fmt: skip
        return [known[n] for n in wanted]
    mine = [d for d in inventory.devices if d.host == host]
    if not mine:
        raise EmbenchError(
            f"{inventory.path}: no device has host: {host}; name this host's devices with --devices A,B, or set"
            " their host: (or pass --name the host: they name)"
        )
    return mine


def serve(scheduler: str, devices: list[Device], name: str) -> int:
    """Run the worker until it is stopped (Ctrl-C, SIGTERM: the entry turns either into KeyboardInterrupt)."""
    try:
        import dask  # noqa: PLC0415
        from distributed import Worker  # noqa: PLC0415
    except ImportError:
        raise EmbenchError("embench worker needs Dask distributed, which is not installed; install embench's"
                           " lab extra (pip install -e '.[lab]')") from None  # fmt: skip

    # A worker times devices, some on this very host: Dask's statistical profiler (every thread's stack
    # every 10 ms) and GIL monitor would spend CPU beside the measurement, and nothing here reads them.
    dask.config.set(QUIET)
    lab.LOCAL_DEVICES.update({d.name: d for d in devices})
    resources = {lab.device_resource(d.name): 1.0 for d in devices}

    async def run() -> int:
        # Ctrl-C, SIGTERM (systemctl stop), SIGHUP: leave the scheduler cleanly, then exit 128 + N.
        loop, stopped, signals = asyncio.get_running_loop(), asyncio.Event(), []

        def stop(sig: int) -> None:
            signals.append(sig)
            stopped.set()

        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            loop.add_signal_handler(sig, stop, sig)
        try:
            worker = await Worker(scheduler, name=name, nthreads=len(devices), resources=resources,
                                  dashboard=False, memory_limit=0, death_timeout=60)  # fmt: skip
        except (OSError, TimeoutError) as exc:
            raise EmbenchError(f"embench worker {name}: cannot reach the Dask scheduler at {scheduler}: {exc};"
                               " start it first (`dask scheduler`, docs/lab.md)") from None  # fmt: skip
        print(f"embench worker {name}: serving {', '.join(d.name for d in devices)} to {scheduler}", flush=True)
        ended = asyncio.ensure_future(worker.finished())
        told = asyncio.ensure_future(stopped.wait())
        await asyncio.wait([ended, told], return_when=asyncio.FIRST_COMPLETED)
        told.cancel()
        await worker.close(reason="embench worker stopped")
        if signals:
            print(f"embench worker {name}: stopped by {signal.Signals(signals[0]).name}", flush=True)
            return 128 + int(signals[0])
        return EXIT_OK

    return asyncio.run(run())
