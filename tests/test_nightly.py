"""`embench nightly`, `compare`, `baseline` and `history` as a lab runs them: real sweeps of real ONNX
Runtime on the host, each job in fresh forked processes, nights in one store."""

from __future__ import annotations

import json
import math
import re
import shlex
import signal
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import pytest
import xmlschema
import yaml
from chainmodel import chain_model
from conftest import REPO, embench, fast_run, interrupt, start_embench, wait_for, wait_for_results

from embench.compare import Comparison
from embench.errors import EmbenchError
from embench.history import Point, Step, matches
from embench.nightly import judge, nightly_lock
from embench.report import verdicts
from embench.report.pages import file_slugs
from embench.store import Store

JUNIT_XSD = Path(__file__).parent / "fixtures" / "junit" / "junit-10.xsd"


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two series, each a chain model on ONNX Runtime: `chain` (whose file a night swaps for one with four
    times the work) and `steady` (never changes)."""
    root = tmp_path_factory.mktemp("lab")
    chain_model(root / "chain6.onnx", 6, 128)
    chain_model(root / "chain24.onnx", 24, 128)
    chain_model(root / "steady.onnx", 4, 128, seed=1)
    return root


def _night_files(lab: Path, folder: Path, chain_file: str = "chain6.onnx", **nightly: object) -> Path:
    zoo = {"schema": 1, "build_dir": "build", "models": {
        "chain": {"files": {"onnx-fp32": str(lab / chain_file)}},
        "steady": {"files": {"onnx-fp32": str(lab / "steady.onnx")}}}}  # fmt: skip
    (folder / "zoo.yaml").write_text(yaml.safe_dump(zoo))
    doc = {"schema": 1, "zoo": "zoo.yaml", "store": "lab.sqlite",
           "devices": [{"name": "host", "transport": "local"}],
           "sweep": {"models": ["chain", "steady"], "runtimes": ["onnxruntime"],
                     "delegates": {"onnxruntime": ["CPUExecutionProvider"]}, "threads": [1],
                     "fidelity": {"inputs": 0},
                     "run": fast_run(min_seconds=0.1, idle_seconds=0, repetitions=7)},
           **({"nightly": nightly} if nightly else {})}  # fmt: skip
    path = folder / "inventory.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def _verdicts(out: Path, run: str) -> dict[str, dict[str, object]]:
    body = json.loads((out / run / "verdicts.json").read_text())
    return {f"{s['series']['model']}": s for s in body["series"]}


def _run_id(stdout: str) -> str:
    return stdout.split("nightly ", 1)[1].split(":", 1)[0]


def _valid_junit(path: Path) -> ET.Element:
    xmlschema.XMLSchema(str(JUNIT_XSD)).validate(str(path))  # raises with the reason when invalid
    return ET.parse(path).getroot()


def _compare_and_history(tmp_path: Path, first: str, second: str, third: str) -> None:
    """`compare` gives the nightly's verdict for the same pair; `history` shows the three nights."""
    # the same verdict from `compare`, on the store the inventory names
    store = str(tmp_path / "lab.sqlite")
    cmp = embench("compare", first, third, "--store", store, "--json", "--out", str(tmp_path / "cmp"), cwd=tmp_path)
    assert cmp.returncode == 0, cmp.stderr
    by_model = {s["series"]["model"]: s for s in json.loads(cmp.stdout)["series"]}
    assert by_model["chain"]["verdict"] == "slower"

    # history: three nights of the series, the third a step up
    hist = embench("history", "host/chain/*", "--store", store, "--out", str(tmp_path / "figs"), cwd=tmp_path)
    assert hist.returncode == 0, hist.stderr
    assert all(run in hist.stdout for run in (first, second, third)) and "R=7" in hist.stdout
    assert len(list((tmp_path / "figs").glob("*.png"))) == 1
    plain = embench("compare", first, third, "--store", store, "--out", str(tmp_path / "cmp"), cwd=tmp_path)
    assert plain.stdout.startswith(f"# embench compare {third}"), plain.stdout[:200]
    assert "which ran after it" not in plain.stdout
    backwards = embench("compare", third, first, "--store", store, "--out", str(tmp_path / "cmp"), cwd=tmp_path)
    assert f"Judged against {third}, which ran after it: `slower` means {first} was slower" in backwards.stdout
    same = embench("compare", first, first, "--store", store, cwd=tmp_path)
    assert same.returncode == 1 and f"are the same run ({first})" in same.stderr, same.stderr
    fix = re.search(r"`(embench compare [^`]+)`$", same.stderr.strip())  # the fix it prints works when pasted
    assert fix, same.stderr
    pasted = embench(*shlex.split(fix.group(1))[1:], "--out", str(tmp_path / "cmp"), cwd=tmp_path / "figs")
    assert pasted.returncode == 0 and pasted.stdout.startswith("# embench compare"), pasted.stderr
    for verb in (["history", "host/chain/*"], ["compare", first, third]):  # a typo'd --out: one line, no traceback
        for not_a_folder in (store, "/dev/null"):
            onto_file = embench(*verb, "--store", store, "--out", not_a_folder, cwd=tmp_path)
            assert onto_file.returncode == 1, onto_file.stderr
            assert onto_file.stderr.strip().endswith("it is not a folder; pass --out a writable folder")
    none = embench("history", "nosuch", "--store", store, cwd=tmp_path)
    assert none.returncode == 1 and "no series matches 'nosuch'" in none.stderr
    # the message names a series that is there, and the glob it suggests works when pasted
    suggested = re.search(r"or '([^']+)'$", none.stderr.strip())
    assert suggested and "host/chain/fp32/" in none.stderr, none.stderr
    pasted = embench("history", suggested.group(1), "--store", store, cwd=tmp_path)
    assert pasted.returncode == 0 and pasted.stdout.startswith("host/chain/fp32/"), pasted.stderr
    Store(tmp_path / "empty.sqlite").close()
    sweeps = embench("history", "chain", "--store", str(tmp_path / "empty.sqlite"), cwd=tmp_path)
    assert sweeps.returncode == 1 and "has no finished nightly runs" in sweeps.stderr, sweeps.stderr


