"""The mixed Execute load: 50 calls/s of reads over several endpoints, orders opened and closed.

Open loop: calls start on a fixed schedule whatever the answers do (a slow sidecar does not slow
the load down, as it would not slow a trading bot's timers). Every call's outcome is tallied by
the minute it was answered in: `ok`, `http_4xx`, `http_5xx`, the sidecar's error reason in lower
case (`circuit_open`, `outcome_unknown`, ...), or `grpc_<code>` for anything else.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import grpc
from google.rpc import error_details_pb2, status_pb2

from sidecar._gen.oanda.sidecar.v1 import proxy_pb2

CALL_TIMEOUT_S = 15.0
MAX_IN_FLIGHT = 1000  # beyond this the driver itself sheds (counted as `driver_shed`)
INSTRUMENTS = "EUR_USD,USD_JPY,GBP_USD"


def grpc_outcome(err: grpc.aio.AioRpcError) -> str:
    """The sidecar's ErrorInfo reason in lower case, else the gRPC code."""
    raw = dict(err.trailing_metadata() or ()).get("grpc-status-details-bin")
    if isinstance(raw, bytes):
        for detail in status_pb2.Status.FromString(raw).details:
            if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                detail.Unpack(info)
                return str(info.reason).lower()
    return f"grpc_{err.code().name.lower()}"


def http_outcome(status: int) -> str:
    return "ok" if status < 400 else "http_4xx" if status < 500 else "http_5xx"


