"""The results as Markdown: the machine, the cost tables, the behaviour tables and the goals."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from bench.load import Run, percentile
from bench.perf import PerfResult
from bench.scenarios import DuplicateResult, LimiterResult, OutageResult
from bench.subjects import TITLES

QS = (50.0, 99.0, 99.9)
NOTES = """\
## How to read this

- **Added latency** is the subject's percentile minus the direct floor's at the same percentile
  (both measured in this run). The bare gRPC proxy is the floor of this architecture; the
  sidecar minus bare is the price of its policies, events, metrics and (when on) tracing.
- **Open loop**: calls start on a fixed schedule and latency counts from the intended start, so
  a stall shows in every call scheduled during it (no coordinated omission).
- **Interleaving**: all subjects run at once, idle when not loaded; each measurement is split
  into rounds that visit them in rotating order, so noise from a shared machine spreads evenly.
- **CPU per call** is the subject process's utime + stime (`/proc/<pid>/stat`, every thread)
  during its 64-in-flight slices, divided by the calls answered; RSS is `VmRSS`.
- **2 cores for 3 busy processes**: at 64 in flight the load generator, the subject and the
  upstream compete. The gRPC client costs the generator more CPU than the aiohttp client, so
  the throughput of the gRPC subjects (bare, sidecar) is capped lower than that of direct and
  Envoy on this machine; compare CPU per call for the subject's own cost.
- **The REST listener** is the same daemon as Execute (tracing off, same profile), driven over
  HTTP/1.1 keep-alive by the same aiohttp client as direct and Envoy, with a bot's placeholder
  token (the sidecar drops it and sends its own). Execute and the REST listener share one
  pipeline (`Front.run`): their difference is the front itself — grpc.aio and protobuf against
  aiohttp's HTTP/1.1 server — plus, for throughput, the cheaper client in the generator.
