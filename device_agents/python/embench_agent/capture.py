"""Capture what native code writes to file descriptor 2 (runtimes and converters log there, not to
sys.stderr). The host's model builder uses the same helper."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from typing import IO, Iterator, Optional


class Captured:
    """What was written to fd 2 inside the block: so far while it runs, all of it afterwards."""

    def __init__(self, tmp: IO[bytes]) -> None:
        self._tmp = tmp
        self._final: Optional[str] = None

    @property
    def text(self) -> str:
        if self._final is not None:
            return self._final
        sys.stderr.flush()
        with open(self._tmp.fileno(), "rb", closefd=False) as fh:
            return fh.read().decode("utf-8", "replace") if fh.seek(0) == 0 else ""

    def _finish(self) -> None:
        self._final = self.text


@contextlib.contextmanager
def captured_stderr_fd() -> Iterator[Captured]:
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        box = Captured(tmp)
        os.dup2(tmp.fileno(), 2)
        try:
            yield box
        finally:
            box._finish()
            os.dup2(saved, 2)
            os.close(saved)
