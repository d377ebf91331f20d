"""What a sweep shows while it runs: a live bar on a terminal, plain lines otherwise, nothing when quiet."""

from __future__ import annotations

import os
import sys
import threading
from typing import Any, TextIO

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Column

from embench_agent.protocol import Job, Result

from .events import SweepListener
from .plan import PlannedJob
from .stats import summarize
from .text import printable


def _safe(text: object) -> str:
    """Device text for rich: no terminal escapes, and no [markup] of its own."""
    return escape(printable(str(text)))


def _own_stderr() -> TextIO:
    """A copy of stderr's file descriptor (where there is one: not under a test's capture)."""
    try:
        return os.fdopen(os.dup(sys.stderr.fileno()), "w", buffering=1, closefd=True)
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is an OSError and a ValueError
        return sys.stderr


class QuietReporter(SweepListener):
    """For cron: says nothing while running (the summary and errors still print)."""


class ProgressReporter(SweepListener):
    """done / total, the device and job now running, elapsed and ETA."""

    def __init__(self, stream: TextIO | None = None, width: int | None = None) -> None:
        # Its own copy of stderr: the model build sends fd 2 into a log while TensorFlow talks (zoo_build),
        # and the bar and the plain lines must still reach the terminal or the log file.
        self._owned = stream is None
        self.stream = stream or _own_stderr()
        self.console = Console(file=self.stream, width=width)
        # At 80 columns the job now running gives way (ellipsis) before the counts, elapsed and ETA.
        self.progress = Progress(
            TextColumn(
                "[bold]{task.description}", table_column=Column(no_wrap=True, overflow="ellipsis", max_width=24)
            ),
            BarColumn(bar_width=None, table_column=Column(ratio=1, min_width=6, max_width=30)),
            MofNCompleteColumn(table_column=Column(no_wrap=True)),
            TimeElapsedColumn(table_column=Column(no_wrap=True)),
            TextColumn("ETA", table_column=Column(no_wrap=True)),
            TimeRemainingColumn(table_column=Column(no_wrap=True)),
            TextColumn("{task.fields[now]}", table_column=Column(ratio=3, no_wrap=True, overflow="ellipsis")),
            console=self.console,
            transient=False,
            expand=True,
            # Python-level stderr (TensorFlow's, tf2onnx's and the quantizer's loggers during a model
            # build) stays on fd 2, which the build captures into its log; rich would print it above the bar
            redirect_stderr=False,
        )
        self._lock = threading.Lock()
        self._running: dict[str, str] = {}
        self._advanced: dict[str, float] = {}  # job id → the share of it already on the bar (its repetitions)
        self._finished = 0  # jobs (the bar counts repetitions too, in shares)
        self._sweep: Any = None
        self._build: Any = None

    def __enter__(self) -> ProgressReporter:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()
        if self._owned and self.stream is not sys.stderr:
            self.stream.close()
        else:
            self.stream.flush()

    def _line(self, text: str) -> None:
        """One plain line (no terminal: a log file, a pipe, systemd's journal)."""
        print(printable(text), file=self.stream, flush=True)

    def building(self, step: str, done: int, total: int) -> None:
        if self._build is None:
            self._build = self.progress.add_task("building models", total=total, now="")
        self.progress.update(self._build, completed=done, now=step if step != "done" else "")
        if not self.console.is_terminal and step != "done":
            self._line(f"[build {done + 1}/{total}] {step}")

    def planned(self, total: int, already_done: int) -> None:
        self._sweep = self.progress.add_task("sweep", total=total, completed=already_done, now="")
        self._finished = already_done

    def started(self, planned: PlannedJob, repetition: int | None = None) -> None:
        p = planned
        rep = f" r{repetition + 1}/{p.run.repetitions}" if repetition is not None else ""
        with self._lock:
            self._running[p.device] = _safe(
                f"{p.device}: {p.model} {p.precision} {p.runtime}:{p.delegate} t{p.threads}{rep}"
            )
            self.progress.update(self._sweep, now=" | ".join(self._running.values()))

    def repetition_finished(self, planned: PlannedJob, job: Job, result: Result, repetition: int,
                            measured_on: str | None = None) -> None:  # fmt: skip
        """A share of the job on the bar; on a log, a line per repetition (a round can take a while)."""
        share = 1 / planned.run.repetitions
        with self._lock:
            self._running.pop(planned.device, None)
            self._advanced[planned.job_id] = self._advanced.get(planned.job_id, 0.0) + share
            self.progress.update(self._sweep, advance=share, now=" | ".join(self._running.values()))
            if not self.console.is_terminal:
                summary = summarize(result.samples_ns)
                median = f" median {summary.median:.3f} ms" if summary else ""
                self._line(f"[repetition {repetition + 1}/{planned.run.repetitions}] {planned.label}:"
                           f" {result.status}{median}")  # fmt: skip

    def finished(self, planned: PlannedJob, job: Job, result: Result, measured_on: str | None = None) -> None:
        with self._lock:
            self._running.pop(planned.device, None)
            advance = 1 - self._advanced.pop(planned.job_id, 0.0)
            self.progress.update(self._sweep, advance=advance, now=" | ".join(self._running.values()))
            task = self.progress.tasks[self._sweep]
            self._finished += 1
            if not self.console.is_terminal:
                # A log file gets one plain line per job instead of a live bar.
                summary = summarize(result.samples_ns)
                median = f" median {summary.median:.3f} ms" if summary else ""
                self._line(f"[{self._finished}/{task.total:.0f}] {planned.label}: {result.status}{median}")
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
                self._line(f"{device}: {message}")


def make_reporter(quiet: bool) -> SweepListener:
    return QuietReporter() if quiet else ProgressReporter()
