"""`python -m bench streams [--smoke] [--out FILE]`: what the stream hub costs.

The simulator runs in this process (its transaction stream is the upstream), the sidecar is the
real daemon in a child process (`serve --config`), subscribers are gRPC clients here.

1. Delivery latency added: the simulator stamps each transaction with its time (µs); one
   subscriber through the sidecar and one direct aiohttp reader of the simulator's stream, in the
   same run, record receive time minus that stamp. Added = sidecar minus direct (p50, p99).
2. Fan-out: 50 subscribers of one transaction stream; a burst of transactions; messages/s
   delivered in total and the sidecar's CPU (utime + stime) for it.
3. Memory per subscriber: the sidecar's RSS before and after opening many more idle subscribers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import uvloop
import yaml

from bench.procs import cpu_seconds, rss_mib, spawn, wait_for_line
from bench.subjects import python_env
from sidecar._gen.oanda.sidecar.v1 import proxy_pb2, proxy_pb2_grpc
from sidecar.sim.server import Simulator

TOKEN = "bench-stream-token"
OUT = Path(__file__).resolve().parent / "results" / "streams.md"


def add_transactions(sim: Simulator, n: int) -> None:
    acct = sim.state.accounts[sim.account_id]
    for _ in range(n):
        acct.batch("1", time.time()).add({"type": "DAILY_FINANCING", "financing": "0.0000"})


def stamp(line: bytes) -> float:
    text = json.loads(line)["time"]
    return datetime.fromisoformat(text[:-4] + "+00:00").timestamp()


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Subscriber:
    def __init__(self, stub: Any, path: str, *, timing: bool = False) -> None:
        self.count = 0
        self.latencies: list[float] = []
        self._timing = timing
        self.call = stub.Stream(proxy_pb2.StreamRequest(path=path))
        self.connected = asyncio.Event()
        self.task = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        try:
            async for m in self.call:
                if m.type == "SIDECAR_CONNECTED":
                    self.connected.set()
                elif m.transaction_id:
                    self.count += 1
                    if self._timing:
                        self.latencies.append(time.time() - stamp(m.line))
        except grpc.aio.AioRpcError:
            pass

    def close(self) -> None:
        self.call.cancel()


async def direct_reader(sim: Simulator, path: str, out: list[float],
                        ready: asyncio.Event) -> None:
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOKEN}"}) as session:
        async with session.get(sim.url + path, timeout=aiohttp.ClientTimeout(total=None)) as r:
            ready.set()
            async for line in r.content:
                if b'"id"' in line:
                    out.append(time.time() - stamp(line))


async def start_sidecar(sim: Simulator, workdir: Path) -> tuple[Any, str]:
    config = {"server": {"grpc_listen": "127.0.0.1:0", "admin_listen": "127.0.0.1:0",
                         "rest_listen": "127.0.0.1:0", "drain_grace_s": 1},
              "oanda": {"base_url": sim.url, "stream_url": sim.url,
                        "max_new_connections_per_s": 100},
              "streams": {"subscriber_buffer": 200_000},
              "telemetry": {"tracing_enabled": False}, "logging": {"level": "warning"}}
    path = workdir / "sidecar.yaml"
    path.write_text(yaml.safe_dump(config))
    proc = await spawn("sidecar-streams", [sys.executable, "-m", "sidecar", "serve",
                                           "--config", str(path)],
                       workdir, python_env(OANDA_API_TOKEN=TOKEN))
    line = await wait_for_line(proc, "oanda-sidecar")
    return proc, line.split(" grpc ", 1)[1].split(",", 1)[0]


async def latency(sim: Simulator, stub: Any, path: str, n: int, rate: float) -> dict[str, Any]:
    sub = Subscriber(stub, path, timing=True)
    direct: list[float] = []
    ready = asyncio.Event()
    reader = asyncio.ensure_future(direct_reader(sim, path, direct, ready))
    await asyncio.wait_for(asyncio.gather(sub.connected.wait(), ready.wait()), 10)
    await asyncio.sleep(0.3)
    for _ in range(n):
        add_transactions(sim, 1)
        await asyncio.sleep(1 / rate)
    await asyncio.sleep(0.5)
    sub.close()
    reader.cancel()
    ms = 1000.0
    side, raw = [x * ms for x in sub.latencies], [x * ms for x in direct]
    return {"n": len(side), "direct_n": len(raw),
            "sidecar_p50": pct(side, 0.5), "sidecar_p99": pct(side, 0.99),
            "direct_p50": pct(raw, 0.5), "direct_p99": pct(raw, 0.99),
            "added_p50": pct(side, 0.5) - pct(raw, 0.5),
            "added_p99": pct(side, 0.99) - pct(raw, 0.99),
            "sidecar_mean": statistics.fmean(side)}


async def fanout(sim: Simulator, stub: Any, pid: int, path: str, subscribers: int,
                 burst: int) -> dict[str, Any]:
    subs = [Subscriber(stub, path) for _ in range(subscribers)]
    await asyncio.wait_for(asyncio.gather(*(s.connected.wait() for s in subs)), 20)
    await asyncio.sleep(0.5)
    cpu0, t0 = cpu_seconds(pid), time.monotonic()
    for _ in range(burst // 100):
        add_transactions(sim, 100)
        await asyncio.sleep(0)
    await _all_delivered(subs, subscribers * burst, 120.0)
    elapsed, cpu = time.monotonic() - t0, cpu_seconds(pid) - cpu0
    delivered = sum(s.count for s in subs)
    for s in subs:
        s.close()
    return {"subscribers": subscribers, "transactions": burst, "delivered": delivered,
            "seconds": elapsed, "msgs_per_s": delivered / elapsed,
            "cpu_s": cpu, "cpu_share": cpu / elapsed, "cpu_us_per_msg": cpu / delivered * 1e6}


async def _all_delivered(subs: list[Subscriber], total: int, limit_s: float) -> None:
    end = time.monotonic() + limit_s
    while sum(s.count for s in subs) < total and time.monotonic() < end:  # noqa: ASYNC110
        await asyncio.sleep(0.01)  # polled: 50 readers, one total


async def memory(stub: Any, pid: int, path: str, extra: int) -> dict[str, Any]:
    base = [Subscriber(stub, path) for _ in range(10)]
    await asyncio.gather(*(s.connected.wait() for s in base))
    await asyncio.sleep(1.0)
    before = rss_mib(pid)
    more = [Subscriber(stub, path) for _ in range(extra)]
    await asyncio.wait_for(asyncio.gather(*(s.connected.wait() for s in more)), 60)
    await asyncio.sleep(1.0)
    after = rss_mib(pid)
    for s in (*base, *more):
        s.close()
    return {"subscribers": extra, "rss_before_mib": before, "rss_after_mib": after,
            "kib_per_subscriber": (after - before) * 1024 / extra}


async def run(smoke: bool) -> dict[str, Any]:
    sim = Simulator(token=TOKEN, rate_limit_per_s=10_000)
    sim.streams.heartbeat_s = 1.0
    await sim.start()
    path = f"/v3/accounts/{sim.account_id}/transactions/stream"
    with tempfile.TemporaryDirectory() as tmp:
        proc, target = await start_sidecar(sim, Path(tmp))
        try:
            async with grpc.aio.insecure_channel(target) as channel:
                stub = proxy_pb2_grpc.ProxyServiceStub(channel)  # type: ignore[no-untyped-call]
                lat = await latency(sim, stub, path, 50 if smoke else 1000,
                                    200.0 if smoke else 100.0)
                fan = await fanout(sim, stub, proc.pid, path, 50, 200 if smoke else 4000)
                mem = await memory(stub, proc.pid, path, 20 if smoke else 500)
        finally:
            await proc.stop()
            await sim.close()
    return {"latency": lat, "fanout": fan, "memory": mem}


def render(r: dict[str, Any]) -> str:
    lat, fan, mem = r["latency"], r["fanout"], r["memory"]
    return "\n".join([
        "# Streams benchmark", "",
        "Simulator in the harness process, the sidecar as its own process, gRPC subscribers in "
        "the harness (2 shared cores: the harness's own reading bounds the fan-out figure).", "",
        "## Delivery latency (simulator emits → subscriber receives), same run", "",
        "| path | n | p50 ms | p99 ms |", "|---|---|---|---|",
        f"| direct aiohttp reader of the simulator | {lat['direct_n']} | "
        f"{lat['direct_p50']:.2f} | {lat['direct_p99']:.2f} |",
        f"| through the sidecar (gRPC Stream) | {lat['n']} | {lat['sidecar_p50']:.2f} | "
        f"{lat['sidecar_p99']:.2f} |",
        f"| **added by the sidecar** | | **{lat['added_p50']:.2f}** | "
        f"**{lat['added_p99']:.2f}** |", "",
        f"## Fan-out: {fan['subscribers']} subscribers of one transaction stream", "",
        f"- {fan['transactions']} transactions → {fan['delivered']} messages delivered in "
        f"{fan['seconds']:.2f} s: **{fan['msgs_per_s']:,.0f} messages/s**",
        f"- sidecar CPU {fan['cpu_s']:.2f} s = **{fan['cpu_share']:.0%} of one core**, "
        f"{fan['cpu_us_per_msg']:.1f} µs per delivered message (a cProfile of the same "
        "fan-out in one process put the hub's own Python — buffer, delivery, servicer, "
        "interceptor — at about 10 µs of it; the rest is gRPC's per-message send)", "",
        "## Memory per subscriber", "",
        f"- RSS {mem['rss_before_mib']:.1f} MiB → {mem['rss_after_mib']:.1f} MiB with "
        f"{mem['subscribers']} more idle subscribers: **{mem['kib_per_subscriber']:.1f} KiB "
        "per subscriber** (gRPC stream included; the buffer is empty when idle and at most "
        "`streams.subscriber_buffer` messages)", ""])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench streams", description=__doc__)
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--out", type=Path, default=None)
    ns = parser.parse_args(argv)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as loop:
        results = loop.run(run(ns.smoke))
    text = render(results)
    print(text)
    out = ns.out or (None if ns.smoke else OUT)
    if out is not None:
        out.write_text(text)
        print(f"bench: written to {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