def test_a_history_glob_matches_whole_parts_of_a_series_name() -> None:
    """`history` globs match the whole name or any run of its whole parts; a bare word is a substring."""
    t1 = ("host", "chain20", "fp32", "onnxruntime", "CPUExecutionProvider", 1)
    t12 = ("host", "chain20", "fp32", "onnxruntime", "CPUExecutionProvider", 12)
    cases = {
        "chain20/*/t1": (True, False),
        "host/chain20/*": (True, True),
        "*/t1": (True, False),
        "onnxruntime:*": (True, True),
        "chain2?": (True, True),
        "chain2": (True, True),  # no wildcard: a substring
        "t1": (True, True),
        "hain20/*": (False, False),  # a glob does not cut a part in two
        "litert:*": (False, False),
    }
    for pattern, (want_t1, want_t12) in cases.items():
        assert (matches(t1, pattern), matches(t12, pattern)) == (want_t1, want_t12), pattern


def _no_series_can_find_5_percent(verdicts_json: Path, first_out: str, second_out: str) -> None:
    """What a quiet night vouches for: at a lab threshold of ×2 no series can find 5% (a series flagged
    tonight, e.g. bimodal, has no detectable slowdown and is not counted); the first night judges none."""
    coverage = json.loads(verdicts_json.read_text())["coverage"]
    assert coverage["target"] == 1.05 and coverage["can_find"] == 0 and coverage["judged"] <= 2
    said = f"0/{coverage['judged']} series can find 5%" in second_out if coverage["judged"] else True
    assert "series can find" not in first_out and said, second_out


def _pinned_then_pruned(tmp_path: Path, nightly: Callable[[], tuple[int, str, str]], first: str, second: str,
                        third: str) -> None:  # fmt: skip
    """A pinned baseline judges the fourth night; once cleared, the fifth night prunes what nightly.keep drops."""
    # a pinned baseline: tonight (the bigger chain again) judged against the first night only
    store = str(tmp_path / "lab.sqlite")
    pin = embench("baseline", "set", first[:15], "--store", store, cwd=tmp_path)
    assert pin.returncode == 0 and first in pin.stdout, pin.stderr
    code, fourth_out, _ = nightly()
    assert code == 5 and f"judged against the pinned baseline {first}" in fourth_out
    assert embench("baseline", "clear", "--store", store, cwd=tmp_path).returncode == 0
    shown = embench("baseline", "show", "--store", store, cwd=tmp_path)
    assert "none" in shown.stdout
    runs = embench("runs", "--store", store, cwd=tmp_path)
    assert runs.stdout.count("[nightly]") == 4  # nightly.keep is 3, but the first night was pinned until now

    # retention: the fifth night, judged against the third and fourth, prunes the first two after judging
    code, fifth_out, err = nightly()
    assert code == 0, err + fifth_out
    assert f"the last 2 good night(s): {third}, " in fifth_out
    assert "pruned 2 old nightly run(s) (nightly.keep: 3)" in fifth_out
    runs = embench("runs", "--store", store, cwd=tmp_path)
    assert runs.stdout.count("[nightly]") == 3 and first not in runs.stdout and second not in runs.stdout
    assert third in runs.stdout


