"""The `embench` command's entry point: as little as possible runs before Ctrl-C is handled.

Importing the CLI loads numpy, paramiko and the rest (about a second); an interrupt during that is
one line and exit 130, not a traceback. SIGTERM and SIGHUP (what systemd, cron and schedulers send,
and a closed terminal) are turned into the same interrupt as Ctrl-C, so a sweep stops its agents,
marks the run interrupted and says how to resume; the exit code is 128 + the signal's number.
"""

from __future__ import annotations

import signal
import sys
from types import FrameType


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP, handled like Ctrl-C."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise Terminated(signum)


def install_signal_handlers() -> None:
    # A process started from a background shell inherits SIGINT ignored, and Python then leaves it
    # so: Ctrl-C (or a test's SIGINT) would do nothing. embench always wants it.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _terminate)


def exit_code(interrupt: KeyboardInterrupt) -> int:
    """130 for Ctrl-C, 128 + N for signal N (143 for SIGTERM, 129 for SIGHUP)."""
    return 128 + (interrupt.signum if isinstance(interrupt, Terminated) else signal.SIGINT)


def main() -> int:
    install_signal_handlers()
    try:
        from .cli import main as cli_main  # noqa: PLC0415 - the slow imports, inside the handler
    except KeyboardInterrupt as exc:
        sys.stderr.write("embench: interrupted\n")
        return exit_code(exc)
    return cli_main()
