"""What a device is and has, for the host to check before it sends jobs."""

from __future__ import annotations

import ctypes
from typing import Mapping, Sequence

from . import AGENT_VERSION
from .facts import device_facts
from .protocol import LibraryProbe, Probe
from .runtimes import RUNTIMES
from .telemetry import detect_all


def probe_library(library: str) -> LibraryProbe:
    """Whether a delegate's shared library can be loaded here (dlopen), without creating a delegate."""
    try:
        ctypes.CDLL(library)
    except OSError as exc:
        return LibraryProbe(library=library, loadable=False, error=str(exc))
    return LibraryProbe(library=library, loadable=True)


def probe(libraries: Mapping[str, str], roots: Sequence[str] = ()) -> Probe:
    """Device facts, which runtimes import, which delegate libraries load, and which telemetry
    sources can be read (under / and under each of `roots`)."""
    return Probe(
        agent_version=AGENT_VERSION,
        facts=device_facts(),
        runtimes=dict((name, runtime.probe()) for name, runtime in sorted(RUNTIMES.items())),
        delegates=dict((name, probe_library(lib)) for name, lib in sorted(libraries.items())),
        telemetry=detect_all(roots),
    )
