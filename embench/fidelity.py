"""Output fidelity: how far a job's outputs are from its reference's on the same seeded inputs, and
accuracy with its confidence interval. Numbers only: no I/O, no rendering."""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass

import numpy as np

from embench_agent.protocol import Accuracy, Outputs


@dataclass(frozen=True)
class Fidelity:
    """One job's outputs against its reference's (the same model at fp32 on a CPU), over every
    fidelity input. Cosine and SNR are of the first output tensor per input; agreement is top-1 of
    the candidate against top-1 of the reference (top-5: the reference's top-1 is in the candidate's top 5)."""

    inputs: int
    max_abs_error: float
    cosine_min: float
    cosine_mean: float
    snr_db: float  # inf when identical
    top1_agreement: float | None  # None: the output is not a score vector
    top5_agreement: float | None


def decode(outputs: Outputs) -> list[np.ndarray]:
    """Each tensor as an array of shape (inputs, kept values)."""
    arrays = []
    for t in outputs.tensors:
        flat = np.frombuffer(base64.b64decode(t.values), dtype="<f4")
        arrays.append(flat.reshape(outputs.inputs, t.kept) if t.kept else flat.reshape(outputs.inputs, 0))
    return arrays


def comparable(ref: Outputs, cand: Outputs) -> str | None:
    """Why these two cannot be compared, or None."""
    if ref.error or cand.error:
        return f"no outputs: {cand.error or ref.error}"
    if ref.inputs != cand.inputs or ref.seed != cand.seed:
        return f"different fidelity inputs ({cand.inputs} from seed {cand.seed} vs {ref.inputs} from seed {ref.seed})"
    if len(ref.tensors) != len(cand.tensors) or not ref.tensors:
        return f"{len(cand.tensors)} output tensor(s) against the reference's {len(ref.tensors)}"
    for i, (a, b) in enumerate(zip(ref.tensors, cand.tensors)):
        if int(np.prod(a.shape)) != int(np.prod(b.shape)) or a.kept != b.kept:
            return f"output {i} has shape {list(b.shape)}; the reference's has {list(a.shape)}"
    return None


def compare(ref: Outputs, cand: Outputs) -> Fidelity:
    """The first output tensor's fidelity (classifiers and most vision models have one); call
    `comparable` first."""
    r, c = decode(ref)[0].astype(np.float64), decode(cand)[0].astype(np.float64)
    err = c - r
    norms = np.linalg.norm(r, axis=1) * np.linalg.norm(c, axis=1)
    dots = np.sum(r * c, axis=1)
    # Two all-zero outputs agree exactly; one all-zero output against a non-zero one does not at all.
    cosines = np.where(norms > 0, dots / np.where(norms > 0, norms, 1.0), np.where(np.all(err == 0, axis=1), 1.0, 0.0))
    noise = float(np.sum(err * err))
    signal = float(np.sum(r * r))
    snr = math.inf if noise == 0 else (10 * math.log10(signal / noise) if signal > 0 else -math.inf)
    top1 = top5 = None
    if r.shape[1] >= 2:
        ref_top = np.argmax(r, axis=1)
        top1 = float(np.mean(np.argmax(c, axis=1) == ref_top))
        if r.shape[1] >= 5:
            cand_top5 = np.argsort(-c, axis=1, kind="stable")[:, :5]
            top5 = float(np.mean([t in row for t, row in zip(ref_top, cand_top5)]))
    return Fidelity(
        inputs=r.shape[0], max_abs_error=float(np.max(np.abs(err))) if err.size else 0.0,
        cosine_min=float(np.min(cosines)), cosine_mean=float(np.mean(cosines)), snr_db=snr,
        top1_agreement=top1, top5_agreement=top5,
    )  # fmt: skip


def below(f: Fidelity, min_cosine: float, min_snr_db: float | None, min_top1: float | None) -> list[str]:
    """What falls under the sweep's thresholds, said with both numbers; empty when it holds."""
    out = []
    if f.cosine_min < min_cosine:
        out.append(f"cosine {f.cosine_min:.4f} < {min_cosine:g}")
    if min_snr_db is not None and f.snr_db < min_snr_db:
        out.append(f"SNR {f.snr_db:.1f} dB < {min_snr_db:g} dB")
    if min_top1 is not None and f.top1_agreement is not None and f.top1_agreement < min_top1:
        out.append(f"top-1 agreement {f.top1_agreement:.0%} < {min_top1:.0%}")
    return out


@dataclass(frozen=True)
class AccuracyCI:
    """Top-1 (and top-5) accuracy with the exact (Clopper-Pearson) 95% interval of top-1."""

    samples: int
    top1: float
    ci_low: float
    ci_high: float
    top5: float | None


def accuracy(acc: Accuracy, confidence: float = 0.95) -> AccuracyCI | None:
    if acc.error or acc.samples == 0:
        return None
    from scipy.stats import binomtest  # noqa: PLC0415

    ci = binomtest(acc.top1, acc.samples).proportion_ci(confidence, method="exact")
    top5 = acc.top5 / acc.samples if acc.top5 is not None else None
    return AccuracyCI(acc.samples, acc.top1 / acc.samples, float(ci.low), float(ci.high), top5)
