"""What `embench devices` says about telemetry: the sources the agent found on a device, set against
the ones its inventory entry names. Pure: the agent's probe does the reading."""

from __future__ import annotations

from collections.abc import Mapping

from embench_agent.protocol import SourceProbe

from ..inventory import EXTERNAL, Device


def probe_roots(device: Device) -> list[str]:
    """The folders to look under: / and every other `root` the device's telemetry entries name."""
    roots = ["/"]
    for t in device.telemetry:
        if t.source != EXTERNAL and t.root not in roots:
            roots.append(t.root)
    return roots


def _entry(name: str, root: str, found: SourceProbe) -> str:
    parts = [f"source: {name}"]
    if root != "/":
        parts.append(f"root: {root}")
    if name == "battery" and found.supply not in (None, "battery"):
        parts.append(f"options: {{supply: {found.supply}}}")
    return "{" + ", ".join(parts) + "}"


def telemetry_lines(
    device: Device, detected: Mapping[str, Mapping[str, SourceProbe]], meters: dict[str, str | None]
) -> list[str]:
    """Found sources, configured sources that cannot be read, the YAML to add the missing ones, and
    the external meters on the host (label → why it could not start, or None)."""
    configured = {(t.source, t.root) for t in device.telemetry}
    found, missing, broken = [], [], []
    for root, sources in detected.items():
        where = "" if root == "/" else f" under {root}"
        for name, info in sources.items():
            if info.found:
                found.append(f"{name} ({info.label}){where}")
                if (name, root) not in configured:
                    missing.append(_entry(name, root, info))
            elif (name, root) in configured:
                broken.append(f"{name}: {info.why}")
    lines = [
        f"telemetry found: {', '.join(found)}"
        if found
        else "telemetry found: none (results will say 'no power source')"
    ]
    for label, why in meters.items():
        lines.append(f"telemetry on the host: {why}" if why else f"telemetry on the host: external meter {label!r}")
    lines += [f"telemetry NOT readable: {b}" for b in broken]
    if missing:
        lines.append(f"to use them, add to this device: telemetry: [{', '.join(missing)}]")
    return lines
