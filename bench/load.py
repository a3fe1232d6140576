"""Load generators and the statistics of their samples.

Times are `time.monotonic()` (CLOCK_MONOTONIC on Linux), the clock the simulator stamps its
arrivals with, so client-side and upstream-side times of one run are comparable.

* `closed_loop(call, in_flight, ...)`: N workers, each sends its next call when the last one
  answers. 1 in flight gives the bare per-call latency; 64 gives the maximum throughput.
* `open_loop(call, rate, ...)`: calls start on a fixed schedule, whatever the answers do, and a
  call's latency counts from its *intended* start. A stall therefore shows in every call that
  should have started during it (no coordinated omission), generator lag included.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

Call = Callable[[], Awaitable[str]]  # returns an outcome: "ok", "http_5xx", "circuit_open", ...


@dataclass
class Sample:
    start: float  # intended start (open loop) or actual start (closed loop)
    end: float
    outcome: str

    @property
    def latency_s(self) -> float:
        return self.end - self.start


@dataclass
class Run:
    samples: list[Sample] = field(default_factory=list)
    started: float = 0.0
    elapsed_s: float = 0.0  # the load's duration (summed over slices once merged)
    unfinished: int = 0  # calls still running at the time bound (open loop), counted as lost

    @property
    def outcomes(self) -> Counter[str]:
        return Counter(s.outcome for s in self.samples)

    def absorb(self, other: Run) -> None:
        """Add another slice of the same measurement (interleaved runs)."""
        self.samples.extend(other.samples)
        self.elapsed_s += other.elapsed_s
        self.unfinished += other.unfinished

    def latencies(self, outcome: str | None = "ok") -> list[float]:
        return sorted(s.latency_s for s in self.samples if outcome is None or s.outcome == outcome)

    def throughput(self) -> float:
        ok = sum(1 for s in self.samples if s.outcome == "ok")
        return ok / self.elapsed_s if self.elapsed_s > 0 else 0.0


async def _timed(call: Call, start: float, run: Run) -> None:
    try:
        outcome = await call()
    except Exception as exc:  # a harness bug must not stop the run; it shows as an outcome
        outcome = f"exception:{type(exc).__name__}"
    run.samples.append(Sample(start, time.monotonic(), outcome))


async def closed_loop(call: Call, in_flight: int, duration_s: float,
                      max_calls: int = 1_000_000) -> Run:
    run = Run(started=time.monotonic())
    end = run.started + duration_s
    budget = [max_calls]

    async def worker() -> None:
        while budget[0] > 0 and time.monotonic() < end:
            budget[0] -= 1
            await _timed(call, time.monotonic(), run)

    await asyncio.gather(*(worker() for _ in range(in_flight)))
    run.elapsed_s = time.monotonic() - run.started
    return run


async def open_loop(call: Call, rate_per_s: float, duration_s: float,
                    grace_s: float = 15.0) -> Run:
    """`rate_per_s * duration_s` calls on a fixed schedule; waits `grace_s` for stragglers."""
    count = max(1, int(rate_per_s * duration_s))
    run = Run(started=time.monotonic() + 0.02)
    tasks: set[asyncio.Task[None]] = set()
    for i in range(count):
        intended = run.started + i / rate_per_s
        delay = intended - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(_timed(call, intended, run))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    if tasks:
        _, pending = await asyncio.wait(set(tasks), timeout=grace_s)
        for task in pending:
            task.cancel()
        run.unfinished = len(pending)
    run.elapsed_s = count / rate_per_s
    return run


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of already sorted values; NaN when there are none."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(q * len(sorted_values) / 100.0 - 1e-9))  # 99.9% of 1000 is 999
    return sorted_values[rank - 1]


def max_in_window(times: Sequence[float], window_s: float = 1.0) -> int:
    """The most events inside any sliding window [t, t + window_s)."""
    ordered = sorted(times)
    best, lo = 0, 0
    for hi, t in enumerate(ordered):
        while ordered[lo] + window_s <= t:
            lo += 1
        best = max(best, hi - lo + 1)
    return best
