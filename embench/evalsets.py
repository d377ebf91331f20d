"""Labelled evaluation sets named in an inventory (sweep.evaluation): checked on the host before the
sweep starts, then pushed to each device like a model file (content-addressed)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .errors import EmbenchError
from .inventory import Inventory
from .zoo import sha256_file


@dataclass(frozen=True)
class EvalSet:
    model: str
    path: Path
    sha256: str
    samples: int


def load_eval_sets(inventory: Inventory) -> dict[str, EvalSet]:
    """model → its evaluation set; EmbenchError naming the file and the fix when one is unusable."""
    if not inventory.sweep.evaluation:
        return {}
    import numpy as np  # noqa: PLC0415 - only with evaluation sets: the CLI starts without numpy

    sets = {}
    for model, name in inventory.sweep.evaluation.items():
        path = inventory.resolve(name)
        where = f"{inventory.path}: sweep.evaluation.{model}: {path}"
        fix = "save it with numpy.savez(path, x=inputs, y=labels): x in the model's input layout, y integer labels"
        if not path.is_file():
            raise EmbenchError(f"{where} does not exist; give the path of an .npz ({fix})")
        try:
            with np.load(path, allow_pickle=False) as data:
                absent = [key for key in ("x", "y") if key not in data.files]
                if absent:
                    raise EmbenchError(f"{where} has no array {absent[0]!r} (it holds {data.files}); {fix}")
                x, y = data["x"], data["y"]
        except (OSError, ValueError, AttributeError, TypeError) as exc:  # not an .npz: a .npy, text, ...
            raise EmbenchError(f"{where} is not a readable .npz ({exc}); {fix}") from None
        if y.ndim != 1 or y.dtype.kind not in "iu":
            raise EmbenchError(
                f"{where}: y must be one integer label per sample, got {y.dtype} of shape {list(y.shape)}"
            )
        if len(x) != len(y) or not len(y):
            raise EmbenchError(f"{where}: x holds {len(x)} samples and y {len(y)} labels; give as many of each (≥ 1)")
        sets[model] = EvalSet(model, path, sha256_file(path), len(y))
    return sets
