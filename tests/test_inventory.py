"""inventory.yaml validation: every mistake is one line naming file, line, key and fix."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import MINIMAL_INVENTORY, REPO, embench, write_inventory

from embench.inventory import load_inventory
from embench.plan import make_plan
from embench.yamlschema import SchemaError
from embench.zoo import Zoo


def test_default_inventory_is_valid_and_sweeps_enough() -> None:
    inv = load_inventory(REPO / "inventory.yaml")
    plan = make_plan(inv, Zoo(REPO / "models" / "zoo.yaml"))
    s = inv.sweep
    assert len(s.models) >= 3 and {"fp32", "fp16", "int8"} <= set(s.precisions)
    assert set(s.runtimes) == {"litert", "onnxruntime"} and {1, 2} <= set(s.threads)
    assert {j.format for j in plan.jobs} == {"tflite", "onnx"}
    assert [d.name for d in inv.devices] == ["host"]


def _error(tmp_path: Path, text: str) -> str:
    path = tmp_path / "inventory.yaml"
    path.write_text(text)
    with pytest.raises(SchemaError) as info:
        load_inventory(path)
    return str(info.value)


BASE = MINIMAL_INVENTORY


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    msg = _error(tmp_path, BASE + "  threads: [1, 2\n  precisions: [fp32]\n")
    assert "inventory.yaml:" in msg and "YAML syntax error" in msg


def test_unknown_key_is_an_error_with_a_suggestion(tmp_path: Path) -> None:
    msg = _error(tmp_path, BASE + "  thread: [1]\n")
    assert "inventory.yaml:7: sweep.thread: unknown key" in msg
    assert "did you mean 'threads'?" in msg


def test_unknown_device_key(tmp_path: Path) -> None:
    msg = _error(tmp_path, BASE.replace("transport: local", "transprt: local"))
    assert ":4: devices[0].transprt: unknown key" in msg and "'transport'" in msg


def test_wrong_type(tmp_path: Path) -> None:
    msg = _error(tmp_path, BASE + "  threads: [one]\n")
    assert ":7: sweep.threads[0]: expected an integer, got 'one'" in msg


def test_bool_is_not_an_int(tmp_path: Path) -> None:
    msg = _error(tmp_path, BASE + "  run: {min_runs: true}\n")
    assert "sweep.run.min_runs" in msg


def test_unknown_delegate(tmp_path: Path) -> None:
    msg = _error(tmp_path, BASE + "  delegates: {litert: [xnnpak]}\n")
    assert ":7: sweep.delegates.litert[0]: unknown litert delegate 'xnnpak'" in msg
    assert "did you mean 'xnnpack'?" in msg


@pytest.mark.parametrize(
    ("nightly", "said"),
    [
        ("{nights: .nan}", "nightly.nights: expected an integer, got nan"),
        ("{nights: 0}", "nights must be ≥ 1, not 0"),
        ("{nights: true}", "nightly.nights: expected an integer, got True"),
        ("{threshold: 0.9}", "threshold must be ≥ 1, not 0.9"),
        ("{threshold: .inf}", "not a finite number"),
        ("{thresholds: {host: 1e400}}", "nightly.thresholds.host: expected a number"),
        ("{thresholds: {host: 0.5}}", "nightly.thresholds.host: 0.5 is not a ratio of 1 or more"),
        ("{alpha: 0}", "alpha must be > 0, not 0.0"),
        ("{alpha: 0.9}", "alpha must be ≤ 0.5"),
        ("{fdr_q: -0.1}", "fdr_q must be > 0"),
        ("{noise_floor: -1}", "noise_floor must be ≥ 0"),
        ("{target: 1}", "target must be > 1, not 1.0"),  # a 0% slowdown: no R could ever find it
        ("{keep: 0}", "keep must be ≥ 1, not 0"),
    ],
)
def test_nightly_numbers_are_checked_when_the_inventory_is_read(tmp_path: Path, nightly: str, said: str) -> None:
    """Every nightly.* number, as test_hardening checks sweep.* ones through the CLI: one line with
    file:line, key and fix (in-process: the same SchemaError the CLI prints)."""
    line = _error(tmp_path, BASE + f"nightly: {nightly}\n")
    fixed = any(fix in line for fix in ("set it in", "write", "e.g."))
    assert said in line and "inventory.yaml:" in line and fixed and "\n" not in line, line


def test_nightly_settings_that_would_silently_not_apply_are_errors(tmp_path: Path) -> None:
    """A misspelt threshold key would never match a series, so its threshold would never apply; a `keep`
    no larger than `nights` would prune the baseline nights every night asks for."""
    msg = _error(tmp_path, BASE + "nightly:\n  thresholds: {host/xnnpak: 1.1}\n")
    assert "nightly.thresholds.host/xnnpak: unknown delegate 'xnnpak'" in msg and "did you mean 'xnnpack'?" in msg
    assert "unknown delegate ''" in _error(tmp_path, BASE + "nightly:\n  thresholds: {host/: 1.1}\n")
    assert "unknown device 'hots'" in _error(tmp_path, BASE + "nightly:\n  thresholds: {hots/gpu: 1.1}\n")
    # retention that would prune tonight's own baseline nights
    msg = _error(tmp_path, BASE + "nightly:\n  nights: 5\n  keep: 5\n")
    assert "nightly.keep: keeping 5 nightly run(s) leaves tonight fewer than the 5 baseline night(s)" in msg
    assert "keep 6 or more (11 or more: a series' noise is measured over up to 10 earlier nights)" in msg
    msg = _error(tmp_path, BASE + "nightly:\n  keep: 4\n")  # the default 10 nights; the hint says it once
    assert msg.endswith("the 10 baseline night(s) nightly.nights asks for (its default); keep 11 or more"), msg
    path = tmp_path / "inventory.yaml"
    path.write_text(BASE + "nightly:\n  thresholds: {host/gpu: 1.1, host/CPUExecutionProvider: 1.2, host: 1.05}\n")
    assert load_inventory(path).nightly.thresholds == {"host/gpu": 1.1, "host/CPUExecutionProvider": 1.2, "host": 1.05}


def test_bad_literal(tmp_path: Path) -> None:
    msg = _error(tmp_path, BASE + "  precisions: [fp23]\n")
    assert "sweep.precisions[0]" in msg and "did you mean 'fp32'?" in msg


def test_run_policy_rule_says_where_to_fix(tmp_path: Path) -> None:
    msg = _error(tmp_path, BASE + "  run: {min_runs: 0}\n")
    assert "sweep.run.min_runs: min_runs must be ≥ 1, not 0" in msg and "set it in " in msg


def test_missing_required_key(tmp_path: Path) -> None:
    msg = _error(tmp_path, "schema: 1\ndevices: [{name: host}]\nsweep: {threads: [1]}\n")
    assert "required key 'models' is missing" in msg


def test_duplicate_device_names(tmp_path: Path) -> None:
    msg = _error(tmp_path, BASE.replace("devices:\n", "devices:\n  - {name: host}\n"))
    assert "used twice" in msg


def test_unknown_model_names_its_line(tmp_path: Path, zoo_path: Path) -> None:
    path = write_inventory(tmp_path, zoo_path, {"models": ["tiny", "mobilenet_v9"]})
    inv = load_inventory(path)
    with pytest.raises(SchemaError) as info:
        make_plan(inv, Zoo(zoo_path))
    assert "sweep.models[1]: unknown model 'mobilenet_v9'" in str(info.value)
    assert "tiny" in str(info.value)  # lists the known ones


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        (BASE + "  threads: [1, 2\n", "YAML syntax error"),
        (BASE + "  thread: [1]\n", "unknown key"),
        (BASE + "  threads: [one]\n", "expected an integer"),
        (BASE + "  delegates: {litert: [edge_tpu]}\n", "unknown litert delegate"),
        (BASE.replace("[tiny]", "[nope]"), "unknown model 'nope'"),
    ],
)
def test_cli_bad_input_is_one_line_exit_1(tmp_path: Path, zoo_path: Path, text: str, needle: str) -> None:
    path = tmp_path / "inventory.yaml"
    path.write_text(text.replace("schema: 1\n", f"schema: 1\nzoo: {zoo_path}\n"))
    out = embench("sweep", str(path), "--store", str(tmp_path / "s.sqlite"), cwd=tmp_path)
    assert out.returncode == 1
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("embench: error: "), out.stderr
    assert needle in lines[0] and "Traceback" not in out.stderr


def test_cli_missing_inventory_file(tmp_path: Path) -> None:
    out = embench("sweep", "nope.yaml", cwd=tmp_path)
    assert out.returncode == 1 and "nope.yaml: file not found" in out.stderr


def test_cli_usage_error_is_exit_2(tmp_path: Path) -> None:
    out = embench("sweep", cwd=tmp_path)
    assert out.returncode == 2


def _phone(tmp_path: Path, adb: str) -> Path:
    path = tmp_path / "inventory.yaml"
    path.write_text(
        f"schema: 1\ndevices:\n  - name: pixel\n    transport: adb\n    adb: {adb}\nsweep:\n  models: [tiny]\n"
    )
    return path


def test_adb_device_checks_and_paths(tmp_path: Path) -> None:
    with pytest.raises(SchemaError, match=r"devices\[0\].adb.benchmark_model: .*set adb.benchmark_model"):
        load_inventory(_phone(tmp_path, "{serial: '10.0.0.7:5555'}"))
    with pytest.raises(SchemaError, match=r"adb.cpu_mask: cpu_mask 'big' is not a hex CPU mask"):
        load_inventory(_phone(tmp_path, "{serial: x, agent: python, cpu_mask: big}"))
    inv = load_inventory(_phone(tmp_path, "{serial: R5CT, benchmark_model: tools/benchmark_model, cpu_mask: f0}"))
    adb = inv.devices[0].adb
    assert adb is not None and adb.benchmark_model == str(tmp_path / "tools" / "benchmark_model")
    assert (adb.cpu_mask, adb.battery_unplug, adb.key_file) == ("f0", False, None)


def _meter(tmp_path: Path, options: str) -> str:
    return _error(
        tmp_path,
        BASE.replace(
            "transport: local", f"transport: local\n    telemetry:\n      - {{source: external, options: {options}}}"
        ),
    )


def test_external_meter_checks_and_its_folder(tmp_path: Path) -> None:
    msg = _meter(tmp_path, "{label: joulescope}")
    assert ":6: devices[0].telemetry[0].options: an external meter needs exactly one of" in msg
    assert "exactly one of" in _meter(tmp_path, "{command: m, entry_point: 'a:b'}")
    assert 'cannot split "python3 \'meter.py": No closing quotation' in _meter(
        tmp_path, '{command: "python3 \'meter.py"}'
    )
    assert "entry point 'meters.joulescope' is not module:function" in _meter(
        tmp_path, "{entry_point: meters.joulescope}"
    )
    path = tmp_path / "inventory.yaml"
    path.write_text(BASE.replace("transport: local", "transport: local\n    telemetry:\n"
                                 "      - {source: external, options: {command: python3 -u meters/usb.py}}"))  # fmt: skip
    (source,) = load_inventory(path).devices[0].telemetry
    assert source.options == {"command": "python3 -u meters/usb.py", "cwd": str(tmp_path)}  # runs beside the inventory
