"""Processes of this test run only (test support): every check is scoped to a process tree, never to
the whole machine, where another run's agents may be working."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


def descendants(pid: int) -> list[int]:
    """Every process below `pid` (children, their children, ...), read from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        for c in children.get(p, []):
            out.append(c)
            todo.append(c)
    return out


def cmdline(pid: int) -> list[bytes]:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().split(b"\0")
    except OSError:
        return []


def agent_pids(root: int | None = None) -> list[int]:
    """Processes below `root` (default: this test process) running the agent's `run` command."""
    found = []
    for pid in descendants(os.getpid() if root is None else root):
        cmd = cmdline(pid)
        if any(p.endswith(b".pyz") for p in cmd) and b"run" in cmd:  # on a device: cache/<sha256>.pyz
            found.append(pid)
    return found


def matching(root: int, text: str) -> list[int]:
    """Processes below `root` whose command line contains `text`."""
    return [p for p in descendants(root) if text.encode() in b" ".join(cmdline(p))]


def wait_for(what: str, check: Callable[[], T | None], timeout: float = 120, every: float = 0.05) -> T:
    """Poll `check` until it returns something truthy; fail naming `what` after `timeout` seconds (a
    bound for a hung product, not a tolerance: nothing waits longer than the event takes)."""
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


def default_signals() -> None:
    """preexec_fn: the child starts with every signal at its default, whatever this process inherited
    (a test run from a background shell has SIGINT ignored, and Popen would keep it so)."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):
        signal.signal(sig, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, set())


def popen(argv: list[str], **kw: Any) -> subprocess.Popen[str]:
    """Popen with text pipes and default signal dispositions in the child."""
    kw.setdefault("preexec_fn", default_signals)
    kw.setdefault("stdout", subprocess.PIPE)
    kw.setdefault("stderr", subprocess.PIPE)
    return subprocess.Popen(argv, text=True, **kw)


def alive(pid: int) -> bool:
    """Running (a zombie, dead and waiting for its parent to reap it, is not)."""
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")
