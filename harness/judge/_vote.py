"""Several judges per criterion: the verdict is the majority, and how far they agree is reported as
Krippendorff's alpha (nominal), which works for any number of judges."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from harness.scoring._metrics import Metric, MetricValue


def majority(votes: Sequence[bool]) -> bool:
    """Strict majority: a tie does not pass, since a criterion is met only if most judges accept it."""
    return sum(bool(v) for v in votes) * 2 > len(votes)


def agreement_key(criterion: str, raters: int) -> str:
    """The per-sample value an Agreement metric reads: the fraction of the `raters` judges that said yes."""
    return f"{criterion}_yes_of_{raters}"


@dataclass(frozen=True)
class Agreement(Metric):
    """Krippendorff's alpha over samples (each epoch a unit) for a panel of `raters` judges, with a 95%
    percentile-bootstrap interval over units. Undefined (not reported) when every vote is the same."""

    raters: int = 2
    resamples: int = 500
    scale: float = 1.0
    proportion: bool = False

    def compute(self, per_sample: Sequence[Sequence[float]]) -> MetricValue | None:
        import numpy as np

        yes = [round(v * self.raters) for values in per_sample for v in values]
        if not yes:
            return None
        # nominal alpha depends only on how many judges chose each value per unit, not on which judge did
        data = np.zeros((self.raters, len(yes)))
        for unit, k in enumerate(yes):
            data[:k, unit] = 1.0
        value = _alpha(data)
        if value is None:
            return None
        rng = np.random.default_rng(0)
        stats = sorted(a for a in (_alpha(data[:, rng.integers(0, len(yes), len(yes))])
                                   for _ in range(self.resamples)) if a is not None)
        low, high = (stats[int(0.025 * len(stats))], stats[int(0.975 * len(stats)) - 1]) if stats else (None, None)
        return MetricValue(value, low, high, len(yes))


def _alpha(data) -> float | None:
    import krippendorff

    if len({float(x) for x in data.flat}) < 2:
        return None
    return float(krippendorff.alpha(reliability_data=data, level_of_measurement="nominal"))
