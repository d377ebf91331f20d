#!/usr/bin/env python3
"""How fast does embench's ADB transport push a model, next to the real `adb push`?

Starts the stand-in phone (tests/adbd.py, the real ADB protocol over loopback TCP), then in
interleaved rounds pushes the same 20 MiB file with embench's transport (adb-shell underneath)
and with the real `adb` client (Debian package `adb`; its own server on a free port), and prints
each one's throughput and the ratio embench ÷ adb (target ≥ 0.5: pushes happen once per model,
content-addressed, so they are not on any timed path).

Both talk to the same stand-in, whose Python side is the bottleneck on loopback, so the ratio
compares the two clients' protocol handling (chunk size, write batching), not a USB cable.

    .venv/bin/python benchmarks/adb_push.py [--rounds 5] [--mib 20]
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
from adbd import StandinPhone  # noqa: E402

from embench.inventory import AdbConfig, Device  # noqa: E402
from embench.transports.adb import AdbTransport  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--mib", type=int, default=20)
    args = ap.parse_args()
    adb_bin = shutil.which("adb")
    if adb_bin is None:
        print("benchmarks/adb_push.py: needs the real adb client: apt-get install adb", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="embench-adb-push-") as tmp_name:
        tmp = Path(tmp_name)
        local = tmp / "model.bin"
        local.write_bytes(os.urandom(args.mib * 1024 * 1024))
        size = local.stat().st_size
        home = tmp / "home"
        (home / ".android").mkdir(parents=True)
        env = {**os.environ, "ANDROID_ADB_SERVER_PORT": str(free_port()), "HOME": str(home)}
        with StandinPhone(tmp / "phone") as phone:
            remote_dir = phone.root / "data" / "local" / "tmp"
            device = Device(name="standin", transport="adb", workdir=str(remote_dir / "embench"),
                            adb=AdbConfig(serial=phone.serial, key_file=str(tmp / "key" / "adbkey"), agent="python"))  # fmt: skip
            transport = AdbTransport(device)
            transport.run(["true"], timeout=30)  # connect (and make the key) outside the timing
            subprocess.run([adb_bin, "connect", phone.serial], env=env, capture_output=True, check=True, timeout=60)
            ours, theirs = [], []
            try:
                for r in range(args.rounds):
                    for who in ("embench", "adb") if r % 2 == 0 else ("adb", "embench"):
                        t0 = time.perf_counter()
                        if who == "embench":
                            transport.ensure_file(local, f"{r:064x}")  # a new name each round: really sent
                            ours.append(time.perf_counter() - t0)
                        else:
                            target = str(remote_dir / f"adb-{r}.bin")
                            subprocess.run([adb_bin, "-s", phone.serial, "push", str(local), target], env=env,
                                           capture_output=True, check=True, timeout=300)  # fmt: skip
                            theirs.append(time.perf_counter() - t0)
            finally:
                transport.close()
                subprocess.run([adb_bin, "kill-server"], env=env, capture_output=True, check=False)
    mine, real = statistics.median(ours), statistics.median(theirs)
    mib = size / 2**20
    print(f"push of {mib:.0f} MiB to the stand-in phone on loopback, median of {args.rounds} interleaved rounds")
    print(f"  embench (adb-shell)  {mine:7.3f} s  {mib / mine:8.1f} MiB/s   (includes the stat check and the rename)")
    print(f"  adb push (real)      {real:7.3f} s  {mib / real:8.1f} MiB/s   (includes the adb client's start-up)")
    print(f"  throughput ratio embench ÷ adb: {real / mine:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
