"""The simulator's streams: `/v3/accounts/{id}/pricing/stream` and `.../transactions/stream`.

Chunked, one JSON object per line, as OANDA sends them. Heartbeats every `heartbeat_s` (5 s
like OANDA; tests shorten it); prices from the same model as REST, at most one per instrument
per 0.25 s tick, only when it changed; every transaction the simulator records appears on the
transaction stream (the account's transaction log calls `on_transaction`). Faults come from
`stream_faults`. Open connections are counted per stream, for tests and benchmarks.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import socket
import struct
from collections import Counter
from typing import Any

from aiohttp import web

from sidecar.clock import Clock
from sidecar.sim.formats import Timestamp, dumps
from sidecar.sim.market import INSTRUMENTS, TICK_S
from sidecar.sim.state import Account, SimState
from sidecar.sim.stream_faults import StreamFaults
from sidecar.sim.wire import REQUEST_ID, account, fail


class _Dropped(Exception):
    """The connection was reset by a fault."""


class SimStreams:
    def __init__(self, state: SimState, clock: Clock, *, heartbeat_s: float = 5.0) -> None:
        self.state = state
        self.clock = clock
        self.heartbeat_s = heartbeat_s
        self.faults = StreamFaults(clock)
        self.opened: Counter[str] = Counter()  # connections ever opened, per stream
        self.active: Counter[str] = Counter()  # connections open now
        self._closing = asyncio.Event()

    def close(self) -> None:
        self._closing.set()

    def reopen(self) -> None:
        self._closing.clear()

    async def pricing(self, request: web.Request) -> web.StreamResponse:
        account(request)
        names = request.query.get("instruments", "").split(",")
        if not names or any(n not in INSTRUMENTS for n in names):
            raise fail(400, "Invalid value specified for 'instruments'")
        snapshot = request.query.get("snapshot", "true") != "false"
        return await self._serve(request, "pricing", _PriceSource(self, names, snapshot))

    async def transactions(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, "transactions", _TransactionSource(self,
                                                                             account(request)))

    async def _serve(self, request: web.Request, kind: str,
                     source: _PriceSource | _TransactionSource) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/octet-stream",
                                               "RequestID": request[REQUEST_ID]})
        response.enable_chunked_encoding()
        await response.prepare(request)
        self.opened[kind] += 1
        self.active[kind] += 1
        try:
            await _Writer(self, request, response, source).run()
        except (_Dropped, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self.active[kind] -= 1
            source.stop()
        return response


STREAMS = web.AppKey("sim_streams", SimStreams)


class _PriceSource:
    def __init__(self, streams: SimStreams, names: list[str], snapshot: bool) -> None:
        self._streams = streams
        self._names = names
        self._last: dict[str, tuple[Any, Any]] = {}
        self._first = snapshot

    async def next_lines(self, wait_s: float) -> list[dict[str, Any]]:
        market, clock = self._streams.state.market, self._streams.clock
        if not self._first:
            t = clock.wall()
            await asyncio.sleep(min(wait_s, (math.floor(t / TICK_S) + 1) * TICK_S - t + 1e-3))
        self._first = False
        t = clock.wall()
        out = []
        for name in self._names:
            price = market.price_json(name, t)
            quote = (price["bids"][0]["price"], price["asks"][0]["price"])
            if self._last.get(name) != quote:
                self._last[name] = quote
                out.append(price)
        return out

    def heartbeat(self) -> dict[str, Any]:
        return {"type": "HEARTBEAT", "time": Timestamp(self._streams.clock.wall())}

    def stop(self) -> None:
        pass


class _TransactionSource:
    def __init__(self, streams: SimStreams, acct: Account) -> None:
        self._streams = streams
        self._account = acct
        self._queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        acct.listeners.append(self._queue.put_nowait)

    async def next_lines(self, wait_s: float) -> list[dict[str, Any]]:
        try:
            first = await asyncio.wait_for(self._queue.get(), wait_s)
        except TimeoutError:
            return []
        out = [first]
        while not self._queue.empty():
            out.append(self._queue.get_nowait())
        return out

    def heartbeat(self) -> dict[str, Any]:
        return {"type": "HEARTBEAT", "lastTransactionID": self._account.last_transaction_id,
                "time": Timestamp(self._streams.clock.wall())}

    def stop(self) -> None:
        with contextlib.suppress(ValueError):
            self._account.listeners.remove(self._queue.put_nowait)


class _Writer:
    """Writes one connection's lines, applying the faults that match its path."""

    def __init__(self, streams: SimStreams, request: web.Request, response: web.StreamResponse,
                 source: _PriceSource | _TransactionSource) -> None:
        self._s = streams
        self._request = request
        self._response = response
        self._source = source
        self._path = request.path
        self._next_heartbeat = streams.clock.monotonic() + streams.heartbeat_s

    async def run(self) -> None:
        clock, faults = self._s.clock, self._s.faults
        while not self._s._closing.is_set():
            wait = max(0.0, self._next_heartbeat - clock.monotonic())
            lines = await self._source.next_lines(wait)
            quiet = faults.active("stream_heartbeats_only", self._path) is not None
            for obj in lines:
                if quiet or (obj.get("type") != "PRICE"
                             and faults.take("stream_skip", self._path) is not None):
                    continue
                await self._write(obj)
            if clock.monotonic() >= self._next_heartbeat:
                self._next_heartbeat = clock.monotonic() + self._s.heartbeat_s
                await self._write(self._source.heartbeat())

    async def _write(self, obj: dict[str, Any]) -> None:
        path, faults = self._path, self._s.faults
        data = (dumps(obj) + "\n").encode()
        slow = faults.active("stream_slow", path)
        if slow is not None and slow.delay_s > 0:
            await asyncio.sleep(slow.delay_s)
        stall = faults.take("stream_stall", path)
        if stall is not None:
            await self._stall(stall.duration_s)
        drop = faults.take("stream_drop", path)
        if drop is not None:
            if drop.mid_line:
                await self._response.write(data[: max(1, len(data) // 2)])
            _reset(self._request)
            raise _Dropped
        await self._response.write(data)

    async def _stall(self, duration_s: float | None) -> None:
        deadline = None if duration_s is None else self._s.clock.monotonic() + duration_s
        while not self._s._closing.is_set():
            transport = self._request.transport
            if transport is None or transport.is_closing():
                raise _Dropped
            if deadline is not None and self._s.clock.monotonic() >= deadline:
                return
            await asyncio.sleep(0.05)


def _reset(request: web.Request) -> None:
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


async def streams_status(request: web.Request) -> web.Response:
    streams = request.app[STREAMS]
    return web.json_response({"opened": dict(streams.opened), "active": dict(streams.active),
                              "heartbeat_s": streams.heartbeat_s})


async def streams_settings(request: web.Request) -> web.Response:
    """`POST /_sim/streams {"heartbeat_s": 1.0}`: how often heartbeats go out."""
    try:
        body = await request.json()
        heartbeat = float(body["heartbeat_s"])
    except (ValueError, KeyError, TypeError):
        return web.json_response({"errorMessage": "expected {\"heartbeat_s\": seconds}"},
                                 status=400)
    if not 0.01 <= heartbeat <= 3600:
        return web.json_response({"errorMessage": "heartbeat_s must be within [0.01, 3600]"},
                                 status=400)
    request.app[STREAMS].heartbeat_s = heartbeat
    return await streams_status(request)


def add_routes(app: web.Application, streams: SimStreams) -> None:
    app[STREAMS] = streams
    a = "/v3/accounts/{accountID}"
    app.router.add_get(f"{a}/pricing/stream", streams.pricing)
    app.router.add_get(f"{a}/transactions/stream", streams.transactions)
    app.router.add_get("/_sim/streams", streams_status)
    app.router.add_post("/_sim/streams", streams_settings)
