"""What a clumsy or hostile user and a flaky lab do to embench: bad input, a store under a lab's real
conditions, signals, text from devices, and names in reports. Each class is tried with several
members; every error must be one line with a fix, an exit code from docs/exit-codes.md, no traceback."""

from __future__ import annotations

import contextlib
import csv
import io
import os
import shlex
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from conftest import MINIMAL_INVENTORY, embench, fast_run, interrupt, start_embench, wait_for_results, write_inventory
from procs import agent_pids, alive, wait_for

from embench.store import Store

BASE = MINIMAL_INVENTORY + "  runtimes: [litert]\n"


def one_line_error(out: subprocess.CompletedProcess[str], code: int = 1) -> str:
    assert out.returncode == code, (out.returncode, out.stderr)
    assert "Traceback" not in out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    return lines[0]


def check_inventory(tmp_path: Path, zoo_path: Path, text: str | bytes) -> str:
    inv = tmp_path / "inventory.yaml"
    if isinstance(text, str):
        text = (text.rstrip("\n") + f"\nzoo: {zoo_path}\n").encode()
    inv.write_bytes(text)
    return one_line_error(embench("sweep", str(inv), "--store", str(tmp_path / "s.sqlite"), cwd=tmp_path))


# ---------------------------------------------------------------------------- 1. bad input


@pytest.mark.parametrize(
    ("snippet", "said"),
    [
        ("  threads: [.nan]\n", "sweep.threads[0]: expected an integer, got nan"),
        ("  threads: [0]\n", "sweep.threads[0]: threads[0] must be ≥ 1, not 0"),
        ("  threads: [-3]\n", "must be ≥ 1, not -3"),
        ("  threads: [100000000000000000000000]\n", "sweep.threads[0]: 100000000000000000000000 is too large"),
        ("  threads: [4096]\n", "must be ≤ 1024"),
        ("  seed: -1\n", "sweep.seed: seed must be ≥ 0"),
        ("  run: {min_seconds: .nan}\n", "sweep.run.min_seconds: nan is not a finite number"),
        ("  run: {max_seconds: .inf}\n", "sweep.run.max_seconds: inf is not a finite number"),
        ("  run: {max_seconds: 0}\n", "max_seconds must be > 0"),
        ("  run: {timeout_seconds: -5}\n", "timeout_seconds must be > 0"),
        ("  run: {retries: -1}\n", "retries must be ≥ 0"),
        ("  run: {idle_seconds: -0.5}\n", "idle_seconds must be ≥ 0"),
        ("  run: {warmup_runs: 1.5}\n", "sweep.run.warmup_runs: expected an integer, got 1.5"),
        ("  run: {cooldown_below_c: .nan}\n", "not a finite number"),
        ("  run: {min_runs: 1000000000000}\n", "min_runs must be ≤ 1e+08"),
    ],
)
def test_numbers_are_checked_when_the_inventory_is_read(
    tmp_path: Path, zoo_path: Path, snippet: str, said: str
) -> None:
    line = check_inventory(tmp_path, zoo_path, BASE + snippet)
    assert said in line and "inventory.yaml:" in line and ("set it in" in line or "write" in line or "use" in line)


@pytest.mark.parametrize(
    ("device", "said"),
    [
        ("{name: b, transport: ssh, ssh: {host: pi, port: 70000}}", "devices[0].ssh.port: port must be ≤ 65535"),
        ("{name: b, transport: ssh, ssh: {host: pi, port: 0}}", "port must be ≥ 1"),
        ("{name: b, transport: ssh, ssh: {host: pi, connect_timeout: -1}}", "connect_timeout must be > 0"),
        ("{name: h, telemetry: [{source: hwmon, rate_hz: -4}]}", "rate_hz must be > 0, not -4.0"),
        ("{name: h, telemetry: [{source: hwmon, rate_hz: 0}]}", "rate_hz must be > 0, not 0.0"),
        ("{name: h, telemetry: [{source: hwmon, rate_hz: .inf}]}", "not a finite number"),
        ("{name: p, transport: adb, adb: {serial: x, agent: python, auth_timeout: 0}}", "auth_timeout must be > 0"),
    ],
)
def test_device_numbers_are_checked(tmp_path: Path, zoo_path: Path, device: str, said: str) -> None:
    text = f"schema: 1\ndevices:\n  - {device}\nsweep:\n  models: [tiny]\n"
    assert said in check_inventory(tmp_path, zoo_path, text)


