"""inventory.yaml: the devices of a lab and the sweep to run on them (reference: docs/inventory.md)."""

from __future__ import annotations

import dataclasses
import difflib
import math
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from embench_agent.protocol import CheckSpec, RunSpec, SourceSpec
from embench_agent.telemetry import HOST_SOURCES, source_names

from .runtimes import RUNTIMES, runtime
from .transports import TRANSPORTS
from .transports.configs import AdbConfig, SshConfig
from .yamlschema import INTERNAL, Located, bounded, build, compose

Precision = Literal["fp32", "fp16", "int8", "int16x8", "int8_dynamic"]  # zoo.PRECISIONS
DAY = 86_400.0
EXTERNAL = HOST_SOURCES[0]  # the one telemetry source read on the host (telemetry/external.py), not by the agent


@dataclass(frozen=True)
class RunPolicy:
    """How long one job is timed, and what the runner does around it."""

    warmup_runs: int = bounded(5, min=0, max=1_000_000)
    min_runs: int = bounded(30, min=1, max=100_000_000)
    min_seconds: float = bounded(2.0, min=0, max=DAY)
    max_seconds: float = bounded(30.0, above=0, max=DAY)
    timeout_seconds: float = bounded(180.0, above=0, max=7 * DAY)
    cooldown_seconds: float = bounded(0.0, min=0, max=DAY)
    cooldown_max_seconds: float = bounded(120.0, min=0, max=DAY)
    cooldown_margin_c: float = bounded(2.0, min=0, max=100)
    cooldown_below_c: float | None = bounded(None, min=-50, max=150)
    retries: int = bounded(0, min=0, max=100)
    idle_seconds: float = bounded(1.0, min=0, max=3600)
    op_profiling: bool = False
    # Each repetition a fresh model load in a fresh process; timeout_seconds is per repetition.
    repetitions: int = bounded(1, min=1, max=1000)
    isolation: Literal["process", "fork"] = "process"
    # interleaved: repetition 0 of every job of a device, then repetition 1, ... (each its own agent run);
    # back-to-back: a job's repetitions one after another in one agent run (docs/nightly.md says why)
    order: Literal["interleaved", "back-to-back"] = "interleaved"

    def spec(self) -> RunSpec:
        """What the agent needs of it (the rest is the runner's)."""
        return RunSpec(self.warmup_runs, self.min_runs, self.min_seconds, self.max_seconds, self.idle_seconds,
                       self.op_profiling, self.repetitions, self.isolation, self.order)  # fmt: skip

    @property
    def job_timeout_seconds(self) -> float:
        """The limit on one job: timeout_seconds for each of its repetitions."""
        return self.timeout_seconds * self.repetitions


@dataclass(frozen=True)
class FidelityPolicy:
    """Output fidelity (docs/fidelity.md): every job keeps its outputs for `inputs` seeded inputs
    (uniform in the zoo entry's input_range), and the report compares them with the same model at fp32 on
    a CPU of the same device (or of `reference_device`). Below a threshold, a configuration is flagged
    `low fidelity` in every table. 0 inputs turns the check off."""

    inputs: int = bounded(8, min=0, max=1024)
    min_cosine: float = bounded(0.95, min=-1, max=1)  # the worst input's cosine similarity
    min_snr_db: float | None = bounded(None, min=-1000, max=1000)
    min_top1_agreement: float | None = bounded(None, min=0, max=1)  # for trained classifiers
    reference_device: str | None = None

    def spec(self, input_range: list[float]) -> CheckSpec:
        """What every job of a model carries: the inputs for the agent, the thresholds for the report."""
        return CheckSpec(fidelity_inputs=self.inputs, input_low=input_range[0], input_high=input_range[1],
                         min_cosine=self.min_cosine, min_snr_db=self.min_snr_db,
                         min_top1_agreement=self.min_top1_agreement, reference_device=self.reference_device)  # fmt: skip


