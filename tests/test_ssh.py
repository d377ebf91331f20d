"""Boards over SSH, against real OpenSSH servers on loopback (two boards plus the host)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import check_transport_contract, embench, fast_run, interrupt, start_embench, write_inventory
from meter import command as meter_command
from powertree import energy, power_tree
from procs import agent_pids, alive, wait_for
from sshd import Board, board_python, free_port, freeze, keygen, make_board, world_readable_dir

from embench.inventory import Device, SshConfig
from embench.telemetry import integrate, summarize_telemetry
from embench.transports.ssh import SshTransport
from embench_agent.protocol import Result

SWEEP = {
    "models": ["tiny", "squeezenet"],
    "precisions": ["fp32", "int8"],
    "runtimes": ["litert", "onnxruntime"],
    "delegates": {"litert": ["xnnpack"], "onnxruntime": ["CPUExecutionProvider"]},
    "threads": [1],
}


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory, board_python_full: str) -> Iterator[dict[str, Any]]:
    root = world_readable_dir("embench-lab-")
    key = tmp_path_factory.mktemp("keys") / "id_ed25519"
    pub = keygen(key)
    boards = [make_board(name, root / name, pub) for name in ("pi-a", "pi-b")]
    known = key.parent / "known_hosts"
    known.write_text("".join(b.known_hosts_line() + "\n" for b in boards))
    python = board_python_full
    yield {"root": root, "key": key, "known": known, "boards": boards, "python": python}
    for b in boards:
        b.kill()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def lean_python(lab: dict[str, Any]) -> str:
    """A real Python with LiteRT but without ONNX Runtime, like many boards."""
    return board_python(lab["root"] / "python-lean", ["ai-edge-litert"])


def old_python() -> Path:
    """The oldest Python a lab's boards still run (Raspberry Pi OS Bullseye: 3.9; older images: 3.8):
    $EMBENCH_OLD_PYTHON, else pyenv's 3.8. Missing: the test fails saying so (scripts/test checks first)."""
    given = os.environ.get("EMBENCH_OLD_PYTHON")
    found = [Path(given)] if given else sorted(Path("~/.pyenv/versions").expanduser().glob("3.8.*/bin/python3"))
    if not found or not found[-1].exists():
        pytest.fail("no Python 3.8 for the old board: install one (`pyenv install 3.8`) or set EMBENCH_OLD_PYTHON")
    return found[-1]


def _others_can_enter(path: Path) -> bool:
    return all(p.stat().st_mode & 0o001 for p in [path, *path.parents])


@pytest.fixture(scope="module")
def old_board_python(lab: dict[str, Any]) -> str:
    """A board as old as a lab still has: Python 3.8 with tflite-runtime 2.14 (which needs numpy<2) and
    the last ONNX Runtime for 3.8, nothing else. pyenv's interpreter lives under /root, which a board's
    login cannot enter: then a copy in the lab's folder runs, its libpython found by LD_LIBRARY_PATH."""
    python = old_python()
    prefix = Path(subprocess.run([str(python), "-c", "import sys; print(sys.base_prefix)"], capture_output=True,
                                 text=True, check=True).stdout.strip())  # fmt: skip
    env = dict(os.environ)
    if not _others_can_enter(prefix):
        home = lab["root"] / "python3.8"
        shutil.copytree(prefix, home, symlinks=True)
        python, prefix = home / "bin" / "python3", home
        env["LD_LIBRARY_PATH"] = str(home / "lib")
    venv = lab["root"] / "python-old"
    subprocess.run([str(python), "-m", "venv", str(venv)], check=True, env=env)
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "tflite-runtime==2.14.*", "numpy<2",
                    "onnxruntime<1.20"], check=True, env=env)  # fmt: skip
    wrapper = lab["root"] / "python-old.sh"
    wrapper.write_text(f'#!/bin/sh\nLD_LIBRARY_PATH={prefix / "lib"} exec {venv / "bin" / "python"} "$@"\n')
    wrapper.chmod(0o755)
    return str(wrapper)


def ssh_device(board: Board, lab: dict[str, Any], **extra: Any) -> dict[str, Any]:
    ssh = {"host": "127.0.0.1", "port": board.port, "user": board.user, "key_file": str(lab["key"]),
           "known_hosts": str(lab["known"]), "connect_timeout": 5, **extra.pop("ssh", {})}  # fmt: skip
    return {"name": board.name, "transport": "ssh", "python": lab["python"], "workdir": str(board.workdir),
            "ssh": ssh, **extra}  # fmt: skip


