"""Reading small text files (/proc, /sys) and running small commands, without raising."""

from __future__ import annotations

import glob
import os
import subprocess
from typing import List, Optional, Sequence


def read_text(path: str) -> Optional[str]:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return fh.read()
    except OSError:
        return None


def read_number(path: str) -> Optional[float]:
    text = read_text(path)
    try:
        return float(text.strip()) if text is not None else None
    except ValueError:
        return None


def glob_or_say(root: str, pattern: str, what: str) -> List[str]:
    """The paths matching root/pattern, sorted; LookupError naming where it looked when none does."""
    found = sorted(glob.glob(os.path.join(root, pattern)))
    if not found:
        raise LookupError("{} under {}/{}".format(what, root.rstrip("/"), os.path.dirname(pattern)))
    return found


def run_text(argv: Sequence[str], timeout: float = 2.0) -> Optional[str]:
    """A command's stdout, or None when it cannot run, fails or times out."""
    try:
        out = subprocess.run(
            list(argv), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, timeout=timeout, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.decode("utf-8", "replace") if out.returncode == 0 else None