@dataclass(frozen=True)
class Device:
    """One device of the lab."""

    name: str
    transport: str = "local"  # a key of transports.TRANSPORTS
    labels: dict[str, str] = field(default_factory=dict)
    host: str | None = None  # the lab host it hangs off: `embench worker` there drives it (docs/lab.md)
    python: str | None = None
    workdir: str | None = None
    runtimes: list[str] | None = None
    delegates: list[str] | None = None
    delegate_libraries: dict[str, str] = field(default_factory=dict)
    delegate_options: dict[str, dict[str, str]] = field(default_factory=dict)
    telemetry: list[SourceSpec] = field(default_factory=list)
    ssh: SshConfig | None = None
    adb: AdbConfig | None = None

    def offers(self, runtime: str, delegate: str) -> str | None:
        """None if the device offers runtime+delegate, else why not."""
        if self.runtimes is not None and runtime not in self.runtimes:
            return f"device {self.name!r} does not offer runtime {runtime!r} (its runtimes: {self.runtimes})"
        if self.delegates is not None and delegate not in self.delegates:
            return f"device {self.name!r} does not offer delegate {delegate!r} (its delegates: {self.delegates})"
        return None

    def meters(self) -> list[SourceSpec]:
        """The external meters on the host; the other sources are read on the device."""
        return [t for t in self.telemetry if t.source == EXTERNAL]

    def delegate_library(self, runtime_name: str, delegate: str) -> str | None:
        """The shared library this device loads for a delegate of a runtime, or None (built in)."""
        return runtime(runtime_name).library(delegate, self.delegate_libraries)

    @property
    def agent_kind(self) -> str:
        """Which on-device agent times this device's jobs (a key of agents.AGENTS)."""
        if self.adb is not None:
            return self.adb.agent
        return self.ssh.agent if self.ssh is not None else "python"


def _default_delegates() -> dict[str, list[str]]:
    return {name: list(rt.DEFAULT_DELEGATES) for name, rt in RUNTIMES.items()}


@dataclass(frozen=True)
class Sweep:
    """What to run on every device."""

    models: list[str]
    precisions: list[Precision] = field(default_factory=lambda: ["fp32"])
    runtimes: list[str] = field(default_factory=lambda: list(RUNTIMES))
    delegates: dict[str, list[str]] = field(default_factory=_default_delegates)
    threads: list[int] = field(default_factory=lambda: [1], metadata={"min": 1, "max": 1024})
    devices: list[str] | None = None
    seed: int = bounded(0, min=0, max=2**32 - 1)
    run: RunPolicy = field(default_factory=RunPolicy)
    fidelity: FidelityPolicy = field(default_factory=FidelityPolicy)
    # A labelled evaluation set per model (an .npz with x and y; path relative to this file): accuracy on the device.
    evaluation: dict[str, str] = field(default_factory=dict)


# The good nights a night is judged against by default: as many as a series' noise is measured over
# (regression.HISTORY_NIGHTS). Measured on six calibrations of 14-20 nights (docs/nightly.md): against 3
# nights, 349 of 800 injected 5% slowdowns found and 19 false alarms in 800 A/A series-nights; against up
# to 10, 382 and 15; a lasting 5% step was called again on 4 of 300 nights after its first either way.
BASELINE_NIGHTS = 10


@dataclass(frozen=True)
class NightlyPolicy:
    """How `embench nightly` judges a night (docs/nightly.md): a series is `slower` when tonight is
    significantly above its baseline nights given its own night-to-night noise (p ≤ alpha, and
    Benjamini-Hochberg q ≤ fdr_q across the night; its repetition medians too, by a rank test) and the
    ratio is at or above its threshold (`thresholds`: per device or device/delegate, the most specific wins)."""

    nights: int = bounded(BASELINE_NIGHTS, min=1, max=365)  # judge against the last N good nights (unless pinned)
    threshold: float = bounded(1.03, min=1, max=100)
    thresholds: dict[str, float] = field(default_factory=dict)
    alpha: float = bounded(0.01, above=0, max=0.5)
    fdr_q: float = bounded(0.05, above=0, max=1)
    noise_floor: float = bounded(0.005, min=0, max=1)  # the least night-to-night noise (log SD) a verdict assumes
    target: float = bounded(1.05, above=1, max=100)  # each series says what repetitions would find this slowdown
    keep: int | None = bounded(None, min=1, max=100_000)  # nightly runs kept in the store (None: all)


