"""What every telemetry reader is: constructed with a `root` (normally "/", a test tree otherwise) and
its options, it raises LookupError when the source is not there, and `read()` gives one value."""

from __future__ import annotations

from typing import Any, Dict, Mapping, Optional


class Reader:
    """A telemetry source read on the device. Subclasses set kind, unit, rate_hz, and implement read()."""

    kind = ""  # power | counter | temperature | frequency | throttle
    unit = ""
    rate_hz = 0.0  # default sampling rate; 0: read at the window edges only (counters)
    label = ""

    def __init__(self, root: str, options: Mapping[str, str]) -> None:
        self.root, self.options = root, options

    def read(self) -> Optional[float]:
        raise NotImplementedError

    def facts(self) -> Dict[str, Any]:
        """State worth recording at the window's start and end (trip points, caps, battery status)."""
        return {}
