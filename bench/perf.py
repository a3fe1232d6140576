"""The cost figures: latency at 1 in flight and at 100 req/s open loop, maximum throughput at 64
in flight, CPU per call and RSS of each subject's process.

All subjects run at once (idle when not loaded) and each measurement is split into rounds that
visit the subjects in rotating order. On a shared machine a burst of someone else's work then
spreads over every subject instead of landing on one, which keeps the side-by-side comparison
(and the "added latency", a difference of two measurements) honest.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from bench.load import Run, closed_loop, open_loop
from bench.procs import cpu_seconds, rss_mib
from bench.subjects import Subject, Upstream


@dataclass(frozen=True)
class PerfPlan:
    warmup_s: float = 1.0
    serial_s: float = 4.0
    serial_max_calls: int = 10_000
    open_rate_per_s: float = 100.0
    open_s: float = 15.0
    in_flight: int = 64
    closed_s: float = 5.0
    rounds: int = 5


FULL = PerfPlan()
SMOKE = PerfPlan(warmup_s=0.1, serial_s=0.3, serial_max_calls=300, open_s=0.3,
                 in_flight=16, closed_s=0.3, rounds=1)


@dataclass
class PerfResult:
    kind: str
    title: str
    serial: Run = field(default_factory=Run)
    opened: Run = field(default_factory=Run)
    closed: Run = field(default_factory=Run)
    cpu_open_s: float = 0.0  # subject CPU seconds during its open-loop slices
    cpu_closed_s: float = 0.0  # subject CPU seconds during its 64-in-flight slices
    upstream_cpu_closed_s: float = 0.0
    rss_idle_mib: float | None = None
    rss_after_mib: float | None = None
    spans_exported: int | None = None
    has_process: bool = True

    @property
    def cpu_per_call_us(self) -> float | None:
        """Subject CPU per call at 64 in flight (its cheapest, batched, case)."""
        calls = len(self.closed.samples)
        return self.cpu_closed_s / calls * 1e6 if self.has_process and calls else None

    @property
    def cpu_at_rate_pct(self) -> float | None:
        """Subject CPU as % of one core while serving 100 req/s."""
        if not self.has_process or not self.opened.elapsed_s:
            return None
        return self.cpu_open_s / self.opened.elapsed_s * 100

    @property
    def upstream_cpu_per_call_us(self) -> float:
        calls = len(self.closed.samples)
        return self.upstream_cpu_closed_s / calls * 1e6 if calls else 0.0


def _cpu(pid: int | None) -> float:
    return cpu_seconds(pid) if pid else 0.0


async def _rounds(subjects: list[Subject], results: dict[str, PerfResult], rounds: int,
                  slice_: Callable[[Subject, PerfResult], Awaitable[None]]) -> None:
    for r in range(rounds):
        shift = r % len(subjects)
        for subject in subjects[shift:] + subjects[:shift]:
            await slice_(subject, results[subject.kind])


async def measure_all(subjects: list[Subject], up: Upstream, plan: PerfPlan) -> list[PerfResult]:
    results = {s.kind: PerfResult(s.kind, s.title, has_process=s.proc is not None)
               for s in subjects}
    await asyncio.sleep(0.5)  # let start-up settle before the idle reading
    for s in subjects:
        results[s.kind].rss_idle_mib = rss_mib(s.proc.pid) if s.proc else None
        await closed_loop(s.client.get, 8, plan.warmup_s)  # connections open, paths warm
    n = plan.rounds

    async def serial(s: Subject, res: PerfResult) -> None:
        res.serial.absorb(await closed_loop(s.client.get, 1, plan.serial_s / n,
                                            plan.serial_max_calls // n))

    async def opened(s: Subject, res: PerfResult) -> None:
        before = _cpu(s.proc.pid if s.proc else None)
        res.opened.absorb(await open_loop(s.client.get, plan.open_rate_per_s, plan.open_s / n))
        res.cpu_open_s += _cpu(s.proc.pid if s.proc else None) - before

    async def closed(s: Subject, res: PerfResult) -> None:
        pid = s.proc.pid if s.proc else None
        before, up_before = _cpu(pid), _cpu(up.proc.pid)
        res.closed.absorb(await closed_loop(s.client.get, plan.in_flight, plan.closed_s / n))
        res.cpu_closed_s += _cpu(pid) - before
        res.upstream_cpu_closed_s += _cpu(up.proc.pid) - up_before

    for step in (serial, opened, closed):
        await _rounds(subjects, results, n, step)
    for s in subjects:
        results[s.kind].rss_after_mib = rss_mib(s.proc.pid) if s.proc else None
    return [results[s.kind] for s in subjects]
