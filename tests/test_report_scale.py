"""Issue 13: the report at lab scale, read as a person would, and the Python API. A synthetic lab run
(tests/labstore.py: real Store, real Job/Result classes) of 25 devices' worth of jobs is reported and
opened in real headless Chromium at 1400 px: the overview grids, the results table (sorted, searched
and paged by the embedded Grid.js), one device's page, no console error and no sideways scrolling."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
from conftest import chromium_load, chromium_shot, embench, has_colour
from labstore import CONFIGS, lab_shape, write_lab_run

import embench as api
from embench.errors import StoreError
from embench.report.tables import _spread_advice
from embench.store import PlanEntry, Store

JOBS = 400  # 5 devices × 8 models × 10 configurations: 40 panels, more than figures are drawn for
DEVICES, MODELS = lab_shape(JOBS)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, Path]:
    folder = tmp_path_factory.mktemp("lab")
    store = folder / "lab.sqlite"
    run_id = write_lab_run(store, JOBS, samples=60, repetitions=3)
    out = embench("report", "--store", str(store), "--out", str(folder / "reports"), cwd=folder)
    assert out.returncode == 0, out.stderr
    return store, run_id, folder / "reports" / run_id


def test_python_api_takes_str_and_path_and_never_creates(lab: tuple[Path, str, Path], tmp_path: Path) -> None:
    store, run_id, _ = lab
    by_str, by_path = api.results(str(store)), api.results(store, run=run_id[:15])
    pd.testing.assert_frame_equal(by_str, by_path)
    assert len(by_str) == len(Store(store).results(run_id)) and by_str["job_id"].is_unique
    for col in ("device", "model", "precision", "runtime", "delegate", "threads", "status", "median_ms", "ci_low_ms",
                "p99_ms", "speedup", "energy_mj", "notes", "runtime_version", "policy"):  # fmt: skip
        assert col in by_str.columns, col
    ok = by_str[by_str.status == "ok"]
    assert ok["median_ms"].gt(0).all() and ok["speedup"].notna().any()
    samples = api.samples(str(store))
    assert list(samples.columns) == ["job_id", "device", "model", "precision", "runtime", "delegate", "threads",
                                     "repetition", "seq", "latency_ms"]  # fmt: skip
    counts = samples.groupby("job_id").size()
    assert (counts == by_str.set_index("job_id")["n"][counts.index]).all()
    assert set(samples["repetition"]) == {0, 1, 2}
    # the median the API reports is the median of the samples it gives
    one = ok.iloc[0]
    assert samples[samples.job_id == one["job_id"]]["latency_ms"].median() == pytest.approx(one["median_ms"], rel=1e-9)
    runs = api.runs(Path(store))
    assert runs["run_id"].tolist() == [run_id] and runs["recorded"].iloc[0] == len(by_str)
    assert isinstance(runs["started"].iloc[0], pd.Timestamp)
    missing = tmp_path / "nope.sqlite"
    with pytest.raises(StoreError, match=r"nope\.sqlite does not exist"):
        api.results(str(missing))
    assert not missing.exists()


def test_advice_matches_the_evidence(lab: tuple[Path, str, Path]) -> None:
    """A high CV with a tight median CI is a tail of outliers, not an unsteady run."""
    frame = api.results(lab[0])
    tail = frame[frame.notes.str.contains("outlier tail")]
    assert not tail.empty and (tail.cv_pct >= 10).all()
    assert ((tail.p75_ms - tail.p25_ms) / 1.349 / tail.median_ms < 0.10).all()
    assert not frame.notes.str.contains("raise min_seconds").any()  # the bulk of every job here is tight
    wide = frame.iloc[0].copy()
    wide["p25_ms"], wide["p75_ms"] = 0.7 * wide["median_ms"], 1.4 * wide["median_ms"]
    wide["cv_pct"] = 40.0
    assert "raise min_seconds" in _spread_advice(wide)


def test_lab_report_files_and_overview(lab: tuple[Path, str, Path]) -> None:
    _, _, out = lab
    html = (out / "report.html").read_text()
    for grid in ("latency", "speedup", "quantization", "delegate", "status"):
        assert f"id='grid-{grid}'" in html, grid
    assert not list(out.glob("latency.png"))  # 40 panels: no per-panel figure; each row has its box plot
    assert "Per-configuration figures are drawn for up to 24" in html
    pages = sorted(p.name for p in (out / "devices").glob("*.html"))
    assert len(pages) == DEVICES == 5 and "pixel7-00.html" in pages
    md = (out / "report.md").read_text()
    assert "**runtimes**: litert 1.4.0" in md and "**timed as**: 5 warm-up runs" in md
    assert "3 repetitions (interleaved, process)" in md


def test_lab_study_and_op_files_at_scale(lab: tuple[Path, str, Path], tmp_path: Path) -> None:
    """At 40 device × model pairs the study is written, the per-op files are not (the page says how),
    and --op-files writes them; the study's headline has a row per device × model."""
    store, run_id, out = lab
    study = (out / "study.md").read_text()
    assert not (out / "ops.csv").exists() and not (out / "model-explorer").exists()
    ops = api.ops(store)
    assert f"This run holds {len(ops):,} per-op records over 40 device × model pairs" in study
    assert "`embench report --op-files`" in study
    headline = study.split("## Headline")[1].split("\n\n")[1].splitlines()[2:]
    assert len(headline) == DEVICES * MODELS
    full = embench("report", "--store", str(store), "--out", str(tmp_path), "--op-files", cwd=tmp_path)
    assert full.returncode == 0, full.stderr
    written = tmp_path / run_id
    assert len(pd.read_csv(written / "ops.csv")) == len(ops)
    placements = list((written / "model-explorer").rglob("*.placement.json"))
    assert placements and not list((written / "model-explorer").rglob("*.time.json"))  # LiteRT: placement only


