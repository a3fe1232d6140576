"""What OANDA (the simulator) saw: every request's arrival and answer, read from its request
log every minute and then emptied (the log keeps at most 100 000 entries).

The sidecar promises no 429 from upstream: its limiter keeps every 1 s window at or under
OANDA's 120. The simulator counts arrivals in an exact sliding second, so its log is the judge.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field

import aiohttp

READ_EVERY_S = 60.0


def max_in_window(times: Sequence[float], window_s: float = 1.0) -> tuple[int, float]:
    """The most arrivals in any `window_s` (sorted times) and where that window starts."""
    best, at = 0, 0.0
    for i, t in enumerate(times):
        n = bisect.bisect_left(times, t + window_s, lo=i) - i
        if n > best:
            best, at = n, t
    return best, at


@dataclass
class UpstreamWatch:
    sim_url: str
    requests: int = 0
    status_429: int = 0
    max_per_s: int = 0
    max_at: float = 0.0  # on the simulator's monotonic scale
    failures: list[str] = field(default_factory=list)

    async def run(self, every_s: float = READ_EVERY_S) -> None:
        while True:
            await asyncio.sleep(every_s)
            await self.collect()

    async def collect(self) -> None:
        """Read the log and empty it (what arrives between the two is not seen: a few calls)."""
        try:
            async with aiohttp.ClientSession() as s:
                async with s.get(f"{self.sim_url}/_sim/requests") as resp:
                    entries = (await resp.json())["requests"]
                async with s.delete(f"{self.sim_url}/_sim/requests"):
                    pass
        except (OSError, aiohttp.ClientError, ValueError, KeyError) as exc:
            self.failures.append(f"{type(exc).__name__}: {exc}"[:200])
            return
        self.take(entries)

    def take(self, entries: list[dict[str, object]]) -> None:
        v3 = [e for e in entries if str(e.get("path", "")).startswith("/v3/")]
        self.requests += len(v3)
        self.status_429 += sum(1 for e in v3 if e.get("status") == 429)
        times = sorted(float(str(e["at"])) for e in v3)
        best, at = max_in_window(times)
        if best > self.max_per_s:
            self.max_per_s, self.max_at = best, at

    async def final(self) -> None:
        with contextlib.suppress(asyncio.CancelledError):
            await self.collect()
