"""Is a series flat? Least-squares slopes after a warm-up, judged against stated limits.

Pure functions of the samples: no clock, no I/O. A slope is in units per minute; a limit is
stated per 10 minutes (how a person says "1 MiB per 10 min"), and a series is flat when its
slope is below the limit (growth is what a leak looks like; a falling series is flat).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Fit:
    """`y = intercept + slope * t` (t in minutes), with the slope's standard error."""

    slope: float
    intercept: float
    stderr: float
    n: int


def least_squares(ts: Sequence[float], ys: Sequence[float]) -> Fit:
    """Ordinary least squares; fewer than 2 points or one distinct t: slope 0 and n as given."""
    n = len(ts)
    if n != len(ys):
        raise ValueError(f"{n} times but {len(ys)} values")
    if n < 2:
        return Fit(0.0, ys[0] if ys else 0.0, math.inf, n)
    mean_t, mean_y = sum(ts) / n, sum(ys) / n
    sxx = sum((t - mean_t) ** 2 for t in ts)
    if sxx == 0:
        return Fit(0.0, mean_y, math.inf, n)
    slope = sum((t - mean_t) * (y - mean_y) for t, y in zip(ts, ys, strict=True)) / sxx
    intercept = mean_y - slope * mean_t
    if n < 3:
        return Fit(slope, intercept, math.inf, n)
    residual = sum((y - intercept - slope * t) ** 2 for t, y in zip(ts, ys, strict=True))
    return Fit(slope, intercept, math.sqrt(residual / (n - 2) / sxx), n)


@dataclass(frozen=True, slots=True)
class Limit:
    """A series of samples that must not grow faster than `per_10_min` `unit`s."""

    series: str  # the Sample attribute
    label: str
    unit: str
    per_10_min: float


# What "flat" means (docs/soak.md). The example for RSS; fds and tasks must not climb by
# even one per 10 minutes on average; the loop lag's p99 must not rise by 5 ms per 10 minutes.
LIMITS: tuple[Limit, ...] = (
    Limit("rss_mib", "RSS", "MiB", 1.0),
    Limit("fds", "open fds", "fds", 1.0),
    Limit("tasks", "asyncio tasks", "tasks", 2.0),
    Limit("lag_p99_s", "loop lag p99", "s", 0.005),
)


@dataclass(frozen=True, slots=True)
class Verdict:
    limit: Limit
    fit: Fit

    @property
    def per_10_min(self) -> float:
        return self.fit.slope * 10

    @property
    def enough_data(self) -> bool:
        return self.fit.n >= 3

    @property
    def flat(self) -> bool:
        return self.enough_data and self.per_10_min < self.limit.per_10_min


def judge(points: Sequence[tuple[float, dict[str, float]]], warmup_min: float,
          limits: Sequence[Limit] = LIMITS) -> list[Verdict]:
    """One verdict per limit, over the points (minute, values) at or after `warmup_min`."""
    kept = [(t, values) for t, values in points if t >= warmup_min]
    ts = [t for t, _ in kept]
    return [Verdict(limit, least_squares(ts, [values[limit.series] for _, values in kept]))
            for limit in limits]
