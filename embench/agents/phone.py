"""Phone facts from `getprop`, for both agents that run over ADB."""

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
