"""The host half of a runtime: what the inventory accepts for it, which model file each delegate
runs, which delegate is its CPU baseline, and whether a probed device can run a job."""

from __future__ import annotations

from collections.abc import Mapping

from embench_agent.protocol import LibraryProbe, RuntimeProbe


class HostRuntime:
    """Subclass per runtime and add one line to RUNTIMES (runtimes/__init__.py); its agent half is
    a module in device_agents/python/embench_agent/runtimes/."""

    NAME = ""
    DELEGATES: tuple[str, ...] = ()  # delegate / provider names the inventory accepts
    DEFAULT_DELEGATES: tuple[str, ...] = ()  # sweep.delegates when the inventory names none
    BASELINE: tuple[str, ...] = ()  # delegates that count as the single-thread CPU baseline, best first
    CUSTOM_LIBRARIES = False  # whether a device's delegate_libraries may add delegate names

    def file_format(self, delegate: str) -> str:
        """The zoo file format this delegate runs (zoo.FORMATS)."""
        raise NotImplementedError

    def library(self, delegate: str, libraries: Mapping[str, str]) -> str | None:
        """The shared library a delegate loads on the device (checked there before jobs), or None."""
        return None

    def cannot_run(
        self, device: str, delegate: str, probe: RuntimeProbe, libraries: Mapping[str, LibraryProbe]
    ) -> str | None:
        """Why the probed device cannot run this delegate, or None; the job is then `unsupported`."""
        if probe.error:
            return f"device {device!r}: {probe.error}"
        return None
