"""The `embench` command's entry point: as little as possible runs before Ctrl-C is handled.

Importing the CLI loads numpy, paramiko and the rest (about a second); an interrupt during that is
one line and exit 130, not a traceback. SIGTERM and SIGHUP (what systemd, cron and schedulers send,
and a closed terminal) are turned into the same interrupt as Ctrl-C, so a sweep stops its agents,
marks the run interrupted and says how to resume; the exit code is 128 + the signal's number.
"""

from __future__ import annotations

import _signal  # the C half of `signal`, loaded with the interpreter: a handler is in place before any import
import os


def _before_main(signum: int, frame: object) -> None:
    """Until main() installs the real handlers nothing has started: say so in one line and exit 128 + N."""
    os.write(2, b"embench: interrupted\n")
    os._exit(128 + signum)


for _sig in (_signal.SIGINT, _signal.SIGTERM, _signal.SIGHUP):
    _signal.signal(_sig, _before_main)
del _sig

import signal  # noqa: E402 - after the handler: importing `signal` builds its enums, long enough to be interrupted
import sys  # noqa: E402
from types import FrameType  # noqa: E402


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP, handled like Ctrl-C."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


RECEIVED: list[int] = []  # every interrupting signal so far, in order


def _interrupt(signum: int, frame: FrameType | None) -> None:
    RECEIVED.append(signum)
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    raise Terminated(signum)


def install_signal_handlers() -> None:
    # A process started from a background shell inherits SIGINT ignored, and Python then leaves it
    # so: Ctrl-C (or a test's SIGINT) would do nothing. embench always wants it.
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _interrupt)


def exit_code(interrupt: KeyboardInterrupt) -> int:
    """130 for Ctrl-C, 128 + N for signal N (143 for SIGTERM, 129 for SIGHUP)."""
    return 128 + (interrupt.signum if isinstance(interrupt, Terminated) else signal.SIGINT)


def _settled() -> None:
    """From here on a signal ends the process as the OS does, silently: nothing is left to clean up."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)


def main() -> int:
    install_signal_handlers()
    try:
        try:
            from .cli import main as cli_main  # noqa: PLC0415 - the slow imports, inside the handler
        except ImportError:
            # An interrupt inside a C extension's import (numpy's) comes out as that module's ImportError.
            if not RECEIVED:
                raise
            raise (KeyboardInterrupt() if RECEIVED[0] == signal.SIGINT else Terminated(RECEIVED[0])) from None
        # The CLI handles an interrupt of the work itself; this also covers one that lands while it
        # builds its parser, or while it says it was interrupted.
        return cli_main()
    except KeyboardInterrupt as exc:
        _settled()  # a second Ctrl-C while this line is written must not print a traceback
        sys.stderr.write("embench: interrupted\n")
        return exit_code(exc)
    finally:
        _settled()  # and one that lands after the work, as the interpreter exits
