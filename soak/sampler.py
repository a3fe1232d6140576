"""Every ~10 s: the sidecar's RSS and open fds from /proc, its tasks and loop lag from /metrics.

RSS and fds are read from outside (what the kernel charges the process); the task count and the
lag can only come from inside, so the sidecar exports them (`oanda_sidecar_asyncio_tasks`,
`oanda_sidecar_event_loop_lag_window_seconds{quantile}`: the last 10 s, so one scrape every
10 s sees every probe).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

TASKS = "oanda_sidecar_asyncio_tasks"
LAG = "oanda_sidecar_event_loop_lag_seconds"
LAG_WINDOW = "oanda_sidecar_event_loop_lag_window_seconds"
GAUGES = (TASKS, LAG, LAG_WINDOW)


@dataclass(frozen=True, slots=True)
class Sample:
    t_min: float  # minutes since the soak started
    rss_mib: float
    fds: float
    tasks: float
    lag_p50_s: float
    lag_p99_s: float
    lag_max_s: float

    def values(self) -> dict[str, float]:
        return {k: v for k, v in asdict(self).items() if k != "t_min"}


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def parse_gauges(text: str) -> dict[str, float]:
    """`name` or `name{quantile}` -> value, for the runtime gauges of a /metrics body."""
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        if family.name not in GAUGES:
            continue
        for s in family.samples:
            q = s.labels.get("quantile")
            found[f"{s.name}{{{q}}}" if q is not None else s.name] = s.value
    missing = [g for g in (TASKS, LAG, f"{LAG_WINDOW}{{0.99}}") if g not in found]
    if missing:
        raise RuntimeError(f"/metrics lacks {', '.join(missing)}")
    return found


class Sampler:
    """Reads one Sample on demand; `run` samples every `every_s` until cancelled."""

    def __init__(self, pid: Callable[[], int], metrics_url: str, started: float,
                 every_s: float = 10.0) -> None:
        self._pid = pid  # a callable: the sidecar's pid, read at each sample
        self._url = metrics_url
        self._started = started
        self.every_s = every_s
        self.samples: list[Sample] = []
        self.failures: list[str] = []

    async def sample(self, session: aiohttp.ClientSession) -> Sample:
        loop = asyncio.get_running_loop()
        async with session.get(self._url, timeout=aiohttp.ClientTimeout(total=5)) as resp:
            resp.raise_for_status()
            gauges = parse_gauges(await resp.text())
        pid = self._pid()
        sample = Sample(
            t_min=(loop.time() - self._started) / 60, rss_mib=rss_mib(pid),
            fds=open_fds(pid), tasks=gauges[TASKS],
            lag_p50_s=gauges[f"{LAG_WINDOW}{{0.5}}"], lag_p99_s=gauges[f"{LAG_WINDOW}{{0.99}}"],
            lag_max_s=gauges[f"{LAG_WINDOW}{{1}}"])
        self.samples.append(sample)
        return sample

    async def run(self, on_sample: Callable[[Sample], None] | None = None) -> None:
        async with aiohttp.ClientSession() as session:
            loop = asyncio.get_running_loop()
            next_at = loop.time()
            while True:
                next_at += self.every_s
                try:
                    sample = await self.sample(session)
                    if on_sample is not None:
                        on_sample(sample)
                except (OSError, RuntimeError, aiohttp.ClientError, TimeoutError) as exc:
                    self.failures.append(f"{type(exc).__name__}: {exc}"[:200])
                await asyncio.sleep(max(0.0, next_at - loop.time()))
