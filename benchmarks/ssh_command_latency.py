#!/usr/bin/env python3
"""What one small SSH command costs, with TCP_NODELAY (what embench sets) and without it.

Every job, cooldown temperature poll and clock probe for an external meter is a small command over
the board's one SSH connection. Without TCP_NODELAY, Nagle's algorithm holds each small packet until
the peer's delayed ACK arrives. Starts a real OpenSSH server on loopback (as in the tests; needs
root), opens two embench SSH transports to it, turns TCP_NODELAY back off on one, and times
`true` on each in interleaved rounds. Prints the medians, their ratio, and the clock-probe
uncertainty (half the best round trip) that an external meter's alignment gets from each.

    sudo .venv/bin/python benchmarks/ssh_command_latency.py [--rounds 5] [--commands 20]
"""

from __future__ import annotations

import argparse
import shutil
import socket
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
from sshd import keygen, make_board, world_readable_dir  # noqa: E402

from embench.inventory import Device, SshConfig  # noqa: E402
from embench.telemetry.external import measure_offset  # noqa: E402
from embench.transports.ssh import SshTransport  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--commands", type=int, default=20)
    args = parser.parse_args()
    root = Path(world_readable_dir("embench-bench-ssh-"))
    key = root / "id_ed25519"
    board = make_board("pi-a", root / "pi-a", keygen(key))
    known = root / "known_hosts"
    known.write_text(board.known_hosts_line() + "\n")
    cfg = SshConfig(host="127.0.0.1", port=board.port, user=board.user, key_file=str(key), known_hosts=str(known))
    device = Device(name="pi-a", transport="ssh", ssh=cfg, workdir=str(board.workdir))
    try:
        fast, slow = SshTransport(device), SshTransport(device)
        fast.run(["true"], timeout=10)
        slow.run(["true"], timeout=10)
        slow._connect().get_transport().sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 0)  # type: ignore[union-attr]
        times: dict[str, list[float]] = {"nodelay": [], "nagle": []}
        probes: dict[str, list[float]] = {"nodelay": [], "nagle": []}
        for _ in range(args.rounds):
            for name, transport in (("nodelay", fast), ("nagle", slow)):
                t0 = time.perf_counter()
                for _ in range(args.commands):
                    transport.run(["true"], timeout=10)
                times[name].append((time.perf_counter() - t0) / args.commands)
                probes[name].append(measure_offset(transport).uncertainty_s)
        for name in ("nodelay", "nagle"):
            print(f"{name:8s} one command {statistics.median(times[name]) * 1e3:6.1f} ms"
                  f"   clock probe ±{statistics.median(probes[name]) * 1e3:5.1f} ms")  # fmt: skip
        ratio = statistics.median(times["nagle"]) / statistics.median(times["nodelay"])
        print(f"ratio without ÷ with TCP_NODELAY: {ratio:.1f}")
    finally:
        board.kill()
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