@pytest.mark.slow
def test_nightlies_find_the_regressed_series_and_what_changed(lab: Path, tmp_path: Path) -> None:
    """Five nights of a lab whose threshold is what its device allows: on a shared CI machine a burst of
    a few seconds slows every repetition of one job by up to ×1.6 (benchmarks/regression_calibration.py),
    which two series on the device cannot tell from a slower model; `chain`'s new build is ×3.5."""
    lab_threshold = {"threshold": 2.0, "nights": 2, "keep": 3}  # keep: the fifth night prunes the first two
    inv = _night_files(lab, tmp_path, **lab_threshold)
    exe = str(REPO / ".venv" / "bin" / "embench")  # as cron runs it: no activated venv
    out = tmp_path / "nightly"

    def nightly() -> tuple[int, str, str]:
        proc = subprocess.run([exe, "nightly", str(inv), "--out", str(out), "-q"], cwd=tmp_path, capture_output=True,
                              text=True, check=False, env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})  # fmt: skip
        return proc.returncode, proc.stdout, proc.stderr

    code, first_out, err = nightly()
    assert code == 0, err
    first = _run_id(first_out)
    assert "2 not comparable" in first_out and "judged against nothing (no earlier good night)" in first_out
    assert {v["verdict"] for v in _verdicts(out, first).values()} == {"not comparable"}
    root = _valid_junit(out / first / "junit.xml")
    assert root.find("testsuite").get("skipped") == "2"  # type: ignore[union-attr]

    code, second_out, err = nightly()  # A/A: nothing changed
    assert code == 0, err + second_out
    second = _run_id(second_out)
    assert "REGRESSED" not in second_out and f"the last 1 good night(s): {first}" in second_out
    assert all(v["verdict"] != "slower" for v in _verdicts(out, second).values())
    _no_series_can_find_5_percent(out / second / "verdicts.json", first_out, second_out)

    _night_files(lab, tmp_path, chain_file="chain24.onnx", **lab_threshold)  # tonight's `chain` does 4× the work
    code, third_out, err = nightly()
    assert code == 5, err + third_out
    third = _run_id(third_out)
    verdicts = _verdicts(out, third)
    assert verdicts["chain"]["verdict"] == "slower" and verdicts["steady"]["verdict"] != "slower"
    assert any(c.startswith("model checksum") for c in verdicts["chain"]["changes"])  # type: ignore[union-attr]
    assert verdicts["chain"]["ratio_ci"][0] > 1.2  # type: ignore[index]
    assert "REGRESSED host/chain/fp32/onnxruntime:CPUExecutionProvider/t1" in third_out
    assert "steady" not in third_out.split("REGRESSED", 1)[1].split("\n")[0]
    root = _valid_junit(out / third / "junit.xml")
    failures = root.findall(".//failure")
    assert (
        len(failures) == 1
        and "host/chain/" in (failures[0].text or "")
        and "model checksum" in (failures[0].text or "")
    )
    summary = (out / third / "summary.md").read_text()
    assert "## Regressions" in summary and "**host/chain/fp32/onnxruntime:CPUExecutionProvider/t1**" in summary
    page = (out / third / "index.html").read_text()
    assert "Regressed series over the nights" in page and "data:image/png;base64," in page

    _compare_and_history(tmp_path, first, second, third)

    _pinned_then_pruned(tmp_path, nightly, first, second, third)


