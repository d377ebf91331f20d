"""A model with a known amount of work (test and benchmark support): `layers` MatMul + Relu of
width × width on a batch of 16, as an ONNX file. One more layer is a real slowdown of about
1/layers, with no change anywhere else."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def chain_model(path: Path, layers: int, width: int = 256, seed: int = 0) -> Path:
    import onnx  # noqa: PLC0415 - the zoo extra
    from onnx import TensorProto, helper, numpy_helper  # noqa: PLC0415

    rng = np.random.default_rng(seed)
    nodes, weights, prev = [], [], "x"
    for i in range(layers):
        w = (rng.standard_normal((width, width)) / np.sqrt(width)).astype(np.float32)
        weights.append(numpy_helper.from_array(w, f"w{i}"))
        nodes += [
            helper.make_node("MatMul", [prev, f"w{i}"], [f"m{i}"]),
            helper.make_node("Relu", [f"m{i}"], [f"r{i}"]),
        ]
        prev = f"r{i}"
    graph = helper.make_graph(nodes, "chain", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [16, width])],
                              [helper.make_tensor_value_info(prev, TensorProto.FLOAT, [16, width])], weights)  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path
