"""The stand-in benchmark_model's `--output_filepath` run (benchmark_model is an Android binary and
cannot run here): the same flags, read the way TFLite's benchmark_tflite_model.cc reads them
(`--input_layer_value_files=name:file,...` with '::' for a ':' in a name; each file the raw bytes
of its tensor), one inference on real LiteRT, and every output tensor's raw bytes written in order
to the file, as its OutputSaver does. Run as `python bm_outputs.py ARGS...`."""

from __future__ import annotations

import sys

import numpy as np
from ai_edge_litert.interpreter import Interpreter, OpResolverType


def split_name_and_file(item: str) -> tuple[str, str]:
    i, at = 0, -1
    while i < len(item) - 1:
        if item[i] == ":":
            if item[i + 1] == ":":
                i += 1
            elif at == -1:
                at = i
            else:
                raise SystemExit(f"{item} contains more than one delimiter.")
        i += 1
    if at == -1:
        raise SystemExit(f"{item} doesn't contain any delimiter.")
    return item[:at].replace("::", ":"), item[at + 1 :].replace("::", ":")


def main(argv: list[str]) -> int:
    flags = dict(a[2:].split("=", 1) for a in argv if a.startswith("--") and "=" in a)
    resolver = OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES if flags.get("use_xnnpack") == "false" else None
    kwargs = {"experimental_op_resolver_type": resolver} if resolver is not None else {}
    it = Interpreter(model_path=flags["graph"], num_threads=int(flags.get("num_threads", "1")), **kwargs)
    it.allocate_tensors()
    names = flags["input_layer"].split(",")
    files = dict(split_name_and_file(item) for item in flags["input_layer_value_files"].split(","))
    for detail, name in zip(it.get_input_details(), names):
        raw = open(files[name], "rb").read()
        if len(raw) != detail["shape"].prod() * np.dtype(detail["dtype"]).itemsize:
            print(f"The size of {files[name]} is {len(raw)} bytes. It should be ...", file=sys.stderr)
            return 1
        it.set_tensor(detail["index"], np.frombuffer(raw, dtype=detail["dtype"]).reshape(detail["shape"]))
    it.invoke()
    with open(flags["output_filepath"], "wb") as out:
        for detail in it.get_output_details():
            out.write(np.ascontiguousarray(it.get_tensor(detail["index"])).tobytes())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
