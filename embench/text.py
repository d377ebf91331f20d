"""Text from devices, made safe to print: what a board or phone says reaches the user's terminal."""

from __future__ import annotations

import re

# ESC-introduced sequences (CSI, OSC and the rest) first, then any other C0 or C1 control character
# except tab and newline: a device must not clear the screen, retitle the window or move the cursor.
_ESCAPES = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[ -~])")
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """`text` without terminal escape sequences and control characters (tabs and newlines kept)."""
    return _CONTROLS.sub("", _ESCAPES.sub("", text))
