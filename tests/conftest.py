"""Shared fixtures: a tiny real model zoo (built once per session) and inventory writers."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import matplotlib.image as mpimg
import numpy as np
import onnx
import pytest
import yaml
from procs import default_signals, matching, popen, wait_for

from embench.transports import Transport
from embench.zoo import KERAS_FORMATS, Zoo

REPO = Path(__file__).resolve().parents[1]
AGENT_PACKAGE = REPO / "device_agents" / "python" / "embench_agent"
LIGHT = Path(onnx.__file__).parent / "backend" / "test" / "data" / "light"


@pytest.fixture(scope="session")
def zoo_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A zoo with a tiny Keras model (built for real: TFLite fp32/fp16/int8 + ONNX), onnx's light
    SqueezeNet as a user-supplied file, and a corrupt TFLite file."""
    from embench.zoo_build import build_model  # noqa: PLC0415 - imports TensorFlow, once per session

    root = tmp_path_factory.mktemp("zoo")
    (root / "corrupt.tflite").write_bytes(b"this is not a flatbuffer" * 64)
    manifest = {
        "schema": 1,
        "build_dir": "build",
        "models": {
            "tiny": {
                "keras": "MobileNetV3Small",
                "input_shape": [32, 32, 3],
                "kwargs": {"alpha": 0.75, "minimalistic": True, "classes": 10},
                "calibration_samples": 2,
            },
            "squeezenet": {"files": {"onnx-fp32": str(LIGHT / "light_squeezenet.onnx")}},
            "corrupt": {"files": {"tflite-fp32": "corrupt.tflite"}},
        },
    }
    path = root / "zoo.yaml"
    path.write_text(yaml.safe_dump(manifest))
    zoo = Zoo(path)
    build_model(zoo, "tiny", [(f, p) for f, ps in KERAS_FORMATS.items() for p in ps])
    return path


@pytest.fixture(scope="session")
def board_python_full() -> Iterator[str]:
    """A board's Python with LiteRT and ONNX Runtime (a venv of the system python3), built once per run
    for every test that needs real boards (its folder is readable by the boards' logins)."""
    from sshd import board_python, world_readable_dir  # noqa: PLC0415

    root = world_readable_dir("embench-boardpy-")
    yield board_python(root / "python-full", ["ai-edge-litert", "onnxruntime"])
    shutil.rmtree(root, ignore_errors=True)


def check_transport_contract(t: Transport, marker: str, tree: int, kill_within: float = 10) -> None:
    """What every transport promises (transports/base.py): exit codes, a signal death as -N, stdin
    passed byte for byte, and a timeout that kills the command's whole process group. `marker`
    (e.g. "41") makes this call's sleep processes findable below `tree`, the pid the device's
    commands run under (this test process, or the board's sshd)."""
    assert t.run(["sh", "-c", "exit 7"], timeout=30).returncode == 7
    crashed = t.run(["sh", "-c", "kill -SEGV $$"], timeout=30)
    assert crashed.returncode == -11 and crashed.signal_name == "SIGSEGV"
    echoed = t.run(["cat"], stdin=b"job json \x00 bytes", timeout=30)
    assert echoed.stdout == b"job json \x00 bytes" and echoed.returncode == 0
    t0 = time.monotonic()
    hung = t.run(["sh", "-c", f"sleep {marker}.5 & sleep {marker}.75"], timeout=1)
    assert hung.timed_out and time.monotonic() - t0 < kill_within
    # the kill is sent before run() returns; the processes may take a moment to be reaped (a bound
    # of 10 s: a group that survived would live 40 s more)
    wait_for("the timed-out command's process group to die",
             lambda: not matching(tree, f"sleep {marker}.5") and not matching(tree, f"sleep {marker}.75"),
             timeout=10)  # fmt: skip


# The smallest inventory text that loads: the host, and the tiny zoo model (add zoo: and lines below).
MINIMAL_INVENTORY = """schema: 1
devices:
  - name: host
    transport: local
sweep:
  models: [tiny]
"""


def fast_run(**over: object) -> dict[str, object]:
    run = {"warmup_runs": 1, "min_runs": 5, "min_seconds": 0.05, "max_seconds": 1.0, "timeout_seconds": 60}
    run.update(over)
    return run


