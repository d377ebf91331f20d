"""User-facing errors and the exit codes the CLI documents (docs/exit-codes.md)."""

from __future__ import annotations

EXIT_OK = 0
EXIT_USER_ERROR = 1
EXIT_USAGE = 2
EXIT_JOBS_FAILED = 3
EXIT_STORE_FULL = 4
EXIT_REGRESSED = 5  # `embench nightly`: a series got slower (significant and over its threshold)
EXIT_BUSY = 6  # `embench nightly`: another nightly on the same store is running
EXIT_INTERRUPTED = 130  # Ctrl-C; SIGTERM gives 143 and SIGHUP 129 (128 + the signal's number)


class EmbenchError(Exception):
    """An error the user can fix; printed as one line, no traceback."""

    exit_code = EXIT_USER_ERROR


class ZooError(EmbenchError):
    """The model zoo manifest is wrong or a model is not built."""


class StoreError(EmbenchError):
    """The results database cannot be opened, written, or does not hold what was asked."""


class TransportError(Exception):
    """A device cannot be used as configured (host key, authentication, no usable Python, ...)."""


class DeviceUnreachable(TransportError):
    """The device cannot be reached, or the connection dropped."""
