"""The harness: the simulator and the sidecar as real subprocesses, the load, the streams, the
faults and the sampler for `minutes`; then the audit against the simulator's own records."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import grpc

from sidecar._gen.oanda.sidecar.v1 import proxy_pb2, proxy_pb2_grpc
from soak.audit import audit
from soak.faults import FAULTS, Injected, schedule
from soak.procs import TOKEN, Processes, start_processes
from soak.report import Run
from soak.rest import RestReader
from soak.sampler import Sample, Sampler
from soak.streams import Subscriber, churn
from soak.traffic import INSTRUMENTS, Tally, Traffic
from soak.upstream import UpstreamWatch

SETUP = ("Setup: `oanda-sidecar serve` and `oanda-sidecar sim` as subprocesses on loopback; "
         "50 calls/s (48 reads of 8 endpoints, about 10 of them through the REST listener and "
         "the rest through Execute; 1 market order with client IDs and 1 trade close per "
         "second), a pricing and a transaction subscriber open throughout, "
         "churn subscribers every {churn:g} s, a fault every {fault:g} s. Sidecar config: the "
         "defaults, except `degradation.cache_max_bytes` 2 MiB and `orders.max_remembered` "
         "300 (bounds reached during the warm-up) and tracing off (no collector).")


async def _account(sim_url: str) -> str:
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOKEN}"}) as s, \
            s.get(f"{sim_url}/v3/accounts") as resp:
        return str((await resp.json())["accounts"][0]["id"])


async def _last_transaction(sim_url: str) -> int:
    async with aiohttp.ClientSession() as s, s.get(f"{sim_url}/_sim/state") as resp:
        return int((await resp.json())["lastTransactionID"])


def _progress(sample: Sample) -> None:
    print(f"  t={sample.t_min:5.1f} min  rss {sample.rss_mib:6.1f} MiB  fds {sample.fds:3.0f}  "
          f"tasks {sample.tasks:4.0f}  lag p99 {sample.lag_p99_s * 1000:6.1f} ms  "
          f"max {sample.lag_max_s * 1000:6.1f} ms", file=sys.stderr, flush=True)


async def soak(minutes: float, warmup_min: float, *, fault_every_s: float = 150.0,
               first_fault_s: float = 60.0, sample_every_s: float = 10.0,
               churn_every_s: float = 20.0, quiet: bool = False) -> Run:
    workdir = Path(tempfile.mkdtemp(prefix="soak-"))
    procs = await start_processes(workdir)
    try:
        return await _drive(minutes, warmup_min, procs, fault_every_s=fault_every_s,
                            first_fault_s=first_fault_s, sample_every_s=sample_every_s,
                            churn_every_s=churn_every_s, quiet=quiet)
    finally:
        await procs.stop()


async def _drive(minutes: float, warmup_min: float, procs: Processes, **opts: Any) -> Run:
    loop = asyncio.get_running_loop()
    sim_url, sidecar = procs.sim_url, procs.sidecar
    account = await _account(sim_url)
    first_tx = await _last_transaction(sim_url)
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{procs.grpc_port}")
    stub = proxy_pb2_grpc.ProxyServiceStub(channel)  # type: ignore[no-untyped-call]
    started = loop.time()
    tally, faults = Tally(started), list[Injected]()
    rest = RestReader(f"http://127.0.0.1:{procs.rest_port}") if procs.rest_port else None
    traffic = Traffic(stub, account, tally, run_id=f"{int(time.time())}", rest=rest)
    traffic.last_transaction_id = first_tx
    prices = Subscriber(stub, proxy_pb2.StreamRequest(
        path=f"/v3/accounts/{account}/pricing/stream", query={"instruments": INSTRUMENTS}))
    transactions = Subscriber(stub, proxy_pb2.StreamRequest(
        path=f"/v3/accounts/{account}/transactions/stream", since_transaction_id=str(first_tx)))
    churned: Counter[str] = Counter()
    sampler = Sampler(lambda: sidecar.pid, f"http://127.0.0.1:{procs.admin_port}/metrics", started,
                      every_s=opts["sample_every_s"])
    watch = UpstreamWatch(sim_url)

    async def restart_sim() -> None:
        await watch.collect()  # the request log does not survive the restart
        await procs.restart_sim()

    restart = restart_sim if procs.can_restart_sim else None
    tasks = [asyncio.ensure_future(c) for c in (
        traffic.run(), prices.run(), transactions.run(), watch.run(),
        churn(stub, account, every_s=opts["churn_every_s"], counts=churned),
        schedule(sim_url, started, faults, first_after_s=opts["first_fault_s"],
                 every_s=opts["fault_every_s"], restart=restart),
        sampler.run(None if opts["quiet"] else _progress))]
    try:
        await asyncio.sleep(minutes * 60)
        for task in tasks:
            if task.done() and task.exception() is not None:
                raise RuntimeError(f"a soak task failed: {task.exception()!r}")
    finally:
        for task in tasks[:1] + tasks[4:]:  # the load, churn, faults, sampler; streams go on
            task.cancel()
        await asyncio.gather(*tasks[:1], *tasks[4:], return_exceptions=True)
    await _clear_faults(sim_url)  # the rest of a fault's count must not hit the audit
    await traffic.drain()
    await _settle(transactions, sim_url)
    for task in tasks[1:4]:
        task.cancel()
    await asyncio.gather(*tasks[1:4], return_exceptions=True)
    await watch.final()
    await channel.close()
    if rest is not None:
        await rest.close()
    setup = SETUP.format(churn=opts["churn_every_s"], fault=opts["fault_every_s"])
    if restart is None:
        setup += " Not done: a simulator restart (this simulator cannot keep its accounts)."
    kinds = len(FAULTS) - (restart is None)
    cycle_min = (opts["first_fault_s"] + kinds * opts["fault_every_s"]) / 60
    run = Run(minutes, warmup_min, sampler.samples, tally.by_minute, faults, notes=[setup],
              cycle_min=cycle_min)
    await audit(run, sim_url, TOKEN, account, first_tx, traffic, transactions, prices, churned,
                watch,
                sidecar_exit=sidecar.process.returncode, sampler_failures=sampler.failures)
    return run


async def _clear_faults(sim_url: str) -> None:
    async with aiohttp.ClientSession() as s, s.delete(f"{sim_url}/_sim/faults") as resp:
        resp.raise_for_status()


async def _settle(subscriber: Subscriber, sim_url: str, timeout_s: float = 30.0) -> None:
    """Wait until the transaction subscriber has everything the simulator recorded."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    with contextlib.suppress(OSError, aiohttp.ClientError):
        while asyncio.get_running_loop().time() < deadline:
            if subscriber.last_id >= await _last_transaction(sim_url):
                return
            await asyncio.sleep(0.5)