def write_inventory(folder: Path, zoo: Path, sweep: dict[str, object], devices: list[dict[str, object]] | None = None,
                    **top: object) -> Path:  # fmt: skip
    doc = {
        "schema": 1,
        "zoo": str(zoo),
        "devices": devices or [{"name": "host", "transport": "local"}],
        "sweep": {"run": fast_run(), **sweep},
        **top,
    }
    path = folder / "inventory.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def _env(env: dict[str, str] | None) -> dict[str, str]:
    return {**os.environ, "EMBENCH_STORE": "", **(env or {})}


def embench(
    *args: str, cwd: Path, timeout: float = 600, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the real CLI in a subprocess, as a user would."""
    return subprocess.run(
        [sys.executable, "-m", "embench", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=_env(env),
        check=False,
        preexec_fn=default_signals,
    )


def start_embench(*args: str, cwd: Path, env: dict[str, str] | None = None, **popen_kw: Any) -> subprocess.Popen[str]:
    """The real CLI in the background, for a test that watches or signals it mid-run."""
    return popen([sys.executable, "-m", "embench", *args], cwd=cwd, env=_env(env), **popen_kw)


def stored_results(store: Path) -> int:
    """Results in the store so far (0 while it does not exist or is being created)."""
    try:
        db = sqlite3.connect(f"{store.as_uri()}?mode=ro", uri=True)
        try:
            return int(db.execute("SELECT COUNT(*) FROM results").fetchone()[0])
        finally:
            db.close()
    except sqlite3.Error:
        return 0


def wait_for_results(store: Path, count: int, proc: subprocess.Popen[str]) -> None:
    """Until the store holds `count` results (a sweep commits each as it arrives); fails at once, with
    what the sweep said, if it ends first."""

    def reached() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"the sweep ended (exit {proc.returncode}) before {count} results: "
                                 f"{proc.communicate()[1]}")  # fmt: skip
        return stored_results(store) >= count

    wait_for(f"{count} results in {store}", reached)


def interrupt(proc: subprocess.Popen[str], sig: int = signal.SIGINT, timeout: float = 120) -> str:
    """Send `sig`, wait for the process to end, return its stderr (killed if it outlives `timeout`)."""
    try:
        proc.send_signal(sig)
        return proc.communicate(timeout=timeout)[1]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def chromium_flags(profile: Path) -> list[str]:
    """Headless Chromium with no network of its own and a throwaway profile."""
    return ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}"]  # fmt: skip


def chromium_dom(page: Path, profile: Path, query: str = "") -> str:
    """The DOM real headless Chromium builds from a page (what a reader's browser shows), its scripts run."""
    return chromium_load(page, profile, query)[0]


def chromium_load(page: Path, profile: Path, query: str = "") -> tuple[str, list[str]]:
    """(the DOM after the page's scripts ran in a 1400 px window, what the page wrote to its console)."""
    out = subprocess.run(["chromium", *chromium_flags(profile), "--enable-logging=stderr", "--v=0",
                          "--virtual-time-budget=15000", "--window-size=1400,2000", "--dump-dom", page.as_uri() + query],
                         capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    return out.stdout, [line for line in out.stderr.splitlines() if ":CONSOLE" in line]


def chromium_shot(page: Path, profile: Path, shot: Path, width: int = 1400, height: int = 2000) -> Any:
    """A screenshot of the page at `width` px, its scripts run; the pixels (RGB floats)."""
    subprocess.run(["chromium", *chromium_flags(profile), "--virtual-time-budget=15000", f"--screenshot={shot}",
                    f"--window-size={width},{height}", "--hide-scrollbars", page.as_uri()],
                   capture_output=True, timeout=120, check=True)  # fmt: skip
    return mpimg.imread(str(shot))[..., :3]


def has_colour(pixels: Any, rgb: tuple[int, int, int], at_least: int = 200) -> bool:
    """Whether at least `at_least` pixels are within 4% of the colour."""
    return bool((np.abs(pixels - np.array(rgb) / 255).max(axis=2) < 0.04).sum() >= at_least)


def markdown_row(md: str, *cells: str) -> dict[str, str]:
    """The results-table row of a Markdown report whose first cells are `cells`, as {header: cell}:
    a check of one column of one row, not a string found anywhere on the page."""
    lines = md.splitlines()
    header = next(line for line in lines if line.startswith("| device | model |"))
    names = [c.strip() for c in header.strip("|").split("|")]
    prefix = "| " + " | ".join(cells) + " |"
    row = next(line for line in lines[lines.index(header) :] if line.startswith(prefix))
    return dict(zip(names, (c.strip() for c in row.strip("|").split("|")), strict=True))
