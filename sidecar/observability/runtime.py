"""The event loop's own health: how late its timers fire (lag) and how many tasks it holds.

A probe sleeps `interval_s` on the injected clock and measures how much later than asked it
woke: that delay is time the loop spent on other work (a long callback, a GC pause, a starved
CPU), and every request waiting on the loop waited as long. One timer wake-up per probe (10/s
by default), nothing on the request path. The quantiles of the last `window_s` are computed
when /metrics is scraped, so a spike between two scrapes is never missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections import deque
from collections.abc import Callable, Sequence

from prometheus_client import CollectorRegistry, Gauge

from sidecar.clock import Clock

INTERVAL_S = 0.1
WINDOW_S = 10.0
QUANTILES = (0.5, 0.99, 1.0)


def quantile(values: Sequence[float], q: float) -> float:
    """The nearest-rank `q` quantile (q=1: the maximum); 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(q * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


class LagWindow:
    """Lag measurements of the last `window_s` seconds (told `now`, no clock of its own)."""

    def __init__(self, window_s: float = WINDOW_S) -> None:
        self.window_s = window_s
        self._samples: deque[tuple[float, float]] = deque()
        self.last = 0.0

    def record(self, now: float, lag_s: float) -> None:
        self.last = lag_s
        self._samples.append((now, lag_s))
        self._trim(now)

    def _trim(self, now: float) -> None:
        while self._samples and self._samples[0][0] < now - self.window_s:
            self._samples.popleft()

    def quantile(self, q: float) -> float:
        return quantile([lag for _, lag in self._samples], q)

    def __len__(self) -> int:
        return len(self._samples)


class RuntimeGauges:
    """The families, on the sidecar's registry (so the metrics table of the docs lists them)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.lag = Gauge(
            "oanda_sidecar_event_loop_lag_seconds", "How late the event loop's latest probe "
            "timer fired (time the loop was busy elsewhere); probed every 0.1 s",
            registry=registry)
        self.lag_window = Gauge(
            "oanda_sidecar_event_loop_lag_window_seconds", "Event-loop lag over the last 10 s "
            "of probes: quantile 0.5, 0.99 and 1 (the maximum)", ("quantile",),
            registry=registry)
        self.tasks = Gauge(
            "oanda_sidecar_asyncio_tasks", "asyncio tasks alive on the sidecar's event loop "
            "(a number that only grows is a leak)", registry=registry)


class RuntimeMonitor:
    """A Service: the lag probe runs between start() and stop(); the gauges read its window."""

    def __init__(self, clock: Clock, gauges: RuntimeGauges, *, interval_s: float = INTERVAL_S,
                 window_s: float = WINDOW_S) -> None:
        self._clock = clock
        self._gauges = gauges
        self.interval_s = interval_s
        self.window = LagWindow(window_s)
        self._task: asyncio.Task[None] | None = None
        for q in QUANTILES:
            gauges.lag_window.labels(f"{q:g}").set_function(self._quantile_of(q))

    def _quantile_of(self, q: float) -> Callable[[], float]:
        return lambda: self.window.quantile(q)

    async def start(self) -> None:
        if self._task is not None:
            return
        loop = asyncio.get_running_loop()
        self._gauges.tasks.set_function(lambda: len(asyncio.all_tasks(loop)))
        self._task = loop.create_task(self._run(), name="event-loop-lag-probe")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def _run(self) -> None:
        while True:
            await self.probe()

    async def probe(self) -> float:
        """Sleep one interval; record and return how much later than asked it woke."""
        before = self._clock.monotonic()
        await self._clock.sleep(self.interval_s)
        now = self._clock.monotonic()
        lag = max(0.0, now - before - self.interval_s)
        self.window.record(now, lag)
        self._gauges.lag.set(lag)
        return lag
