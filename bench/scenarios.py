"""Behaviour figures, measured at the simulator (what OANDA would have seen).

* `limiter_precision`: 400 req/s offered (open loop); the most arrivals in any sliding 1 s
  window at the upstream, the sustained rate as a share of the configured 100/s, 429s.
* `duplicates`: 20 orders, the first attempt of each committed and its response dropped (a
  reset); a successful GET between orders, so no breaker opens. Duplicates = orders created
  upstream minus distinct orders (by ClientRequestID) that reached it.
* `outage`: 50 req/s; after a lead the simulator answers every call 503 (OANDA's outage
  page). Time from the outage's start to the first fast answer (CIRCUIT_OPEN, Envoy's "no
  healthy upstream", or the sidecar's cached answer, which it serves while the breaker is open),
  and the requests that still reached the upstream after it (only probes should).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import aiohttp

from bench.clients import GET_PATH
from bench.load import Run, max_in_window, open_loop, percentile
from bench.subjects import Subject

ORDER_BODY = json.dumps({"order": {"type": "MARKET", "instrument": "EUR_USD",
                                   "units": "100"}}).encode()


class SimControl:
    """The simulator's `/_sim` API (and one authenticated v3 call for the account ID)."""

    def __init__(self, url: str, token: str) -> None:
        self.url = url
        self._token = token
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))

    async def _json(self, method: str, path: str, **kw: Any) -> Any:
        async with self._session.request(method, self.url + path, **kw) as resp:
            resp.raise_for_status()
            return await resp.json()

    async def reset(self) -> None:
        await self._json("POST", "/_sim/reset")

    async def add_fault(self, **spec: Any) -> None:
        await self._json("POST", "/_sim/faults", json=spec)

    async def clear_faults(self) -> None:
        await self._json("DELETE", "/_sim/faults")

    async def requests(self) -> list[dict[str, Any]]:
        return list((await self._json("GET", "/_sim/requests"))["requests"])

    async def orders_created(self) -> int:
        return int((await self._json("GET", "/_sim/state"))["orders"])

    async def account_id(self) -> str:
        headers = {"Authorization": f"Bearer {self._token}"}
        body = await self._json("GET", "/v3/accounts", headers=headers)
        return str(body["accounts"][0]["id"])

    async def close(self) -> None:
        await self._session.close()


@dataclass
class LimiterResult:
    offered_per_s: float
    max_window: int
    sustained_share: float  # upstream rate / configured rate
    upstream_429: int
    rejected_by_proxy: int
    ok: int
    run: Run


async def limiter_precision(subject: Subject, sim: SimControl, configured_per_s: float = 100.0,
                            offered_per_s: float = 400.0, duration_s: float = 5.0
                            ) -> LimiterResult:
    await sim.reset()
    run = await open_loop(subject.client.get, offered_per_s, duration_s)
    records = await sim.requests()
    arrivals = sorted(r["at"] for r in records if r["path"] == GET_PATH)
    statuses = Counter(r["status"] for r in records)
    # Sustained: after the first second (the burst), for as long as requests kept arriving.
    first, last = (arrivals[0], arrivals[-1]) if arrivals else (0.0, 0.0)
    lo = first + 1.0 if last - first > 2.0 else first
    steady = sum(1 for t in arrivals if t >= lo)
    rate = steady / (last - lo) if last > lo else 0.0
    outcomes = run.outcomes
    return LimiterResult(offered_per_s, max_in_window(arrivals), rate / configured_per_s,
                         statuses[429], outcomes["rate_limited"], outcomes["ok"], run)


@dataclass
class DuplicateResult:
    intended: int
    reached: int
    created: int
    caller_saw: Counter[str]

    @property
    def duplicates(self) -> int:
        return self.created - self.reached


async def duplicates(subject: Subject, sim: SimControl, orders: int = 20) -> DuplicateResult:
    await sim.reset()
    path = f"/v3/accounts/{await sim.account_id()}/orders"
    seen: Counter[str] = Counter()
    for i in range(orders):
        await sim.add_fault(kind="drop_after_commit", count=1,
                            match={"method": "POST", "path": "/v3/accounts/*/orders"})
        seen[await subject.client.order(path, ORDER_BODY, f"bench-order-{i}")] += 1
        await subject.client.get()
    posts = [r for r in await sim.requests() if r["method"] == "POST"]
    reached = len({r["clientRequestID"] for r in posts})
    return DuplicateResult(orders, reached, await sim.orders_created(), seen)


FAST = ("circuit_open", "cached")


@dataclass
class OutageResult:
    time_to_fast_failure_s: float | None
    slow_failures: int  # calls that failed the slow way (5xx, timeout) after the outage began
    upstream_while_open: int
    fast_failure_p50_s: float
    run: Run


async def outage(subject: Subject, sim: SimControl, lead_s: float = 1.0, outage_s: float = 5.0,
                 rate_per_s: float = 50.0) -> OutageResult:
    await sim.reset()
    load = asyncio.create_task(open_loop(subject.client.get, rate_per_s, lead_s + outage_s))
    await asyncio.sleep(lead_s)
    began = time.monotonic()
    await sim.add_fault(kind="outage")
    run = await load
    await sim.clear_faults()
    fast = sorted((s for s in run.samples if s.outcome in FAST), key=lambda s: s.end)
    slow = [s for s in run.samples if s.end > began and s.outcome not in ("ok", *FAST)]
    if not fast:
        return OutageResult(None, len(slow), 0, float("nan"), run)
    opened = fast[0].end
    arrivals = [r for r in await sim.requests() if r["at"] > opened]
    return OutageResult(opened - began, len(slow), len(arrivals),
                        percentile(sorted(s.latency_s for s in fast), 50), run)