def test_files_that_are_not_utf8_or_not_files(tmp_path: Path, zoo_path: Path) -> None:
    latin1 = (BASE + "# café\n").encode("latin-1")
    assert "inventory.yaml:8: not UTF-8 text (byte 0xe9); save the file as UTF-8" in check_inventory(
        tmp_path, zoo_path, latin1
    )
    line = one_line_error(embench("sweep", str(tmp_path), cwd=tmp_path))
    assert "is a folder, not a file; pass the path of the YAML file" in line
    line = check_inventory(tmp_path, zoo_path, b"- a\n- b\n")
    assert "expected a mapping, got a list; write it as key: value lines" in line
    manifest = tmp_path / "zoo.yaml"
    manifest.write_bytes("models:\n  m: {keras: MobileNet}  # naïve\n".encode("utf-16"))
    line = one_line_error(embench("models", "list", "--zoo", str(manifest), cwd=tmp_path))
    assert "zoo.yaml:1: not UTF-8 text" in line


def test_zoo_manifest_of_an_unknown_schema(tmp_path: Path) -> None:
    manifest = tmp_path / "zoo.yaml"
    manifest.write_text("schema: 7\nmodels:\n  m: {keras: MobileNet}\n")
    line = one_line_error(embench("models", "list", "--zoo", str(manifest), cwd=tmp_path))
    assert "zoo.yaml:1: schema: zoo manifest schema 7 is not known; this embench reads schema: 1" in line
    manifest.write_text("models:\n  m: {keras: MobileNet, calibration_samples: 0}\n")
    line = one_line_error(embench("models", "list", "--zoo", str(manifest), cwd=tmp_path))
    assert "models.m.calibration_samples: calibration_samples must be ≥ 1" in line


def test_report_out_pointing_at_a_file(tmp_path: Path, zoo_path: Path) -> None:
    inv = write_inventory(tmp_path, zoo_path, {"models": ["tiny"], "runtimes": ["litert"]})
    assert embench("sweep", str(inv), "--store", str(tmp_path / "s.sqlite"), "-q", cwd=tmp_path).returncode == 0
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    line = one_line_error(embench("report", "--store", str(tmp_path / "s.sqlite"), "--out", str(blocker), cwd=tmp_path))
    assert f"--out {blocker}: a file is in the way" in line and "pass --out a folder" in line


def _zoo_copy(zoo_path: Path, folder: Path, built: bool) -> Path:
    """A private copy of the test zoo (its files may be broken here without touching other tests)."""
    folder.mkdir()
    shutil.copy(zoo_path.parent / "corrupt.tflite", folder)
    manifest = yaml.safe_load(zoo_path.read_text())
    manifest["models"] = {k: v for k, v in manifest["models"].items() if k in ("tiny", "corrupt")}
    (folder / "zoo.yaml").write_text(yaml.safe_dump(manifest))
    if built:
        shutil.copytree(zoo_path.parent / "build", folder / "build")
    return folder / "zoo.yaml"


def _pasted(text: str) -> list[str]:
    """The `embench ...` command a message tells the user to run, as argv without the program."""
    command = text.split("`embench ", 1)[1].split("`", 1)[0]
    return shlex.split(command)