@pytest.mark.slow
def test_a_job_that_failed_or_never_ran_costs_only_its_own_series(lab: Path, tmp_path: Path) -> None:
    """One board of a lab failing a job, or lost for a night, must not blind the verdict of every other
    series: a night counts as a baseline for each series it measured; a series planned tonight that never
    ran is in the summary, the JUnit file and the failed-job count."""
    inv = _night_files(lab, tmp_path, threshold=2.0)  # what a shared CI machine allows (test_nightlies_find_…)
    out = tmp_path / "nightly"

    def nightly() -> tuple[int, str]:
        proc = embench("nightly", str(inv), "--out", str(out), "-q", cwd=tmp_path)
        return proc.returncode, proc.stdout + proc.stderr

    code, said = nightly()
    assert code == 0, said
    steady_first = _verdicts(out, _run_id(said))["steady"]["job_id"]
    zoo = yaml.safe_load((tmp_path / "zoo.yaml").read_text())
    good = zoo["models"]["steady"]["files"]["onnx-fp32"]
    (tmp_path / "broken.onnx").write_bytes(b"not a model")
    zoo["models"]["steady"]["files"]["onnx-fp32"] = str(tmp_path / "broken.onnx")
    (tmp_path / "zoo.yaml").write_text(yaml.safe_dump(zoo))
    code, said = nightly()  # `steady` fails tonight; `chain` measures
    assert code == 3 and "1 not comparable" in said, said
    zoo["models"]["steady"]["files"]["onnx-fp32"] = good
    (tmp_path / "zoo.yaml").write_text(yaml.safe_dump(zoo))
    doc = yaml.safe_load(inv.read_text())
    doc["devices"].append({"name": "gone", "transport": "ssh", "ssh": {"host": "127.0.0.1", "port": 1, "user": "x"}})
    inv.write_text(yaml.safe_dump(doc))
    code, said = nightly()  # a board that cannot be reached joins the lab
    assert code == 3, said
    third = _run_id(said)
    assert "the last 2 good night(s)" in said
    body = json.loads((out / third / "verdicts.json").read_text())
    by = {(s["series"]["device"], s["series"]["model"]): s for s in body["series"]}
    # `steady` is judged on the one night it measured on; `chain` on both (a night another process
    # crowded is left out of a series' baseline: on a loaded machine that may be one of them)
    assert by[("host", "steady")]["baseline_job_id"] == steady_first and len(by[("host", "steady")]["before_ms"]) == 7
    assert by[("host", "chain")]["verdict"] != "not comparable" and len(by[("host", "chain")]["before_ms"]) in (7, 14)
    lost = [s for (device, _), s in by.items() if device == "gone"]
    assert len(lost) == 2 and all(s["why"].startswith("tonight: not run") for s in lost)
    assert body["failed_jobs"] == 2 and "**2 job(s) failed.**" in (out / third / "summary.md").read_text()
    root = _valid_junit(out / third / "junit.xml")
    assert root.find("testsuite").get("errors") == "2"  # type: ignore[union-attr]


def test_a_series_back_from_a_week_away_is_judged_on_its_own_last_nights(lab: Path, tmp_path: Path) -> None:
    """A board sent for repair, or a model left out of a few sweeps, misses more nights than the baseline
    holds: back, its series is judged on its own last `nightly.nights` nights, not called new."""
    inv = _night_files(lab, tmp_path, threshold=2.0, nights=2)
    out = tmp_path / "nightly"
    doc = yaml.safe_load(inv.read_text())

    def nightly(models: list[str]) -> tuple[str, dict[str, dict[str, object]]]:
        doc["sweep"]["models"] = models
        inv.write_text(yaml.safe_dump(doc))
        proc = embench("nightly", str(inv), "--out", str(out), "-q", cwd=tmp_path)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc.stdout, _verdicts(out, _run_id(proc.stdout))

    chain_nights = [nightly(["chain", "steady"])[1]["chain"]["job_id"] for _ in range(3)]
    steady_nights = [nightly(["steady"])[1]["steady"]["job_id"] for _ in range(2)]  # `chain` away for two
    said, back = nightly(["chain", "steady"])
    assert back["chain"]["verdict"] != "not comparable", back["chain"]
    assert len(back["chain"]["before_ms"]) in (7, 14) and back["chain"]["baseline_job_id"] == chain_nights[-1]
    assert back["steady"]["baseline_job_id"] == steady_nights[-1] and len(back["steady"]["before_ms"]) in (7, 14)
    assert "the last 2 good night(s)" in said and "series that missed some of them: their own last 2" in said
    assert "(its baseline ends 2 night(s) before the last baseline night)" in str(back["chain"]["why"]), back["chain"]
    assert "baseline ends" not in str(back["steady"]["why"])


