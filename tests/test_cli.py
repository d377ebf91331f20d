"""The CLI's other verbs and options, each through the real command as a user types it: runs,
report --run, sweep --resume RUN, --zoo / $EMBENCH_ZOO, models build --force, devices --timeout,
--version, and the inventory's sweep.devices, runtimes: and delegate_options."""

from __future__ import annotations

import json
import os
import shlex
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import embench, fast_run, write_inventory

from embench import __version__
from embench.inventory import load_inventory
from embench.plan import make_plan
from embench.store import Store
from embench.zoo import Zoo
from embench_agent.protocol import Job, Result

QUICK = {"models": ["tiny"], "runtimes": ["litert"], "delegates": {"litert": ["cpu"]}}


def _rows(store: Path, run_id: str) -> list[tuple[str, int, str]]:
    query = "SELECT device, threads, status FROM results WHERE run_id=? ORDER BY device, threads"
    return sqlite3.connect(str(store)).execute(query, (run_id,)).fetchall()


def test_version() -> None:
    out = embench("--version", cwd=Path.cwd())
    assert (out.returncode, out.stdout.strip()) == (0, f"embench {__version__}")


def test_a_cli_start_up_imports_no_statistics_transport_or_converter_library() -> None:
    """`embench --help`, a sweep's start and every one-line error pay only what they use: scipy.stats
    (0.6 s) is imported where a statistic is computed, paramiko and adb-shell when a device of that
    transport is opened, TensorFlow when a model is built."""
    heavy = ("scipy", "paramiko", "adb_shell", "tensorflow", "matplotlib", "dask")
    code = f"import sys, embench.cli; print(sorted(m for m in {heavy!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_every_transport_is_registered_under_its_own_name() -> None:
    from embench.inventory import Device  # noqa: PLC0415
    from embench.transports import TRANSPORTS  # noqa: PLC0415

    for name, registered in TRANSPORTS.items():
        cls = registered.load()
        assert cls.NAME == name
        assert registered.config_key is None or registered.config_key in Device.__dataclass_fields__