@pytest.mark.slow
def test_every_printed_fix_works_when_pasted(tmp_path: Path, zoo_path: Path) -> None:
    manifest = _zoo_copy(zoo_path, tmp_path / "zoo", built=False)
    sweep = {"models": ["tiny"], "precisions": ["fp32"], "runtimes": ["litert"], "delegates": {"litert": ["cpu"]}}
    inv = write_inventory(tmp_path, manifest, sweep)
    store = str(tmp_path / "s.sqlite")
    # 1. not built, and --no-build: the printed build command builds it
    line = one_line_error(embench("sweep", str(inv), "--store", store, "--no-build", cwd=tmp_path))
    built = embench(*_pasted(line), cwd=tmp_path)
    assert built.returncode == 0, built.stderr
    assert embench("sweep", str(inv), "--store", store, "-q", cwd=tmp_path).returncode == 0
    # 2. a built file broken in place (same size): the printed rebuild command repairs it
    model = tmp_path / "zoo" / "build" / "tiny.tflite-fp32.tflite"
    model.write_bytes(b"\0" * model.stat().st_size)
    out = embench("sweep", str(inv), "--store", store, "-q", cwd=tmp_path)
    assert out.returncode == 3
    rebuilt = embench(*_pasted(out.stderr), cwd=tmp_path)
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert embench("sweep", str(inv), "--store", store, "-q", cwd=tmp_path).returncode == 0
    # 3. a file the user supplied: the fix names the file, not a build that cannot make it
    inv2 = write_inventory(tmp_path, manifest, {**sweep, "models": ["corrupt"]})
    out = embench("sweep", str(inv2), "--store", store, "-q", cwd=tmp_path)
    assert out.returncode == 3 and "`embench" not in out.stderr
    assert f"replace {tmp_path / 'zoo' / 'corrupt.tflite'} (models.corrupt.files in {manifest})" in out.stderr


# ---------------------------------------------------------------------------- 2. the store


def _tables(path: Path) -> set[str]:
    return {r[0] for r in sqlite3.connect(path).execute("SELECT name FROM sqlite_master WHERE type='table'")}


def test_a_database_of_another_program_is_refused_untouched(tmp_path: Path, zoo_path: Path) -> None:
    inv = write_inventory(tmp_path, zoo_path, {"models": ["tiny"], "runtimes": ["litert"]})
    other = tmp_path / "photos.db"
    sqlite3.connect(other).execute("CREATE TABLE albums (id INTEGER)").connection.commit()
    before = other.read_bytes()
    for verb in (["sweep", str(inv), "-q"], ["report"], ["runs"]):
        line = one_line_error(embench(*verb, "--store", str(other), cwd=tmp_path))
        assert "is an SQLite database of another program (tables: albums)" in line and "--store a new file" in line
    assert other.read_bytes() == before and _tables(other) == {"albums"}
    newer = tmp_path / "newer.sqlite"
    db = sqlite3.connect(newer)
    db.executescript("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT); INSERT INTO meta VALUES ('schema_version', '9');"
                     "CREATE TABLE runs (x); CREATE TABLE results (x); CREATE TABLE samples (x);")  # fmt: skip
    db.close()
    line = one_line_error(embench("sweep", str(inv), "--store", str(newer), cwd=tmp_path))
    assert "has store schema version 9; this embench reads 4" in line
    assert _tables(newer) == {"meta", "runs", "results", "samples"}
    junk = tmp_path / "notes.txt"
    junk.write_text("not a database at all, but long enough to look like a header" * 20)
    line = one_line_error(embench("runs", "--store", str(junk), cwd=tmp_path))
    assert "is not an SQLite database (or is damaged); pass --store a new file" in line


def _long_sweep(tmp_path: Path, zoo_path: Path, *args: str) -> tuple[Path, list[str]]:
    sweep = {"models": ["tiny"], "precisions": ["fp32", "fp16", "int8"], "runtimes": ["litert"],
             "delegates": {"litert": ["cpu", "xnnpack"]}, "threads": [1, 2],
             "run": fast_run(min_seconds=0.5, max_seconds=0.8)}  # fmt: skip
    inv = write_inventory(tmp_path, zoo_path, sweep)
    return inv, ["sweep", str(inv), "--store", str(tmp_path / "s.sqlite"), "-q", *args]


