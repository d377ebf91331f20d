"""The contract between the host and the agent: Job (host → agent), Result (agent → host), and the
agent's Probe and TempReading. Both sides import this module; it needs Python ≥ 3.8 and the standard
library only.

Every class is a frozen dataclass read and written by one typed loader: `X.from_dict(obj)` checks
each field against its annotation (and the bounds in its metadata) and raises ProtocolError naming
the field and what was wrong; `x.to_dict()` / `x.to_json()` write it back. Adding a field is one
line in one class. Annotations use `typing` names (not `X | None`) because the loader evaluates them
at run time, on Python 3.8 too.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import json
import math
import operator
import sys
from typing import Any, Dict, Mapping, Optional, Tuple, Type, TypeVar, Union

# The version of the Job/Result JSON, and what each version changed. Readers accept every version
# listed; older ones are brought up to date by _UPGRADES before they are checked.
SCHEMA_VERSION = 6
SCHEMA_HISTORY = {
    1: "Job and Result as plain JSON objects, unchecked (embench 0.1)",
    2: "typed and checked on both sides; benchmark_model memory as {kind, init_mb, overall_mb};"
    " every field present (null where unknown)",
    3: "Job.checks (fidelity inputs, evaluation set); Result.outputs and Result.accuracy",
    4: "RunSpec.repetitions and isolation; Result.repetitions (each repetition's share of samples_ns);"
    " Result.other_cpu (contention during the window)",
    5: "Result.ops: each node as the runtime ran it (where, and its time per inference where profiled)",
    6: "RunSpec.order: a job's repetitions interleaved with the device's other jobs (in rounds) or back to"
    " back; a Job of an earlier version ran them back to back",
}
ISOLATIONS = ("fork", "process")  # how a repetition gets its fresh process (docs/nightly.md)
# When a job's repetitions run (docs/nightly.md): in rounds across the device's jobs (the host sends each
# repetition as a job of its own), or one after another in one agent run.
INTERLEAVED, BACK_TO_BACK = "interleaved", "back-to-back"
ORDERS = (INTERLEAVED, BACK_TO_BACK)

# The one list of statuses (docs/architecture.md explains each).
STATUSES = ("ok", "fallback", "unsupported", "failed", "crashed", "timeout")
MEASURED = ("ok", "fallback")  # statuses whose timings are real
SUCCESS = ("ok", "fallback", "unsupported")  # a sweep that ends with only these exits 0
RETRYABLE = ("crashed", "timeout")  # the runner retries these
# Result.error, the kinds of failure the host acts on:
MODEL_LOAD = "model_load"  # the runtime could not load the model file: the fix is the file
DEVICE_LOST = "device_lost"  # the job was cut by a lost device: --resume measures it again
RUNTIME_MISSING = "runtime_missing"  # the runtime cannot be imported on the device: not attempted

# A timed inference longer than a day is not a measurement; it is corrupt output.
MAX_SAMPLE_NS = 86_400 * 10**9

T = TypeVar("T", bound="Message")


class ProtocolError(ValueError):
    """A message does not follow the contract; the text names the field and what was wrong."""


def _fail(path: str, why: str) -> ProtocolError:
    return ProtocolError("{}: {}".format(path or "(top level)", why))


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# A field's range, as keys of its metadata: (key, how it is said, what holds for a value inside).
BOUND_RULES = (("min", "≥", operator.ge), ("above", ">", operator.gt), ("max", "≤", operator.le))


def broken_bound(value: Any, meta: Mapping[str, Any]) -> Optional[str]:
    """The first range key (`min`, `above`, `max`) in a field's metadata that a number breaks, or
    None. The one rule for ranges: the contract here and the host's YAML reader both use it."""
    if not _is_number(value):
        return None
    for key, _, holds in BOUND_RULES:
        if key in meta and not holds(value, meta[key]):
            return key
    return None


_BROKEN = {"min": "{!r} is below {!r}", "above": "{!r} must be above {!r}", "max": "{!r} is above {!r}"}


def _check_bounds(value: Any, meta: Mapping[str, Any], path: str) -> None:
    if "choices" in meta and value not in meta["choices"]:
        raise _fail(path, "{!r} is not one of {}".format(value, ", ".join(meta["choices"])))
    key = broken_bound(value, meta)
    if key is not None:
        raise _fail(path, _BROKEN[key].format(value, meta[key]))


