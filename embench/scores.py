"""Accuracy against what it costs (LPIRC-style): accuracy per joule, the best accuracy under a latency
budget, and the Pareto front over (accuracy, latency, energy). Numbers only: no I/O, no rendering."""

from __future__ import annotations

import math
from collections.abc import Sequence

DEFAULT_LATENCY_BUDGET_MS = 30.0  # LPIRC's mobile track: an answer within 30 ms an image


def accuracy_per_joule(top1: float, energy_mj: float) -> float:
    """Top-1 accuracy per joule spent on one inference (LPIRC scores accuracy against energy); NaN
    when the energy is unknown or not positive."""
    if math.isnan(top1) or math.isnan(energy_mj) or energy_mj <= 0:
        return math.nan
    return top1 / (energy_mj / 1e3)


def pareto_front(points: Sequence[Sequence[float]], maximize: Sequence[bool]) -> list[bool]:
    """Which points no other point dominates: at least as good in every objective and better in one.
    `maximize[k]` says whether objective k is better higher (accuracy) or lower (latency, energy)."""
    signed = [[v if up else -v for v, up in zip(p, maximize)] for p in points]

    def dominates(a: list[float], b: list[float]) -> bool:
        return all(x >= y for x, y in zip(a, b)) and any(x > y for x, y in zip(a, b))

    return [not any(dominates(other, me) for j, other in enumerate(signed) if j != i) for i, me in enumerate(signed)]