@pytest.mark.slow
def test_runs_report_of_one_run_and_resume_of_an_older_run(zoo_path: Path, tmp_path: Path) -> None:
    """Run A leaves a device's jobs undone (its Python is missing), run B finishes; `--resume A`
    completes A, not the latest run; `runs` lists both; `report --run A` reports A only."""
    store = tmp_path / "s.sqlite"
    broken = [{"name": "host"}, {"name": "spare", "python": "python3.0-missing"}]
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    inv_a = write_inventory(tmp_path / "a", zoo_path, {**QUICK, "threads": [1]}, broken)
    first = embench("sweep", str(inv_a), "--store", str(store), "-q", cwd=tmp_path)
    assert first.returncode == 3, first.stderr
    run_a = first.stdout.split()[1].rstrip(":")
    inv_b = write_inventory(tmp_path / "b", zoo_path, {**QUICK, "threads": [2]})
    second = embench("sweep", str(inv_b), "--store", str(store), "-q", cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    run_b = second.stdout.split()[1].rstrip(":")
    assert run_a != run_b and _rows(store, run_a) == [("host", 1, "ok")]

    runs = embench("runs", "--store", str(store), cwd=tmp_path)
    assert runs.returncode == 0, runs.stderr
    lines = runs.stdout.splitlines()
    assert [line.split()[0] for line in lines] == [run_a, run_b]  # oldest first
    assert lines[0].split()[1:3] == ["finished", "1/2"] and lines[1].split()[1:3] == ["finished", "1/1"]

    fixed = yaml.safe_load(inv_a.read_text())
    fixed["devices"][1]["python"] = sys.executable
    inv_a.write_text(yaml.safe_dump(fixed, sort_keys=False))
    resumed = embench("sweep", str(inv_a), "--store", str(store), "--resume", run_a[:-3], "-q", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.startswith(f"run {run_a}: 1 ok (1 already done)")
    assert _rows(store, run_a) == [("host", 1, "ok"), ("spare", 1, "ok")] and _rows(store, run_b) == [("host", 2, "ok")]

    report = embench("report", "--run", run_a, "--store", str(store), "--out", str(tmp_path / "r"), cwd=tmp_path)
    assert report.returncode == 0, report.stderr
    md = Path(dict(line.split(None, 1) for line in report.stdout.splitlines())["markdown"]).read_text()
    table = [line.split(" | ")[:6] for line in md.splitlines() if " | tiny | fp32 | litert | cpu | " in line]
    assert sorted(table) == [["| host", "tiny", "fp32", "litert", "cpu", "1"],
                             ["| spare", "tiny", "fp32", "litert", "cpu", "1"]]  # fmt: skip
    unknown = embench("report", "--run", "nosuchrun", "--store", str(store), cwd=tmp_path)
    assert unknown.returncode == 1 and "nosuchrun" in unknown.stderr and run_b in unknown.stderr


def test_which_zoo_is_read(zoo_path: Path, tmp_path: Path) -> None:
    """--zoo beats $EMBENCH_ZOO beats the inventory's zoo:, each told apart by a model only it has."""
    other = tmp_path / "other.yaml"
    other.write_text(yaml.safe_dump({"schema": 1, "models": {"only-in-other": {"files": {
        "onnx-fp32": str(zoo_path.parent / "corrupt.tflite")}}}}))  # fmt: skip
    inv = write_inventory(tmp_path, zoo_path, QUICK)  # zoo: the test zoo

    def listed(*args: str, env: dict[str, str] | None = None) -> set[str]:
        out = embench("models", "list", *args, cwd=tmp_path, env=env)
        assert out.returncode == 0, out.stderr
        return {line.split()[0] for line in out.stdout.splitlines()}

    assert listed("--inventory", str(inv)) == {"tiny", "squeezenet", "corrupt"}
    assert listed("--inventory", str(inv), env={"EMBENCH_ZOO": str(other)}) == {"only-in-other"}
    assert listed("--zoo", str(zoo_path), env={"EMBENCH_ZOO": str(other)}) == {"tiny", "squeezenet", "corrupt"}
    sweep = embench("sweep", str(inv), "--zoo", str(other), "--store", str(tmp_path / "s.sqlite"), cwd=tmp_path)
    assert sweep.returncode == 1 and "unknown model 'tiny'" in sweep.stderr and str(other) in sweep.stderr


@pytest.mark.slow
def test_models_build_force_rebuilds(zoo_path: Path, tmp_path: Path) -> None:
    manifest = tmp_path / "zoo.yaml"
    manifest.write_text(zoo_path.read_text())
    build = tmp_path / "build"

    def built() -> dict[str, int]:
        return {p.name: p.stat().st_mtime_ns for p in build.glob("tiny.*")}

    # On a terminal: the bar is drawn while TensorFlow's fd 2 goes into the build's log
    code, screen = _on_a_terminal(
        [sys.executable, "-m", "embench", "models", "build", "tiny", "--zoo", str(manifest)], tmp_path
    )
    assert code == 0, screen
    assert "building models" in screen and "tiny tflite-fp32" in screen and "8/8" in screen, screen
    assert "[build " not in screen  # a bar, not the plain lines of a log
    before = built()
    assert len(before) == 8  # TFLite fp32 / fp16 / int8 / int16x8 / int8_dynamic and ONNX fp32 / int8 / int8_dynamic
    again = embench("models", "build", "tiny", "--zoo", str(manifest), "-q", cwd=tmp_path)
    assert again.returncode == 0 and built() == before  # up to date: nothing rebuilt
    forced = embench("models", "build", "tiny", "--zoo", str(manifest), "--force", cwd=tmp_path)
    assert forced.returncode == 0, forced.stderr
    # No terminal: one plain line per file as it starts, though TensorFlow's fd 2 goes into a log meanwhile
    steps = [line for line in forced.stderr.splitlines() if line.startswith("[build ")]
    assert [s.split("]")[0] for s in steps] == [f"[build {i}/8" for i in range(1, 9)], forced.stderr
    assert all(s.split("] ")[1].startswith("tiny ") for s in steps)
    after = built()
    assert after.keys() == before.keys() and all(after[k] > before[k] for k in before)


def test_devices_timeout_bounds_a_hung_device(zoo_path: Path, tmp_path: Path) -> None:
    hung = tmp_path / "python-hangs"
    hung.write_text("#!/bin/sh\nexec sleep 300\n")
    hung.chmod(0o755)
    inv = write_inventory(tmp_path, zoo_path, QUICK, [{"name": "stuck", "python": str(hung)}])
    t0 = time.monotonic()
    out = embench("devices", str(inv), "--timeout", "2", cwd=tmp_path)
    took = time.monotonic() - t0
    assert out.returncode == 3, out.stdout + out.stderr
    line = next(line for line in out.stdout.splitlines() if line.startswith("stuck"))
    assert "UNREACHABLE" in line and "timed out" in line
    assert took < 60  # the default timeout is 60 s per device: --timeout 2 was used


def test_sweep_devices_runtimes_and_delegate_options(zoo_path: Path, tmp_path: Path) -> None:
    devices = [
        {"name": "host"},
        {"name": "board", "runtimes": ["litert"],
         "delegate_options": {"xnnpack": {"num_threads_hint": "2"}}},
        {"name": "unused", "python": "python3.0-missing"},
    ]  # fmt: skip
    sweep = {"models": ["tiny"], "runtimes": ["litert", "onnxruntime"],
             "delegates": {"litert": ["xnnpack"], "onnxruntime": ["CPUExecutionProvider"]},
             "devices": ["board"], "run": fast_run()}  # fmt: skip
    inv = write_inventory(tmp_path, zoo_path, sweep, devices)
    planned = make_plan(load_inventory(inv), Zoo(zoo_path)).jobs
    assert {j.device for j in planned} == {"board"}  # sweep.devices: only the board is swept
    store = tmp_path / "s.sqlite"
    out = embench("sweep", str(inv), "--store", str(store), "-q", cwd=tmp_path)
    assert out.returncode == 0, out.stderr  # "unused" is never contacted
    rows = {r: (Job.from_json(j), Result.from_json(res)) for r, j, res in sqlite3.connect(str(store)).execute(
        "SELECT runtime, job_json, result_json FROM results")}  # fmt: skip
    job, result = rows["litert"]
    assert result.status in ("ok", "fallback") and dict(job.delegate.options) == {"num_threads_hint": "2"}
    _, ort = rows["onnxruntime"]  # the board's runtimes: leave ONNX Runtime out
    assert ort.status == "unsupported"
    assert ort.message and "does not offer runtime 'onnxruntime'" in ort.message and "not attempted" in ort.message


def test_a_run_with_no_results_reports_clearly(zoo_path: Path, tmp_path: Path) -> None:
    inv = write_inventory(tmp_path, zoo_path, QUICK, [{"name": "gone", "python": "python3.0-missing"}])
    store = tmp_path / "s.sqlite"
    out = embench("sweep", str(inv), "--store", str(store), "-q", cwd=tmp_path)
    assert out.returncode == 3 and "python3.0-missing" in out.stderr
    run_id = out.stdout.split()[1].rstrip(":")
    assert sqlite3.connect(str(store)).execute("SELECT COUNT(*) FROM results").fetchone()[0] == 0
    report = embench("report", "--store", str(store), "--out", str(tmp_path / "r"), cwd=tmp_path)
    assert report.returncode == 1, report.stdout + report.stderr
    assert report.stderr.startswith(f"embench: error: run {run_id} in {store} holds no results (1 job(s) planned")
    assert f"`embench sweep {inv} --resume {run_id} --store {store}`" in report.stderr
    assert len(report.stderr.strip().splitlines()) == 1 and not (tmp_path / "r").exists()
    pasted = report.stderr.split("`")[1]  # the command it gives, as a user pastes it
    again = embench(*shlex.split(pasted)[1:], "-q", cwd=tmp_path)
    assert again.returncode == 3 and again.stdout.startswith(f"run {run_id}: "), again.stdout + again.stderr


@pytest.mark.slow
def test_crashed_and_timed_out_jobs_are_retried(zoo_path: Path, tmp_path: Path) -> None:
    """retries: a device whose first agent crashes (a segfault, once) measures on the second attempt;
    a job that times out every time is tried retries + 1 times and stays `timeout`."""
    flaky = tmp_path / "python-flaky"
    flaky.write_text(f'#!/bin/sh\nif [ ! -e "{tmp_path}/crashed-once" ] && [ "$2" = run ]; then\n'
                     f'  touch "{tmp_path}/crashed-once"; kill -SEGV $$\nfi\nexec {sys.executable} "$@"\n')  # fmt: skip
    flaky.chmod(0o755)
    devices = [{"name": "flaky", "python": str(flaky)}]
    inv = write_inventory(tmp_path, zoo_path, {**QUICK, "run": fast_run(retries=1)}, devices)
    out = embench("sweep", str(inv), "--store", str(tmp_path / "s.sqlite"), "-q", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    ((attempts, status),) = sqlite3.connect(str(tmp_path / "s.sqlite")).execute("SELECT attempts, status FROM results")
    assert (attempts, status) == (2, "ok") and (tmp_path / "crashed-once").exists()

    hangs = tmp_path / "python-hangs"  # probes, then never finishes a job
    hangs.write_text(f'#!/bin/sh\n[ "$2" = run ] && exec sleep 300\nexec {sys.executable} "$@"\n')
    hangs.chmod(0o755)
    inv = write_inventory(tmp_path, zoo_path, {**QUICK, "run": fast_run(timeout_seconds=2, retries=2)},
                          [{"name": "hangs", "python": str(hangs)}])  # fmt: skip
    out = embench("sweep", str(inv), "--store", str(tmp_path / "t.sqlite"), "-q", cwd=tmp_path)
    assert out.returncode == 3, out.stderr
    (attempts, status, message), = sqlite3.connect(str(tmp_path / "t.sqlite")).execute(
        "SELECT attempts, status, message FROM results")  # fmt: skip
    assert (attempts, status) == (3, "timeout") and "2 s" in message


# ---------------------------------------------------------------------------- issue 13: CLI coherence


def _sweep_quick(zoo_path: Path, folder: Path, store: Path | None = None, **extra: object) -> str:
    inv = write_inventory(folder, zoo_path, {**QUICK, "threads": [1]})
    if store is not None:
        data = yaml.safe_load(inv.read_text())
        data.update(store=str(store), **extra)
        inv.write_text(yaml.safe_dump(data))
    out = embench("sweep", str(inv), "-q", cwd=folder)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_the_inventory_store_is_used_by_every_reading_verb_and_next_commands_paste(
    zoo_path: Path, tmp_path: Path
) -> None:
    """store: in ./inventory.yaml (or --inventory) is where report, runs, show, baseline and history look;
    the `next:` commands a sweep and `show` print work as pasted, from another folder too."""
    lab = tmp_path / "lab"
    lab.mkdir()
    store = tmp_path / "shared" / "lab.sqlite"
    _sweep_quick(zoo_path, lab, store)
    out = embench("sweep", str(lab / "inventory.yaml"), cwd=lab)  # not quiet: it prints next:
    assert out.returncode == 0, out.stderr
    run_id = out.stdout.split()[1].rstrip(":")
    nxt = next(line for line in out.stdout.splitlines() if line.startswith("next: "))
    report_cmd = nxt.removeprefix("next: ").split(" (or ")[0]
    show_cmd = nxt.split(" (or ")[1].rstrip(")")
    assert str(store) in report_cmd and run_id in report_cmd
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for cmd in (report_cmd, show_cmd):
        pasted = embench(*shlex.split(cmd)[1:], cwd=elsewhere)
        assert pasted.returncode == 0, (cmd, pasted.stderr)
    shown = embench("show", run_id, cwd=lab)  # ./inventory.yaml's store:
    assert shown.returncode == 0, shown.stderr
    assert "host: 1 job(s): 1 ok" in shown.stdout and "fastest" in shown.stdout
    again = embench(*shlex.split(shown.stdout.splitlines()[-1].removeprefix("next: "))[1:], cwd=elsewhere)
    assert again.returncode == 0, again.stderr
    listed = embench("runs", "--json", "--inventory", str(lab / "inventory.yaml"), cwd=elsewhere)
    runs = json.loads(listed.stdout)
    assert [r["run_id"] for r in runs][-1] == run_id and len(runs) == 2 and runs[-1]["recorded"] == 1
    # the inventory typed as `sweep` takes it, a bare word: taken as --inventory by every reading verb
    inventory = str(lab / "inventory.yaml")
    assert json.loads(embench("runs", inventory, "--json", cwd=elsewhere).stdout) == runs
    assert json.loads(embench("runs", "--inv", inventory, "--json", cwd=elsewhere).stdout) == runs  # abbreviated
    bare = embench("show", inventory, cwd=elsewhere)
    assert bare.returncode == 0 and f"run {run_id}" in bare.stdout, bare.stderr
    named = embench("show", runs[0]["run_id"], inventory, cwd=elsewhere)
    assert named.returncode == 0 and f"run {runs[0]['run_id']}" in named.stdout, named.stderr
    written = embench("report", inventory, "--out", "out.yaml", cwd=elsewhere)  # an option's value stays one
    assert written.returncode == 0 and (elsewhere / "out.yaml" / run_id / "report.md").is_file(), written.stderr
    two = embench("show", inventory, inventory, cwd=elsewhere)
    assert two.returncode == 2 and "unrecognized arguments" in two.stderr
    assert embench("baseline", "show", cwd=lab).stdout.startswith("baseline: none")
    assert not (lab / "results").exists() and not (elsewhere / "results").exists()  # no stray default store


def test_runs_prune_keeps_the_newest_and_the_pinned_baseline(zoo_path: Path, tmp_path: Path) -> None:
    store = tmp_path / "s.sqlite"
    ids = []
    for _ in range(4):
        out = embench(
            "sweep", str(write_inventory(tmp_path, zoo_path, QUICK)), "--store", str(store), "-q", cwd=tmp_path
        )
        assert out.returncode == 0, out.stderr
        ids.append(out.stdout.split()[1].rstrip(":"))
    assert embench("baseline", "set", ids[0], "--store", str(store), cwd=tmp_path).returncode == 0
    refused = embench("runs", "prune", "--store", str(store), cwd=tmp_path)
    assert refused.returncode == 1 and "--keep N" in refused.stderr
    pruned = embench("runs", "prune", "--keep", "2", "--store", str(store), cwd=tmp_path)
    assert pruned.returncode == 0 and ids[1] in pruned.stdout, pruned.stderr
    left = [r["run_id"] for r in json.loads(embench("runs", "--json", "--store", str(store), cwd=tmp_path).stdout)]
    assert left == [ids[0], ids[2], ids[3]]
    db = sqlite3.connect(str(store))
    assert db.execute("SELECT COUNT(*) FROM samples WHERE run_id=?", (ids[1],)).fetchone()[0] == 0


def test_baseline_set_refuses_a_run_no_nightly_could_be_judged_against(zoo_path: Path, tmp_path: Path) -> None:
    """A run that measured nothing, or is not finished, is refused in one line with the fix (which works
    when pasted); one where a device was lost is pinned with a warning that says what it costs."""
    store = tmp_path / "s.sqlite"
    gone = {"name": "gone", "transport": "ssh", "ssh": {"host": "127.0.0.1", "port": 1, "user": "x"}}
    runs = {}
    for name, devices in (("partial", [{"name": "host", "transport": "local"}, gone]), ("nothing", [gone])):
        out = embench("sweep", str(write_inventory(tmp_path, zoo_path, QUICK, devices)), "--store", str(store), "-q",
                      cwd=tmp_path)  # fmt: skip
        assert out.returncode == 3, out.stderr
        runs[name] = out.stdout.split()[1].rstrip(":")
    partial = embench("baseline", "set", runs["partial"], "--store", str(store), cwd=tmp_path)
    assert partial.returncode == 0 and f"1 of 2 jobs of {runs['partial']} did not measure" in partial.stderr
    nothing = embench("baseline", "set", runs["nothing"], "--store", str(store), cwd=tmp_path)
    assert nothing.returncode == 1 and "measured nothing" in nothing.stderr
    assert len(nothing.stderr.strip().splitlines()) == 1
    Store(store).end_run(runs["nothing"], "interrupted")  # as a Ctrl-C leaves it
    cut = embench("baseline", "set", runs["nothing"], "--store", str(store), cwd=tmp_path)
    assert cut.returncode == 1 and "is interrupted (0/1 jobs) and cannot be the baseline" in cut.stderr, cut.stderr
    fix = cut.stderr.split("`")[1]
    pasted = embench(*shlex.split(fix)[1:], cwd=tmp_path)  # the device is still gone: resumed, and 3 again
    assert pasted.returncode == 3 and f"run {runs['nothing']}" in pasted.stdout, pasted.stderr
    shown = embench("baseline", "show", "--store", str(store), cwd=tmp_path)
    assert shown.stdout.strip() == f"baseline: {runs['partial']}"
    Store(store).delete_run(runs["partial"])  # by hand: `runs prune` never deletes the pinned baseline
    lost = embench("baseline", "show", "--store", str(store), cwd=tmp_path)
    assert lost.returncode == 1 and f"the pinned baseline {runs['partial']} is no longer in" in lost.stderr
    assert embench("baseline", "clear", "--store", str(store), cwd=tmp_path).returncode == 0


def test_sweep_dry_run_lists_jobs_and_what_it_would_skip(zoo_path: Path, tmp_path: Path) -> None:
    sweep = {"models": ["tiny", "squeezenet"], "precisions": ["fp32", "int8"], "runtimes": ["litert", "onnxruntime"],
             "delegates": {"litert": ["cpu", "edgetpu"], "onnxruntime": ["CPUExecutionProvider"]}, "threads": [1]}  # fmt: skip
    inv = write_inventory(tmp_path, zoo_path, sweep)
    out = embench("sweep", str(inv), "--dry-run", "--store", str(tmp_path / "s.sqlite"), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    run = [line for line in lines if line.startswith("run ")]
    assert (
        "run         host/tiny/fp32/litert:cpu/t1" in lines and len(run) == 5
    )  # tiny ×4 (fp32/int8 × litert cpu, ORT), squeezenet ORT fp32
    assert any(line.startswith("unsupported") and "edgetpu" in line and "edgetpu_compiler" in line for line in lines)
    assert any(line.startswith("left out") and "squeezenet int8 onnxruntime" in line for line in lines)
    assert lines[-1].startswith("dry run: ") and "nothing was run" in lines[-1]
    assert not (tmp_path / "s.sqlite").exists()
    swept = embench("sweep", str(inv), "--store", str(tmp_path / "s.sqlite"), "-q", cwd=tmp_path)
    assert swept.returncode in (0, 3), swept.stderr
    resumed = embench("sweep", str(inv), "--dry-run", "--resume", "--store", str(tmp_path / "s.sqlite"), cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert sum(line.startswith("skip") for line in resumed.stdout.splitlines()) >= 5


def test_progress_bar_at_80_columns_keeps_counts_and_times(tmp_path: Path) -> None:
    """At 80 columns the job label gives way (an ellipsis), never the counts, elapsed or ETA."""
    import io  # noqa: PLC0415

    from embench.plan import PlannedJob  # noqa: PLC0415
    from embench.progress import ProgressReporter  # noqa: PLC0415
    from embench_agent.protocol import RunSpec  # noqa: PLC0415

    stream = io.StringIO()
    reporter = ProgressReporter(stream=stream, width=80)
    reporter.console.is_terminal  # noqa: B018
    reporter.console._force_terminal = True  # a terminal of 80 columns, drawn into a string
    with reporter:
        reporter.planned(120, 0)
        job = PlannedJob("pixel7-lab-rack-3", "mobilenet_v3_large_with_a_long_name", "int8", "tflite", "litert",
                         "xnnpack", 4, RunSpec(), 0)  # fmt: skip
        reporter.started(job)
        reporter.progress.refresh()
    text = stream.getvalue()
    last = [line for line in text.replace("\r", "\n").splitlines() if "sweep" in line][-1]
    plain = __import__("re").sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", last)
    assert len(plain) <= 80 and "0/120" in plain and "0:00:0" in plain and "ETA" in plain and "-:--:--" in plain
    assert "…" in plain and "pixel7-lab-rack-3" in plain  # the label, cut short


def test_the_resume_hint_names_the_store_it_used(tmp_path: Path) -> None:
    """A store found through $EMBENCH_STORE or the inventory is named in the hint, so it pastes anywhere."""
    import argparse  # noqa: PLC0415

    from embench import cli  # noqa: PLC0415
    from embench.store import Store  # noqa: PLC0415

    store = Store(tmp_path / "env store.sqlite")
    args = argparse.Namespace(inventory="lab.yaml", store=None, zoo=None, label=None)
    words = shlex.split(cli._resume_command(args, store).format(run="RUN"))
    assert words == ["embench", "sweep", "lab.yaml", "--resume", "RUN", "--store", str(tmp_path / "env store.sqlite")]


def _on_a_terminal(argv: list[str], cwd: Path) -> tuple[int, str]:
    """Run a command with a pseudo-terminal as its stdout and stderr; (exit code, what it drew)."""
    master, slave = os.openpty()
    proc = subprocess.Popen(argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave,
                            env={**os.environ, "COLUMNS": "100", "TERM": "xterm"})  # fmt: skip
    os.close(slave)
    chunks = []
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the command closed the terminal's last end
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(master)
    return proc.wait(timeout=600), b"".join(chunks).decode("utf-8", "replace")
