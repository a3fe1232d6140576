"""The trading code of a chaos run, in the sidecar's namespace: orders, reads and two streams.

`python -m chaos.workload --target HOST:PORT --account ID --since N --out DIR`. It behaves as a
careful strategy should (docs/orders.md): every order has its own client ID; an order refused
before it was sent is sent again with the same ID; an order whose outcome it was not told
(OUTCOME_UNKNOWN, a deadline, a sidecar that vanished mid-call) is asked about with
GetOrderOutcome and sent again, same ID, only when the sidecar says it was not placed. What it
believes of each order goes to DIR/intents.jsonl; every call to DIR/calls.jsonl; every
transaction the stream delivered to DIR/tx.jsonl; the harness compares them with the simulator.
SIGUSR1: start no new orders, settle the ones in flight, write DIR/intents.done. SIGTERM: exit.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import signal
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import grpc
from oanda_sidecar_client import AsyncSidecarClient
from oanda_sidecar_client.errors import (
    CircuitOpen,
    InvalidRequest,
    RateLimited,
    ReadOnly,
    SidecarError,
    UpstreamUnavailable,
)

from chaos.streams_load import watch_prices, watch_transactions

ORDER_DEADLINE_S = 5.0
READ_DEADLINE_S = 2.0
RETRY_FOR_S = 20.0  # an order refused before it was sent is tried again for this long
# An unknown outcome is asked about until decided: through any outage of the schedule (the
# longest is 60 s, and the sidecar's background lookups back off up to 15 s), and after the
# last fault for --final-s at most.
RESOLVE_FOR_S = 300.0
# A lost close may still land this long after it was sent (the sidecar's request timeout plus
# OANDA's lookup lag, docs/orders.md): only then does an unchanged trade prove it absent.
CLOSE_QUIET_S = 11.5
INSTRUMENTS = ("EUR_USD", "GBP_USD", "USD_JPY")
NOT_SENT = (CircuitOpen, RateLimited, ReadOnly, UpstreamUnavailable)
T = TypeVar("T")


class Recorder:
    def __init__(self, out: Path) -> None:
        out.mkdir(parents=True, exist_ok=True)
        self.out = out
        self._files = {name: (out / f"{name}.jsonl").open("a", buffering=1)
                       for name in ("intents", "calls", "tx", "prices")}

    def write(self, name: str, **fields: Any) -> None:
        self._files[name].write(json.dumps(fields) + "\n")


class Workload:
    def __init__(self, client: AsyncSidecarClient, account: str, rec: Recorder,
                 final_s: float, run: str) -> None:
        self.client, self.account, self.rec = client, account, rec
        self.final_s, self.run = final_s, run
        self.stop_at: float | None = None
        self.count = 0
        self.open_trades: list[str] = []  # client IDs of trades we opened and may close
        self.rng = random.Random()

    @property
    def base(self) -> str:
        return f"/v3/accounts/{self.account}"

    async def timed(self, op: str, deadline: float, make: Callable[[], Awaitable[T]]) -> T:
        t0 = time.time()
        result = "ok"
        try:
            answer = await make()
            status = getattr(answer, "status", None)
            result = f"status {status}" if status is not None else str(
                getattr(answer, "outcome", "ok"))
            if getattr(answer, "from_cache", False):
                result += " cached"
            if getattr(answer, "reconciled", False):
                result += " reconciled"
            return answer
        except SidecarError as exc:
            result = f"{exc.code.name} {exc.reason}"
            raise
        finally:
            self.rec.write("calls", op=op, t0=t0, t1=time.time(), deadline=deadline,
                           result=result)

    def next_intent(self) -> tuple[str, str]:
        if self.open_trades and self.rng.random() < 0.3:
            return "close", self.open_trades.pop(self.rng.randrange(len(self.open_trades)))
        self.count += 1
        return "open", f"chz-{self.run}-{self.count:05d}"

    async def worker(self) -> None:
        while self.stop_at is None:
            kind, cid = self.next_intent()
            start = time.time()
            if kind == "open":
                belief, how = await self.open(cid)
                if belief == "placed":
                    self.open_trades.append(cid)
            else:
                belief, how = await self.close(cid)
            self.rec.write("intents", kind=kind, cid=cid, start=start, end=time.time(),
                           belief=belief, how=how)
            await asyncio.sleep(self.rng.uniform(0.05, 0.3))

    def giving_up(self, start: float) -> bool:
        return self.stop_at is not None or time.time() - start > RETRY_FOR_S

    async def open(self, cid: str) -> tuple[str, str]:
        body = {"order": {"type": "MARKET", "instrument": self.rng.choice(INSTRUMENTS),
                          "units": "200", "clientExtensions": {"id": cid},
                          "tradeClientExtensions": {"id": cid}}}
        start = time.time()
        while True:
            try:
                res = await self.timed("open", ORDER_DEADLINE_S, lambda: self.client.post(
                    f"{self.base}/orders", body, timeout=ORDER_DEADLINE_S))
            except NOT_SENT as exc:
                if self.giving_up(start):
                    return "not_placed", exc.reason
                await asyncio.sleep(min(exc.retry_after or 0.5, 2.0))
                continue
            except InvalidRequest as exc:
                return "not_placed", f"invalid: {exc}"
            except SidecarError as exc:  # OUTCOME_UNKNOWN, a deadline, a vanished sidecar
                decided = await self.resolve(cid)
                if decided == "resend":
                    continue
                return decided, f"{exc.reason} then outcome"
            data = _json(res.body)
            if res.status == 429:
                if self.giving_up(start):
                    return "not_placed", "429"
                continue
            if res.status == 201 and "orderCreateTransaction" in data:
                return "placed", "reconciled" if res.reconciled else "answer"
            if res.status in (400, 404) and any(k.endswith("RejectTransaction") for k in data):
                return "not_placed", f"rejected {data.get('errorCode')}"
            decided = await self.resolve(cid)  # a 5xx: treated as a lost answer
            if decided != "resend":
                return decided, f"status {res.status} then outcome"

    async def resolve(self, cid: str) -> str:
        """placed / unknown, or "resend" when the sidecar says the order is not there."""
        until = time.time() + RESOLVE_FOR_S
        while time.time() < until and (self.stop_at is None
                                       or time.time() < self.stop_at + self.final_s):
            try:
                outcome = await self.timed("outcome", READ_DEADLINE_S, lambda: (
                    self.client.order_outcome(cid, timeout=READ_DEADLINE_S)))
            except SidecarError:
                await asyncio.sleep(0.5)
                continue
            if outcome.outcome == "placed":
                return "placed"
            if outcome.outcome in ("not_placed", "not_seen"):
                return "resend"
            await asyncio.sleep(0.5)
        return "unknown"

    async def close(self, trade_cid: str) -> tuple[str, str]:
        """Close 100 of the trade's 200 units: a close done twice would close it all."""
        start, path = time.time(), f"{self.base}/trades/@{trade_cid}/close"
        while True:
            sent = time.time()
            try:
                res = await self.timed("close", ORDER_DEADLINE_S, lambda: self.client.put(
                    path, {"units": "100"}, timeout=ORDER_DEADLINE_S))
            except NOT_SENT as exc:
                if self.giving_up(start):
                    return "not_placed", exc.reason
                await asyncio.sleep(min(exc.retry_after or 0.5, 2.0))
                continue
            except SidecarError as exc:
                decided = await self.trade_units(trade_cid, sent + CLOSE_QUIET_S)
                if decided == "resend":
                    continue
                return decided, f"{exc.reason} then trade"
            data = _json(res.body)
            if res.status == 200 and "orderFillTransaction" in data:
                return "placed", "reconciled" if res.reconciled else "answer"
            if res.status in (400, 404):
                return "not_placed", f"status {res.status} {data.get('errorCode')}"
            if res.status == 429 and not self.giving_up(start):
                continue
            decided = await self.trade_units(trade_cid, sent + CLOSE_QUIET_S)
            if decided != "resend":
                return decided, f"status {res.status} then trade"

    async def trade_units(self, trade_cid: str, quiet_at: float) -> str:
        """After a close whose answer was lost: the trade itself says whether it happened
        (its units unchanged prove nothing before `quiet_at`)."""
        until = time.time() + RESOLVE_FOR_S
        while time.time() < until and (self.stop_at is None
                                       or time.time() < self.stop_at + self.final_s):
            try:
                res = await self.timed("read", READ_DEADLINE_S, lambda: self.client.get(
                    f"{self.base}/trades/@{trade_cid}", timeout=READ_DEADLINE_S))
            except SidecarError:
                await asyncio.sleep(0.5)
                continue
            units = _json(res.body).get("trade", {}).get("currentUnits")
            if res.status == 200 and not res.from_cache and units in ("100", "200"):
                if units == "100":
                    return "placed"
                if time.time() >= quiet_at:
                    return "resend"
            await asyncio.sleep(0.5)
        return "unknown"

    async def reads(self) -> None:
        while True:
            try:
                await self.timed("read", READ_DEADLINE_S, lambda: self.client.get(
                    f"{self.base}/pricing", instruments="EUR_USD", timeout=READ_DEADLINE_S))
            except SidecarError:
                pass
            await asyncio.sleep(0.5)