def _start(args: list[str], cwd: Path) -> subprocess.Popen[str]:
    return start_embench(*args, cwd=cwd, start_new_session=True)


@pytest.mark.slow
def test_a_run_is_swept_by_one_sweep_at_a_time(tmp_path: Path, zoo_path: Path) -> None:
    _, args = _long_sweep(tmp_path, zoo_path)
    first = _start(args, tmp_path)
    try:
        wait_for_results(tmp_path / "s.sqlite", 1, first)
        line = one_line_error(embench(*args, "--resume", cwd=tmp_path, timeout=120))
        assert "is being swept by another embench process right now" in line
    finally:
        interrupt(first)
    # the holder is gone: its lock went with it, and the resume completes the run exactly once
    again = embench(*args, "--resume", cwd=tmp_path, timeout=300)
    assert again.returncode == 0, again.stderr
    (n, distinct) = (
        sqlite3.connect(tmp_path / "s.sqlite")
        .execute("SELECT COUNT(*), COUNT(DISTINCT job_id) FROM results")
        .fetchone()
    )
    assert n == distinct == 12


def test_two_sweeps_creating_one_new_store_at_once(tmp_path: Path, zoo_path: Path) -> None:
    inv = write_inventory(
        tmp_path, zoo_path, {"models": ["tiny"], "runtimes": ["litert"], "delegates": {"litert": ["cpu"]}}
    )
    args = ["sweep", str(inv), "--store", str(tmp_path / "new" / "s.sqlite"), "-q"]
    procs = [_start(args, tmp_path) for _ in range(3)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], [err for _, err in outs]
    assert sqlite3.connect(tmp_path / "new" / "s.sqlite").execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 3


@contextlib.contextmanager
def small_disk(folder: Path, size: str = "32m") -> Iterator[Path]:
    folder.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], check=True)
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


@pytest.mark.slow
def test_a_full_disk_mid_sweep_is_one_line_and_resume_completes(tmp_path: Path, zoo_path: Path) -> None:
    with small_disk(tmp_path / "disk") as disk:
        store = disk / "s.sqlite"
        _, args = _long_sweep(tmp_path, zoo_path)
        args[args.index("--store") + 1] = str(store)
        proc = _start(args, tmp_path)
        wait_for_results(store, 2, proc)
        with (disk / "filler").open("wb", buffering=0) as fh, contextlib.suppress(OSError):
            while True:  # the disk fills up under the sweep (unbuffered: nothing left to flush at close)
                fh.write(b"\0" * 65536)
        _, err = proc.communicate(timeout=180)
        assert proc.returncode == 4, err
        assert "Traceback" not in err
        lines = err.strip().splitlines()
        assert len(lines) == 1 and "the disk is full" in lines[0] and "what was stored is intact" in lines[0]
        kept = sqlite3.connect(store).execute("SELECT COUNT(*) FROM results").fetchone()[0]
        assert 2 <= kept < 12
        (disk / "filler").unlink()  # space is back
        resume = _pasted(lines[0])
        again = embench(*resume, "-q", cwd=tmp_path)
        assert again.returncode == 0, again.stderr
        assert f"({kept} already done)" in again.stdout
        assert sqlite3.connect(store).execute("SELECT COUNT(*) FROM results").fetchone()[0] == 12


# ---------------------------------------------------------------------------- 3. signals and start-up


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_a_signal_at_the_first_line_of_embench_is_one_line(sig: int, code: int) -> None:
    """The earliest embench code (its entry point's first statements) already handles a signal: one line
    and 128 + N, even while `signal` itself (whose enums take a moment to build) is still to be imported."""
    probe = f"import embench.entry, os, time; os.kill(os.getpid(), {int(sig)}); time.sleep(30); print('not stopped')"
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == code and proc.stderr == "embench: interrupted\n" and not proc.stdout, proc


