"""Samples a job's telemetry sources on a thread, on the monotonic clock, and marks window edges."""

from __future__ import annotations

import threading
import time
from typing import Dict, List, Optional, Sequence, Tuple

from ..protocol import Edge, SourceSpec, SourceTrace, Telemetry
from . import HOST_SOURCES, SOURCES
from .base import Reader


class _Track:
    def __init__(self, spec: SourceSpec, reader: Reader, rate: float) -> None:
        self.name, self.reader, self.rate = spec.source, reader, rate
        self.facts_start = reader.facts()
        self.samples: List[Tuple[float, float]] = []


class Sampler:
    """Reads every configured source at its rate until stopped; counters are read at the edges only."""

    def __init__(self, specs: Sequence[SourceSpec]) -> None:
        self.tracks: List[_Track] = []
        self.errors: List[str] = []
        for spec in specs:
            if spec.source in HOST_SOURCES:
                continue  # read on the host, beside this agent (the edges below let the host align it)
            try:
                cls = SOURCES[spec.source]
                reader = cls(spec.root or "/", spec.options)
                rate = spec.rate_hz if spec.rate_hz else cls.rate_hz
                self.tracks.append(_Track(spec, reader, float(rate)))
            except (KeyError, LookupError, OSError) as exc:
                self.errors.append(f"{spec.source}: {exc}")
        self.edges: Dict[str, Edge] = {}
        self.cpu_seconds = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="embench-sampler", daemon=True)

    def start(self) -> None:
        if any(track.rate > 0 for track in self.tracks):
            self._thread.start()

    def _loop(self) -> None:
        cpu0 = time.thread_time()
        due = [time.monotonic()] * len(self.tracks)
        while not self._stop.is_set():
            now = time.monotonic()
            for i, track in enumerate(self.tracks):
                if track.rate > 0 and now >= due[i]:
                    value = track.reader.read()
                    if value is not None:
                        track.samples.append((time.monotonic(), value))
                    due[i] = now + 1.0 / track.rate
            self._stop.wait(max(0.0, min(due) - time.monotonic()) if due else 0.1)
        self.cpu_seconds = time.thread_time() - cpu0

    def edge(self, name: str) -> None:
        """Mark a window edge on the sampler's clock; read counter sources exactly there."""
        reads: Dict[str, Optional[float]] = {}
        for track in self.tracks:
            if track.reader.kind == "counter":
                reads[track.name] = track.reader.read()
        self.edges[name] = Edge(t=time.monotonic(), wall=time.time(), counters=reads)

    def stop(self) -> Telemetry:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)
        traces = tuple(
            SourceTrace(
                source=track.name,
                label=track.reader.label or track.name,
                kind=track.reader.kind,
                unit=track.reader.unit,
                rate_hz=track.rate,
                facts_start=track.facts_start,
                facts=track.reader.facts(),
                samples=tuple(track.samples),
            )
            for track in self.tracks
        )
        return Telemetry(
            clock="monotonic",
            edges=dict(self.edges),
            sources=traces,
            errors=tuple(self.errors),
            sampler_cpu_seconds=self.cpu_seconds,
        )