@dataclass(frozen=True)
class Inventory:
    """The whole inventory file."""

    devices: list[Device]
    sweep: Sweep
    schema: int = 1
    zoo: str | None = None
    store: str | None = None
    nightly: NightlyPolicy = field(default_factory=NightlyPolicy)
    path: Path = field(default=Path("inventory.yaml"), metadata=INTERNAL)
    where: Located | None = field(default=None, metadata=INTERNAL)

    def resolve(self, relative: str) -> Path:
        """A path from the inventory, relative to the inventory file's folder."""
        p = Path(relative).expanduser()
        return p if p.is_absolute() else (self.path.parent / p)

    def selected_devices(self) -> list[Device]:
        if self.sweep.devices is None:
            return list(self.devices)
        return [d for d in self.devices if d.name in self.sweep.devices]

    def device(self, name: str) -> Device:
        for d in self.devices:
            if d.name == name:
                return d
        raise KeyError(name)


def load_inventory(path: str | Path) -> Inventory:
    """Read and validate inventory.yaml; raises SchemaError with file:line and a fix."""
    path = Path(path)
    node, where = compose(path)
    if node is None:
        raise where.error("(top level)", "the file is empty", "start from the inventory.yaml in the embench repository")
    inventory = dataclasses.replace(build(node, Inventory, where), path=path, where=where)
    _check(inventory, where)
    return dataclasses.replace(inventory, devices=[_resolve_paths(inventory, d) for d in inventory.devices])


def _resolve_paths(inv: Inventory, dev: Device) -> Device:
    """Host-side files named in a device entry are relative to the inventory file; so is the folder
    an external meter's command runs in (and its entry point is imported from)."""
    for key in ("adb", "ssh"):  # benchmark_model: the binary's path on this machine
        config = getattr(dev, key)
        if config is not None and config.benchmark_model:
            resolved = dataclasses.replace(config, benchmark_model=str(inv.resolve(config.benchmark_model)))
            dev = dataclasses.replace(dev, **{key: resolved})
    telemetry = [
        dataclasses.replace(t, options={**t.options, "cwd": str(inv.resolve(t.options.get("cwd", ".")))})
        if t.source == EXTERNAL else t
        for t in dev.telemetry
    ]  # fmt: skip
    return dataclasses.replace(dev, telemetry=telemetry)


def _check(inv: Inventory, where: Located) -> None:
    if inv.schema != 1:
        raise where.error("schema", f"schema {inv.schema} is not known", "this embench reads schema: 1")
    names: set[str] = set()
    for i, dev in enumerate(inv.devices):
        _check_device(dev, i, where)
        if dev.name in names:
            raise where.error(
                f"devices[{i}].name", f"device name {dev.name!r} used twice", "give each device its own name"
            )
        names.add(dev.name)
    if not inv.devices:
        raise where.error("devices", "no devices", "add at least one device (the host: {name: host, transport: local})")
    _check_sweep(inv, where, names)
    night = inv.nightly
    if night.keep is not None and night.keep <= night.nights:
        raise where.error("nightly.keep", f"keeping {night.keep} nightly run(s) leaves tonight fewer than the"
                          f" {night.nights} baseline night(s) nightly.nights asks for"
                          + (" (its default)" if night.nights == BASELINE_NIGHTS else ""),
                          f"keep {night.nights + 1} or more" + ("" if night.nights >= BASELINE_NIGHTS else
                          f" ({BASELINE_NIGHTS + 1} or more: a series' noise is measured over up to"
                          f" {BASELINE_NIGHTS} earlier nights)"))  # fmt: skip
    libraries = {dev.name: dev.delegate_libraries for dev in inv.devices}
    for key, value in inv.nightly.thresholds.items():
        device, slash, delegate = key.partition("/")
        _one_of(device, sorted(names), f"nightly.thresholds.{key}", where, "device")
        if slash:  # a misspelt delegate would never match a series: its threshold never applied
            _one_of(delegate, _all_delegates(libraries[device]), f"nightly.thresholds.{key}", where, "delegate")
        if not (math.isfinite(value) and 1 <= value <= 100):
            raise where.error(f"nightly.thresholds.{key}", f"{value} is not a ratio of 1 or more",
                              "e.g. 1.10 for a slowdown of 10% or more")  # fmt: skip