def _all_ints_within(values: Any, meta: Mapping[str, Any]) -> bool:
    return all(type(v) is int for v in values) and _all_within(values, meta)


def _all_floats_within(values: Any, meta: Mapping[str, Any]) -> bool:
    return all(type(v) in (int, float) and math.isfinite(v) for v in values) and _all_within(values, meta)


def _all_within(values: Any, meta: Mapping[str, Any]) -> bool:
    """Every number (already checked to be one) within the bounds of a field's metadata."""
    if not values:
        return True
    lo, hi = min(values), max(values)
    return (
        ("min" not in meta or lo >= meta["min"])
        and ("above" not in meta or lo > meta["above"])
        and ("max" not in meta or hi <= meta["max"])
    )


def _scalar(tp: Any, value: Any, path: str) -> Any:
    if tp is Any:
        return value  # free-form JSON (facts bags): anything json.loads gives is fine
    if tp is bool:
        if not isinstance(value, bool):
            raise _fail(path, f"expected true or false, got {value!r}")
        return value
    if tp is int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise _fail(path, f"expected an integer, got {value!r}")
        return value
    if tp is float:
        if not _is_number(value) or not math.isfinite(value):
            raise _fail(path, f"expected a finite number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise _fail(path, f"expected a string, got {value!r}")
        return value
    raise TypeError(f"protocol: no loader for {tp!r} at {path}")


def _load(tp: Any, value: Any, path: str, meta: Mapping[str, Any]) -> Any:  # noqa: PLR0912
    """`value` (parsed JSON) checked against the annotation `tp`, converted to the typed form."""
    if not meta and type(value) is tp and tp in (str, int, float) and (tp is not float or math.isfinite(value)):
        return value  # the common case, checked without the general path below
    origin = getattr(tp, "__origin__", None)
    args: Tuple[Any, ...] = getattr(tp, "__args__", ())
    if origin is Union:
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _load(inner[0], value, path, meta)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise _fail(path, f"expected a list, got {type(value).__name__!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            if args[0] is int and _all_ints_within(value, meta):
                return tuple(value)  # the fast path for latency samples; the slow one says which is wrong
            if args[0] is str and not meta and all(type(v) is str for v in value):
                return tuple(value)
            if args[0] is float and _all_floats_within(value, meta):
                return tuple(float(v) for v in value)
            return tuple(_load(args[0], v, f"{path}[{i}]", meta) for i, v in enumerate(value))
        if len(value) != len(args):
            raise _fail(path, f"expected {len(args)} items, got {len(value)}")
        return tuple(_load(a, v, f"{path}[{i}]", meta) for i, (a, v) in enumerate(zip(args, value)))
    if origin in (dict, collections.abc.Mapping):
        if not isinstance(value, dict):
            raise _fail(path, f"expected an object, got {type(value).__name__!r}")
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise _fail(path, f"keys must be strings, got {key!r}")
            out[key] = _load(args[1], item, f"{path}.{key}", meta)
        return out
    if isinstance(tp, type) and issubclass(tp, Message):
        return tp._from(value, path)
    loaded = _scalar(tp, value, path)
    if meta:
        _check_bounds(loaded, meta, path)
    return loaded


def _unless_none(tp: Any) -> Any:
    """X for Optional[X] (the caller has handled None), else tp itself."""
    args = getattr(tp, "__args__", ())
    if getattr(tp, "__origin__", None) is Union and type(None) in args:
        inner = [a for a in args if a is not type(None)]
        if len(inner) == 1:
            return inner[0]
    return tp


def _plain(value: Any) -> Any:
    """The JSON form of a typed value."""
    if isinstance(value, Message):
        return value.to_dict()
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return dict((k, _plain(v)) for k, v in value.items())
    return value


class Message:
    """Base of every contract class: typed loading, plain-JSON writing."""

    _hints: Optional[Dict[str, Any]] = None

    @classmethod
    def _types(cls) -> Dict[str, Any]:
        if cls.__dict__.get("_hints") is None:
            import typing  # noqa: PLC0415

            cls._hints = typing.get_type_hints(cls, vars(sys.modules[__name__]))
        return cls.__dict__["_hints"]

    @classmethod
    def _fields(cls) -> Tuple[Tuple[str, Any, Mapping[str, Any], bool, bool], ...]:
        """(name, type, bounds, required, may be None) of each field, worked out once per class."""
        plan = cls.__dict__.get("_plan")
        if plan is None:
            types = cls._types()
            plan = tuple(
                (f.name, _unless_none(types[f.name]), f.metadata,
                 f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING,  # type: ignore[misc]
                 _unless_none(types[f.name]) is not types[f.name])
                for f in dataclasses.fields(cls)  # type: ignore[arg-type]
            )  # fmt: skip
            cls._plan = plan  # type: ignore[attr-defined]
        return plan  # type: ignore[no-any-return]

    @classmethod
    def _from(cls: Type[T], value: Any, path: str) -> T:
        if not isinstance(value, dict):
            raise _fail(path, f"expected an object, got {type(value).__name__!r}")
        plan = cls._fields()  # type: ignore[attr-defined]
        if len(value) > len(plan) or not all(name in value for name, *_ in plan):
            known = [name for name, *_ in plan]
            unknown = sorted(set(value) - set(known))
            if unknown:
                raise _fail(path, "unknown key {} (known: {})".format(", ".join(map(repr, unknown)), ", ".join(known)))
        kwargs: Dict[str, Any] = {}
        for name, tp, meta, required, nullable in plan:
            if name not in value:
                if required:
                    raise _fail(f"{path}.{name}" if path else name, "missing")
                continue
            item = value[name]
            if item is None and nullable:
                kwargs[name] = None  # the common case of an optional field, without building its path
                continue
            kwargs[name] = _load(tp, item, f"{path}.{name}" if path else name, meta)
        return cls(**kwargs)

    @classmethod
    def from_dict(cls: Type[T], value: Any) -> T:
        """Check parsed JSON against this class; ProtocolError names the first field that is wrong."""
        return cls._from(value, "")

    @classmethod
    def from_json(cls: Type[T], text: Union[str, bytes]) -> T:
        try:
            value = json.loads(text)
        except ValueError as exc:
            raise ProtocolError(f"not JSON: {exc}") from None
        return cls.from_dict(value)

    def to_dict(self) -> Dict[str, Any]:
        return dict((f.name, _plain(getattr(self, f.name))) for f in dataclasses.fields(self))  # type: ignore[arg-type]

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)


def _bounds(**meta: Any) -> Dict[str, Any]:
    return meta


def _nonneg() -> Any:
    return dataclasses.field(default=None, metadata=_bounds(min=0))


def _versioned(cls: Type[T], value: Any, upgrades: Mapping[int, Any]) -> T:
    """Load a top-level message, first bringing an older schema version up to date."""
    if not isinstance(value, dict):
        raise _fail("", f"expected an object, got {type(value).__name__!r}")
    version = value.get("schema")
    if isinstance(version, bool) or version not in SCHEMA_HISTORY:
        raise _fail("schema", "version {!r} is not known here (known: {}); host and agent must come from the same"
                    " embench".format(version, ", ".join(map(str, SCHEMA_HISTORY))))  # fmt: skip
    while version != SCHEMA_VERSION:
        value = upgrades[version](dict(value))
        version = value["schema"]
    return cls._from(value, "")


# ---------------------------------------------------------------------------- Job


@dataclasses.dataclass(frozen=True)
class ModelRef(Message):
    """The model file of a job: where it is on the device and what it holds."""

    name: str
    format: str
    precision: str
    path: Optional[str] = None  # filled in once the file is on the device
    sha256: Optional[str] = None
    size: Optional[int] = _nonneg()


@dataclasses.dataclass(frozen=True)
class DelegateSpec(Message):
    """The delegate (LiteRT) or execution provider (ONNX Runtime) a job asks for."""

    name: str
    library: Optional[str] = None  # external LiteRT delegates: the shared library to load
    options: Mapping[str, str] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class RunSpec(Message):
    """How long the agent times: warm-ups, then until min_runs and min_seconds, capped by max_seconds."""

    warmup_runs: int = dataclasses.field(default=5, metadata=_bounds(min=0))
    min_runs: int = dataclasses.field(default=30, metadata=_bounds(min=1))
    min_seconds: float = dataclasses.field(default=2.0, metadata=_bounds(min=0))
    max_seconds: float = dataclasses.field(default=30.0, metadata=_bounds(above=0))
    idle_seconds: float = dataclasses.field(default=1.0, metadata=_bounds(min=0))
    op_profiling: bool = False
    # Each repetition loads the model afresh in a fresh process (1: today's single in-process run).
    repetitions: int = dataclasses.field(default=1, metadata=_bounds(min=1, max=1000))
    isolation: str = dataclasses.field(default="process", metadata=_bounds(choices=ISOLATIONS))
    # The host's schedule, kept with the job (the agent runs what it is sent: repetitions 1 for a round).
    order: str = dataclasses.field(default=INTERLEAVED, metadata=_bounds(choices=ORDERS))


@dataclasses.dataclass(frozen=True)
class SourceSpec(Message):
    """One telemetry source to read while the job runs."""

    source: str
    root: str = "/"
    rate_hz: Optional[float] = dataclasses.field(default=None, metadata=_bounds(above=0, max=10_000))
    options: Mapping[str, str] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class CheckSpec(Message):
    """What the agent runs after the timed window, outside it. The outputs of `fidelity_inputs` seeded
    inputs (uniform in [input_low, input_high], quantised with the model's own scale and zero point
    where it takes integers) for the host to compare with a reference; and, where a labelled
    evaluation set is on the device (an .npz with `x` in the model's input layout and integer
    labels `y`), its top-1/top-5 predictions."""

    fidelity_inputs: int = dataclasses.field(default=0, metadata=_bounds(min=0, max=1024))
    input_low: float = -1.0
    input_high: float = 1.0
    # kept per output tensor and input: all of a classifier's scores; the first values of a bigger output
    max_values: int = dataclasses.field(default=16384, metadata=_bounds(min=1))
    eval_path: Optional[str] = None  # filled in once the file is on the device
    eval_sha256: Optional[str] = None
    # What the host judges the outputs by (the agent does not read these): the reference is the same
    # model at fp32 on a CPU of `reference_device` (None: the job's own device).
    min_cosine: float = dataclasses.field(default=0.95, metadata=_bounds(min=-1, max=1))
    min_snr_db: Optional[float] = None
    min_top1_agreement: Optional[float] = dataclasses.field(default=None, metadata=_bounds(min=0, max=1))
    reference_device: Optional[str] = None


@dataclasses.dataclass(frozen=True)
class Job(Message):
    """One measurement the host asks of the agent."""

    job_id: str
    device: str
    model: ModelRef
    runtime: str
    delegate: DelegateSpec
    threads: int = dataclasses.field(metadata=_bounds(min=1))
    run: RunSpec = dataclasses.field(default_factory=RunSpec)
    telemetry: Tuple[SourceSpec, ...] = ()
    seed: int = 0
    checks: CheckSpec = dataclasses.field(default_factory=CheckSpec)
    schema: int = SCHEMA_VERSION

    @classmethod
    def from_dict(cls, value: Any) -> Job:
        return _versioned(cls, value, {1: _job_from_v1, 2: _added_in_v3, 3: _added_in_v4, 4: _added_in_v5,
                                       5: _job_from_v5})  # fmt: skip


def _job_from_v1(value: Dict[str, Any]) -> Dict[str, Any]:
    return dict(value, schema=2)  # same keys


def _added_in_v3(value: Dict[str, Any]) -> Dict[str, Any]:
    return dict(value, schema=3)  # new fields only, each with a default


def _added_in_v4(value: Dict[str, Any]) -> Dict[str, Any]:
    return dict(value, schema=4)  # new fields only, each with a default


def _added_in_v5(value: Dict[str, Any]) -> Dict[str, Any]:
    return dict(value, schema=5)  # new fields only, each with a default


def _job_from_v5(value: Dict[str, Any]) -> Dict[str, Any]:
    run = value.get("run")
    if isinstance(run, dict):  # before order existed, an agent ran a job's repetitions one after another
        value["run"] = dict(run, order=run.get("order", BACK_TO_BACK))
    return dict(value, schema=6)


def _added_in_v6(value: Dict[str, Any]) -> Dict[str, Any]:
    return dict(value, schema=6)  # new fields only, each with a default


# ---------------------------------------------------------------------------- Result


@dataclasses.dataclass(frozen=True)
class RuntimeInfo(Message):
    name: str
    package: Optional[str] = None
    version: Optional[str] = None


@dataclasses.dataclass(frozen=True)
class Delegation(Message):
    """What really ran where: the request, and what the runtime says it did."""

    requested: str
    actual: Optional[str] = None
    delegated_nodes: Optional[int] = _nonneg()
    total_nodes: Optional[int] = _nonneg()
    actual_providers: Optional[Tuple[str, ...]] = None  # ONNX Runtime
    available_providers: Optional[Tuple[str, ...]] = None
    partitions: Optional[int] = _nonneg()  # benchmark_model
    delegate_kernels: Optional[int] = _nonneg()


@dataclasses.dataclass(frozen=True)
class DeviceFacts(Message):
    """What the device is (from the agent's Python, and getprop on a phone); None where unknown."""

    hostname: Optional[str] = None
    machine: Optional[str] = None
    cpu: Optional[str] = None
    cores: Optional[int] = _nonneg()
    mem_total_kb: Optional[int] = _nonneg()
    os: Optional[str] = None
    kernel: Optional[str] = None
    python: Optional[str] = None
    board: Optional[str] = None
    cpu_governor: Optional[str] = None
    model: Optional[str] = None
    manufacturer: Optional[str] = None
    soc: Optional[str] = None
    soc_manufacturer: Optional[str] = None
    platform: Optional[str] = None
    hardware: Optional[str] = None
    sdk: Optional[str] = None
    android: Optional[str] = None
    abi: Optional[str] = None
    build: Optional[str] = None

    def merged(self, other: DeviceFacts) -> DeviceFacts:
        """These facts with every fact `other` knows laid over them."""
        known = dict((k, v) for k, v in other.to_dict().items() if v is not None)
        return dataclasses.replace(self, **known)


@dataclasses.dataclass(frozen=True)
class Edge(Message):
    """A window edge on the sampler's clock, with the device's wall clock and counter reads there."""

    t: float
    wall: Optional[float] = None
    counters: Mapping[str, Optional[float]] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class SourceTrace(Message):
    """One telemetry source's samples `(t, value)` on the sampler's clock, and its facts."""

    source: str
    label: str
    kind: str
    unit: str
    rate_hz: float = dataclasses.field(default=0.0, metadata=_bounds(min=0))
    facts_start: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    facts: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    samples: Tuple[Tuple[float, float], ...] = ()

    def values(self) -> Tuple[float, ...]:
        return tuple(v for _, v in self.samples)


@dataclasses.dataclass(frozen=True)
class Telemetry(Message):
    """What the job's telemetry sources recorded around and during the timed window."""

    clock: str = "monotonic"
    edges: Mapping[str, Edge] = dataclasses.field(default_factory=dict)
    sources: Tuple[SourceTrace, ...] = ()
    errors: Tuple[str, ...] = ()
    sampler_cpu_seconds: Optional[float] = _nonneg()

    def window(self, start: str, end: str) -> Optional[Tuple[float, float]]:
        """(t_start, t_end) of two named edges, or None when either is missing."""
        if start in self.edges and end in self.edges:
            return self.edges[start].t, self.edges[end].t
        return None


@dataclasses.dataclass(frozen=True)
class Aggregate(Message):
    """A tool's own summary of its timed runs (benchmark_model prints no per-run samples), in µs."""

    count: float = dataclasses.field(metadata=_bounds(min=0))
    unit: str = "us"
    first: Optional[float] = None
    curr: Optional[float] = None
    min: Optional[float] = None
    max: Optional[float] = None
    avg: Optional[float] = None
    std: Optional[float] = None
    p5: Optional[float] = None
    median: Optional[float] = None
    p95: Optional[float] = None


@dataclasses.dataclass(frozen=True)
class Memory(Message):
    """benchmark_model's memory figures: `peak` footprint, or the `delta` from the tool's start."""

    kind: str
    init_mb: Optional[float] = None
    overall_mb: Optional[float] = None


@dataclasses.dataclass(frozen=True)
class Cooldown(Message):
    """How the runner waited before this job: on temperature, or a fixed pause."""

    gated_on: str = dataclasses.field(metadata=_bounds(choices=("fixed", "temperature")))
    waited_s: float = dataclasses.field(metadata=_bounds(min=0))
    start_c: Optional[float] = None
    end_c: Optional[float] = None
    target_c: Optional[float] = None
    capped: bool = False


@dataclasses.dataclass(frozen=True)
class TensorOutput(Message):
    """One output tensor over every fidelity input: float32 values (dequantised with `scale` and
    `zero_point` where the model gives integers), little-endian, base64, input after input."""

    name: str
    dtype: str  # what the runtime gave, before dequantisation
    shape: Tuple[int, ...]  # one input's output
    values: str
    kept: int = dataclasses.field(metadata=_bounds(min=0))  # values kept per input: all, or the first max_values
    scale: Optional[float] = None
    zero_point: Optional[int] = None


@dataclasses.dataclass(frozen=True)
class Outputs(Message):
    """What the model answered to the job's seeded fidelity inputs (CheckSpec), outside the timed window."""

    inputs: int = dataclasses.field(metadata=_bounds(min=0))
    seed: int = 0
    tensors: Tuple[TensorOutput, ...] = ()
    error: Optional[str] = None  # why they could not be kept; the timing still stands


@dataclasses.dataclass(frozen=True)
class Accuracy(Message):
    """The model's predictions on the job's labelled evaluation set, on the device."""

    samples: int = dataclasses.field(metadata=_bounds(min=0))
    top1: int = dataclasses.field(default=0, metadata=_bounds(min=0))  # correct at top-1
    top5: Optional[int] = _nonneg()  # correct within the top 5 (None: fewer than 5 classes)
    predictions: Tuple[int, ...] = ()  # top-1 class per sample
    eval_sha256: Optional[str] = None
    error: Optional[str] = None


@dataclasses.dataclass(frozen=True)
class Repetition(Message):
    """One repetition of a job: a fresh process that loaded the model and timed it. Its `samples`
    timed inferences are the next `samples` entries of Result.samples_ns."""

    index: int = dataclasses.field(metadata=_bounds(min=0))
    samples: int = dataclasses.field(metadata=_bounds(min=0))
    init_ms: Optional[float] = _nonneg()
    first_inference_ms: Optional[float] = _nonneg()
    window_ns: Optional[int] = _nonneg()
    window_start_unix: Optional[float] = None
    pid: Optional[int] = None
    other_cpu: Optional[float] = dataclasses.field(default=None, metadata=_bounds(min=0, max=1))


# Where an op ran: "cpu" (the runtime's own kernels), or the delegate / execution provider's name.
CPU = "cpu"
# The processors (and the delegate names a job asks for) that are the CPU's own: LiteRT's, ORT's.
CPU_PROCESSORS = (CPU, "CPUExecutionProvider")


@dataclasses.dataclass(frozen=True)
class OpRecord:
    """One node of the model as the runtime ran it (a row of an OpProfile)."""

    index: int  # the runtime's node index (benchmark_model: the row's place in its table)
    name: str
    type: str  # the runtime's op type: CONV_2D, Conv, "Convolution (NHWC, QC8) GEMM" (XNNPACK's), ...
    processor: str = CPU  # "cpu", or the delegate / provider that ran it (xnnpack, CUDAExecutionProvider)
    ms: Optional[float] = None  # mean time per inference in the profiled pass; None: not profiled
    calls: Optional[int] = None  # times it ran per inference (benchmark_model's "times called")
    partition: Optional[int] = None  # LiteRT: the DELEGATE node whose partition holds it
    reason: Optional[str] = None  # why it is where it is, where known


NO_PARTITION = -1


@dataclasses.dataclass(frozen=True)
class OpProfile(Message):
    """Per-op placement and (where the runtime can) per-op time of one job, from a pass of its own
    after the timed window, so the timed latency is never perturbed by the profiler.

    Stored by column, one entry per op in each (a model has hundreds of ops and a lab thousands of
    jobs: columns load fast and keep the JSON small); `ops` gives them as OpRecords. The optional
    columns are empty where no op has a value: `ms` (not profiled), `calls`, `partition` (-1: not in
    a delegate partition), `reason` ("": none)."""

    source: str  # litert-delegation (placement only), onnxruntime, onnxruntime-profiler, benchmark_model
    index: Tuple[int, ...] = dataclasses.field(default=(), metadata=_bounds(min=0))
    name: Tuple[str, ...] = ()
    type: Tuple[str, ...] = ()
    processor: Tuple[str, ...] = ()
    ms: Tuple[float, ...] = dataclasses.field(default=(), metadata=_bounds(min=0))
    calls: Tuple[int, ...] = dataclasses.field(default=(), metadata=_bounds(min=0))
    partition: Tuple[int, ...] = dataclasses.field(default=(), metadata=_bounds(min=NO_PARTITION))
    reason: Tuple[str, ...] = ()
    runs: Optional[int] = _nonneg()  # profiled inferences (their mean is each op's ms)
    profiled_ms: Optional[float] = _nonneg()  # the profiled pass's mean latency per inference (with the profiler on)
    note: Optional[str] = None  # what is missing and how to get it

    def __post_init__(self) -> None:
        n = len(self.index)
        for column in ("name", "type", "processor", "ms", "calls", "partition", "reason"):
            size = len(getattr(self, column))
            if size != n and not (size == 0 and column in ("ms", "calls", "partition", "reason")):
                raise _fail(f"ops.{column}", f"{size} entries for {n} ops")

    @classmethod
    def of(cls, source: str, records: Tuple[OpRecord, ...] = (), runs: Optional[int] = None,
           profiled_ms: Optional[float] = None, note: Optional[str] = None) -> OpProfile:  # fmt: skip
        """From OpRecords: a column is kept where every op has a value (ms: every op, or none)."""
        if any(r.ms is None for r in records) and any(r.ms is not None for r in records):
            raise ValueError("an op profile times every op or none")

        return cls(
            source=source, index=tuple(r.index for r in records), name=tuple(r.name for r in records),
            type=tuple(r.type for r in records), processor=tuple(r.processor for r in records),
            ms=tuple(float(r.ms) for r in records if r.ms is not None),
            calls=tuple(r.calls if r.calls is not None else 1 for r in records)
            if any(r.calls is not None for r in records) else (),
            partition=tuple(r.partition if r.partition is not None else NO_PARTITION for r in records)
            if any(r.partition is not None for r in records) else (),
            reason=tuple(r.reason or "" for r in records) if any(r.reason for r in records) else (),
            runs=runs, profiled_ms=profiled_ms, note=note,
        )  # fmt: skip

    @property
    def ops(self) -> Tuple[OpRecord, ...]:
        ms, calls, partition, reason = self.ms, self.calls, self.partition, self.reason
        return tuple(
            OpRecord(index=self.index[i], name=self.name[i], type=self.type[i], processor=self.processor[i],
                     ms=ms[i] if ms else None, calls=calls[i] if calls else None,
                     partition=partition[i] if partition and partition[i] != NO_PARTITION else None,
                     reason=(reason[i] or None) if reason else None)
            for i in range(len(self.index))
        )  # fmt: skip

    @property
    def timed(self) -> bool:
        return bool(self.ms)


@dataclasses.dataclass(frozen=True)
class Result(Message):
    """How one job went. The agent fills what it measured; the host adds attempts, command time,
    pushed bytes, stderr and cooldown (each a new Result: none is changed once built)."""

    job_id: str
    status: str = dataclasses.field(metadata=_bounds(choices=STATUSES))
    message: Optional[str] = None
    agent: str = "python"  # python | benchmark_model | host (made on the host: not run, crashed, ...)
    agent_version: Optional[str] = None
    runtime: Optional[RuntimeInfo] = None
    delegation: Optional[Delegation] = None
    init_ms: Optional[float] = _nonneg()
    first_inference_ms: Optional[float] = _nonneg()
    samples_ns: Tuple[int, ...] = dataclasses.field(default=(), metadata=_bounds(above=0, max=MAX_SAMPLE_NS))
    window_ns: Optional[int] = _nonneg()
    window_start_unix: Optional[float] = None
    window_end_unix: Optional[float] = None
    peak_rss_kb: Optional[int] = _nonneg()
    device_facts: DeviceFacts = dataclasses.field(default_factory=DeviceFacts)
    runtime_log: Optional[str] = None
    error: Optional[str] = None  # a machine-readable kind of failure: "model_load"
    traceback: Optional[str] = None
    telemetry: Optional[Telemetry] = None
    started_unix: Optional[float] = None
    ended_unix: Optional[float] = None
    # benchmark_model
    aggregate: Optional[Aggregate] = None
    warmup: Optional[Aggregate] = None
    memory: Optional[Memory] = None
    command_line: Optional[str] = None
    output_tail: Optional[str] = None
    # checks (CheckSpec), run after the timed window
    outputs: Optional[Outputs] = None
    accuracy: Optional[Accuracy] = None
    # RunSpec.repetitions > 1: samples_ns holds every repetition's samples, in order
    repetitions: Tuple[Repetition, ...] = ()
    # the share of the CPUs other processes (and a hypervisor's steal) used during the timed window
    # (with repetitions: their median); from /proc/stat
    other_cpu: Optional[float] = dataclasses.field(default=None, metadata=_bounds(min=0, max=1))
    # each op: where it ran, and its time where the runtime can profile it (RunSpec.op_profiling)
    ops: Optional[OpProfile] = None
    # added on the host
    attempts: int = dataclasses.field(default=1, metadata=_bounds(min=1))
    command_seconds: Optional[float] = _nonneg()
    pushed_bytes: Optional[int] = _nonneg()
    stderr_tail: Optional[str] = None
    cooldown: Optional[Cooldown] = None
    schema: int = SCHEMA_VERSION

    @classmethod
    def from_dict(cls, value: Any) -> Result:
        return _versioned(cls, value, {1: _result_from_v1, 2: _added_in_v3, 3: _added_in_v4, 4: _added_in_v5,
                                       5: _added_in_v6})  # fmt: skip

    @property
    def measured(self) -> bool:
        return self.status in MEASURED

    @property
    def succeeded(self) -> bool:
        return self.status in SUCCESS


def _result_from_v1(value: Dict[str, Any]) -> Dict[str, Any]:
    memory = value.get("memory")
    if isinstance(memory, dict):
        value["memory"] = (
            {"kind": memory.get("memory_kind"), "init_mb": memory.get("memory_init_mb"),
             "overall_mb": memory.get("memory_overall_mb")}
            if memory else None
        )  # fmt: skip
    for key in ("aggregate", "warmup"):
        if isinstance(value.get(key), dict):
            known = set(f.name for f in dataclasses.fields(Aggregate))
            value[key] = dict((k, v) for k, v in value[key].items() if k in known)
    if value.get("device_facts") is None:
        value["device_facts"] = {}
    return dict(value, schema=2)


# ---------------------------------------------------------------------------- probe


@dataclasses.dataclass(frozen=True)
class RuntimeProbe(Message):
    """A runtime on the device: its package and version, or why it cannot be imported."""

    package: Optional[str] = None
    version: Optional[str] = None
    providers: Optional[Tuple[str, ...]] = None  # ONNX Runtime's available execution providers
    error: Optional[str] = None


@dataclasses.dataclass(frozen=True)
class LibraryProbe(Message):
    """Whether a delegate's shared library loads on the device."""

    library: str
    loadable: bool
    error: Optional[str] = None


@dataclasses.dataclass(frozen=True)
class SourceProbe(Message):
    """Whether a telemetry source can be read with its default options, and what it found."""

    found: bool
    kind: Optional[str] = None
    label: Optional[str] = None
    supply: Optional[str] = None  # battery: the power supply it reads
    why: Optional[str] = None


@dataclasses.dataclass(frozen=True)
class Probe(Message):
    """What a device is and has: facts, runtimes, delegate libraries, telemetry sources per root."""

    agent_version: str
    facts: DeviceFacts = dataclasses.field(default_factory=DeviceFacts)
    runtimes: Mapping[str, RuntimeProbe] = dataclasses.field(default_factory=dict)
    delegates: Mapping[str, LibraryProbe] = dataclasses.field(default_factory=dict)
    telemetry: Mapping[str, Mapping[str, SourceProbe]] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class TempReading(Message):
    """The device's hottest temperature source now (cooldown between jobs)."""

    temp_c: Optional[float] = None
    errors: Tuple[str, ...] = ()
