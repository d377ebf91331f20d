"""Phones over ADB: the stand-in phone checked with the real `adb` client, embench's adb-shell
transport against it, and sweeps through the real ADB path (the Python agent on the stand-in)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from adbd import StandinPhone
from conftest import (
    check_transport_contract,
    embench,
    fast_run,
    interrupt,
    markdown_row,
    start_embench,
    wait_for_results,
    write_inventory,
)
from meter import command as meter_command
from procs import agent_pids, alive, cmdline, matching, wait_for
from sshd import free_port

from embench.errors import DeviceUnreachable, TransportError
from embench.inventory import AdbConfig, Device
from embench.transports.adb import AdbTransport

ADB = shutil.which("adb") or "adb"


@pytest.fixture
def phone(tmp_path: Path) -> Iterator[StandinPhone]:
    with StandinPhone(tmp_path / "phone", props={"ro.product.model": "Pixel 7", "ro.soc.model": "GS201"}) as p:
        yield p


@pytest.fixture
def adb_client(tmp_path: Path) -> Iterator[Any]:
    """The real adb client, with its own server port and HOME (its key lands in HOME/.android)."""
    home = tmp_path / "adbhome"
    (home / ".android").mkdir(parents=True)
    env = {**os.environ, "ANDROID_ADB_SERVER_PORT": str(free_port()), "HOME": str(home)}

    def adb(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run([ADB, *args], env=env, capture_output=True, timeout=timeout, check=False)

    yield adb
    adb("kill-server")


def transport(phone: StandinPhone, tmp_path: Path, **cfg: Any) -> AdbTransport:
    adb = AdbConfig(serial=phone.serial, key_file=str(tmp_path / "keys" / "adbkey"), agent="python", **cfg)
    workdir = str(phone.root / "data" / "local" / "tmp" / "embench")
    return AdbTransport(Device(name="pixel", transport="adb", workdir=workdir, adb=adb))


# -- the stand-in speaks the real protocol: the real adb client says so ---------------------------


def test_real_adb_client_against_the_standin(phone: StandinPhone, adb_client: Any, tmp_path: Path) -> None:
    connected = adb_client("connect", phone.serial)
    assert b"connected to" in connected.stdout, connected
    devices = adb_client("devices").stdout.decode()
    assert f"{phone.serial}\tdevice" in devices
    shell = adb_client("-s", phone.serial, "shell", "echo out; echo err >&2; exit 5")
    assert (shell.returncode, shell.stdout, shell.stderr) == (5, b"out\n", b"err\n")  # shell v2: exit code, stderr
    assert adb_client("-s", phone.serial, "shell", "getprop ro.soc.model").stdout == b"GS201\n"
    # Android's shell is mksh, and so is `sh` on its PATH (embench runs embench_bm.sh with `sh`)
    mksh = adb_client("-s", phone.serial, "shell", 'echo "$KSH_VERSION"; sh -c \'echo "$KSH_VERSION"\'').stdout
    assert mksh.count(b"MIRBSD KSH") == 2, mksh
    local = tmp_path / "blob.bin"
    local.write_bytes(os.urandom(1_500_000))
    remote = phone.root / "data" / "local" / "tmp" / "blob.bin"
    pushed = adb_client("-s", phone.serial, "push", str(local), str(remote))
    assert pushed.returncode == 0, pushed.stderr
    assert remote.read_bytes() == local.read_bytes()
    back = tmp_path / "back.bin"
    pulled = adb_client("-s", phone.serial, "pull", str(remote), str(back))
    assert pulled.returncode == 0, pulled.stderr
    assert back.read_bytes() == local.read_bytes()
    missing = adb_client("-s", phone.serial, "pull", str(remote) + ".nope", str(back))
    assert missing.returncode != 0 and b"No such file or directory" in missing.stdout + missing.stderr  # from STA2


# -- embench's transport ------------------------------------------------------------------------------


@pytest.mark.parametrize("features", ["shell_v2,stat_v2", "stat_v2"], ids=["shell-v2", "shell-v1"])
def test_transport_exit_codes_signals_stdin_timeout(tmp_path: Path, features: str) -> None:
    with StandinPhone(tmp_path / "phone", features=features) as phone:
        t = transport(phone, tmp_path)
        try:
            res = t.run(["sh", "-c", "echo out; echo err >&2; exit 7"], timeout=30)
            assert res.returncode == 7
            assert (res.stdout, res.stderr) == (
                (b"out\n", b"err\n") if "shell_v2" in features else (b"out\nerr\n", b"")
            )
            assert t.run(["echo", "a b; $(reboot)"], timeout=30).stdout == b"a b; $(reboot)\n"  # quoted, not run
            check_transport_contract(t, "43" if "shell_v2" in features else "44", os.getpid(), kill_within=5)
        finally:
            t.close()


def test_push_is_content_addressed_and_prunable(phone: StandinPhone, tmp_path: Path) -> None:
    t = transport(phone, tmp_path)
    local = tmp_path / "model.tflite"
    local.write_bytes(os.urandom(300_000))
    sha = hashlib.sha256(local.read_bytes()).hexdigest()
    path = t.ensure_file(local, sha)
    assert Path(path).read_bytes() == local.read_bytes() and t.pushed_bytes == 300_000
    assert t.ensure_file(local, sha) == path and t.pushed_bytes == 300_000  # already there: not sent again
    wrong = t.ensure_file(local, "f" * 64)  # a cache entry whose content is not what its name says
    assert t.ensure_file(local, "f" * 64) == wrong and t.pushed_bytes == 900_000  # so it is never trusted
    back = tmp_path / "pulled.bin"
    t.pull(path, back)
    assert back.read_bytes() == local.read_bytes()
    assert t.prune_cache({"e" * 64}) == (2, 600_000)
    assert not Path(path).exists()
    t.close()


def test_key_is_generated_once_and_an_authorising_phone_accepts_it(tmp_path: Path) -> None:
    with StandinPhone(tmp_path / "phone", auth=True, accept_new_keys=True) as phone:
        t = transport(phone, tmp_path)
        assert t.run(["true"], timeout=30).returncode == 0
        key = tmp_path / "keys" / "adbkey"
        assert key.exists() and (tmp_path / "keys" / "adbkey.pub").exists()
        assert len(phone.offered_keys) == 1  # first time: the public key is offered ("Allow USB debugging?")
        t.close()
        first = key.read_bytes()
        t2 = transport(phone, tmp_path)
        assert t2.run(["true"], timeout=30).returncode == 0
        assert len(phone.offered_keys) == 1 and key.read_bytes() == first  # now the signature is enough
        t2.close()


def test_phone_demanding_authorisation_is_one_clear_error(tmp_path: Path, zoo_path: Path) -> None:
    with StandinPhone(tmp_path / "phone", auth=True) as phone:  # nobody taps "Allow" on it
        t = transport(phone, tmp_path, auth_timeout=1.0)
        with pytest.raises(TransportError, match=r"did not accept the key .*adbkey; unlock the phone and tap 'Allow'"):
            t.run(["true"], timeout=30)
        inv = write_inventory(tmp_path, zoo_path, {"models": ["tiny"], "runtimes": ["litert"]},
                              [_device(phone, tmp_path, auth_timeout=1.0)], store=str(tmp_path / "s.db"))  # fmt: skip
        res = embench("sweep", str(inv), "-q", cwd=tmp_path)
    assert res.returncode == 3
    lines = [ln for ln in res.stderr.splitlines() if "did not accept the key" in ln]
    assert len(lines) == 1 and "Traceback" not in res.stderr


def test_unreachable_phone(tmp_path: Path) -> None:
    port = free_port()
    t = AdbTransport(Device(name="gone", transport="adb", adb=AdbConfig(serial=f"127.0.0.1:{port}",
                                                                        key_file=str(tmp_path / "k"), agent="python")))  # fmt: skip
    with pytest.raises(DeviceUnreachable, match=f"device gone: cannot connect to phone 127.0.0.1:{port}"):
        t.run(["true"], timeout=5)


# -- sweeps through the real ADB path --------------------------------------------------------------


def _device(phone: StandinPhone, tmp_path: Path, name: str = "pixel", **adb: Any) -> dict[str, Any]:
    return {
        "name": name,
        "transport": "adb",
        "python": sys.executable,  # the stand-in runs on this machine: this checkout's Python has LiteRT and ORT
        "workdir": str(phone.root / "data" / "local" / "tmp" / "embench"),
        "adb": {"serial": phone.serial, "key_file": str(tmp_path / "keys" / "adbkey"), "agent": "python", **adb},
    }


def _phone_agents(phone: StandinPhone) -> list[int]:
    """Agents running on the stand-in phone (its processes are this test process's descendants)."""
    root = str(phone.root).encode()
    return [p for p in agent_pids() if any(root in word for word in cmdline(p))]


def _results(store: Path) -> list[dict[str, Any]]:
    db = sqlite3.connect(store)
    db.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in db.execute("SELECT * FROM results")]
    except sqlite3.OperationalError:
        return []
    finally:
        db.close()