def results(store: Path, run: int = -1) -> list[dict[str, Any]]:
    db = sqlite3.connect(str(store))
    run_id = db.execute("SELECT run_id FROM runs ORDER BY started_unix").fetchall()[run][0]
    rows = db.execute("SELECT device, model, runtime, status, result_json FROM results WHERE run_id=?", (run_id,))
    return [{**json.loads(j), "device": d, "model": m, "runtime": r, "status": s} for d, m, r, s, j in rows]


@pytest.mark.slow
def test_sweep_over_two_boards_and_the_host(lab: dict[str, Any], zoo_path: Path, tmp_path: Path) -> None:
    a, b = lab["boards"]
    devices = [{"name": "host"}, ssh_device(a, lab), ssh_device(b, lab)]
    inv = write_inventory(tmp_path, zoo_path, {**SWEEP, "run": fast_run(min_seconds=0.5)}, devices)
    store = tmp_path / "s.sqlite"
    first = embench("sweep", str(inv), "--store", str(store), "-q", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    rows = results(store)
    # tiny fp32 and int8 on LiteRT and ORT (int8: the QDQ file), squeezenet on ORT: 5 jobs a device
    assert {r["device"] for r in rows} == {"host", "pi-a", "pi-b"} and len(rows) == 3 * 5
    assert all(r["status"] in ("ok", "fallback") for r in rows), [r["message"] for r in rows]
    board_rows = [r for r in rows if r["device"] != "host"]
    assert sum(r["pushed_bytes"] for r in board_rows) > 0
    # models were pushed into each board's own content-addressed cache
    for board in (a, b):
        cached = {p.name for p in (board.workdir / "cache").iterdir()}
        assert any(n.endswith(".tflite") for n in cached) and any(n.endswith(".onnx") for n in cached)
    # the boards ran at the same time (one job each at a time)
    spans = {d: [(r["started_unix"], r["ended_unix"]) for r in rows if r["device"] == d] for d in ("pi-a", "pi-b")}
    assert min(e for _, e in spans["pi-a"]) > min(s for s, _ in spans["pi-b"])
    assert min(e for _, e in spans["pi-b"]) > min(s for s, _ in spans["pi-a"])
    assert "pushed" in first.stdout

    second = embench("sweep", str(inv), "--store", str(store), "-q", cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    again = results(store)
    assert len(again) == 15 and all(r.get("pushed_bytes", 0) == 0 for r in again)
    assert "pushed" not in second.stdout


@pytest.mark.slow
def test_an_old_board_python_3_8_with_tflite_runtime(
    lab: dict[str, Any], zoo_path: Path, tmp_path: Path, old_board_python: str
) -> None:
    """The agent really runs on 3.8 (not only "vermin says 3.8"), through tflite-runtime, not LiteRT."""
    a, _ = lab["boards"]
    device = ssh_device(a, lab, name="old-pi", python=old_board_python)
    probe = embench("devices", str(write_inventory(tmp_path, zoo_path, {"models": ["tiny"]}, [device])), "--json",
                    cwd=tmp_path)  # fmt: skip
    assert probe.returncode == 0, probe.stdout + probe.stderr
    facts = json.loads(probe.stdout)
    assert facts["facts"]["python"].startswith("3.8.")
    litert = facts["runtimes"]["litert"]
    assert (litert["package"], litert["version"][:5]) == ("tflite_runtime", "2.14.")  # the module it imported
    sweep = {**SWEEP, "precisions": ["fp32", "int8"], "threads": [1, 2],
             "delegates": {"litert": ["cpu", "xnnpack"], "onnxruntime": ["CPUExecutionProvider"]}}  # fmt: skip
    inv = write_inventory(tmp_path, zoo_path, sweep, [device])
    store = tmp_path / "s.sqlite"
    out = embench("sweep", str(inv), "--store", str(store), "-q", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    stored = sqlite3.connect(str(store)).execute("SELECT result_json, n_samples, delegate FROM results").fetchall()
    rows = [Result.from_json(j) for j, _, _ in stored]
    # tiny fp32 + int8 on LiteRT's builtin kernels and XNNPACK, tiny fp32 + int8 (QDQ) and squeezenet on
    # ORT's CPU provider; 1 and 2 threads
    assert len(rows) == 2 * 7
    for r, (_, n, delegate) in zip(rows, stored):
        assert r.device_facts.python and r.device_facts.python.startswith("3.8.")
        assert r.runtime is not None and r.runtime.package in ("tflite_runtime", "onnxruntime")
        if delegate == "xnnpack" and r.status == "unsupported":  # tflite-runtime 2.14's XNNPACK takes none of tiny
            assert "took none of the" in str(r.message) and r.delegation and r.delegation.delegated_nodes == 0
            continue
        assert r.status in ("ok", "fallback") and n >= 5, r.message  # the raw samples are in the samples table
        # the checks ran on 3.8 and numpy < 2 too: every job kept its outputs for the fidelity inputs
        assert r.outputs is not None and r.outputs.error is None and r.outputs.inputs == 8, r.outputs
    assert sorted(r.runtime.package for r in rows if r.runtime) == ["onnxruntime"] * 6 + ["tflite_runtime"] * 8


def test_devices_over_ssh(lab: dict[str, Any], zoo_path: Path, tmp_path: Path, lean_python: str) -> None:
    a, b = lab["boards"]
    devices = [
        ssh_device(a, lab),
        ssh_device(b, lab, python=lean_python, delegate_libraries={"edgetpu": "libedgetpu.so.1"}),
    ]
    inv = write_inventory(tmp_path, zoo_path, {"models": ["tiny"]}, devices)
    out = embench("devices", str(inv), "--json", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    full, lean = (json.loads(line) for line in out.stdout.splitlines())
    assert full["device"] == "pi-a" and full["facts"]["python"].startswith("3.")
    assert full["facts"]["cores"] >= 1 and full["facts"]["mem_total_kb"] > 0 and full["facts"]["kernel"]
    assert "CPUExecutionProvider" in full["runtimes"]["onnxruntime"]["providers"]
    assert full["runtimes"]["litert"]["version"]
    assert "No module named 'onnxruntime'" in lean["runtimes"]["onnxruntime"]["error"]
    assert lean["delegates"]["edgetpu"]["loadable"] is False
    text = embench("devices", str(inv), cwd=tmp_path).stdout
    assert "pi-a             ssh    reachable" in text and "delegate edgetpu: libedgetpu.so.1 not loadable" in text


def test_unknown_host_key_is_refused_with_the_fix(lab: dict[str, Any], zoo_path: Path, tmp_path: Path) -> None:
    a, _ = lab["boards"]
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    devices = [{"name": "host"}, ssh_device(a, lab, ssh={"known_hosts": str(empty)})]
    inv = write_inventory(tmp_path, zoo_path, {**SWEEP, "models": ["tiny"], "precisions": ["fp32"]}, devices)
    out = embench("sweep", str(inv), "--store", str(tmp_path / "s.sqlite"), "-q", cwd=tmp_path)
    assert out.returncode == 3
    line = next(x for x in out.stderr.splitlines() if x.startswith("  device pi-a: "))
    assert f"host key of [127.0.0.1]:{a.port} is not in {empty}" in line
    assert f"ssh-keyscan -p {a.port} 127.0.0.1 >> {empty}" in line and "accept_unknown_host_key" in line
    assert {r["device"] for r in results(tmp_path / "s.sqlite")} == {"host"}  # the sweep went on elsewhere

    # the explicit opt-in accepts the key once and pins it
    devices = [ssh_device(a, lab, ssh={"known_hosts": str(empty), "accept_unknown_host_key": True})]
    inv = write_inventory(tmp_path, zoo_path, {**SWEEP, "models": ["tiny"], "precisions": ["fp32"]}, devices)
    out = embench("sweep", str(inv), "--store", str(tmp_path / "s2.sqlite"), "-q", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert f"[127.0.0.1]:{a.port} ssh-ed25519" in empty.read_text()


def test_changed_host_key_is_refused(lab: dict[str, Any], zoo_path: Path, tmp_path: Path) -> None:
    a, b = lab["boards"]
    forged = tmp_path / "known_hosts"
    kind, key = b.host_key_line.split()[:2]  # another board's key stored for pi-a's address
    forged.write_text(f"[127.0.0.1]:{a.port} {kind} {key}\n")
    devices = [ssh_device(a, lab, ssh={"known_hosts": str(forged), "accept_unknown_host_key": True})]
    inv = write_inventory(tmp_path, zoo_path, {**SWEEP, "models": ["tiny"], "precisions": ["fp32"]}, devices)
    out = embench("sweep", str(inv), "--store", str(tmp_path / "s.sqlite"), "-q", cwd=tmp_path)
    assert out.returncode == 3
    assert "has CHANGED" in out.stderr and "ssh-keygen -f" in out.stderr


def test_wrong_user_key(lab: dict[str, Any], zoo_path: Path, tmp_path: Path) -> None:
    a, _ = lab["boards"]
    other = tmp_path / "other_key"
    keygen(other)
    devices = [ssh_device(a, lab, ssh={"key_file": str(other)})]
    inv = write_inventory(tmp_path, zoo_path, {**SWEEP, "models": ["tiny"], "precisions": ["fp32"]}, devices)
    out = embench("sweep", str(inv), "--store", str(tmp_path / "s.sqlite"), "-q", cwd=tmp_path)
    assert out.returncode == 3
    assert f"refused the key {other}" in out.stderr and "authorized_keys" in out.stderr


def test_board_without_a_runtime_or_without_python(
    lab: dict[str, Any], zoo_path: Path, tmp_path: Path, lean_python: str
) -> None:
    a, b = lab["boards"]
    devices = [ssh_device(a, lab, python=lean_python), ssh_device(b, lab, python="/opt/no/python3")]
    inv = write_inventory(tmp_path, zoo_path, SWEEP, devices)
    out = embench("sweep", str(inv), "--store", str(tmp_path / "s.sqlite"), "-q", cwd=tmp_path)
    assert out.returncode == 3
    rows = results(tmp_path / "s.sqlite")
    assert {r["device"] for r in rows} == {"pi-a"}
    ort = [r for r in rows if r["runtime"] == "onnxruntime"]
    assert ort and all(
        r["status"] == "unsupported" and "onnxruntime" in r["message"] and "not attempted" in r["message"] for r in ort
    )
    assert all(r["status"] in ("ok", "fallback") for r in rows if r["runtime"] == "litert")
    lines = [x for x in out.stderr.splitlines() if x.startswith("  device pi-b: ")]
    assert len(lines) == 1 and "no usable Python" in lines[0] and "/opt/no/python3" in lines[0]


@pytest.mark.slow
def test_board_lost_mid_sweep_keeps_results_and_resume_completes(
    lab: dict[str, Any], zoo_path: Path, tmp_path: Path
) -> None:
    a, b = lab["boards"]
    sweep = {**SWEEP, "models": ["tiny"], "precisions": ["fp32", "fp16", "int8"], "runtimes": ["litert"],
             "delegates": {"litert": ["cpu", "xnnpack"]}, "run": fast_run(min_seconds=0.8, max_seconds=1.0, retries=1)}  # fmt: skip
    inv = write_inventory(tmp_path, zoo_path, sweep, [ssh_device(a, lab), ssh_device(b, lab)])
    store = tmp_path / "s.sqlite"
    proc = _sweep_until_a_result_of(inv, store, a)
    try:
        a.kill()  # mid-job: pi-a drops off the network
        _, err = proc.communicate(timeout=120)
    finally:
        if a.proc is None:
            a.start()
    assert proc.returncode == 3, err
    rows = results(store)
    lost = [r for r in rows if r["device"] == "pi-a" and r["status"] == "failed"]
    assert len(lost) == 1 and "pi-a" in lost[0]["message"]
    assert "lost" in lost[0]["message"] or "cannot connect" in lost[0]["message"]
    assert lost[0]["attempts"] == 2  # retries: 1 tried to reconnect once before giving up
    assert sum(r["device"] == "pi-b" for r in rows) == 6 and all(
        r["status"] != "failed" for r in rows if r["device"] == "pi-b"
    )
    kept = [r for r in rows if r["device"] == "pi-a" and r["status"] != "failed"]
    assert kept  # finished before the loss, and still there
    assert "  device pi-a: " in err and "not run" in err and "--resume" in err

    again = embench("sweep", str(inv), "--store", str(store), "--resume", "-q", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    done_before = len(rows) - len(lost)  # the job cut by the loss is measured again
    assert f"({done_before} already done)" in again.stdout
    assert "measuring again 1 job(s) that failed because their device was unreachable" in again.stderr
    final = results(store)
    assert len(final) == 12 and sum(r["device"] == "pi-a" for r in final) == 6
    assert all(r["status"] in ("ok", "fallback") for r in final)


@pytest.mark.slow
def test_board_lost_mid_round_keeps_its_repetitions_for_resume(
    lab: dict[str, Any], zoo_path: Path, tmp_path: Path
) -> None:
    """Interleaved repetitions on a board that drops off the network after the first round: the repetition
    cut by the loss is no measurement, every repetition measured before it is kept, and `--resume` runs
    only the rest."""
    a, _ = lab["boards"]
    sweep = {**SWEEP, "models": ["tiny"], "precisions": ["fp32", "int8"], "runtimes": ["litert"],
             "run": fast_run(min_seconds=0.8, max_seconds=1.0, repetitions=3)}  # fmt: skip
    inv = write_inventory(tmp_path, zoo_path, sweep, [ssh_device(a, lab)])
    store = tmp_path / "s.sqlite"
    proc = start_embench("sweep", str(inv), "--store", str(store), "-q", cwd=tmp_path)
    try:
        wait_for("the first round kept", lambda: proc.poll() is not None or len(_kept(store)) >= 2)
        assert a.proc is not None
        wait_for("the next agent on pi-a", lambda: proc.poll() is not None or agent_pids(a.proc.pid))
        assert proc.poll() is None, proc.communicate()[1]
        a.kill()
        _, err = proc.communicate(timeout=120)
    finally:
        if a.proc is None:
            a.start()
    assert proc.returncode == 3, err
    kept = _kept(store)
    lost = [r for r in results(store) if r["status"] == "failed"]
    assert len(lost) == 1 and "pi-a" in lost[0]["message"] and "repetition" in lost[0]["message"]
    assert 2 <= len(kept) < 6 and "  device pi-a: " in err and "--resume" in err
    again = embench("sweep", str(inv), "--store", str(store), "--resume", "-q", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "measuring again 1 job(s) that failed because their device was unreachable" in again.stderr
    assert f"2 interleaved job(s) go on from the {len(kept)} repetition(s) kept of them" in again.stderr
    final = results(store)
    assert len(final) == 2 and all(r["status"] in ("ok", "fallback") and len(r["repetitions"]) == 3 for r in final)
    starts = {(r["job_id"], rep["index"]): rep["window_start_unix"] for r in final for rep in r["repetitions"]}
    assert all(starts[key] == start for key, start in kept.items())  # measured once, before the loss
    assert _kept(store) == {}


def _kept(store: Path) -> dict[tuple[str, int], float]:
    """(job id, repetition) → its window's start, for the repetitions kept of jobs with no result yet."""
    try:
        with contextlib.closing(sqlite3.connect(f"{store.as_uri()}?mode=ro", uri=True)) as db:
            rows = db.execute("SELECT job_id, repetition, result_json FROM repetitions").fetchall()
    except sqlite3.Error:
        return {}
    return {(j, i): json.loads(body)["window_start_unix"] for j, i, body in rows}


def _sweep_until_a_result_of(inv: Path, store: Path, board: Board) -> subprocess.Popen[str]:
    """Start a sweep in the background; return once the store holds a result of `board` and the board
    runs its next job's agent (mid-sweep, mid-job)."""
    proc = start_embench("sweep", str(inv), "--store", str(store), "-q", cwd=inv.parent)
    try:
        wait_for(f"a result of {board.name}", lambda: proc.poll() is not None or any(
            r["device"] == board.name for r in _safe_results(store)))  # fmt: skip
        assert board.proc is not None
        wait_for(f"the next agent on {board.name}", lambda: proc.poll() is not None or agent_pids(board.proc.pid))
    except AssertionError:
        proc.kill()
        raise
    assert proc.poll() is None, proc.communicate()[1]
    return proc


def _safe_results(store: Path) -> list[dict[str, Any]]:
    try:
        return results(store)
    except (sqlite3.OperationalError, IndexError):
        return []


def test_transport_exit_codes_signals_stdin_and_timeout(lab: dict[str, Any]) -> None:
    a, _ = lab["boards"]
    ssh = SshConfig(host="127.0.0.1", port=a.port, user=a.user, key_file=str(lab["key"]),
                    known_hosts=str(lab["known"]))  # fmt: skip
    t = SshTransport(Device(name="pi-a", transport="ssh", ssh=ssh))
    try:
        assert a.proc is not None
        check_transport_contract(t, "41", a.proc.pid)
    finally:
        t.close()


def test_shell_metacharacters_inject_nothing(lab: dict[str, Any], zoo_path: Path, tmp_path: Path) -> None:
    a, _ = lab["boards"]
    weird = tmp_path / "dir with 'quotes' \"and\" $(touch x)"
    weird.mkdir()
    model = weird / "a;touch x `touch y` 'q'.onnx"
    shutil.copy(Path(zoo_path).parent / "build" / "tiny.onnx-fp32.onnx", model)
    manifest = tmp_path / "zoo.yaml"
    manifest.write_text(json.dumps({"schema": 1, "models": {"weird": {"files": {"onnx-fp32": str(model)}}}}))
    workdir = a.workdir / "work dir; touch x"
    device = ssh_device(a, lab, workdir=str(workdir))
    device["name"] = "board 'b;touch x"
    inv = write_inventory(tmp_path, manifest, {**SWEEP, "models": ["weird"], "precisions": ["fp32"],
                                               "runtimes": ["onnxruntime"]}, [device])  # fmt: skip
    out = embench("sweep", str(inv), "--store", str(tmp_path / "s.sqlite"), "-q", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    rows = results(tmp_path / "s.sqlite")
    assert [r["status"] for r in rows] == ["ok"] and rows[0]["device"] == "board 'b;touch x"
    for folder in (tmp_path, a.root, a.workdir, workdir, Path.home(), Path(f"~{a.user}").expanduser(), Path.cwd()):
        assert not (folder / "x").exists() and not (folder / "y").exists()


def test_prune_cache(lab: dict[str, Any], zoo_path: Path, tmp_path: Path) -> None:
    _, b = lab["boards"]
    cache = b.workdir / "cache"
    cache.mkdir(parents=True, exist_ok=True)
    stale = cache / ("0" * 64 + ".tflite")
    stale.write_bytes(b"old model" * 100)
    for made in (cache.parent, cache, stale):  # the board's login owns its cache, whichever test made it first
        shutil.chown(made, b.user)
    inv = write_inventory(
        tmp_path, zoo_path, {**SWEEP, "models": ["tiny"], "precisions": ["fp32"]}, [ssh_device(b, lab)]
    )
    first = embench("sweep", str(inv), "--store", str(tmp_path / "s.sqlite"), "-q", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    out = embench("cache", "prune", str(inv), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("pi-b: removed ") and not stale.exists()
    assert {p.suffix for p in cache.iterdir()} == {".tflite", ".onnx", ".pyz"}  # the two models and the agent it needs
    again = embench("sweep", str(inv), "--store", str(tmp_path / "s.sqlite"), "-q", cwd=tmp_path)
    assert again.returncode == 0 and "pushed" not in again.stdout


def test_energy_over_ssh_matches_the_known_power_curve(lab: dict[str, Any], zoo_path: Path, tmp_path: Path) -> None:
    """Telemetry sampled on the board, through the SSH path, against the exact integral of the curve;
    and an external meter on the host reading the same curve, moved onto the board's clock."""
    a, _ = lab["boards"]
    folder = world_readable_dir("embench-power-")
    with power_tree(folder) as root:
        meter = {"source": "external", "options": {"command": meter_command("curve")}}
        device = ssh_device(a, lab, telemetry=[{"source": "hwmon", "root": str(root)}, meter])
        sweep = {**SWEEP, "models": ["tiny"], "precisions": ["fp32"], "runtimes": ["litert"],
                 "run": fast_run(min_seconds=2.0, max_seconds=2.2, idle_seconds=1.0)}  # fmt: skip
        inv = write_inventory(tmp_path, zoo_path, sweep, [device])
        out = embench("sweep", str(inv), "--store", str(tmp_path / "s.sqlite"), "-q", cwd=tmp_path)
    shutil.rmtree(folder, ignore_errors=True)
    assert out.returncode == 0, out.stderr
    (row,) = results(tmp_path / "s.sqlite")
    edges = row["telemetry"]["edges"]
    t0, t1 = edges["window_start"]["t"], edges["window_end"]["t"]
    external, board = row["telemetry"]["sources"]
    facts = external["facts"]  # the board is this machine: the true offset is 0, bracketed by the probe
    assert abs(facts["clock_offset_s"]) <= facts["clock_uncertainty_s"] + 1e-6
    s = summarize_telemetry(
        Result.from_dict({k: v for k, v in row.items() if k not in ("device", "model", "runtime")}), 1
    )
    assert s.power_source == "external:meter.py" and s.joules == pytest.approx(energy(t0, t1), rel=0.02)
    on_board = integrate([(t, w) for t, w in board["samples"]], t0, t1)
    assert on_board.joules == pytest.approx(energy(t0, t1), rel=0.02)
    assert on_board.samples_in_window >= 30 and not row["telemetry"]["errors"]


@pytest.mark.slow
def test_a_frozen_board_is_abandoned_and_the_others_finish(lab: dict[str, Any], zoo_path: Path, tmp_path: Path) -> None:
    """sshd stopped (SIGSTOP), not dead: every remote operation is bounded, the board is given up like
    a lost one, and the other board's queue finishes."""
    a, b = lab["boards"]
    quick = {"connect_timeout": 3, "io_timeout": 3}
    sweep = {**SWEEP, "models": ["tiny"], "precisions": ["fp32", "fp16", "int8"], "runtimes": ["litert"],
             "delegates": {"litert": ["cpu", "xnnpack"]}, "run": fast_run(min_seconds=0.5, max_seconds=0.8, timeout_seconds=8)}  # fmt: skip
    inv = write_inventory(tmp_path, zoo_path, sweep, [ssh_device(a, lab, ssh=quick), ssh_device(b, lab, ssh=quick)])
    store = tmp_path / "s.sqlite"
    proc = _sweep_until_a_result_of(inv, store, a)
    try:
        freeze(a)
        t0 = time.monotonic()
        _, err = proc.communicate(timeout=180)
        waited = time.monotonic() - t0
    finally:
        freeze(a, stop=False)
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 3, err
    assert "Traceback" not in err
    rows = results(store)
    assert sum(r["device"] == "pi-b" for r in rows) == 6 and all(
        r["status"] in ("ok", "fallback") for r in rows if r["device"] == "pi-b"
    )
    problems = [line for line in err.splitlines() if "pi-a" in line]
    assert problems and all(line.startswith("  ") for line in problems)
    # bounded: at most the running job's timeout, then a few io_timeouts, not forever
    assert waited < 8 + 6 * 3 + 30, waited


def test_a_port_that_never_speaks_is_one_line(lab: dict[str, Any], zoo_path: Path, tmp_path: Path) -> None:
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        silent.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(silent.accept()[0])  # held open, never a byte
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        a, _ = lab["boards"]
        device = ssh_device(a, lab, ssh={"port": silent.getsockname()[1], "connect_timeout": 2})
        inv = write_inventory(tmp_path, zoo_path, {**SWEEP, "models": ["tiny"], "runtimes": ["litert"]}, [device])
        out = embench("sweep", str(inv), "--store", str(tmp_path / "s.sqlite"), cwd=tmp_path)
        devices = embench("devices", str(inv), "--timeout", "5", cwd=tmp_path)
    finally:
        stop.set()
        thread.join(5)
        for conn in accepted:
            conn.close()
        silent.close()
    for said in (out.stderr, devices.stdout + devices.stderr):
        assert "Traceback" not in said and "No existing session" not in said and "Exception" not in said
        assert "accepted the connection but did not speak SSH within 2 s" in said
    assert out.returncode == 3
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert all("device pi-a:" in line or line.startswith("sweep ") for line in lines), "\n".join(lines)


def test_a_cached_model_damaged_in_place_is_pushed_again(lab: dict[str, Any], zoo_path: Path, tmp_path: Path) -> None:
    _, b = lab["boards"]
    sweep = {
        **SWEEP,
        "models": ["tiny"],
        "precisions": ["fp32"],
        "runtimes": ["litert"],
        "delegates": {"litert": ["cpu"]},
    }
    inv = write_inventory(tmp_path, zoo_path, sweep, [ssh_device(b, lab)])
    store = str(tmp_path / "s.sqlite")
    assert embench("sweep", str(inv), "--store", store, "-q", cwd=tmp_path).returncode == 0
    (job_json,) = sqlite3.connect(store).execute("SELECT job_json FROM results").fetchone()
    model = b.workdir / "cache" / f"{json.loads(job_json)['model']['sha256']}.tflite"
    good = model.read_bytes()
    model.write_bytes(b"\0" * len(good))  # same size, wrong content: a bad sector, a half-finished copy
    again = embench("sweep", str(inv), "--store", store, "-q", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "pushed" in again.stdout and model.read_bytes() == good
    (status,) = sqlite3.connect(store).execute("SELECT status FROM results ORDER BY started_unix DESC").fetchone()
    assert status == "ok"


@pytest.mark.slow
def test_ctrl_c_mid_job_kills_the_agent_on_the_board(lab: dict[str, Any], zoo_path: Path, tmp_path: Path) -> None:
    """An interrupt while agents run on two boards: SshTransport.cancel kills each one there before
    embench exits (closing the connection alone would leave them running), and the run can resume."""
    a, b = lab["boards"]
    sweep = {**SWEEP, "models": ["tiny"], "precisions": ["fp32"], "runtimes": ["litert"], "threads": [1, 2],
             "run": fast_run(min_seconds=60, max_seconds=60, timeout_seconds=120)}  # fmt: skip
    inv = write_inventory(tmp_path, zoo_path, sweep, [ssh_device(a, lab), ssh_device(b, lab)])
    store = tmp_path / "s.sqlite"
    proc = start_embench("sweep", str(inv), "--store", str(store), "-q", cwd=tmp_path)
    try:
        assert a.proc is not None and b.proc is not None
        agents = [wait_for(f"the agent on {x.name}", lambda x=x: agent_pids(x.proc.pid))[0] for x in (a, b)]
    finally:
        err = interrupt(proc)
    assert proc.returncode == 130, err
    left = [pid for pid in agents if alive(pid)]
    assert not left, f"agents still running on the boards after embench exited: {left}"
    assert "--resume" in err and "Traceback" not in err
    db = sqlite3.connect(str(store))
    assert db.execute("SELECT state FROM runs").fetchone()[0] == "interrupted"
    assert db.execute("SELECT COUNT(*) FROM results").fetchone()[0] == 0


def test_a_closed_port_and_an_unwritable_workdir(lab: dict[str, Any], zoo_path: Path, tmp_path: Path) -> None:
    """Nothing listening on the board's port, and a workdir the board's login cannot write: each is one
    line naming the device and the fix, exit 3, for the sweep and for `embench devices`."""
    a, _ = lab["boards"]
    closed = ssh_device(a, lab, name="closed", ssh={"port": free_port()})
    locked = ssh_device(a, lab, name="locked", workdir="/root/embench-not-yours")
    inv = write_inventory(tmp_path, zoo_path, {**SWEEP, "models": ["tiny"], "runtimes": ["litert"]}, [closed, locked])
    out = embench("sweep", str(inv), "--store", str(tmp_path / "s.sqlite"), cwd=tmp_path)
    assert out.returncode == 3, out.stderr
    assert "Traceback" not in out.stderr
    said = [line.strip() for line in out.stderr.splitlines() if line.strip().startswith("device ")]
    assert any(line.startswith("device closed: cannot connect to") and "connection refused (is sshd running" in line
               for line in said), out.stderr  # fmt: skip
    assert any(line.startswith("device locked: cannot write /root/embench-not-yours/") and "permission denied for"
               " eb-pi-a@" in line and "set the device's workdir: to a folder that login can write" in line
               for line in said), out.stderr  # fmt: skip
    devices = embench("devices", str(inv), cwd=tmp_path)
    assert devices.returncode == 3 and devices.stdout.count("UNREACHABLE") == 2, devices.stdout


FIXTURES = Path(__file__).parent / "fixtures" / "benchmark_model"


def _standin_benchmark_model(folder: Path) -> Path:
    """benchmark_model for a Linux board cannot run here (no board); this stand-in prints real captured
    outputs: a Raspberry Pi's timed run, and an op-profiling run's table when given the flag."""
    timed = (FIXTURES / "pi_int8_xnnpack999.txt").read_text()
    profile = (FIXTURES / "riscv_cpu_op_profiling_mobilenet_v1.txt").read_text()
    script = folder / "benchmark_model"
    script.write_text(
        "#!/bin/sh\n"
        f"case \"$*\" in *--enable_op_profiling=true*) cat <<'EMBENCH_PROFILE'\n{profile}EMBENCH_PROFILE\n"
        "exit 0;; esac\n"
        f"cat <<'EMBENCH_TIMED'\n{timed}EMBENCH_TIMED\n"
    )
    script.chmod(0o755)
    return script


def test_benchmark_model_on_a_board_over_ssh(lab: dict[str, Any], zoo_path: Path, tmp_path: Path) -> None:
    """A Linux board that runs TFLite's benchmark_model instead of the Python agent (ssh.agent), pinned
    with taskset: the binary and its shell side go over SSH, the board's facts come from its shell, the
    timed run's aggregate and the separate op-profiling run's table land in the stored Result."""
    a, _ = lab["boards"]
    bm = _standin_benchmark_model(tmp_path)
    device = ssh_device(a, lab, ssh={"agent": "benchmark_model", "benchmark_model": str(bm), "cpu_mask": "1"})
    sweep = {"models": ["tiny"], "runtimes": ["litert"], "precisions": ["int8"], "delegates": {"litert": ["xnnpack"]},
             "threads": [4], "run": fast_run(op_profiling=True)}  # fmt: skip
    inv = write_inventory(tmp_path, zoo_path, sweep, [device])
    store = tmp_path / "s.sqlite"
    out = embench("sweep", str(inv), "--store", str(store), "-q", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    (row,) = results(store)
    result = Result.from_dict({k: v for k, v in row.items() if k not in ("device", "model", "runtime")})
    assert result.agent == "benchmark_model" and result.status == "ok", result.message
    assert result.command_line and result.command_line.startswith("taskset 1 ")
    assert "--use_xnnpack=true" in result.command_line and "--enable_op_profiling" not in result.command_line
    assert result.aggregate is not None and result.aggregate.avg == 55043.2
    assert result.device_facts.machine and result.device_facts.kernel and result.device_facts.cores
    assert result.ops is not None and result.ops.source == "benchmark_model" and len(result.ops.index) == 31
    bad = write_inventory(tmp_path, zoo_path, sweep, [ssh_device(a, lab, ssh={"agent": "benchmark_model"})])
    refused = embench("sweep", str(bad), "--store", str(store), "-q", cwd=tmp_path)
    assert refused.returncode == 1 and "devices[0].ssh.benchmark_model" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