def test_a_job_unsupported_tonight_is_said_as_such_and_is_not_a_failure(lab: Path, tmp_path: Path) -> None:
    """`unsupported` ends a sweep with exit 0 (the device cannot run it: not a failure), so the nightly's
    JUnit file has no <error> for it and the summary counts no failed job; and a series whose first
    night did not measure says what tonight's job did, not only that it has no baseline."""
    inv = _night_files(lab, tmp_path)
    doc = yaml.safe_load(inv.read_text())
    doc["sweep"]["models"] = ["steady"]
    offers = dict(doc, devices=[{"name": "host", "transport": "local"}])
    lacks = dict(doc, devices=[{"name": "host", "transport": "local", "delegates": ["cpu"]}])  # not ORT's CPU EP
    out = tmp_path / "n"

    def night(inventory: dict[str, object]) -> tuple[str, dict[str, object]]:
        inv.write_text(yaml.safe_dump(inventory))
        proc = embench("nightly", str(inv), "--out", str(out), "-q", cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        run = _run_id(proc.stdout)
        return run, _verdicts(out, run)["steady"]

    _, first = night(lacks)
    assert str(first["why"]).startswith("tonight: unsupported (") and "does not offer delegate" in str(first["why"])
    night(offers)
    run, third = night(lacks)  # measured the night before, unsupported tonight
    assert third["verdict"] == "not comparable" and str(third["why"]).startswith("tonight: unsupported (")
    assert third["job_failed"] is False and json.loads((out / run / "verdicts.json").read_text())["failed_jobs"] == 0
    suite = _valid_junit(out / run / "junit.xml").find("testsuite")
    assert suite is not None and (suite.get("errors"), suite.get("skipped")) == ("0", "1")
    assert "job(s) failed" not in (out / run / "summary.md").read_text()


def test_the_summary_says_how_many_series_can_find_the_target(tmp_path: Path) -> None:
    """A quiet night vouches for a 5% slowdown only on the series that could have found one: the summary,
    the JSON and the page count them (not-comparable and flagged series have no detectable slowdown and
    are not counted); the console line is checked on a real nightly (test_nightlies_find_…)."""

    def key(model: str) -> tuple[str, str, str, str, str, int]:
        return ("host", model, "fp32", "onnxruntime", "CPUExecutionProvider", 1)

    reps = (1.0, 1.01, 1.02, 1.0, 1.01)
    night = verdicts.Night("run2", "the last 1 good night(s): run1", [
        Comparison(key("a"), reps, reps, "same", "×1.000", detectable=1.04),
        Comparison(key("b"), reps, reps, "inconclusive", "×1.000", detectable=math.inf, detectable_note="too few"),
        Comparison(key("c"), (), reps, "not comparable", "new series: no baseline"),
        Comparison(key("d"), reps, reps, "inconclusive", "×1.000", detectable=1.2)], target=1.05)  # fmt: skip
    assert night.coverage == (1, 3)
    paths = verdicts.write(night, tmp_path)
    assert "1 of 3 judged series can find a 5% slowdown tonight" in paths["markdown"].read_text()
    assert json.loads(paths["json"].read_text())["coverage"] == {"target": 1.05, "can_find": 1, "judged": 3}
    page = paths["html"].read_text()
    assert "1 of 3 judged series can find a 5% slowdown" in page and "*detectable*" not in page
    first = verdicts.Night("run1", "nothing (no earlier good night)", [night.comparisons[2]])
    assert first.coverage == (0, 0) and "series can find" not in verdicts.markdown(first)
    finer = verdicts.Night("run2", "run1", night.comparisons, target=1.025)  # a target under 5% reads as set
    assert "0 of 3 judged series can find a 2.5% slowdown" in verdicts.markdown(finer)


def test_a_big_lab_s_summary_fits_a_ci_job_summary_and_keeps_what_to_act_on(tmp_path: Path) -> None:
    """GitHub drops a job summary over 1 MiB whole: 6000 series (a lab of 20 boards) stay under it; every
    regression is listed, the table shows the regressions and the failed jobs first and counts the rest,
    still one table; JUnit and JSON keep every series."""
    import markdown_it  # noqa: PLC0415

    def series(i: int, verdict: str, **more: object) -> Comparison:
        reps = (1.0, 1.01, 1.02, 1.0, 1.01)
        key = (f"board-{i % 20:02d}", f"model_{i:05d}_" + "x" * 40, "fp32", "litert", "xnnpack", 1 + i % 4)
        why = "×1.000 [0.95, 1.05]: not shown either way at this night-to-night noise" + " (noise 2.1%)" * 5
        return Comparison(key, reps, reps, verdict, why, ratio=1.0, ratio_low=0.95, ratio_high=1.05,
                          detectable=1.12, detectable_note="more repetitions cannot help", **more)  # type: ignore[arg-type]  # fmt: skip

    comparisons = [series(i, "inconclusive") for i in range(6000)]
    comparisons[5999] = series(5999, "slower", changes=("model checksum aa → bb",))
    comparisons[4000] = series(4000, "not comparable", job_failed=True)
    comparisons[17] = series(17, "same")
    night = verdicts.Night("run9", "the last 10 good night(s)", comparisons, failed_jobs=1)
    everything = verdicts.markdown(night, max_bytes=10**9)
    assert len(everything.encode()) > 1.5 * 1024 * 1024  # what the summary would be uncut
    paths = verdicts.write(night, tmp_path)
    text = paths["markdown"].read_text()
    assert len(text.encode()) <= verdicts.SUMMARY_BYTES < 1024 * 1024
    assert "## Regressions\n\n- **board-19/model_05999_" in text
    rows = [line for line in text.splitlines() if line.startswith("| board-")]
    assert rows[0].startswith("| board-19/model_05999_") and " | slower | " in rows[0]
    assert rows[1].startswith("| board-00/model_04000_") and "not comparable" in rows[1]
    cut = re.search(r"\| … (\d+) more series \(([^)]*)\)", text)
    assert cut and int(cut[1]) + len(rows) == 6000 and cut[2].startswith(f"{int(cut[1]) - 1} inconclusive"), cut
    assert "1 same" in cut[2] and "/model_00017_" not in text  # ranked last, so cut and counted
    html_out = markdown_it.MarkdownIt("gfm-like").disable("linkify").render(text)
    assert html_out.count("<table>") == 1 and html_out.count("<tr>") == len(rows) + 2  # head, rows, the cut line
    assert "Medians are of repetition levels" in text.splitlines()[-1]
    assert len(_valid_junit(paths["junit"]).findall(".//testcase")) == 6000
    assert len(json.loads(paths["json"].read_text())["series"]) == 6000
    small = verdicts.Night("run9", "run8", comparisons[:50])  # a lab whose summary fits: no cut
    assert "more series" not in verdicts.markdown(small) and verdicts.markdown(small).count("| board-") == 50


def test_names_with_markup_and_control_characters_stay_inside_every_verdict_file(tmp_path: Path) -> None:
    """A device may be named with anything (docs/inventory.md): a pipe or a line break must not break the
    summary's table, a control character must not make junit.xml unreadable to a CI system, markup must
    not reach the page, `$` must not start matplotlib math, and the history figure's file name stays plain."""
    device = "lab|a\nb\x1b[2J<script>$x$y$&"
    key = (device, "m", "fp32", "onnxruntime", "CPUExecutionProvider", 1)
    before, after = (1.0, 1.01, 1.02, 1.0, 1.01), (1.2, 1.21, 1.22, 1.2, 1.21)
    slower = Comparison(key, before, after, "slower", "×1.200 [1.1, 1.3]\x07 | odd", 1.2, 1.1, 1.3, 0.001, 0.001,
                        changes=("model checksum a → b\nc",), detectable=1.04)  # fmt: skip
    points = [Point(f"run{i}", float(i), m, m * 0.99, m * 1.01, 5) for i, m in enumerate((1.0, 1.0, 1.2))]
    night = verdicts.Night("run2", "run1", [slower], histories={slower.label: (points, [Step(2, "run2", 1.2)])})
    paths = verdicts.write(night, tmp_path)
    table = [line for line in paths["markdown"].read_text().splitlines() if line.startswith("| ")]
    header, row = table[0], table[1]
    unescaped = re.compile(r"(?<!\\)\|")
    assert len(unescaped.findall(row)) == len(unescaped.findall(header)) and "\x1b" not in row, row
    regressed = [line for line in paths["markdown"].read_text().splitlines() if line.startswith("- **")]
    assert len(regressed) == 1 and "a b" in regressed[0]  # the line break is a space, not a new line
    root = _valid_junit(paths["junit"])
    assert root.find(".//failure") is not None and "\x1b" not in paths["junit"].read_text()
    page = paths["html"].read_text()
    assert "<script>" not in page and "&lt;script&gt;" in page and "\x1b" not in page and "\x07" not in page
    assert "data:image/png;base64," in page  # the history figure drew with `$` in its title
    # `history --out`'s figure names: plain, and distinct for names that differ only in odd characters
    labels = [slower.label, slower.label.replace("$y", "%y")]
    long = ["d" * 300 + end for end in ("/m/fp32/onnxruntime:CPU/t1", "/m/fp32/onnxruntime:CPU/t2")]
    names = file_slugs([*labels, *long], fallback="series")
    assert len(set(names.values())) == 4, names
    assert all(re.fullmatch(r"[\w.+-]+", n, flags=re.ASCII) and len(n) < 200 for n in names.values()), names


def test_two_nightlies_never_overlap(lab: Path, tmp_path: Path) -> None:
    inv = _night_files(lab, tmp_path)
    store = Store(tmp_path / "lab.sqlite")
    with nightly_lock(store):  # another nightly holds the store
        out = embench("nightly", str(inv), cwd=tmp_path)
    assert out.returncode == 6, out.stderr
    assert "another `embench nightly` on" in out.stderr and "is running (pid" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    assert store.runs() == []  # it did not start a sweep


def test_sigterm_stops_a_nightly_like_ctrl_c_and_frees_the_lock(lab: Path, tmp_path: Path) -> None:
    """What systemd sends on `systemctl stop` or a timeout: exit 143, the run kept as interrupted, the
    resume command printed, and the next nightly is not locked out; `--resume` continues and judges that
    night even when a sweep ran since, and refuses a plain sweep's run."""
    inv = _night_files(lab, tmp_path)
    doc = yaml.safe_load(inv.read_text())
    doc["sweep"]["run"].update(min_seconds=2.0, max_seconds=5.0)
    inv.write_text(yaml.safe_dump(doc))
    proc = start_embench("nightly", str(inv), "-q", cwd=tmp_path)
    wait_for_results(tmp_path / "lab.sqlite", 1, proc)
    err = interrupt(proc, signal.SIGTERM)
    assert proc.returncode == 143, err
    assert "embench nightly" in err and "--resume" in err
    store = Store(tmp_path / "lab.sqlite")
    assert [r.state for r in store.runs()] == ["interrupted"]
    with nightly_lock(store):  # free again
        pass
    night = store.runs()[0].run_id
    # a plain sweep into the same store since: it is not what a nightly resumes, nor judged in its place
    plain = tmp_path / "plain.yaml"
    doc["sweep"]["run"].update(min_seconds=0.1, max_seconds=1.0)
    plain.write_text(yaml.safe_dump(doc))
    assert embench("sweep", str(plain), "-q", cwd=tmp_path).returncode == 0
    swept = store.runs()[-1].run_id
    refused = embench("nightly", str(inv), "--resume", swept, cwd=tmp_path)
    assert refused.returncode == 1 and len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    assert f"run {swept} in" in refused.stderr and "is a sweep, not a nightly run" in refused.stderr
    assert f"embench sweep {inv} --resume {swept}" in refused.stderr
    assert store.find_run(swept).state == "finished" and store.find_run(night).state == "interrupted"
    resumed = embench("nightly", str(inv), "--resume", night[:-3], "-q", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert _run_id(resumed.stdout) == night  # the night resumed is the night judged, not the latest run
    assert store.find_run(night).state == "finished" and (tmp_path / "reports" / "nightly" / night).is_dir()
    # verdict files that cannot be written after a night: the command that judges it again, as pasted
    with pytest.raises(EmbenchError) as failed:
        judge(store, night, plain / "verdicts")
    assert f"`embench nightly {inv} --resume {night} --out DIR` judges it again" in str(failed.value)
    # judged again, once it is the pinned baseline: refused, not judged against itself
    assert embench("baseline", "set", night, "--store", str(tmp_path / "lab.sqlite"), cwd=tmp_path).returncode == 0
    itself = embench("nightly", str(inv), "--resume", night, cwd=tmp_path)
    assert itself.returncode == 1 and f"run {night} is the pinned baseline of" in itself.stderr, itself.stderr


def test_compare_of_a_run_still_being_swept_counts_no_failed_job(lab: Path, tmp_path: Path) -> None:
    """Its jobs not measured yet are said as such, not as 'not run' failed jobs; once the sweep is
    stopped, what it never ran is."""
    inv = _night_files(lab, tmp_path)
    assert embench("sweep", str(inv), "-q", cwd=tmp_path).returncode == 0
    doc = yaml.safe_load(inv.read_text())
    doc["sweep"]["run"].update(min_seconds=2.0, max_seconds=5.0)
    inv.write_text(yaml.safe_dump(doc))
    store = Store(tmp_path / "lab.sqlite")
    proc = start_embench("sweep", str(inv), "-q", cwd=tmp_path)
    try:
        wait_for(f"a second run in {store.where}", lambda: len(store.runs()) == 2)
        first, second = (r.run_id for r in store.runs())
        under_way = embench("compare", first, second, "--store", store.where, cwd=tmp_path)
    finally:
        interrupt(proc, signal.SIGTERM)
    assert under_way.returncode == 0, under_way.stderr
    assert f"not measured yet (run {second} is still being swept)" in under_way.stdout
    assert "job(s) failed" not in under_way.stdout
    cut = embench("compare", first, second, "--store", store.where, "--json", cwd=tmp_path)
    body = json.loads(cut.stdout)
    assert body["failed_jobs"] >= 1 and any("tonight: not run" in s["why"] for s in body["series"]), body


def test_bad_nightly_settings_are_one_line(lab: Path, tmp_path: Path) -> None:
    inv = _night_files(lab, tmp_path, thresholds={"pi9": 1.1})
    out = embench("nightly", str(inv), cwd=tmp_path)
    assert out.returncode == 1 and "nightly.thresholds.pi9" in out.stderr and "unknown device 'pi9'" in out.stderr
    inv = _night_files(lab, tmp_path, threshold=0.9)
    out = embench("nightly", str(inv), cwd=tmp_path)
    assert out.returncode == 1 and "nightly.threshold" in out.stderr
    bad = embench("compare", "x", "--threshold", "0.5", "--store", str(tmp_path / "none.sqlite"), cwd=tmp_path)
    assert bad.returncode == 2 and "'0.5' is not a ratio of 1 or more" in bad.stderr
    nopin = embench("compare", "baseline", "--store", str(tmp_path / "lab.sqlite"), cwd=tmp_path)
    assert nopin.returncode == 1 and "embench: error:" in nopin.stderr
    # --out that cannot hold the verdict files is refused before a night is measured, not after
    inv = _night_files(lab, tmp_path)
    out = embench("nightly", str(inv), "--out", str(inv), cwd=tmp_path)
    assert out.returncode == 1 and "cannot write the verdict files under" in out.stderr, out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and Store(tmp_path / "lab.sqlite").runs() == []
    # R = 1 (a plain sweep's default) cannot give a verdict: said before the night is swept, and it still runs
    doc = yaml.safe_load(inv.read_text())
    doc["sweep"]["run"]["repetitions"] = 1
    inv.write_text(yaml.safe_dump(doc))
    once = embench("nightly", str(inv), "-q", cwd=tmp_path)
    assert once.returncode == 0 and "sweep.run.repetitions is 1; a nightly verdict needs 5" in once.stderr
    assert len(Store(tmp_path / "lab.sqlite").runs()) == 1


def test_the_systemd_units_verify(tmp_path: Path) -> None:
    """examples/systemd as docs/nightly.md and docs/lab.md tell a lab to install them, with this checkout's paths."""
    import shutil  # noqa: PLC0415
    import subprocess  # noqa: PLC0415

    units = ("embench-nightly.service", "embench-nightly.timer", "embench-scheduler.service", "embench-worker.service")
    for name in units:
        text = (REPO / "examples" / "systemd" / name).read_text()
        text = text.replace("/opt/embench/.venv/bin/", str(REPO / ".venv" / "bin") + "/")
        text = text.replace("User=embench", "User=root").replace("/srv/embench-lab", str(tmp_path))
        (tmp_path / name).write_text(text)
    verify = shutil.which("systemd-analyze")
    assert verify, "scripts/test installs systemd (systemd-analyze)"
    out = subprocess.run([verify, "verify", "--man=no", *units], cwd=tmp_path, capture_output=True, text=True,
                         check=False)  # fmt: skip
    assert out.returncode == 0 and "embench-" not in out.stderr, out.stderr
    assert (
        "ExecStart=" + str(REPO / ".venv" / "bin" / "embench") + " nightly"
        in (tmp_path / "embench-nightly.service").read_text()
    )