def test_sweep_over_the_standin_phone_and_the_host(phone: StandinPhone, tmp_path: Path, zoo_path: Path) -> None:
    sweep = {"models": ["tiny", "squeezenet"], "runtimes": ["litert", "onnxruntime"], "threads": [1]}
    devices = [_device(phone, tmp_path), {"name": "host", "transport": "local"}]
    store = tmp_path / "s.db"
    inv = write_inventory(tmp_path, zoo_path, sweep, devices, store=str(store))
    res = embench("sweep", str(inv), "-q", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    rows = _results(store)
    on_phone = [r for r in rows if r["device"] == "pixel"]
    assert {r["status"] for r in on_phone} <= {"ok", "fallback"} and len(on_phone) == 3 and len(rows) == 6
    facts = json.loads(on_phone[0]["result_json"])["device_facts"]
    assert facts["soc"] == "GS201"
    assert any(".tflite.part-" in p for p in phone.pushed) and any(".onnx.part-" in p for p in phone.pushed)
    report = embench("report", "--store", str(store), "--out", str(tmp_path / "r"), cwd=tmp_path)
    assert report.returncode == 0, report.stderr
    md = next((tmp_path / "r").glob("*/report.md")).read_text()
    assert markdown_row(md, "pixel", "squeezenet", "fp32", "onnxruntime", "CPUExecutionProvider", "1")["status"] == "ok"
    assert "Pixel 7 · SoC GS201" in md
    devices_out = embench("devices", str(inv), cwd=tmp_path)
    assert devices_out.returncode == 0, devices_out.stdout + devices_out.stderr
    assert any(line.startswith("pixel") and " adb " in line and "reachable" in line
               for line in devices_out.stdout.splitlines())  # fmt: skip
    phone.stop()  # unplugged: the health check says so, and exits 3
    dead = embench("devices", str(inv), cwd=tmp_path)
    assert dead.returncode == 3, dead.stdout + dead.stderr
    assert any(line.startswith("pixel") and "UNREACHABLE" in line and phone.serial in line
               for line in dead.stdout.splitlines()), dead.stdout  # fmt: skip


@pytest.mark.slow
def test_phone_lost_mid_sweep_keeps_results_and_resume_completes(tmp_path: Path, zoo_path: Path) -> None:
    phone = StandinPhone(tmp_path / "phone")
    port = phone.port
    sweep = {"models": ["tiny"], "precisions": ["fp32", "fp16", "int8"], "runtimes": ["litert"],
             "delegates": {"litert": ["cpu", "xnnpack"]}, "run": fast_run(min_seconds=0.8, max_seconds=1.0, retries=1)}  # fmt: skip
    store = tmp_path / "s.db"
    inv = write_inventory(tmp_path, zoo_path, sweep, [_device(phone, tmp_path)], store=str(store))
    proc = start_embench("sweep", str(inv), "-q", cwd=tmp_path)
    wait_for_results(store, 1, proc)
    wait_for("the next job's agent on the phone", lambda: _phone_agents(phone))
    phone.stop()  # unplugged mid-job
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 3, err
    rows = _results(store)
    lost = [r for r in rows if r["status"] == "failed"]
    assert len(lost) == 1 and "device pixel:" in lost[0]["message"] and lost[0]["attempts"] == 2
    assert [r for r in rows if r["status"] == "ok"]  # finished before the loss, and still there
    assert "not run" in err and "--resume" in err
    with StandinPhone(tmp_path / "phone", port=port):  # plugged back in
        again = embench("sweep", str(inv), "--resume", "-q", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    final = _results(store)
    assert len(final) == 6  # the rest ran, and the job cut by the loss was measured again
    assert "measuring again 1 job(s) that failed because their device was unreachable" in again.stderr
    assert all(r["status"] in ("ok", "fallback") for r in final)
    assert next(r for r in final if r["job_id"] == lost[0]["job_id"])["attempts"] == 1


@pytest.mark.slow
def test_a_frozen_phone_is_abandoned_and_the_host_finishes(tmp_path: Path, zoo_path: Path) -> None:
    """adbd wedged (connections open, nothing answered), not unplugged: every ADB operation is bounded,
    the phone is given up like a lost one, and the other device's queue finishes."""
    with StandinPhone(tmp_path / "phone") as phone:
        sweep = {"models": ["tiny"], "precisions": ["fp32", "fp16", "int8"], "runtimes": ["litert"],
                 "delegates": {"litert": ["cpu", "xnnpack"]},
                 "run": fast_run(min_seconds=0.5, max_seconds=0.8, timeout_seconds=8)}  # fmt: skip
        devices = [_device(phone, tmp_path, connect_timeout=3, auth_timeout=3), {"name": "host"}]
        store = tmp_path / "s.db"
        inv = write_inventory(tmp_path, zoo_path, sweep, devices, store=str(store))
        proc = start_embench("sweep", str(inv), "-q", cwd=tmp_path)
        try:
            wait_for("a result from the phone", lambda: any(r["device"] == "pixel" for r in _results(store)))
            phone.freeze()
            t0 = time.monotonic()
            _, err = proc.communicate(timeout=240)
            waited = time.monotonic() - t0
        finally:
            phone.freeze(False)
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 3, err
    assert "Traceback" not in err
    rows = _results(store)
    host = [r for r in rows if r["device"] == "host"]
    assert len(host) == 6 and all(r["status"] in ("ok", "fallback") for r in host)
    problems = [line for line in err.splitlines() if "pixel" in line]
    assert problems and all(line.startswith("  device pixel: ") or "pixel/" in line for line in problems), err
    print(f"frozen phone given up after {waited:.1f} s")
    assert waited < 8 + 10 * 4 + 30, waited  # the job's timeout, then a few bounded reads: not forever


def test_ctrl_c_mid_job_cleans_up_the_phone_before_exiting(phone: StandinPhone, tmp_path: Path, zoo_path: Path) -> None:
    """An interrupt while the agent runs on the phone: the agent is killed there (AdbTransport.cancel),
    the battery is reset, and the host's external meter is stopped, all before embench exits."""
    sweep = {"models": ["tiny"], "runtimes": ["litert"], "threads": [1, 2],
             "run": fast_run(min_seconds=60, max_seconds=60, timeout_seconds=120)}  # fmt: skip
    device = {**_device(phone, tmp_path, battery_unplug=True),
              "telemetry": [{"source": "external", "options": {"command": meter_command("curve", "--rate", "20")}}]}  # fmt: skip
    store = tmp_path / "s.db"
    inv = write_inventory(tmp_path, zoo_path, sweep, [device], store=str(store))
    proc = start_embench("sweep", str(inv), "-q", cwd=tmp_path)
    try:
        agent = wait_for("the agent to run on the phone", lambda: _phone_agents(phone))[0]
        meter = matching(proc.pid, "meter.py curve")
        assert meter and phone.dumpsys_calls() == ["battery unplug"]
    finally:
        err = interrupt(proc)
    assert proc.returncode == 130, err
    assert "--resume" in err and "Traceback" not in err
    assert phone.dumpsys_calls() == ["battery unplug", "battery reset"]  # the queue's cleanup ran
    assert not alive(agent), "the agent still runs on the phone after embench exited"
    assert not any(alive(p) for p in meter), "the external meter was orphaned"
    assert _results(store) == []  # the job cut by the interrupt is not a result: --resume runs it


def test_a_workdir_that_cannot_be_made_names_the_phone_and_the_fix(phone: StandinPhone, tmp_path: Path) -> None:
    """A workdir that cannot be made (a file is in the way): one line naming the phone and the fix,
    raised as TransportError (the sweep records it against the device), not an adb-shell exception."""
    (phone.root / "blocked").write_text("a file, not a folder")
    t = AdbTransport(Device(name="pixel", transport="adb", workdir=str(phone.root / "blocked" / "embench"),
                            adb=AdbConfig(serial=phone.serial, key_file=str(tmp_path / "k"), agent="python")))  # fmt: skip
    try:
        local = tmp_path / "model.tflite"
        local.write_bytes(b"x" * 1000)
        with pytest.raises(TransportError, match=r"^device pixel: cannot create .*blocked/embench/cache on phone "
                                                 r"127\.0\.0\.1:\d+: .*; set the device's workdir: to a folder the shell can write"):  # fmt: skip
            t.ensure_file(local, "a" * 64)
        assert t.pushed_bytes == 0
    finally:
        t.close()