def test_overview_in_chromium_filters_sorts_and_fits(lab: tuple[Path, str, Path], tmp_path: Path) -> None:
    _, _, out = lab
    page = out / "report.html"
    dom, console = chromium_load(page, tmp_path / "chrome")
    assert console == []
    rows = _body_rows(dom)
    assert len(rows) == 50  # the first page of the table
    assert _sideways(dom) == 0
    assert f"of <b>{JOBS}</b> results" in dom or f"{JOBS}</b>" in dom  # Grid.js's pager counts every job
    filtered, console = chromium_load(page, tmp_path / "chrome", "?q=galaxy-s23-04")
    assert console == []
    shown = _body_rows(filtered)
    assert shown and all("galaxy-s23-04" in r for r in shown)
    assert f"of <b>{MODELS * len(CONFIGS)}</b> results" in filtered  # every model and configuration of that device


def test_screenshots_at_1400px(lab: tuple[Path, str, Path], tmp_path: Path) -> None:
    _, _, out = lab
    overview = chromium_shot(out / "report.html", tmp_path / "chrome", tmp_path / "overview.png", 1400, 4200)
    assert has_colour(overview, (0xDF, 0xF0, 0xD8))  # ok status in the table
    assert has_colour(overview, (0xC6, 0xDB, 0xEF), 30)  # the rows' box plots (SVG drawn by the page)
    greens = (abs(overview[..., 1] - 0.8) < 0.12) & (overview[..., 0] < 0.85) & (overview[..., 2] < 0.85)
    assert greens.sum() > 5000  # the grids' cells
    device = chromium_shot(out / "devices" / "pixel7-00.html", tmp_path / "chrome", tmp_path / "device.png", 1400, 2400)
    assert has_colour(device, (0xC6, 0xDB, 0xEF), 30) and has_colour(device, (0xDF, 0xF0, 0xD8))
    dom, console = chromium_load(out / "devices" / "pixel7-00.html", tmp_path / "chrome")
    assert console == [] and "Median latency (ms) of each model and configuration" in dom
    assert _sideways(dom) == 0


def _body_rows(dom: str) -> list[str]:
    """The results table's rows as drawn (not its header row)."""
    body = dom.split('<tbody class="gridjs-tbody">', 1)[1].split("</tbody>", 1)[0]
    return re.findall(r'<tr class="gridjs-tr">(.*?)</tr>', body)


def _sideways(dom: str) -> int:
    """How far the page or its table scrolls sideways (the page reports it once its table is drawn)."""
    found = re.search(r'data-sideways-px="(-?\d+)"', dom)
    assert found, "the table never reported itself drawn"
    return int(found.group(1))


HOSTILE = ["<script>alert(1)</script>", "rack 2/pixel 7", "pixel$7 ünï", "a'b\"c", "rack 2_pixel 7"]


def test_hostile_names_render_as_text(tmp_path: Path) -> None:
    """Device and model names are text on every page: markup, quotes, slashes, `$`, spaces and names that
    make the same file name all render as themselves, with no script run and no page overwritten."""
    store = tmp_path / "s.sqlite"
    models = ["net</script><b>x", "m&m", "n<!--<script>y"]  # the last would hold the page's own </script> open
    write_lab_run(store, 50, samples=20, names=HOSTILE, model_names=models)
    out = embench("report", "--store", str(store), "--out", str(tmp_path / "r"), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    run = next((tmp_path / "r").iterdir())
    pages = list((run / "devices").glob("*.html"))
    assert len(pages) == len(HOSTILE)  # "rack 2/pixel 7" and "rack 2_pixel 7" both keep a page
    dom, console = chromium_load(run / "report.html", tmp_path / "chrome", "?q=" + "m%26m")
    assert console == []  # no alert, no broken script
    assert "<script>alert(1)</script>" not in dom.split("<body", 1)[1]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in dom and "net&lt;/script&gt;&lt;b&gt;x" in dom
    assert _body_rows(dom) and all("m&amp;m" in r for r in _body_rows(dom))
    for page in pages:
        dom, console = chromium_load(page, tmp_path / "chrome")
        assert console == [] and _body_rows(dom), page.name


def test_a_run_where_nothing_was_measured_still_reports(tmp_path: Path) -> None:
    """Every job failed: no grid has data, no row a distribution; the pages still say what happened."""
    from embench_agent.protocol import DelegateSpec, Job, ModelRef, Result  # noqa: PLC0415

    store = Store(tmp_path / "s.sqlite")
    jobs = [Job(f"j{i}", "pi5", ModelRef("m", "tflite", "fp32"), "litert", DelegateSpec("gpu"), 1) for i in range(2)]
    run_id = store.begin_run("lab.yaml", [PlanEntry.of(j) for j in jobs], "t")
    store.add_results(run_id, [(j, Result(j.job_id, "unsupported", "no GPU driver on this board")) for j in jobs])
    store.end_run(run_id, "finished")
    store.close()
    out = embench("report", "--store", str(tmp_path / "s.sqlite"), "--out", str(tmp_path / "r"), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    page = tmp_path / "r" / run_id / "report.html"
    dom, console = chromium_load(page, tmp_path / "chrome")
    assert console == [] and "id='grid-latency'" not in page.read_text() and "id='grid-status'" in page.read_text()
    assert len(_body_rows(dom)) == 2 and "no GPU driver on this board" in dom
    shown = embench("show", "--store", str(tmp_path / "s.sqlite"), cwd=tmp_path)
    assert shown.returncode == 0 and "pi5: 2 job(s): 2 unsupported" in shown.stdout, shown.stderr