@pytest.mark.slow
@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGHUP, 129), (signal.SIGINT, 130)])
def test_a_signal_stops_the_agents_and_says_how_to_resume(tmp_path: Path, zoo_path: Path, sig: int, code: int) -> None:
    _, args = _long_sweep(tmp_path, zoo_path)
    proc = _start(args, tmp_path)
    wait_for_results(tmp_path / "s.sqlite", 2, proc)
    agents = wait_for("a running job's agent (the sweep's child)", lambda: agent_pids(proc.pid), timeout=60)
    err = interrupt(proc, sig, timeout=60)
    assert proc.returncode == code, err
    assert "Traceback" not in err and "continue with `embench sweep" in err
    assert not [p for p in agents if alive(p)], "an agent outlived the sweep"
    state = sqlite3.connect(tmp_path / "s.sqlite").execute("SELECT state FROM runs").fetchone()[0]
    assert state == "interrupted"
    again = embench(*_pasted(err), "-q", cwd=tmp_path)
    assert again.returncode == 0, again.stderr


def test_ctrl_c_while_starting_is_one_line(tmp_path: Path) -> None:
    """Interrupts at several moments of start-up (imports take about a second): never a traceback out of
    embench's code. One that lands in the interpreter's own start-up (site, runpy: before the first line
    of embench runs, some 25 ms here and longer under load) is Python's to report, not embench's."""
    Store(tmp_path / "s.sqlite").close()  # `runs` reads a store; it never creates one
    for delay in (0.05, 0.15, 0.3, 0.5, 0.8):
        proc = _start(["runs", "--store", str(tmp_path / "s.sqlite")], tmp_path)
        threading.Event().wait(delay)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        assert not ("Traceback" in err and f"{os.sep}embench{os.sep}" in err), (delay, err)
        # 130, or killed by the SIGINT itself when it lands before Python's own handler is in place or
        # while it finalises: a shell shows both as 130. 0 when it came after the work was done.
        assert proc.returncode in (0, 130, -signal.SIGINT), (delay, err)
        assert len(err.strip().splitlines()) <= 1


