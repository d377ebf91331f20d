"""What the agent runs after the timed window: the outputs of seeded fidelity inputs, and top-1/top-5
predictions on a labelled evaluation set. Never inside the window; a failure here is kept in the
Result (Outputs.error, Accuracy.error) and the timing still stands."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any, Callable, List, Optional, Sequence, Tuple

from .protocol import Accuracy, CheckSpec, Outputs, TensorOutput

# A model's answer to one set of inputs: its raw outputs, in the runtime's order.
Infer = Callable[[List[Any]], List[Any]]


@dataclass(frozen=True)
class TensorInfo:
    """An input or output as the runtime describes it; scale 0 means not quantised."""

    name: str
    shape: Tuple[int, ...]
    dtype: Any
    scale: float = 0.0
    zero_point: int = 0


def concrete(dims: Sequence[Any]) -> Tuple[int, ...]:
    """Dynamic dimensions (None, -1, or a symbolic name) become 1, as for the timed inputs."""
    return tuple(int(d) if hasattr(d, "__index__") and int(d) > 0 else 1 for d in dims)


def quantize(np: Any, x: Any, info: TensorInfo) -> Any:
    """An array in the input's dtype: floats go through its scale and zero point where it takes integers."""
    dtype = np.dtype(info.dtype)
    x = np.asarray(x)
    if dtype.kind in "iu" and info.scale and x.dtype.kind == "f":
        limits = np.iinfo(dtype)
        q = np.round(x / info.scale) + info.zero_point
        return np.clip(q, limits.min, limits.max).astype(dtype)
    return x.astype(dtype)


def dequantize(np: Any, y: Any, info: TensorInfo) -> Any:
    y = np.asarray(y)
    if y.dtype.kind in "iu" and info.scale:
        return ((y.astype(np.float64) - info.zero_point) * info.scale).astype(np.float32)
    return y.astype(np.float32)


def fidelity_inputs(np: Any, inputs: Sequence[TensorInfo], spec: CheckSpec, seed: int) -> List[List[Any]]:
    """`spec.fidelity_inputs` sets of inputs, the same on every job of a sweep whose model takes the same shapes."""
    rng = np.random.default_rng([seed, 7919])
    out = []
    for _ in range(spec.fidelity_inputs):
        arrays = []
        for info in inputs:
            dtype = np.dtype(info.dtype)
            if dtype.kind in "iu" and not info.scale:  # real integers (token ids, ...): the timed inputs' rule
                limits = np.iinfo(dtype)
                arrays.append(rng.integers(limits.min, limits.max, size=info.shape, dtype=dtype, endpoint=True))
            else:
                arrays.append(quantize(np, rng.uniform(spec.input_low, spec.input_high, size=info.shape), info))
        out.append(arrays)
    return out


def keep_outputs(np: Any, infer: Infer, inputs: Sequence[TensorInfo], outputs: Sequence[TensorInfo],
                 spec: CheckSpec, seed: int) -> Optional[Outputs]:  # fmt: skip
    if not spec.fidelity_inputs:
        return None
    try:
        answers = [infer(arrays) for arrays in fidelity_inputs(np, inputs, spec, seed)]
        tensors = []
        for i, info in enumerate(outputs):
            per_input = [dequantize(np, answer[i], info).ravel()[: spec.max_values] for answer in answers]
            values = np.concatenate(per_input).astype("<f4") if per_input else np.zeros(0, "<f4")
            shape = tuple(int(d) for d in np.asarray(answers[0][i]).shape) if answers else info.shape
            tensors.append(TensorOutput(
                name=info.name, dtype=str(np.dtype(info.dtype)), shape=shape,
                values=base64.b64encode(values.tobytes()).decode("ascii"), kept=len(per_input[0]) if per_input else 0,
                scale=float(info.scale) if info.scale else None, zero_point=int(info.zero_point) if info.scale else None,
            ))  # fmt: skip
        return Outputs(inputs=spec.fidelity_inputs, seed=seed, tensors=tuple(tensors))
    except Exception as exc:  # noqa: BLE001 - the timing stands; say why there are no outputs
        return Outputs(inputs=spec.fidelity_inputs, seed=seed, error=f"{type(exc).__name__}: {exc}"[:500])


def evaluate(np: Any, infer: Infer, inputs: Sequence[TensorInfo], spec: CheckSpec) -> Optional[Accuracy]:
    """Top-1/top-5 on the evaluation set, one sample per inference, from the first output's scores."""
    if not spec.eval_path:
        return None
    try:
        with np.load(spec.eval_path, allow_pickle=False) as data:
            x, y = data["x"], data["y"]
        if len(inputs) != 1:
            raise ValueError(f"the model takes {len(inputs)} inputs; an evaluation set feeds models with one")
        if len(x) != len(y):
            raise ValueError(f"x holds {len(x)} samples but y {len(y)} labels")
        want = inputs[0].shape
        if tuple(x.shape[1:]) != want[1:] and tuple(x.shape[1:]) != want:
            raise ValueError(f"x has samples of shape {list(x.shape[1:])}; the model takes {list(want)}")
        predictions, top1, top5, classes = [], 0, 0, 0
        for sample, label in zip(x, y):
            scores = np.asarray(infer([quantize(np, np.reshape(sample, want), inputs[0])])[0]).reshape(-1)
            order = np.argsort(-scores.astype(np.float64), kind="stable")
            predictions.append(int(order[0]))
            top1 += int(order[0] == int(label))
            top5 += int(int(label) in order[:5])
            classes = scores.size
        return Accuracy(samples=len(y), top1=top1, top5=top5 if classes >= 5 else None,
                        predictions=tuple(predictions), eval_sha256=spec.eval_sha256)  # fmt: skip
    except Exception as exc:  # noqa: BLE001 - the timing stands; say why there is no accuracy
        return Accuracy(samples=0, error=f"evaluation set {spec.eval_path}: {type(exc).__name__}: {exc}"[:500])