def _one_of(name: str, known: list[str], path: str, where: Located, what: str) -> None:
    if name not in known:
        hint = difflib.get_close_matches(name, known, n=1)
        fix = f"did you mean {hint[0]!r}?" if hint else "known: " + ", ".join(known)
        raise where.error(path, f"unknown {what} {name!r}", fix)


def _check_device(dev: Device, i: int, where: Located) -> None:
    at = f"devices[{i}]"
    if not dev.name.strip():
        raise where.error(f"{at}.name", "empty device name", "give the device a name")
    _one_of(dev.transport, list(TRANSPORTS), f"{at}.transport", where, "transport")
    config_key = TRANSPORTS[dev.transport].config_key
    if config_key and getattr(dev, config_key) is None:
        raise where.error(
            f"{at}.transport", f"transport {dev.transport!r} needs an {config_key}: section",
            f"add {config_key}: (docs/inventory.md)",
        )  # fmt: skip
    if dev.adb is not None:
        _check_adb(dev.adb, at, where)
    if dev.ssh is not None:
        _check_ssh(dev.ssh, at, where)
    for j, name in enumerate(dev.runtimes or []):
        _one_of(name, list(RUNTIMES), f"{at}.runtimes[{j}]", where, "runtime")
    for j, delegate in enumerate(dev.delegates or []):
        _one_of(delegate, _all_delegates(dev.delegate_libraries), f"{at}.delegates[{j}]", where, "delegate")
    for j, source in enumerate(dev.telemetry):
        _one_of(source.source, sorted(source_names()), f"{at}.telemetry[{j}].source", where, "telemetry source")
        if source.source == EXTERNAL:
            _check_external(source, f"{at}.telemetry[{j}]", where)


def _all_delegates(libraries: dict[str, str]) -> list[str]:
    """Every delegate name the runtimes accept, and the custom ones a device's libraries define."""
    names = [d for rt in RUNTIMES.values() for d in rt.DELEGATES]
    return names + [name for name in libraries if name not in names]


def _delegates_of(name: str, libraries: dict[str, str]) -> list[str]:
    rt = runtime(name)
    return list(rt.DELEGATES) + (list(libraries) if rt.CUSTOM_LIBRARIES else [])


def _check_external(source: SourceSpec, at: str, where: Located) -> None:
    command, entry_point = source.options.get("command"), source.options.get("entry_point")
    if bool(command) == bool(entry_point):
        raise where.error(
            f"{at}.options",
            "an external meter needs exactly one of options.command and options.entry_point",
            "e.g. options: {command: 'python3 -u my_meter.py'} (docs/inventory.md, External meters)",
        )
    if command:
        try:
            ok = bool(shlex.split(command))
        except ValueError as exc:
            raise where.error(
                f"{at}.options.command", f"cannot split {command!r}: {exc}", "balance its quotes"
            ) from None
        if not ok:
            raise where.error(f"{at}.options.command", "empty command", "name the program that prints the samples")
    if entry_point:
        module, colon, function = entry_point.partition(":")
        if not (colon and module.strip() and function.strip()):
            raise where.error(
                f"{at}.options.entry_point",
                f"entry point {entry_point!r} is not module:function",
                "e.g. entry_point: my_meters:joulescope",
            )


def _check_adb(adb: AdbConfig, at: str, where: Located) -> None:
    if adb.agent == "benchmark_model" and not adb.benchmark_model:
        raise where.error(
            f"{at}.adb.benchmark_model",
            "the benchmark_model agent needs the path of the prebuilt android_aarch64 benchmark_model binary",
            "set adb.benchmark_model: (see docs/devices/android.md), or adb.agent: python for a phone with python3",
        )
    _check_cpu_mask(adb.cpu_mask, f"{at}.adb.cpu_mask", where)


