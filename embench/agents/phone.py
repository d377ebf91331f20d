"""Device facts without the Python agent: a phone's from `getprop` (both agents over ADB), a Linux
board's from `uname` and /proc (the benchmark_model agent over SSH)."""

from __future__ import annotations

import re

from embench_agent.protocol import DeviceFacts

from ..transports.base import Transport

FACT_PROPS = {
    "model": "ro.product.model",
    "manufacturer": "ro.product.manufacturer",
    "soc": "ro.soc.model",
    "soc_manufacturer": "ro.soc.manufacturer",
    "platform": "ro.board.platform",
    "hardware": "ro.hardware",
    "sdk": "ro.build.version.sdk",
    "android": "ro.build.version.release",
    "abi": "ro.product.cpu.abi",
    "build": "ro.build.fingerprint",
}
_LINE = re.compile(r"^\[([^\]]+)\]: \[(.*)\]$")


def parse_getprop(text: str) -> dict[str, str]:
    """`getprop`'s `[key]: [value]` lines as a dict."""
    props = {}
    for line in text.splitlines():
        m = _LINE.match(line.strip())
        if m:
            props[m.group(1)] = m.group(2)
    return props


def phone_facts(transport: Transport, timeout: float = 30.0) -> DeviceFacts:
    """The device facts of a phone: model, SoC, platform, SDK level, ABI (None where unknown)."""
    res = transport.run(["getprop"], timeout=timeout)
    props = parse_getprop(res.stdout.decode("utf-8", "replace")) if res.returncode == 0 else {}
    facts = {key: props[prop] for key, prop in FACT_PROPS.items() if props.get(prop)}
    if facts.get("android") or facts.get("sdk"):
        facts["os"] = f"Android {facts.get('android', '?')} (SDK {facts.get('sdk', '?')})"
    return DeviceFacts.from_dict(facts)


def board_facts(transport: Transport, timeout: float = 30.0) -> DeviceFacts:
    """A Linux board's facts from its shell: hostname, machine, kernel, cores, CPU model, memory."""
    script = ("uname -n; uname -m; uname -sr; getconf _NPROCESSORS_ONLN 2>/dev/null || echo;"
              " (grep -m1 -E '^(model name|Model|Hardware)' /proc/cpuinfo 2>/dev/null | cut -d: -f2-) || echo;"
              " (grep -m1 MemTotal /proc/meminfo 2>/dev/null | tr -dc 0-9) || echo")  # fmt: skip
    res = transport.run(["sh", "-c", script], timeout=timeout)
    lines = [line.strip() for line in res.stdout.decode("utf-8", "replace").splitlines()] if res.returncode == 0 else []
    lines += [""] * (6 - len(lines))
    facts: dict[str, object] = {"hostname": lines[0], "machine": lines[1], "kernel": lines[2], "cpu": lines[4]}
    if lines[3].isdigit():
        facts["cores"] = int(lines[3])
    if lines[5].isdigit():
        facts["mem_total_kb"] = int(lines[5])
    return DeviceFacts.from_dict({k: v for k, v in facts.items() if v})
