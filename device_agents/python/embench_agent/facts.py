"""What this device is (CPU, cores, memory, OS, board) and how much memory this process used."""

from __future__ import annotations

import os
import platform
import resource
import sys
from typing import Optional

from .protocol import DeviceFacts
from .sysfs import read_text


def _cpu_model() -> str:
    text = read_text("/proc/cpuinfo") or ""
    for key in ("model name", "Hardware", "Processor", "cpu model"):
        for line in text.splitlines():
            if line.startswith(key) and ":" in line:
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _mem_total_kb() -> Optional[int]:
    for line in (read_text("/proc/meminfo") or "").splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1])
    return None


def _os_name() -> str:
    for line in (read_text("/etc/os-release") or "").splitlines():
        if line.startswith("PRETTY_NAME="):
            return line.split("=", 1)[1].strip().strip('"')
    return platform.system()


def device_facts() -> DeviceFacts:
    board = read_text("/proc/device-tree/model")
    governor = read_text("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor")
    return DeviceFacts(
        hostname=platform.node(),
        machine=platform.machine(),
        cpu=_cpu_model(),
        cores=os.cpu_count(),
        mem_total_kb=_mem_total_kb(),
        os=_os_name(),
        kernel=platform.release(),
        python=platform.python_version(),
        board=board.strip("\x00\n ") if board else None,
        cpu_governor=governor.strip() if governor else None,
    )


def peak_rss_kb() -> int:
    """This process's peak resident memory.

    VmHWM first: on Linux, ru_maxrss is inherited across fork+exec, so an agent started by a big
    parent (a sweep that just loaded TensorFlow) would report the parent's peak as its own.
    """
    for line in (read_text("/proc/self/status") or "").splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak // 1024) if sys.platform == "darwin" else int(peak)
