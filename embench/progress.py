"""What a sweep shows while it runs: a live bar on a terminal, plain lines otherwise, nothing when quiet."""

from __future__ import annotations

import sys
import threading
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from embench_agent.protocol import Job, Result

from .events import SweepListener
from .plan import PlannedJob
from .stats import summarize
from .text import printable


def _safe(text: object) -> str:
    """Device text for rich: no terminal escapes, and no [markup] of its own."""
    return escape(printable(str(text)))


class QuietReporter(SweepListener):
    """For cron: says nothing while running (the summary and errors still print)."""


class ProgressReporter(SweepListener):
    """done / total, the device and job now running, elapsed and ETA."""

    def __init__(self) -> None:
        self.console = Console(stderr=True)
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            TextColumn("{task.fields[now]}"),
            console=self.console,
            transient=False,
        )
        self._lock = threading.Lock()
        self._running: dict[str, str] = {}
        self._sweep: Any = None
        self._build: Any = None

    def __enter__(self) -> ProgressReporter:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def building(self, step: str, done: int, total: int) -> None:
        if self._build is None:
            self._build = self.progress.add_task("building models", total=total, now="")
        self.progress.update(self._build, completed=done, now=step if step != "done" else "")
        if not self.console.is_terminal and step != "done":
            print(f"[build {done + 1}/{total}] {step}", file=sys.stderr)

    def planned(self, total: int, already_done: int) -> None:
        self._sweep = self.progress.add_task("sweep", total=total, completed=already_done, now="")

    def started(self, planned: PlannedJob) -> None:
        p = planned
        with self._lock:
            self._running[p.device] = _safe(
                f"{p.device}: {p.model} {p.precision} {p.runtime}:{p.delegate} t{p.threads}"
            )
            self.progress.update(self._sweep, now=" | ".join(self._running.values()))

    def finished(self, planned: PlannedJob, job: Job, result: Result) -> None:
        with self._lock:
            self._running.pop(planned.device, None)
            self.progress.update(self._sweep, advance=1, now=" | ".join(self._running.values()))
            task = self.progress.tasks[self._sweep]
            if not self.console.is_terminal:
                # A log file gets one plain line per job instead of a live bar.
                summary = summarize(result.samples_ns)
                median = f" median {summary.median:.3f} ms" if summary else ""
                line = f"[{task.completed:.0f}/{task.total:.0f}] {planned.label}: {result.status}{median}"
                print(printable(line), file=sys.stderr)
            elif not result.succeeded:
                self.progress.console.print(
                    f"[red]{escape(planned.label)}: {result.status}[/]: {_safe(result.message)}"
                )

    def device_failed(self, device: str, message: str, not_run: int) -> None:
        with self._lock:
            self._running.pop(device, None)
            if self.console.is_terminal:
                self.progress.console.print(f"[red]{_safe(device)}: {_safe(message)}[/]")
            else:
                print(printable(f"{device}: {message}"), file=sys.stderr)


def make_reporter(quiet: bool) -> SweepListener:
    return QuietReporter() if quiet else ProgressReporter()