- **Envoy** runs with `--concurrency 1` and the closest configuration: retry_on
  5xx,reset,connect-failure with 2 retries; outlier detection 5 consecutive 5xx, 60 s ejection
  (panic threshold 0 so ejection acts as a breaker); local rate limit bucket 20, +5 per 50 ms
  (100/s, burst 20; set not to bind for the cost figures, as the sidecar's limiter is).
- **Limiter**: "sustained" counts arrivals at the simulator from 1 s after the first (past the
  burst) to the last, over that span. The sidecar queues (up to 5 s) where Envoy refuses at once.
  Over HTTP/1.1 every call in flight holds a connection of its own: with the client's pool of
  256, calls queued in the REST listener hold the pool, later calls wait in the client's pool
  instead of reaching the sidecar's queue, and some give up at the client's 10 s timeout
  ("client gave up"). Over gRPC every call reaches the sidecar on one HTTP/2 connection, and
  those that would wait longer than 5 s are refused at once (RATE_LIMITED).
- **Outage**: a fast answer is CIRCUIT_OPEN, Envoy's "no healthy upstream", or the sidecar's
  cached answer (its degradation serves the last good GET while the breaker is open).
- **Duplicates**: each order carries a unique ClientRequestID and no client order ID (the risky
  case); duplicates are orders created upstream minus distinct orders that reached it.
"""


@dataclass
class Results:
    meta: dict[str, str]
    perf: list[PerfResult] = field(default_factory=list)
    limiter: dict[str, LimiterResult] = field(default_factory=dict)
    duplicates: dict[str, DuplicateResult] = field(default_factory=dict)
    outage: dict[str, OutageResult] = field(default_factory=dict)


def table(head: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def ms(seconds: float | None) -> str:
    return "—" if seconds is None or math.isnan(seconds) else f"{seconds * 1e3:.2f}"


def num(value: float | None, fmt: str = "{:.0f}") -> str:
    return "—" if value is None or math.isnan(value) else fmt.format(value)


def _errors(run: Run) -> str:
    bad = sum(n for k, n in run.outcomes.items() if k != "ok") + run.unfinished
    return str(bad)


def _latency_rows(perf: list[PerfResult], pick: str) -> list[list[str]]:
    floor = next((p for p in perf if p.kind == "direct"), None)
    rows = []
    for p in perf:
        run: Run = getattr(p, pick)
        values = [percentile(run.latencies(), q) for q in QS]
        base = [percentile(getattr(floor, pick).latencies(), q) for q in QS] if floor else None
        added = [v - b for v, b in zip(values, base, strict=True)] if base else [math.nan] * 3
        rows.append([p.title, str(len(run.samples)), *map(ms, values), *map(ms, added),
                     _errors(run)])
    return rows


def _added(p: PerfResult, floor: PerfResult | None, pick: str, q: float) -> float | None:
    if floor is None:
        return None
    return (percentile(getattr(p, pick).latencies(), q)
            - percentile(getattr(floor, pick).latencies(), q)) * 1e3


# The three ways a bot can reach OANDA through a proxy, by short name.
FRONTS = {"sidecar": "Execute (gRPC)", "rest": "REST listener", "envoy": "Envoy"}
_FRONT_FIGURES: tuple[tuple[str, Callable[[PerfResult, PerfResult | None], float | None]], ...] = (
    ("added p50 at 1 in flight (ms)", lambda p, f: _added(p, f, "serial", 50)),
    ("added p99 at 1 in flight (ms)", lambda p, f: _added(p, f, "serial", 99)),
    ("added p50 at 100 req/s (ms)", lambda p, f: _added(p, f, "opened", 50)),
    ("added p99 at 100 req/s (ms)", lambda p, f: _added(p, f, "opened", 99)),
    ("req/s at 64 in flight", lambda p, f: p.closed.throughput()),
    ("CPU µs/call (subject)", lambda p, f: p.cpu_per_call_us),
    ("CPU % of a core at 100 req/s", lambda p, f: p.cpu_at_rate_pct),
)


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b and not math.isnan(a) and not math.isnan(b) else None


def fronts_section(perf: list[PerfResult]) -> str:
    """Execute, the REST listener and Envoy in one table, with the REST listener's ratios."""
    by = {p.kind: p for p in perf}
    if "rest" not in by:
        return ""
    floor = by.get("direct")
    shown = [k for k in FRONTS if k in by]
    others = [k for k in shown if k != "rest"]
    rows = []
    for name, figure in _FRONT_FIGURES:
        values = {k: figure(by[k], floor) for k in shown}
        rows.append([name, *(num(values[k], "{:.2f}") for k in shown),
                     *(num(_ratio(values["rest"], values[k]), "{:.2f}") for k in others)])
    return "\n\n".join([
        "### The fronts side by side (same run; ratio = REST listener ÷ the other)",
        table(["figure", *(FRONTS[k] for k in shown),
               *(f"REST ÷ {FRONTS[k]}" for k in others)], rows),
    ])


def cost_section(perf: list[PerfResult]) -> str:
    lat_head = ["subject", "calls", "p50", "p99", "p99.9", "added p50", "added p99",
                "added p99.9", "errors"]
    bare = next((p for p in perf if p.kind == "bare"), None)
    rows = []
    for p in perf:
        tput = p.closed.throughput()
        ratio = tput / bare.closed.throughput() if bare and bare.closed.throughput() else None
        rows.append([p.title, num(tput), num(ratio, "{:.2f}"), _errors(p.closed),
                     num(p.cpu_per_call_us), num(p.cpu_at_rate_pct, "{:.1f}"),
                     num(p.upstream_cpu_per_call_us), num(p.rss_idle_mib, "{:.1f}"),
                     num(p.rss_after_mib, "{:.1f}")])
    in_flight = perf[0].closed if perf else None
    spans = [f"{p.title}: {p.spans_exported} spans exported to the OTLP sink"
             for p in perf if p.spans_exported is not None]
    return "\n\n".join([
        "### Latency at 1 in flight (ms; added = minus the direct floor at the same percentile)",
        table(lat_head, _latency_rows(perf, "serial")),
        "### Latency under an open-loop 100 req/s (ms, from each call's intended start)",
        table(lat_head, _latency_rows(perf, "opened")),
        "### Throughput, CPU and memory",
        table(["subject", "req/s at 64 in flight", "x bare proxy", "errors",
               "CPU µs/call (subject)", "CPU % of a core at 100 req/s",
               "CPU µs/call (upstream)", "RSS idle MiB", "RSS after load MiB"], rows),
        f"Each figure merges the subject's slices of interleaved rounds; throughput ran "
        f"{in_flight.elapsed_s:.1f} s per subject." if in_flight else "",
        *spans,
        fronts_section(perf),
    ])


def behaviour_section(r: Results) -> str:
    lim_rows = [[TITLES[k], num(x.offered_per_s), str(x.max_window),
                 f"{x.sustained_share * 100:.1f}%", str(x.upstream_429), str(x.rejected_by_proxy),
                 str(x.ok), str(x.run.outcomes["timeout"] + x.run.unfinished)]
                for k, x in r.limiter.items()]
    out_rows = [[TITLES[k], ms(x.time_to_fast_failure_s), str(x.upstream_while_open),
                 str(x.slow_failures), ms(x.fast_failure_p50_s),
                 str(x.run.outcomes["circuit_open"]), str(x.run.outcomes["cached"])]
                for k, x in r.outage.items()]
    dup_rows = [[TITLES[k], str(x.intended), str(x.reached), str(x.created), str(x.duplicates),
                 ", ".join(f"{n} {o}" for o, n in sorted(x.caller_saw.items()))]
                for k, x in r.duplicates.items()]
    return "\n\n".join([
        "### Limiter precision (configured 100/s, burst 20; upstream = the simulator, 120/s)",
        table(["subject", "offered req/s", "max in any 1 s window upstream", "sustained / 100 "
               "per s", "upstream 429s", "refused by the proxy", "ok",
               "client gave up (10 s)"], lim_rows),
        "### Outage (simulator answers 503 to everything; 50 req/s offered)",
        table(["subject", "outage start → first fast answer (ms)", "upstream requests after it",
               "slow failures", "fast answer p50 (ms)", "failed fast", "served from cache"],
              out_rows),
        "### Duplicate orders (each order's first attempt committed, then its response dropped)",
        table(["subject", "orders intended", "reached upstream", "orders created",
               "duplicates", "the caller saw"], dup_rows),
    ])


def _goal(name: str, target: str, value: float | None, fmt: str, ok: bool | None) -> list[str]:
    verdict = "—" if ok is None else ("met" if ok else "**missed**")
    return [name, target, num(value, fmt), verdict]


def goals_section(r: Results) -> str:
    by = {p.kind: p for p in r.perf}
    rows = []
    bare = by.get("bare")
    for kind in ("sidecar", "rest", "sidecar-tracing"):
        p = by.get(kind)
        if p is None:
            continue
        if bare is not None and bare.closed.throughput():
            ratio = p.closed.throughput() / bare.closed.throughput()
            rows.append(_goal(f"throughput, {TITLES[kind]}", "≥ 0.85 x bare", ratio, "{:.2f}",
                              ratio >= 0.85))
        if "direct" in by:
            added = (percentile(p.opened.latencies(), 99)
                     - percentile(by["direct"].opened.latencies(), 99)) * 1e3
            rows.append(_goal(f"p99 added at 100 req/s, {TITLES[kind]}", "≤ 2 ms", added,
                              "{:.2f} ms", added <= 2.0))
    for kind, lim in r.limiter.items():
        if kind == "direct":
            continue
        rows.append(_goal(f"limiter max window, {TITLES[kind]}", "≤ 120", lim.max_window,
                          "{:.0f}", lim.max_window <= 120))
        rows.append(_goal(f"limiter sustained, {TITLES[kind]}", "≥ 97%",
                          lim.sustained_share * 100, "{:.1f}%", lim.sustained_share >= 0.97))
    for kind, dup in r.duplicates.items():
        rows.append(_goal(f"duplicate orders, {TITLES[kind]}", "0", dup.duplicates, "{:.0f}",
                          dup.duplicates == 0))
    return "### Goals\n\n" + table(["goal", "target", "measured", "verdict"], rows)


def render(r: Results) -> str:
    meta = "\n".join(f"- **{k}**: {v}" for k, v in r.meta.items())
    parts = ["# oanda-sidecar benchmark", meta, goals_section(r), "## Cost per call",
             cost_section(r.perf), "## Behaviour", behaviour_section(r), NOTES]
    return "\n\n".join(p for p in parts if p) + "\n"
