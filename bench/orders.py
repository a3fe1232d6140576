"""`python -m bench.orders [--smoke] [--out FILE]`: what exactly-once orders cost and how fast
they decide.

The simulator runs as its own process (`oanda-sidecar sim`); the caller, the bare proxy and the
sidecar share one uvloop in this process, so every subject pays the caller's CPU alike.
1. Happy path: serial MARKET orders, p50/p99 latency added above calling the simulator directly,
   for the bare proxy, the sidecar without the exactly-once policy, and the sidecar (rounds
   interleaved so that drift hits all alike).
2. Commit-then-drop: the order is committed, its answer dropped; time until the caller has its
   decided answer (201 reconciled), with the simulator's lookup lag 0 and 1 s.
3. The first order on an account: the one summary read (the ledger emptied before each).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import uvloop
from pydantic import SecretStr

from bench.bare_proxy import BareProxy
from bench.load import percentile
from bench.procs import free_port
from sidecar._gen.oanda.sidecar.v1 import proxy_pb2, proxy_pb2_grpc
from sidecar.app import App
from sidecar.config import Config
from sidecar.pipeline import compose
from sidecar.policies.exactly_once import ExactlyOncePolicy

TOKEN = "sim-token"
OUT = Path(__file__).resolve().parent / "results" / "orders.md"
Send = Callable[[bytes], Awaitable[int]]


def _order(n: int) -> bytes:
    return json.dumps({"order": {"type": "MARKET", "instrument": "EUR_USD",
                                 "units": "1" if n % 2 else "-1"}}).encode()


async def _start_sim() -> tuple[asyncio.subprocess.Process, str]:
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "sidecar", "sim", "--listen", f"127.0.0.1:{port}",
        "--rate-limit-per-s", "1000000",  # OANDA's 120/s is not what is measured here
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
        env={**os.environ, "OANDA_API_TOKEN": TOKEN})
    assert proc.stdout is not None
    await asyncio.wait_for(proc.stdout.readline(), 30)
    return proc, f"http://127.0.0.1:{port}"


def _config(url: str, **orders: Any) -> Config:
    config = Config.model_validate({
        "server": {"grpc_listen": "127.0.0.1:0", "admin_listen": "127.0.0.1:0",
                   "rest_listen": ""},
        "oanda": {"base_url": url, "max_new_connections_per_s": 100},
        "rate_limit": {"rate_per_s": 10_000, "burst": 10_000},
        "telemetry": {"tracing_enabled": False}, "orders": orders})
    return config.model_copy(update={"secrets": config.secrets.model_copy(
        update={"oanda_token": SecretStr(TOKEN)})})


def _grpc_send(target: str, path: str) -> tuple[grpc.aio.Channel, Send]:
    channel = grpc.aio.insecure_channel(target)
    stub = proxy_pb2_grpc.ProxyServiceStub(channel)  # type: ignore[no-untyped-call]

    async def send(body: bytes) -> int:
        response = await stub.Execute(proxy_pb2.ExecuteRequest(method="POST", path=path,
                                                               body=body), timeout=20)
        return int(response.status)

    return channel, send


async def _timed(send: Send, n: int) -> float:
    started = time.perf_counter()
    status = await send(_order(n))
    assert status == 201, status
    return time.perf_counter() - started


def _ms(values: list[float], q: float) -> str:
    return f"{percentile(sorted(values), q) * 1000:.2f}"


async def happy_path(url: str, account: str, orders: int) -> list[str]:
    path = f"/v3/accounts/{account}/orders"
    http = aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOKEN}"})

    async def direct(body: bytes) -> int:
        async with http.post(url + path, data=body,
                             headers={"Content-Type": "application/json"}) as resp:
            await resp.read()
            return resp.status

    bare = BareProxy(url, TOKEN)
    server = grpc.aio.server()
    proxy_pb2_grpc.add_ProxyServiceServicer_to_server(bare, server)  # type: ignore[no-untyped-call]
    bare_port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    full, plain = App(_config(url)), App(_config(url))
    without = tuple(p for p in plain.parts.policies if not isinstance(p, ExactlyOncePolicy))
    plain.parts = dataclasses.replace(plain.parts, policies=without,
                                      handler=compose(without, plain.parts.transport))
    for app in (full, plain):
        await app.start()
    channels, sends = [], {"direct": direct}
    for name, target in (("bare proxy", f"127.0.0.1:{bare_port}"),
                         ("sidecar without exactly-once", plain.grpc_target),
                         ("sidecar", full.grpc_target)):
        channel, sends[name] = _grpc_send(target, path)
        channels.append(channel)
    samples: dict[str, list[float]] = {name: [] for name in sends}
    for n in range(20):  # warm connections and code paths
        for send in sends.values():
            await _timed(send, n)
    for n in range(orders):
        for name, send in sends.items():
            samples[name].append(await _timed(send, n))
    for channel in channels:
        await channel.close()
    for app in (full, plain):
        await app.stop(0.5)
    await server.stop(0.5)
    await bare.close()
    await http.close()
    base50, base99 = (percentile(sorted(samples["direct"]), q) for q in (50, 99))
    rows = [f"| direct HTTP to the simulator | {_ms(samples['direct'], 50)} | "
            f"{_ms(samples['direct'], 99)} | — | — |"]
    for name in list(sends)[1:]:
        p50, p99 = (percentile(sorted(samples[name]), q) for q in (50, 99))
        rows.append(f"| {name} | {p50 * 1000:.2f} | {p99 * 1000:.2f} | "
                    f"{(p50 - base50) * 1000:.2f} | {(p99 - base99) * 1000:.2f} |")
    return rows


async def _sim_post(url: str, path: str, body: dict[str, Any]) -> None:
    async with aiohttp.ClientSession() as http, http.post(url + path, json=body) as resp:
        assert resp.status == 200, await resp.text()


async def commit_then_drop(url: str, account: str, lag_s: float, orders: int) -> str:
    await _sim_post(url, "/_sim/order-faults", {"lookup_lag_s": lag_s})
    app = App(_config(url))
    await app.start()
    channel, send = _grpc_send(app.grpc_target, f"/v3/accounts/{account}/orders")
    await _timed(send, 0)  # the account's transaction ID is known
    took: list[float] = []
    for n in range(orders):
        await _sim_post(url, "/_sim/faults", {"kind": "drop_after_commit", "count": 1,
                                              "match": {"method": "POST"}})
        took.append(await _timed(send, n))
    await channel.close()
    await app.stop(0.5)
    await _sim_post(url, "/_sim/order-faults", {"lookup_lag_s": 0})
    return f"| {lag_s:g} s | {orders} | {_ms(took, 50)} | {_ms(took, 99)} |"


async def first_order(url: str, account: str, orders: int) -> str:
    app = App(_config(url))
    await app.start()
    desk = app.parts.orders
    assert desk is not None
    channel, send = _grpc_send(app.grpc_target, f"/v3/accounts/{account}/orders")
    first: list[float] = []
    known: list[float] = []
    for n in range(5):
        await _timed(send, n)
    for n in range(orders):
        desk.ids.forget()  # every account's transaction ID
        first.append(await _timed(send, n))
        known.append(await _timed(send, n))
    await channel.close()
    await app.stop(0.5)
    add50 = percentile(sorted(first), 50) - percentile(sorted(known), 50)
    return (f"| {orders} | {_ms(known, 50)} | {_ms(first, 50)} | {_ms(first, 99)} | "
            f"{add50 * 1000:.2f} |")


async def run(smoke: bool) -> str:
    proc, url = await _start_sim()
    try:
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOKEN}"}) as http, \
                http.get(f"{url}/v3/accounts") as resp:
            account = (await resp.json())["accounts"][0]["id"]
        happy = await happy_path(url, account, 30 if smoke else 1000)
        drops = [await commit_then_drop(url, account, 0.0, 5 if smoke else 100),
                 await commit_then_drop(url, account, 1.0, 2 if smoke else 20)]
        first = await first_order(url, account, 5 if smoke else 200)
    finally:
        proc.terminate()
        await proc.wait()
    return "\n".join([
        "# Exactly-once orders: cost and time to a decided answer",
        "",
        f"`python -m bench.orders` on {os.cpu_count()} cores (load average "
        f"{os.getloadavg()[0]:.2f} at the end), simulator in its own process; caller and "
        "proxies on one uvloop. Milliseconds.",
        "",
        "## Happy path: serial MARKET orders",
        "",
        "| subject | p50 | p99 | p50 added | p99 added |", "|---|---|---|---|---|", *happy,
        "",
        "## Commit then drop: until the caller has its 201 (reconciled)",
        "",
        "| simulator lookup lag | orders | p50 | p99 |", "|---|---|---|---|", *drops,
        "",
        "## The first order on an account (one summary read)",
        "",
        "| orders | p50, ID known | p50, first | p99, first | p50 added |",
        "|---|---|---|---|---|", first, "",
    ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.orders", description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="a few orders each (a check)")
    parser.add_argument("--out", type=Path, default=None)
    ns = parser.parse_args(argv)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as loop:
        text = loop.run(run(ns.smoke))
    print(text)
    out = ns.out if ns.out is not None else (None if ns.smoke else OUT)
    if out is not None:
        out.write_text(text)
        print(f"bench.orders: written to {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
