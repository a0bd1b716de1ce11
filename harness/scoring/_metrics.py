"""Aggregate per-sample values into metrics with 95% confidence intervals.

With one epoch, a 0/1 value's interval is Wilson's score interval; otherwise (fractions, or several
epochs averaged per sample) a seeded percentile bootstrap over samples, so epochs never inflate n.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass
from math import comb
from typing import Sequence

Z95 = 1.959963984540054


@dataclass(frozen=True)
class MetricValue:
    value: float
    ci_low: float | None
    ci_high: float | None
    n: int

    def to_json(self) -> dict[str, float | int | None]:
        return {"value": self.value, "ci_low": self.ci_low, "ci_high": self.ci_high, "n": self.n}


@dataclass(frozen=True)
class Metric:
    """A named aggregate of one per-sample value (`key` in Score.values, or "value" for the headline).

    proportion: values are 0/1 outcomes (Wilson interval with one epoch); otherwise a bootstrap interval.
    scale: 100 shows proportions as percentages, as papers report them.
    """

    name: str
    key: str = "value"
    scale: float = 100.0
    proportion: bool = True

    def compute(self, per_sample: Sequence[Sequence[float]]) -> MetricValue | None:
        """per_sample: for each sample, its values over epochs."""
        means = [sum(v) / len(v) for v in per_sample if v]
        if not means:
            return None
        n = len(means)
        mean = sum(means) / n
        binary = self.proportion and all(len(v) == 1 and v[0] in (0.0, 1.0) for v in per_sample if v)
        low, high = wilson(mean, n) if binary else bootstrap_ci(means)
        return MetricValue(mean * self.scale, low * self.scale, high * self.scale, n)


def accuracy(key: str = "value", name: str = "accuracy") -> Metric:
    return Metric(name, key)


def mean(key: str, name: str | None = None, scale: float = 100.0) -> Metric:
    return Metric(name or key, key, scale, proportion=False)


def wilson(p: float, n: int) -> tuple[float, float]:
    if n == 0:
        return (math.nan, math.nan)
    denom = 1 + Z95**2 / n
    centre = (p + Z95**2 / (2 * n)) / denom
    half = Z95 * math.sqrt(p * (1 - p) / n + Z95**2 / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def bootstrap_ci(values: Sequence[float], resamples: int = 2000, seed: int = 0) -> tuple[float, float]:
    n = len(values)
    if n == 1:
        return (values[0], values[0])
    rng = random.Random(seed)
    stats = sorted(sum(rng.choices(values, k=n)) / n for _ in range(resamples))
    return (stats[int(0.025 * resamples)], stats[int(0.975 * resamples) - 1])


def pass_at_k(n: int, c: int, k: int) -> float:
    """The unbiased estimator of Chen et al. (2021): 1 - C(n-c, k) / C(n, k)."""
    if k > n:
        raise ValueError(f"pass@{k} needs at least {k} samples per problem, got {n}")
    if n - c < k:
        return 1.0
    return 1.0 - comb(n - c, k) / comb(n, k)