class Tally:
    """Outcomes per minute since `started` (loop time)."""

    def __init__(self, started: float) -> None:
        self.started = started
        self.by_minute: dict[int, Counter[str]] = {}

    def record(self, outcome: str, now: float) -> None:
        minute = int((now - self.started) // 60)
        self.by_minute.setdefault(minute, Counter())[outcome] += 1

    def total(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for counts in self.by_minute.values():
            total.update(counts)
        return total


@dataclass
class Orders:
    """What the load did with orders, for the report and the audit."""

    sent: list[str] = field(default_factory=list)  # client order IDs
    answers: dict[str, str] = field(default_factory=dict)  # client order ID -> outcome
    placed: set[str] = field(default_factory=set)  # answered with a fill
    filled: int = 0
    unknown: int = 0
    closes: int = 0
    closed: int = 0
    open_trades: deque[str] = field(default_factory=deque)  # client trade IDs to close


class Traffic:
    """50 calls/s: per second 2 order calls (an open, a close) and 48 reads of 8 endpoints,
    through `stub.Execute` (with a REST reader, about 10 of the reads through the REST front)."""

    def __init__(self, stub: Any, account: str, tally: Tally, run_id: str,
                 rate_per_s: float = 50.0, rest: Any = None) -> None:
        self._stub = stub
        self._rest = rest  # a soak.rest.RestReader: every 5th read goes through REST
        self._account = account
        self._tally = tally
        self._run_id = run_id
        self.rate_per_s = rate_per_s
        self.orders = Orders()
        self.last_transaction_id = 2
        self._in_flight: set[asyncio.Task[None]] = set()
        self._seq = itertools.count(1)

    def _reads(self) -> list[Callable[[], proxy_pb2.ExecuteRequest]]:
        a = f"/v3/accounts/{self._account}"

        def get(path: str, **query: str) -> Callable[[], proxy_pb2.ExecuteRequest]:
            return lambda: proxy_pb2.ExecuteRequest(method="GET", path=path, query=query)

        return [
            get(f"{a}/summary"), get(f"{a}/pricing", instruments=INSTRUMENTS),
            get(f"{a}/openTrades"), get(f"{a}/pendingOrders"), get(f"{a}/openPositions"),
            lambda: proxy_pb2.ExecuteRequest(
                method="GET", path=f"{a}/transactions/sinceid",
                query={"id": str(max(2, self.last_transaction_id - 10))}),
            get("/v3/instruments/EUR_USD/candles", count="20", granularity="S5"),
            get(f"{a}/instruments", instruments="EUR_USD"),
        ]

    def schedule(self) -> list[Callable[[], None]]:
        """One second of calls, in order: the open first, the close half a second later."""
        reads = self._reads()
        slots: list[Callable[[], None]] = []
        for i in range(int(self.rate_per_s)):
            if i == 0:
                slots.append(self._open)
            elif i == int(self.rate_per_s) // 2:
                slots.append(self._close)
            elif self._rest is not None and i % 5 == 0:
                request = reads[(i // 5) % len(reads)]
                slots.append(lambda r=request: self._spawn(self._rest_read(r())))  # type: ignore[misc]
            else:
                request = reads[i % len(reads)]
                slots.append(lambda r=request: self._spawn(self._read(r())))  # type: ignore[misc]
        return slots

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        gap = 1.0 / self.rate_per_s
        next_at = loop.time()
        for slot in itertools.cycle(self.schedule()):
            slot()
            next_at += gap
            await asyncio.sleep(max(0.0, next_at - loop.time()))

    async def drain(self, timeout_s: float = CALL_TIMEOUT_S) -> None:
        if self._in_flight:
            await asyncio.wait(set(self._in_flight), timeout=timeout_s)

    def _spawn(self, coro: Any) -> None:
        if len(self._in_flight) >= MAX_IN_FLIGHT:
            coro.close()
            self._tally.record("driver_shed", asyncio.get_running_loop().time())
            return
        task = asyncio.ensure_future(coro)
        self._in_flight.add(task)
        task.add_done_callback(self._in_flight.discard)

    async def _call(self, request: proxy_pb2.ExecuteRequest) -> tuple[str, Any]:
        try:
            response = await self._stub.Execute(request, timeout=CALL_TIMEOUT_S)
        except grpc.aio.AioRpcError as err:
            outcome: str = grpc_outcome(err)
            self._tally.record(outcome, asyncio.get_running_loop().time())
            return outcome, None
        outcome = "cached" if response.from_cache else http_outcome(response.status)
        self._tally.record(outcome, asyncio.get_running_loop().time())
        return outcome, response

    async def _read(self, request: proxy_pb2.ExecuteRequest) -> None:
        outcome, response = await self._call(request)
        if outcome == "ok" and request.path.endswith("/summary"):
            last = json.loads(response.body).get("lastTransactionID")
            if last is not None:
                self.last_transaction_id = max(self.last_transaction_id, int(last))

    async def _rest_read(self, request: proxy_pb2.ExecuteRequest) -> None:
        outcome = await self._rest.get(request.path, dict(request.query))
        self._tally.record(outcome, asyncio.get_running_loop().time())

    def _open(self) -> None:
        n = next(self._seq)
        cid, tid = f"soak-{self._run_id}-{n}", f"soak-{self._run_id}-t{n}"
        body = {"order": {"type": "MARKET", "instrument": "EUR_USD", "units": "100",
                          "clientExtensions": {"id": cid}, "tradeClientExtensions": {"id": tid}}}
        self.orders.sent.append(cid)
        self._spawn(self._place(proxy_pb2.ExecuteRequest(
            method="POST", path=f"/v3/accounts/{self._account}/orders",
            body=json.dumps(body).encode()), cid, tid))

    async def _place(self, request: proxy_pb2.ExecuteRequest, client_id: str,
                     trade_client_id: str) -> None:
        outcome, response = await self._call(request)
        self.orders.answers[client_id] = outcome
        if outcome == "outcome_unknown":
            self.orders.unknown += 1
        if outcome == "ok" and b"orderFillTransaction" in response.body:
            self.orders.filled += 1
            self.orders.placed.add(client_id)
            self.orders.open_trades.append(trade_client_id)

    def _close(self) -> None:
        if not self.orders.open_trades:
            return
        tid = self.orders.open_trades.popleft()
        self.orders.closes += 1
        self._spawn(self._close_trade(proxy_pb2.ExecuteRequest(
            method="PUT", path=f"/v3/accounts/{self._account}/trades/@{tid}/close",
            body=b'{"units": "ALL"}', priority=proxy_pb2.PRIORITY_CRITICAL)))

    async def _close_trade(self, request: proxy_pb2.ExecuteRequest) -> None:
        outcome, _ = await self._call(request)
        if outcome == "ok":
            self.orders.closed += 1
