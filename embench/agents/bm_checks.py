"""The fidelity check on a phone that runs benchmark_model: no Python there, so the host reads the
model's tensors (LiteRT on the host), writes each seeded input as the raw tensor file that
`--input_layer_value_files` reads, and benchmark_model runs each once, untimed, writing its outputs
with `--output_filepath` (raw bytes of every output tensor, in order: TFLite's OutputSaver). The
bytes come back through the shell and are kept exactly as the Python agent keeps them."""

from __future__ import annotations

import dataclasses
import shlex
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from embench_agent.checks import TensorInfo, fidelity_inputs, keep_outputs
from embench_agent.protocol import Job, Outputs, RunSpec
from embench_agent.runtimes.litert import import_litert, tensor_infos

from ..transports.base import Transport
from ..zoo import sha256_file

CommandLine = Callable[[Job], list[str]]  # the job's benchmark_model argv


def tensors_on_host(model_file: Path) -> tuple[list[TensorInfo], list[TensorInfo]]:
    module, _, _ = import_litert()
    interpreter = module.Interpreter(model_path=str(model_file))
    return tensor_infos(interpreter.get_input_details()), tensor_infos(interpreter.get_output_details())


def _flag_name(name: str) -> str:
    """benchmark_model splits --input_layer_value_files items at ':'; a ':' in a name is written '::'."""
    return name.replace(":", "::")


def check_argv(job: Job, command_line: CommandLine, ins: list[TensorInfo], files: list[str], out: str) -> list[str]:
    """One untimed inference on these input files, in the job's configuration (threads, delegate)."""
    once = dataclasses.replace(job, run=RunSpec(warmup_runs=0, min_runs=1, min_seconds=0, max_seconds=60))
    argv = [a for a in command_line(once) if a != "--report_peak_memory_footprint=true"]
    return [
        *argv,
        "--input_layer=" + ",".join(i.name for i in ins),
        "--input_layer_shape=" + ":".join(",".join(str(d) for d in i.shape) for i in ins),
        "--input_layer_value_files=" + ",".join(f"{_flag_name(i.name)}:{f}" for i, f in zip(ins, files)),
        f"--output_filepath={out}",
    ]


def phone_outputs(job: Job, transport: Transport, workdir: str, command_line: CommandLine, model_file: Path | None,
                  timeout: float) -> Outputs | None:  # fmt: skip
    spec = job.checks
    if not spec.fidelity_inputs:
        return None

    def failed(why: str) -> Outputs:
        return Outputs(inputs=spec.fidelity_inputs, seed=job.seed, error=why[:500])

    if model_file is None:
        return failed("the model's file on the host is not known; its tensors cannot be read")
    try:
        ins, outs = tensors_on_host(model_file)
    except Exception as exc:  # noqa: BLE001 - any LiteRT error: say it, the timing stands
        return failed(f"cannot read {model_file.name}'s tensors on the host: {type(exc).__name__}: {exc}")
    sets = fidelity_inputs(np, ins, spec, job.seed)
    out = f"{workdir}/outputs-{job.job_id}.bin"
    lines = []
    with tempfile.TemporaryDirectory(prefix="embench-inputs-") as tmp:
        for k, arrays in enumerate(sets):
            files = []
            for i, array in enumerate(arrays):
                local = Path(tmp) / f"{k}-{i}.bin"
                local.write_bytes(np.ascontiguousarray(array).tobytes())
                files.append(transport.ensure_file(local, sha256_file(local)))
            argv = shlex.join(check_argv(job, command_line, ins, files, out))
            lines.append(f'rm -f {shlex.quote(out)}; {argv} >/dev/null 2>"$err" || {{ tail -n 3 "$err" >&2; exit 1; }};'
                         f' cat {shlex.quote(out)} || exit 2')  # fmt: skip
    script = f"err={shlex.quote(out + '.err')}\n" + "\n".join(lines) + f'\nrm -f {shlex.quote(out)} "$err"\n'
    res = transport.run(["sh", "-c", script], timeout=timeout)
    sizes = [int(np.prod(o.shape)) * np.dtype(o.dtype).itemsize for o in outs]
    expected = sum(sizes) * len(sets)
    if res.timed_out or res.returncode != 0 or len(res.stdout) != expected:
        why = res.stderr_tail(300).strip().splitlines()[-1:] or [f"{len(res.stdout)} bytes instead of {expected}"]
        return failed(f"benchmark_model gave no outputs (a build with --output_filepath is needed; older ones lack"
                      f" it): {why[0]}")  # fmt: skip
    answers = iter(_split(res.stdout, outs, sizes, len(sets)))
    return keep_outputs(np, lambda _: next(answers), ins, outs, spec, job.seed)


def _split(raw: bytes, outs: list[TensorInfo], sizes: list[int], count: int) -> list[list[Any]]:
    per_set, answers = sum(sizes), []
    for k in range(count):
        chunk, at, arrays = raw[k * per_set : (k + 1) * per_set], 0, []
        for info, size in zip(outs, sizes):
            arrays.append(np.frombuffer(chunk[at : at + size], dtype=np.dtype(info.dtype)).reshape(info.shape))
            at += size
        answers.append(arrays)
    return answers