def test_an_interrupt_that_numpy_turns_into_an_import_error_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A SIGINT inside a C extension's import comes out as that module's ImportError ("PyCapsule_Import
    could not import module datetime", seen under load at 0.05 s): still an interrupt, not a traceback.
    The landing is made certain here: the CLI's import fails after a SIGINT was received."""
    from embench import entry  # noqa: PLC0415

    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    monkeypatch.setitem(sys.modules, "embench.cli", None)  # importing it now raises ImportError
    try:
        monkeypatch.setattr(entry, "RECEIVED", [signal.SIGINT])
        assert entry.main() == 130 and capsys.readouterr().err == "embench: interrupted\n"
        monkeypatch.setattr(entry, "RECEIVED", [])
        with pytest.raises(ImportError):  # no interrupt: a broken install is not hidden
            entry.main()
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


def test_an_interrupt_while_the_cli_builds_its_parser_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Seen once under load at 0.8 s: the SIGINT landed in argparse, after the imports but before the
    CLI's own handler. The landing is made certain here; afterwards a late signal ends the process
    silently (the default action), never with a traceback."""
    from embench import cli, entry  # noqa: PLC0415

    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}

    def interrupted_parser(argv: object = None) -> int:
        signal.raise_signal(signal.SIGINT)  # through entry's own handler, as a real Ctrl-C
        raise AssertionError("the handler should have raised")

    monkeypatch.setattr(cli, "main", interrupted_parser)
    try:
        monkeypatch.setattr(entry, "RECEIVED", [])
        assert entry.main() == 130 and capsys.readouterr().err == "embench: interrupted\n"
        assert signal.getsignal(signal.SIGINT) == signal.SIG_DFL
        monkeypatch.setattr(cli, "main", lambda argv=None: 0)
        assert entry.main() == 0 and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


# ---------------------------------------------------------------------------- 4. text from devices, names in reports


def test_what_a_device_says_cannot_drive_the_terminal(tmp_path: Path, zoo_path: Path) -> None:
    evil = tmp_path / "python"
    evil.write_text("#!/bin/sh\nprintf 'boom\\033]0;pwned\\007\\033[2J\\033[31mred\\r\\n' >&2\nexit 1\n")
    evil.chmod(0o755)
    inv = write_inventory(tmp_path, zoo_path, {"models": ["tiny"], "runtimes": ["litert"]},
                          [{"name": "host", "python": str(evil)}])  # fmt: skip
    for verb in (["sweep", str(inv), "--store", str(tmp_path / "s.sqlite"), "-q"], ["devices", str(inv)]):
        out = embench(*verb, cwd=tmp_path)
        assert "boom" in out.stdout + out.stderr  # said, but harmless
        assert "\x1b" not in out.stdout + out.stderr and "\x07" not in out.stdout + out.stderr
        assert "\r" not in out.stdout + out.stderr


def test_names_with_dollars_commas_and_newlines_in_reports(tmp_path: Path, zoo_path: Path) -> None:
    name = "lab $A$, rack 1|2"
    inv = write_inventory(tmp_path, zoo_path, {"models": ["tiny"], "runtimes": ["litert"], "delegates": {"litert": ["cpu"]}},
                          [{"name": name}])  # fmt: skip
    assert embench("sweep", str(inv), "--store", str(tmp_path / "s.sqlite"), "-q", cwd=tmp_path).returncode == 0
    out = embench("report", "--store", str(tmp_path / "s.sqlite"), "--out", str(tmp_path / "r"), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    paths = dict(line.split(None, 1) for line in out.stdout.splitlines())
    rows = list(csv.DictReader(io.StringIO(Path(paths["samples"]).read_text())))
    assert rows and all(r["device"] == name and r["model"] == "tiny" and int(r["latency_ns"]) > 0 for r in rows)
    results = list(csv.DictReader(io.StringIO(Path(paths["csv"]).read_text())))
    assert [r["device"] for r in results] == [name]
    md = Path(paths["markdown"]).read_text().splitlines()
    row = next(line for line in md if line.startswith("| lab"))
    assert (
        row.startswith("| lab \\$A\\$, rack 1\\|2 | tiny |") and Path(paths["latency"]).read_bytes()[:4] == b"\x89PNG"
    )


MARKUP_NAMES = ["lab $A$, rack 1|2", "a\\|b", "x\\", "\\\\|", "<img src=x onerror=alert(1)>", "<!-- c -->",
                "<http://x.y>", "_x_", "a_b_", "**b**", "`c`", "~~s~~", "&lt;", "x &amp; y", "[a](http://x)",
                "![i](x)", "a]: http://x", "[a]: http://x", "# h", "1. x", "2) y", "- y", "+ z", "=== ", "mobilenet_v3_small"]  # fmt: skip


@pytest.mark.parametrize("name", MARKUP_NAMES)
def test_a_name_is_plain_text_in_every_markdown_line(name: str) -> None:
    """Read by a CommonMark + GitHub tables parser (markdown-it, as rich ships it), a name in a table cell
    or a list item is that name as text: no HTML, link, emphasis, code, heading or nested list, and the row
    keeps its cells. GitHub's `$…$` math is not in that parser: a `$` is checked to be escaped."""
    from markdown_it import MarkdownIt  # noqa: PLC0415

    from embench.text import md_cell, md_text  # noqa: PLC0415

    md = MarkdownIt("gfm-like").disable("linkify")
    table = md.parse(f"| {md_cell(name)} | x |\n|---|---|\n| {md_cell(name)} | y |\n")
    cells = [t for t in table if t.type == "inline"]
    assert ["".join(c.content for c in t.children or []) for t in cells] == [name.strip(), "x", name.strip(), "y"]
    item = md.parse(f"- {md_text(name)}\n- next\n")  # the start of a line: an environment row, a run fact
    assert [t.type for t in item].count("list_item_open") == 2 and "heading_open" not in [t.type for t in item]
    inline = [t for t in item if t.type == "inline"]
    assert ["".join(c.content for c in t.children or []) for t in inline] == [name.strip(), "next"]
    assert {c.type for t in cells + inline for c in t.children or []} == {"text"}
    assert "$" not in md_cell(name).replace("\\$", "")


def test_a_long_device_name_still_gets_a_page() -> None:
    """A device page's file name stays under the 255 bytes a file name may hold, and apart from its neighbours'."""
    from embench.report.pages import file_slugs  # noqa: PLC0415

    slugs = file_slugs(["d" * 300, "d" * 300 + "2", "pi5"])
    assert len(set(slugs.values())) == 3 and all(len(v) <= 110 for v in slugs.values()) and slugs["pi5"] == "pi5"


def test_a_newline_in_a_name_keeps_the_markdown_table_whole(tmp_path: Path, zoo_path: Path) -> None:
    """…and a terminal escape or a bell in it reaches no report file (someone will `cat` them)."""
    inv = write_inventory(tmp_path, zoo_path, {"models": ["tiny"], "runtimes": ["litert"], "delegates": {"litert": ["cpu"]}},
                          [{"name": "two\nlines\x1b[2J\x07"}])  # fmt: skip
    assert embench("sweep", str(inv), "--store", str(tmp_path / "s.sqlite"), "-q", cwd=tmp_path).returncode == 0
    out = embench("report", "--store", str(tmp_path / "s.sqlite"), "--out", str(tmp_path / "r"), cwd=tmp_path)
    md = Path(dict(line.split(None, 1) for line in out.stdout.splitlines())["markdown"]).read_text()
    table = [line for line in md.split("## Results")[1].split("##")[0].splitlines() if line.startswith("|")]
    assert len(table) == 3 and table[2].startswith("| two lines | tiny |")
    written = [p for p in (tmp_path / "r").rglob("*") if p.suffix in (".md", ".html", ".csv")]
    assert len(written) >= 6 and not [p.name for p in written if {"\x1b", "\x07"} & set(p.read_text())]


# ---------------------------------------------------------------------------- 6. the host's own Python


def test_the_venv_embench_without_activation(tmp_path: Path, zoo_path: Path) -> None:
    """cron and systemd run .venv/bin/embench with a bare PATH: the host agent must use embench's own
    interpreter, and a device on which nothing could be measured is said loudly."""
    program = Path(sys.executable).parent / "embench"
    inv = write_inventory(
        tmp_path, zoo_path, {"models": ["tiny"], "runtimes": ["litert"], "delegates": {"litert": ["cpu"]}}
    )
    env = {"PATH": "/usr/bin:/bin", "HOME": os.environ.get("HOME", "/root")}
    out = subprocess.run([str(program), "sweep", str(inv), "--store", str(tmp_path / "s.sqlite"), "-q"], cwd=tmp_path,
                         env=env, capture_output=True, text=True, timeout=300, check=False)  # fmt: skip
    assert out.returncode == 0, out.stderr
    (status,) = sqlite3.connect(tmp_path / "s.sqlite").execute("SELECT status FROM results").fetchone()
    assert status == "ok"
    bare = write_inventory(tmp_path, zoo_path, {"models": ["tiny"], "runtimes": ["litert"], "delegates": {"litert": ["cpu"]}},
                           [{"name": "host", "python": "/usr/bin/python3"}])  # fmt: skip
    out = subprocess.run([str(program), "sweep", str(bare), "--store", str(tmp_path / "t.sqlite"), "-q"], cwd=tmp_path,
                         env=env, capture_output=True, text=True, timeout=300, check=False)  # fmt: skip
    assert out.returncode == 3, out.stderr
    assert "device host: NOTHING MEASURED: no runtime of the sweep imports there, e.g. " in out.stderr
    assert "no TFLite runtime importable" in out.stderr