def _check_ssh(ssh: SshConfig, at: str, where: Located) -> None:
    if ssh.agent == "benchmark_model" and not ssh.benchmark_model:
        raise where.error(
            f"{at}.ssh.benchmark_model",
            "the benchmark_model agent needs the path of the board's benchmark_model binary (on this machine)",
            "set ssh.benchmark_model: (e.g. the linux_aarch64 build, docs/devices/raspberry-pi.md), or drop"
            " ssh.agent to run the Python agent",
        )
    _check_cpu_mask(ssh.cpu_mask, f"{at}.ssh.cpu_mask", where)


def _check_cpu_mask(mask: str | None, key: str, where: Located) -> None:
    if mask is None:
        return
    try:
        ok = int(mask, 16) > 0
    except ValueError:
        ok = False
    if not ok:
        raise where.error(key, f"cpu_mask {mask!r} is not a hex CPU mask", "use e.g. 'f0' for CPUs 4-7")


def _check_sweep(inv: Inventory, where: Located, device_names: set[str]) -> None:
    sweep = inv.sweep
    libraries = {k: v for d in inv.devices for k, v in d.delegate_libraries.items()}
    for key in ("models", "precisions", "runtimes", "threads"):
        if not getattr(sweep, key):
            raise where.error(f"sweep.{key}", "empty list", f"list at least one entry under sweep.{key}")
    for j, name in enumerate(sweep.runtimes):
        _one_of(name, list(RUNTIMES), f"sweep.runtimes[{j}]", where, "runtime")
    for name, delegates in sweep.delegates.items():
        _one_of(name, list(RUNTIMES), f"sweep.delegates.{name}", where, "runtime")
        for j, delegate in enumerate(delegates):
            _one_of(delegate, _delegates_of(name, libraries), f"sweep.delegates.{name}[{j}]", where, f"{name} delegate")
    for name in sweep.runtimes:
        if not sweep.delegates.get(name):
            raise where.error("sweep.delegates", f"no delegates listed for runtime {name!r}", f"add {name}: [...]")
    for j, threads in enumerate(sweep.threads):
        if threads < 1:
            raise where.error(f"sweep.threads[{j}]", "thread counts must be ≥ 1", "use 1, 2, 4, ...")
    for j, name in enumerate(sweep.devices or []):
        if name not in device_names:
            hint = difflib.get_close_matches(name, sorted(device_names), n=1)
            raise where.error(
                f"sweep.devices[{j}]",
                f"no device named {name!r}",
                f"did you mean {hint[0]!r}?" if hint else "list a device from devices:",
            )
    _check_run_policy(sweep.run, where)
    _check_checks(sweep, where, device_names)


def _check_checks(sweep: Sweep, where: Located, device_names: set[str]) -> None:
    fid = sweep.fidelity
    if fid.reference_device is not None and fid.reference_device not in device_names:
        raise where.error("sweep.fidelity.reference_device", f"no device named {fid.reference_device!r}",
                          "name a device from devices: whose fp32 CPU runs are the reference")  # fmt: skip
    for model in sweep.evaluation:
        if model not in sweep.models:
            raise where.error(f"sweep.evaluation.{model}", f"model {model!r} is not in sweep.models",
                              "name an evaluation set for a model the sweep runs")  # fmt: skip


def _check_run_policy(run: RunPolicy, where: Located) -> None:
    def bad(key: str, rule: str) -> None:
        raise where.error(f"sweep.run.{key}", f"{key} must be {rule}", f"set it under sweep.run in {where.file}")

    # Single values are range-checked as the YAML is read (RunPolicy's bounds); these relate two.
    if run.max_seconds < run.min_seconds:
        bad("max_seconds", f"≥ min_seconds ({run.min_seconds})")
    if run.timeout_seconds <= run.max_seconds:
        bad("timeout_seconds", f"> max_seconds ({run.max_seconds}), to leave time for start-up")
    if run.isolation == "fork" and run.order == "interleaved" and run.repetitions > 1:
        raise where.error("sweep.run.isolation", "fork forks a job's repetitions inside one agent run, and with"
                          " order: interleaved (the default) each repetition is an agent run of its own",
                          "set sweep.run.order: back-to-back beside isolation: fork, or drop isolation: fork")  # fmt: skip
