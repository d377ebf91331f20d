"""`embench sweep` and `embench report` end to end, through the real CLI, on the host."""

from __future__ import annotations

import csv as csvlib
import json
import os
import signal
import sqlite3
import subprocess
from collections.abc import Callable
from csv import DictReader
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from conftest import (
    chromium_load,
    chromium_shot,
    embench,
    fast_run,
    has_colour,
    interrupt,
    markdown_row,
    start_embench,
    wait_for_results,
    write_inventory,
)
from procs import default_signals

from embench.inventory import RunPolicy, load_inventory
from embench.plan import PlannedJob, make_plan
from embench.store import Store
from embench.zoo import Zoo
from embench_agent.protocol import Result

ALL_STATUSES_SWEEP = {
    "models": ["tiny", "squeezenet", "corrupt"],
    "precisions": ["fp32", "int8"],
    "runtimes": ["litert", "onnxruntime"],
    "delegates": {
        "litert": ["cpu", "xnnpack", "edgetpu"],
        "onnxruntime": ["CPUExecutionProvider", "CUDAExecutionProvider"],
    },
    "threads": [1, 2],
}


def _db(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(str(path))


@dataclass(frozen=True)
class Swept:
    folder: Path
    inventory: Path
    store: Path
    out: subprocess.CompletedProcess[str]


@pytest.fixture(scope="module")
def swept(zoo_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Swept:
    folder = tmp_path_factory.mktemp("sweep")
    inv = write_inventory(folder, zoo_path, ALL_STATUSES_SWEEP)
    store = folder / "store.sqlite"
    return Swept(folder, inv, store, embench("sweep", str(inv), "--store", str(store), "--quiet", cwd=folder))


def test_sweep_records_every_job_with_its_status(swept: Swept, zoo_path: Path) -> None:
    out = swept.out
    # the corrupt model fails: exit 3, and the failure is named on one line
    assert out.returncode == 3, out.stderr
    line = next(
        x for x in out.stderr.splitlines() if "host/corrupt/fp32/litert:xnnpack/t1: failed: cannot load model" in x
    )
    assert line.endswith(f"(models.corrupt.files in {zoo_path}) with a model that loads")
    db = _db(swept.store)  # type: ignore[arg-type]
    rows = db.execute("SELECT model, precision, runtime, delegate, threads, status, n_samples FROM results").fetchall()
    planned = db.execute("SELECT planned FROM runs").fetchone()[0]
    # tiny: fp32 (cpu, xnnpack + 2 ORT) and int8 (cpu, xnnpack, edgetpu + 2 ORT on the QDQ file),
    # squeezenet: 2 ORT, corrupt: cpu, xnnpack (the Edge TPU runs int8 only); × 2 threads
    assert len(rows) == planned == 2 * (4 + 5) + 2 * 2 + 2 * 2
    status = {(m, p, r, d, t): s for m, p, r, d, t, s, _ in rows}
    assert status[("tiny", "fp32", "litert", "cpu", 1)] == "ok"
    assert status[("tiny", "int8", "litert", "xnnpack", 2)] in ("ok", "fallback")
    assert status[("tiny", "int8", "litert", "edgetpu", 1)] == "unsupported"
    assert status[("squeezenet", "fp32", "onnxruntime", "CPUExecutionProvider", 2)] == "ok"
    assert status[("squeezenet", "fp32", "onnxruntime", "CUDAExecutionProvider", 1)] == "unsupported"
    assert status[("corrupt", "fp32", "litert", "cpu", 1)] == "failed"
    no_tpu_model = db.execute("SELECT message FROM results WHERE delegate='edgetpu'").fetchone()[0]
    assert no_tpu_model.startswith("no Edge TPU model for tiny: install the Edge TPU compiler")
    # every raw sample is stored, and the counts agree
    for job_id, n in db.execute("SELECT job_id, n_samples FROM results"):
        assert db.execute("SELECT COUNT(*) FROM samples WHERE job_id=?", (job_id,)).fetchone()[0] == n
    measured = [n for *_, s, n in rows if s in ("ok", "fallback")]
    assert measured and min(measured) >= 5


def test_report_has_tables_figures_and_csv(swept: Swept) -> None:
    folder = swept.folder
    out = embench("report", "--store", str(swept.store), "--out", str(folder / "reports"), cwd=folder)
    assert out.returncode == 0, out.stderr
    paths = dict(line.split(None, 1) for line in out.stdout.strip().splitlines())
    md = Path(paths["markdown"]).read_text()
    assert markdown_row(md, "host", "tiny", "fp32", "litert", "cpu", "1")["status"] == "ok"
    assert "## Compatibility" in md and "unsupported" in md and "failed" in md
    table = list(csvlib.reader(Path(paths["csv"]).read_text().splitlines()))
    header = table[0]
    for col in (
        "median_ms",
        "ci_low_ms",
        "p90_ms",
        "p99_ms",
        "cv_pct",
        "init_ms",
        "first_inference_ms",
        "peak_rss_mb",
        "speedup",
    ):
        assert col in header
    row = dict(
        zip(header, next(r for r in table[1:] if r[:6] == ["host", "tiny", "fp32", "litert", "cpu", "1"]), strict=True)
    )
    assert float(row["median_ms"]) > 0 and float(row["speedup"]) == 1.0
    _check_every_speedup(Path(paths["csv"]), swept.store)
    assert Path(paths["latency"]).read_bytes()[:4] == b"\x89PNG"
    html = Path(paths["html"]).read_text()
    assert html.count("data:image/png;base64,") == 2 and "<table class='plain'>" in html
    assert "devices/host.html" in html and (Path(paths["devices"]) / "host.html").is_file()
    samples = Path(paths["samples"]).read_text().splitlines()
    db = _db(swept.store)  # type: ignore[arg-type]
    assert len(samples) - 1 == db.execute("SELECT COUNT(*) FROM samples").fetchone()[0]


# The single-thread CPU baseline of each model (docs/report.md): LiteRT's plain CPU kernels where the
# model has a TFLite file, else ONNX Runtime's CPU provider.
BASELINES = {"tiny": ("litert", "cpu"), "squeezenet": ("onnxruntime", "CPUExecutionProvider")}


def _check_every_speedup(csv: Path, store: Path) -> None:
    """Every measured row's speedup is its baseline's median over its own, both medians recomputed here
    from the raw samples in the store."""
    with csv.open(newline="") as f:
        rows = list(DictReader(f))
    raw: dict[str, list[int]] = {}
    for job_id, ns in _db(store).execute("SELECT job_id, latency_ns FROM samples"):
        raw.setdefault(job_id, []).append(ns)
    job_ids = dict(
        _db(store).execute(
            "SELECT runtime || ':' || delegate || ':' || threads || ':' || model || ':' || precision, job_id FROM results"
        )
    )
    checked = 0
    for row in rows:
        if row["status"] not in ("ok", "fallback"):
            assert row["speedup"] == "", row
            continue
        rt, delegate = BASELINES[row["model"]]
        base = float(np.median(raw[job_ids[f"{rt}:{delegate}:1:{row['model']}:{row['precision']}"]]))
        own = float(
            np.median(
                raw[job_ids[f"{row['runtime']}:{row['delegate']}:{row['threads']}:{row['model']}:{row['precision']}"]]
            )
        )
        assert float(row["speedup"]) == pytest.approx(base / own, rel=1e-3), row
        checked += 1
    assert checked >= 8  # tiny fp32 and int8 on two delegates × 2 threads, squeezenet × 2 threads


def test_resume_after_a_finished_run_does_nothing(swept: Swept) -> None:
    folder = swept.folder
    out = embench("sweep", str(swept.inventory), "--store", str(swept.store), "--resume", "-q", cwd=folder)
    # nothing is measured again, and the run still holds its failed jobs: said, and exit 3
    assert out.returncode == 3, out.stderr
    assert "nothing new" in out.stdout and "already done" in out.stdout
    assert "job(s) of run" in out.stderr and "still failed from an earlier sweep" in out.stderr


def _start_long_sweep(
    zoo_path: Path, folder: Path, preexec: Callable[[], None] = default_signals
) -> tuple[subprocess.Popen[str], Path, Path]:
    sweep = {"models": ["tiny"], "precisions": ["fp32", "fp16", "int8"], "runtimes": ["litert"],
             "delegates": {"litert": ["cpu", "xnnpack"]}, "threads": [1, 2],
             "run": fast_run(min_seconds=0.6, max_seconds=1.0)}  # fmt: skip
    inv = write_inventory(folder, zoo_path, sweep)
    store = folder / "store.sqlite"
    proc = start_embench("sweep", str(inv), "--store", str(store), "-q", cwd=folder, preexec_fn=preexec)
    return proc, inv, store


@pytest.mark.slow
@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGKILL])
def test_interrupted_sweep_keeps_results_and_resume_completes(
    zoo_path: Path, tmp_path: Path, how: signal.Signals
) -> None:
    proc, inv, store = _start_long_sweep(zoo_path, tmp_path)
    wait_for_results(store, 3, proc)
    seen = set(_db(store).execute("SELECT job_id, started_unix FROM results").fetchall())
    err = interrupt(proc, how, timeout=60)
    db = _db(store)
    kept = db.execute("SELECT job_id, started_unix FROM results").fetchall()
    assert seen <= set(kept)  # every result stored before the signal is still there, unchanged
    for job_id, n in db.execute("SELECT job_id, n_samples FROM results"):  # with all of its samples
        assert db.execute("SELECT COUNT(*) FROM samples WHERE job_id=?", (job_id,)).fetchone()[0] == n > 0
    if how == signal.SIGINT:
        assert proc.returncode == 130
        assert "--resume" in err
        assert db.execute("SELECT state FROM runs").fetchone()[0] == "interrupted"
    planned = db.execute("SELECT planned FROM runs").fetchone()[0]
    assert len(kept) < planned
    out = embench("sweep", str(inv), "--store", str(store), "--resume", "-q", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert f"({len(kept)} already done)" in out.stdout
    after = dict(db.execute("SELECT job_id, started_unix FROM results").fetchall())
    assert len(after) == planned and db.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 1
    assert all(after[job] == started for job, started in kept)  # finished jobs were not redone


def test_ctrl_c_works_when_started_with_sigint_ignored(zoo_path: Path, tmp_path: Path) -> None:
    """A job started from a background shell (`embench sweep ... &`, some CI runners) inherits SIGINT
    ignored; embench still stops on it like on Ctrl-C."""

    def ignore_sigint() -> None:
        default_signals()
        signal.signal(signal.SIGINT, signal.SIG_IGN)

    proc, _, store = _start_long_sweep(zoo_path, tmp_path, ignore_sigint)
    wait_for_results(store, 1, proc)
    err = interrupt(proc, timeout=60)
    assert proc.returncode == 130, err
    assert _db(store).execute("SELECT state FROM runs").fetchone()[0] == "interrupted"


def test_unwritable_store_is_one_clear_line(zoo_path: Path, tmp_path: Path) -> None:
    inv = write_inventory(tmp_path, zoo_path, {"models": ["tiny"]})
    blocker = tmp_path / "file"
    blocker.write_text("")
    out = embench("sweep", str(inv), "--store", str(blocker / "sub" / "s.sqlite"), cwd=tmp_path)
    assert out.returncode == 1
    assert out.stderr.startswith("embench: error: cannot use the results database") and "--store" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_store_from_environment_and_report_of_empty_store(zoo_path: Path, tmp_path: Path) -> None:
    """Reading verbs never create a database: a missing one is named, with what to do."""
    env = {"EMBENCH_STORE": str(tmp_path / "env.sqlite")}
    for verb in (["report"], ["runs"], ["show"], ["compare", "x"], ["history", "x"], ["baseline", "show"]):
        out = embench(*verb, cwd=tmp_path, env=env)
        assert out.returncode == 1 and "env.sqlite does not exist" in out.stderr and "embench sweep" in out.stderr, verb
        assert len(out.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "env.sqlite").exists() and not list(tmp_path.iterdir())
    Store(tmp_path / "env.sqlite").close()
    out = embench("report", cwd=tmp_path, env=env)
    assert out.returncode == 1 and "holds no runs yet" in out.stderr


def test_device_that_does_not_offer_a_delegate_is_not_attempted(zoo_path: Path, tmp_path: Path) -> None:
    devices = [{"name": "host", "transport": "local", "delegates": ["cpu"]}]
    inv = write_inventory(tmp_path, zoo_path, {"models": ["tiny"], "runtimes": ["litert"],
                                               "delegates": {"litert": ["cpu", "xnnpack"]}}, devices)  # fmt: skip
    out = embench("sweep", str(inv), "--store", str(tmp_path / "s.sqlite"), "-q", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    rows = dict(_db(tmp_path / "s.sqlite").execute("SELECT delegate, result_json FROM results").fetchall())
    skipped = Result.from_json(rows["xnnpack"])
    assert skipped.status == "unsupported" and "not attempted" in str(skipped.message) and skipped.agent == "host"


def test_devices_lists_reachability_facts_and_runtimes(zoo_path: Path, tmp_path: Path) -> None:
    devices = [
        {"name": "host", "transport": "local"},
        {"name": "nopython", "transport": "local", "python": "python3.0-missing"},
    ]
    inv = write_inventory(tmp_path, zoo_path, {"models": ["tiny"]}, devices)
    out = embench("devices", str(inv), cwd=tmp_path)
    assert out.returncode == 3, out.stderr  # one device is unreachable: a health check must see it
    lines = out.stdout.splitlines()
    assert lines[0].startswith("host") and "reachable" in lines[0] and "cores" in lines[0]
    assert any("litert: ai_edge_litert" in line for line in lines)
    assert any("CPUExecutionProvider" in line for line in lines)
    assert any(line.startswith("nopython") and "UNREACHABLE" in line and "python3.0-missing" in line for line in lines)
    js = embench("devices", str(inv), "--json", cwd=tmp_path)
    first, second = (json.loads(line) for line in js.stdout.splitlines())  # every line is JSON, dead ones too
    assert first["device"] == "host" and first["reachable"] is True and first["facts"]["cores"] == os.cpu_count()
    assert second["device"] == "nopython" and second["reachable"] is False and "python3.0-missing" in second["error"]
    assert js.returncode == 3
    healthy = write_inventory(tmp_path, zoo_path, {"models": ["tiny"]}, devices[:1])
    assert embench("devices", str(healthy), cwd=tmp_path).returncode == 0


def test_no_build_names_the_command(tmp_path: Path, zoo_path: Path) -> None:
    manifest = tmp_path / "zoo.yaml"
    manifest.write_text(zoo_path.read_text())  # same models, no build folder here
    inv = write_inventory(tmp_path, manifest, {"models": ["tiny"]})
    out = embench("sweep", str(inv), "--no-build", "--store", str(tmp_path / "s.sqlite"), cwd=tmp_path)
    assert out.returncode == 1
    assert "run `embench models build tiny --zoo " in out.stderr


def test_job_ids_are_stable(zoo_path: Path, tmp_path: Path) -> None:
    """`--resume` finds finished jobs by id, across processes and embench versions: the id of a fixed
    job is pinned here. If this fails, a change altered what an id hashes (a new RunPolicy field, a
    renamed field) and every stored run would be measured again on resume: keep old ids or say so."""
    pinned = PlannedJob("host", "tiny", "fp32", "tflite", "litert", "xnnpack", 1, RunPolicy(), 0)
    assert pinned.job_id == "21ccd836fba86366"
    inv = load_inventory(write_inventory(tmp_path, zoo_path, ALL_STATUSES_SWEEP))
    a = [j.job_id for j in make_plan(inv, Zoo(zoo_path)).jobs]
    assert len(set(a)) == len(a)
    other = load_inventory(write_inventory(tmp_path, zoo_path, {**ALL_STATUSES_SWEEP, "threads": [1, 4]}))
    c = {j.label: j.job_id for j in make_plan(other, Zoo(zoo_path)).jobs}
    d = {j.label: j.job_id for j in make_plan(inv, Zoo(zoo_path)).jobs}
    assert all(c[k] == d[k] for k in c if k.endswith("/t1")) and c.keys() != d.keys()
    changed = load_inventory(write_inventory(tmp_path, zoo_path, {**ALL_STATUSES_SWEEP, "seed": 7}))
    assert not set(a) & {j.job_id for j in make_plan(changed, Zoo(zoo_path)).jobs}  # the seed defines a job


def test_html_report_renders_in_headless_chromium(swept: Swept) -> None:
    """The page is self-contained: tables, grids and both embedded figures render with no network, and
    the results table is built by its script with no console error."""
    folder = swept.folder
    out = embench("report", "--store", str(swept.store), "--out", str(folder / "reports"), cwd=folder)
    page = Path(dict(line.split(None, 1) for line in out.stdout.splitlines())["html"])
    dom, console = chromium_load(page, folder / "chrome")
    assert console == []
    assert 'id="compatibility"' in dom and dom.count('class="ok"') >= 5
    assert dom.count('class="gridjs-tr"') == 1 + len(swept_rows(swept.store))  # the header, then every job
    pixels = chromium_shot(page, folder / "chrome", folder / "page.png", height=9000)
    assert has_colour(pixels, (0xDF, 0xF0, 0xD8))  # green "ok" cells of the tables
    assert has_colour(pixels, (0x48, 0x78, 0xA8))  # the speedup figure's bars
    assert has_colour(pixels, (0xC6, 0xDB, 0xEF))  # the latency figure's boxes


def swept_rows(store: Path) -> list[tuple[str]]:
    return _db(store).execute("SELECT job_id FROM results").fetchall()  # type: ignore[arg-type]


def test_progress_without_a_terminal_is_one_line_per_job(zoo_path: Path, tmp_path: Path) -> None:
    inv = write_inventory(tmp_path, zoo_path, {"models": ["tiny"], "runtimes": ["litert"], "threads": [1, 2]})
    out = embench("sweep", str(inv), "--store", str(tmp_path / "s.sqlite"), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    lines = [x for x in out.stderr.splitlines() if x.startswith("[")]
    assert lines[0].startswith("[1/2] host/tiny/fp32/litert:xnnpack/t1: ")
    assert lines[1].startswith("[2/2] host/tiny/fp32/litert:xnnpack/t2: ") and " median " in lines[1]
    quiet = embench("sweep", str(inv), "--store", str(tmp_path / "q.sqlite"), "-q", cwd=tmp_path)
    assert quiet.returncode == 0 and quiet.stderr == ""


def test_repetitions_make_another_job_but_leave_old_ids_alone() -> None:
    plain = PlannedJob("host", "tiny", "fp32", "tflite", "litert", "xnnpack", 1, RunPolicy(), 0)
    repeated = PlannedJob("host", "tiny", "fp32", "tflite", "litert", "xnnpack", 1, RunPolicy(repetitions=10), 0)
    forked = PlannedJob("host", "tiny", "fp32", "tflite", "litert", "xnnpack", 1, RunPolicy(isolation="fork"), 0)
    assert len({plain.job_id, repeated.job_id, forked.job_id}) == 3