def _json(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body or b"{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


async def run(ns: argparse.Namespace) -> None:
    rec = Recorder(Path(ns.out))
    loop = asyncio.get_running_loop()
    stop_orders, exit_now = asyncio.Event(), asyncio.Event()
    loop.add_signal_handler(signal.SIGUSR1, stop_orders.set)
    loop.add_signal_handler(signal.SIGTERM, exit_now.set)
    async with AsyncSidecarClient(ns.target, timeout=ORDER_DEADLINE_S) as client, \
            grpc.aio.insecure_channel(ns.target) as channel:
        load = Workload(client, ns.account, rec, ns.final_s, ns.run)
        background = [asyncio.ensure_future(c) for c in (
            load.reads(), watch_transactions(channel, ns.account, int(ns.since), rec.write),
            watch_prices(channel, ns.account, INSTRUMENTS[:2], rec.write))]
        workers = [asyncio.ensure_future(load.worker()) for _ in range(ns.workers)]
        print("workload ready", flush=True)
        await stop_orders.wait()
        load.stop_at = time.time()
        await asyncio.gather(*workers)
        (rec.out / "intents.done").write_text(json.dumps({"open": load.count}))
        await exit_now.wait()
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m chaos.workload")
    parser.add_argument("--target", default="127.0.0.1:50051")
    parser.add_argument("--account", required=True)
    parser.add_argument("--since", required=True, help="the last transaction ID before the run")
    parser.add_argument("--out", required=True)
    parser.add_argument("--run", required=True, help="client IDs are chz-<run>-<n>")
    parser.add_argument("--workers", type=int, default=6, help="orders in flight at once")
    parser.add_argument("--final-s", type=float, default=30.0,
                        help="after SIGUSR1, unknown outcomes are resolved for this long")
    import uvloop

    uvloop.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
