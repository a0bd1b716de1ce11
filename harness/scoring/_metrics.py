"""Aggregate per-sample values into metrics with 95% confidence intervals.

With one epoch, a 0/1 value's interval is Wilson's score interval; otherwise (fractions, or several
epochs averaged per sample) a seeded percentile bootstrap over samples, so epochs never inflate n.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass
from math import comb
from typing import TYPE_CHECKING, Callable, Mapping, Sequence

if TYPE_CHECKING:
    import numpy as np

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
    scale: the project's one unit convention: every proportion (accuracy, pass@k, F1, similarity, any value
    in [0, 1]) is reported in percent (scale 100), in the terminal, the JSON and the leaderboard alike, as
    papers report them; the paper numbers beside them (Reference) are in percent too. Only quantities that
    are not proportions (counts, seconds, agreement coefficients) use another scale.
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

    def compute_named(self, per_sample: Sequence[Sequence[float]]) -> dict[str, MetricValue]:
        """Every value this metric reports, by name (one, unless a subclass reports a family)."""
        mv = self.compute(per_sample)
        return {} if mv is None else {self.name: mv}


@dataclass(frozen=True)
class PassAtK(Metric):
    """pass@k for every k up to the fewest epochs any sample has (`{name}@{k}`), from 0/1 values: the
    unbiased estimator per sample (n epochs, c of them 1), averaged over samples. pass@1 is Metric's
    mean; k > 1 gets a bootstrap interval over samples."""

    def compute_named(self, per_sample: Sequence[Sequence[float]]) -> dict[str, MetricValue]:
        samples = [v for v in per_sample if v]
        if not samples:
            return {}
        out = {}
        for k in range(1, min(len(v) for v in samples) + 1):
            if k == 1:
                mv = self.compute(samples)
            else:
                est = [pass_at_k(len(v), int(sum(v)), k) for v in samples]
                low, high = bootstrap_ci(est)
                mv = MetricValue(sum(est) / len(est) * self.scale, low * self.scale, high * self.scale, len(est))
            if mv is not None:
                out[f"{self.name}@{k}"] = mv
        return out


@dataclass(frozen=True)
class CorpusMetric(Metric):
    """A statistic of the column totals of per-sample values (micro/macro F1 from per-sample tp/fp/fn counts, ratios
    of totals): not a mean of per-sample numbers, so Metric cannot express it.

    statistic(totals, n): `totals` maps each value key to a numpy array holding its total over the samples for the
    point estimate and for every bootstrap resample at once (a key a sample lacks counts 0); n is the sample count.
    It returns one number per column; NaN means undefined (no value is reported). Each sample's values are averaged
    over its epochs first, as Metric does. CI: seeded percentile bootstrap over samples.
    """

    statistic: Callable[[Mapping[str, "np.ndarray"], int], "np.ndarray"] | None = None
    resamples: int = 2000
    seed: int = 0

    def compute_corpus(self, per_sample: Sequence[Sequence[Mapping[str, float]]]) -> MetricValue | None:
        """per_sample: for each sample, its value dicts over epochs."""
        import numpy as np

        samples = [s for s in per_sample if s]
        n = len(samples)
        if n == 0 or self.statistic is None:
            return None
        rng = np.random.default_rng(self.seed)
        # row 0 weighs every sample once (the point estimate); the others are bootstrap resamples
        weights = np.vstack([np.ones((1, n)), rng.multinomial(n, np.full(n, 1.0 / n), size=self.resamples if n > 1 else 0)])
        columns: dict[str, tuple[list[int], list[float]]] = {}
        for i, epochs in enumerate(samples):
            for key in {k for e in epochs for k in e}:
                vals = [float(e[key]) for e in epochs if e.get(key) is not None]
                if vals:
                    rows, values = columns.setdefault(key, ([], []))
                    rows.append(i)
                    values.append(sum(vals) / len(epochs))
        # per-sample values are sparse, so each total is a small product rather than one dense matrix product
        totals = {k: weights[:, rows] @ np.asarray(values) for k, (rows, values) in columns.items()}
        with np.errstate(divide="ignore", invalid="ignore"):
            out = np.broadcast_to(np.asarray(self.statistic(totals, n), dtype=float), (weights.shape[0],))
        if np.isnan(out[0]):
            return None
        boot = np.sort(out[1:][~np.isnan(out[1:])])
        if boot.size == 0:
            low = high = float(out[0])
        else:
            low, high = float(boot[int(0.025 * boot.size)]), float(boot[max(0, int(0.975 * boot.size) - 1)])
        return MetricValue(float(out[0]) * self.scale, low * self.scale, high * self.scale, n)


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
    # at p = 0 (or 1) the bound is exactly 0 (or 1); centre - half only reaches it up to rounding (5.6e-15)
    return (0.0 if p == 0 else max(0.0, centre - half), 1.0 if p == 1 else min(1.0, centre + half))


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
