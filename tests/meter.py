"""A stand-in external power meter (test support), speaking embench's meter protocol: one sample per
stdout line, `UNIX_SECONDS WATTS` (or bare `WATTS` with --bare), flushed per line like a real meter
script. What it "measures" is what the test set up:

    meter.py curve [--rate HZ] [--bare] [--header] [--exit-after S]
        the known power curve of tests/powertree.py, P(time.monotonic())
    meter.py battery DIR [--rate HZ]
        |current_now (µA) × voltage_now (µV)| from a battery folder the test changes over time

`samples(options, stop)` is the same meter as a Python entry point; `failing(options, stop)` one that
raises after a while.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from powertree import power


def command(*args: str) -> str:
    """The inventory `command:` that runs this meter with `args`."""
    return f"{sys.executable} -u {Path(__file__).resolve()} {' '.join(args)}"


def _battery(folder: Path) -> Callable[[], float]:
    def read() -> float:
        current = float((folder / "current_now").read_text())
        voltage = float((folder / "voltage_now").read_text())
        return abs(current / 1e6 * voltage / 1e6)

    return read


def samples(options: dict[str, str], stop: threading.Event) -> Iterator[tuple[float, float]]:
    """Entry point form: (unix seconds, watts) of the power curve until `stop` is set."""
    period = 1.0 / float(options.get("rate_hz", "50"))
    while not stop.is_set():
        yield time.time(), power(time.monotonic())
        stop.wait(period)


def failing(options: dict[str, str], stop: threading.Event) -> Iterator[tuple[float, float]]:
    """Entry point that reads for `after_s` seconds, then fails like a meter whose USB link drops."""
    until = time.monotonic() + float(options.get("after_s", "0.3"))
    while not stop.is_set() and time.monotonic() < until:
        yield time.time(), power(time.monotonic())
        stop.wait(0.02)
    raise RuntimeError("meter: USB read failed")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("what", choices=["curve", "battery"])
    parser.add_argument("folder", nargs="?")
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--bare", action="store_true")
    parser.add_argument("--header", action="store_true")
    parser.add_argument("--exit-after", type=float)
    args = parser.parse_args(argv)
    read = _battery(Path(args.folder)) if args.what == "battery" else lambda: power(time.monotonic())
    if args.header:
        print("time_s,power_w", flush=True)
    start = time.monotonic()
    while args.exit_after is None or time.monotonic() - start < args.exit_after:
        watts = read()
        print(f"{watts:.6f}" if args.bare else f"{time.time():.6f},{watts:.6f}", flush=True)
        time.sleep(1.0 / args.rate)
    print("meter: lost the USB connection", file=sys.stderr)
    return 4


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
