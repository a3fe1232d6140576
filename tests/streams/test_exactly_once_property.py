"""Property: whatever the upstream stream does — leave transactions out, repeat them, drop the
connection anywhere, beat with a lastTransactionID ahead — a subscriber gets every transaction
after its starting point exactly once, in ID order (fake clock, fake upstream, the real hub,
connection and delivery)."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from sidecar.clock import FakeClock
from sidecar.config import BreakerConfig
from sidecar.events import EventBus
from sidecar.policies.breaker import CircuitBreaker
from sidecar.streams.config import StreamsConfig
from sidecar.streams.connection import StreamParts
from sidecar.streams.delivery import Delivery
from sidecar.streams.hub import StreamHub
from sidecar.streams.messages import StreamKey, StreamKind, StreamMessage, from_object
from sidecar.streams.request import Subscription
from sidecar.upstream.streaming import StreamBroken

ACCOUNT = "101-004-1435156-001"


class Upstream:
    """OANDA as the hub sees it: a log whose REST view (`visible`) grows as the stream runs."""

    def __init__(self, total: int, anchor: int, scripts: list[list[tuple[str, int]]]) -> None:
        self.log = [{"id": str(i), "type": "DAILY_FINANCING"} for i in range(1, total + 1)]
        self.visible = anchor
        self.anchor_at = anchor
        self.scripts = scripts

    async def anchor(self, account: str) -> int:
        return self.anchor_at

    async def pages_since(self, account: str, after: int) -> AsyncIterator[list[StreamMessage]]:
        while after < self.visible:
            page = [from_object(tx, replayed=True) for tx in self.log[after:self.visible][:7]]
            yield page
            after = page[-1].id_number

    @asynccontextmanager
    async def open(self, path: str, query: dict[str, str]) -> AsyncIterator[Any]:
        script = self.scripts.pop(0) if self.scripts else [("tail", 0)]
        yield Reader(self, script)


class Reader:
    def __init__(self, up: Upstream, script: list[tuple[str, int]]) -> None:
        self._up = up
        self._script = script

    async def next_line(self) -> bytes:
        await asyncio.sleep(0)
        up = self._up
        while self._script:
            kind, n = self._script.pop(0)
            if kind == "tail":  # the last connection: everything left, then quiet beats
                self._script = [("tx", i) for i in range(up.visible + 1, len(up.log) + 1)]
                self._script.append(("beat", 0))
                continue
            up.visible = max(up.visible, n)  # a transaction exists once the stream got to it
            if kind == "skip":
                continue
            if kind == "beat":
                return json.dumps({"type": "HEARTBEAT",
                                   "lastTransactionID": str(up.visible)}).encode() + b"\n"
            return json.dumps(up.log[n - 1]).encode() + b"\n"
        raise StreamBroken("end_of_stream", "dropped")

    def abort(self) -> None:
        pass


def scripts_for(total: int, anchor: int, rng: random.Random,
                connections: int) -> list[list[tuple[str, int]]]:
    events: list[tuple[str, int]] = []
    for i in range(anchor + 1, total + 1):
        roll = rng.random()
        if roll < 0.15:
            events.append(("skip", i))  # left out of the live stream
        else:
            events.append(("tx", i))
            if roll > 0.9:
                events.append(("tx", i))  # repeated
            if roll > 0.95 and i > anchor + 3:
                events.append(("tx", i - 3))  # an old one, late
        if rng.random() < 0.1:
            events.append(("beat", i))
    cuts = sorted(rng.sample(range(len(events) + 1), min(connections, len(events) + 1)))
    chunks, start = [], 0
    for cut in cuts:
        chunks.append(events[start:cut])
        start = cut
    chunks.append(events[start:])
    chunks.append([("tail", 0)])
    return chunks


async def run(total: int, anchor: int, since: int | None, seed: int,
              connections: int) -> list[str]:
    rng = random.Random(seed)
    up = Upstream(total, anchor, scripts_for(total, anchor, rng, connections))
    clock, bus = FakeClock(), EventBus()
    breaker = CircuitBreaker("stream", BreakerConfig(failure_threshold=1000), clock, bus)
    parts = StreamParts(up, up, breaker, StreamsConfig(), clock, bus,  # type: ignore[arg-type]
                        random.Random(seed))
    hub = StreamHub(parts)
    delivery = Delivery(hub, up, clock, bus)  # type: ignore[arg-type]
    got: list[str] = []
    start = since if since is not None else anchor
    sub = Subscription(StreamKey(ACCOUNT, StreamKind.TRANSACTIONS), since=since)
    stream = delivery.messages(sub)
    async for message in stream:
        if message.transaction_id:
            got.append(message.transaction_id)
            if len(got) >= total - start or len(got) > 3 * total:
                break
    await stream.aclose()
    await hub.close()
    return got


@settings(max_examples=60, deadline=None)
@given(total=st.integers(5, 60), anchor_share=st.floats(0, 0.9), since_share=st.none()
       | st.floats(0, 1), seed=st.integers(0, 10_000), connections=st.integers(0, 8))
def test_every_transaction_exactly_once_in_order(total: int, anchor_share: float,
                                                 since_share: float | None, seed: int,
                                                 connections: int) -> None:
    anchor = int(total * anchor_share)
    since = None if since_share is None else int(anchor * since_share)
    loop = asyncio.new_event_loop()
    try:
        got = loop.run_until_complete(asyncio.wait_for(
            run(total, anchor, since, seed, connections), 10))
    finally:
        loop.close()
    first = (since if since is not None else anchor) + 1
    assert got == [str(i) for i in range(first, total + 1)]
