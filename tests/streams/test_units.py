"""The stream parts on the fake clock: watchdog, reconnect backoff (full jitter), breaker,
silence; the subscriber buffers."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from sidecar.backoff import backoff_delay
from sidecar.clock import FakeClock
from sidecar.config import BreakerConfig
from sidecar.errors import SlowConsumer, UpstreamConnectError
from sidecar.events import StreamChanged
from sidecar.policies.breaker import CircuitBreaker
from sidecar.streams.config import StreamsConfig
from sidecar.streams.connection import StreamParts, UpstreamStream
from sidecar.streams.messages import StreamKey, StreamKind, StreamMessage, notice
from sidecar.streams.subscribers import PriceOutbox, TransactionOutbox
from sidecar.streams.watchdog import Watchdog
from sidecar.upstream.streaming import StreamBroken
from tests.conftest import RecordingBus

KEY = StreamKey("101-004-1435156-001", StreamKind.PRICING, ("EUR_USD",))
CONFIG = StreamsConfig(heartbeat_timeout_s=10, reconnect_base_delay_s=0.5,
                       reconnect_max_delay_s=30)


class RefusingOpener:
    def __init__(self) -> None:
        self.attempts = 0

    @asynccontextmanager
    async def open(self, path: str, query: dict[str, str]) -> AsyncIterator[Any]:
        self.attempts += 1
        raise UpstreamConnectError("cannot connect to OANDA: refused")
        yield None  # pragma: no cover


class SilentReader:
    """Sends one heartbeat, then nothing until aborted."""

    def __init__(self) -> None:
        self._sent = False
        self._gone: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def next_line(self) -> bytes:
        if not self._sent:
            self._sent = True
            return b'{"type":"HEARTBEAT","time":"x"}\n'
        await self._gone
        raise StreamBroken("aborted", "closed by the sidecar")

    def abort(self) -> None:
        if not self._gone.done():
            self._gone.set_result(None)


class SilentOpener:
    def __init__(self) -> None:
        self.opened = 0

    @asynccontextmanager
    async def open(self, path: str, query: dict[str, str]) -> AsyncIterator[Any]:
        self.opened += 1
        yield SilentReader()


def make(opener: Any, clock: FakeClock, bus: RecordingBus, *, threshold: int = 100,
         seed: int = 7) -> tuple[UpstreamStream, CircuitBreaker]:
    breaker = CircuitBreaker("stream", BreakerConfig(failure_threshold=threshold,
                                                     recovery_timeout_s=60), clock, bus)
    parts = StreamParts(opener, None, breaker, CONFIG, clock, bus,  # type: ignore[arg-type]
                        random.Random(seed))
    return UpstreamStream(KEY, parts, lambda s: None), breaker


async def run_until(stream: UpstreamStream, done: Any) -> None:
    stream.start()
    for _ in range(10_000):
        if done():
            break
        await asyncio.sleep(0)
    await stream.close()


async def test_watchdog_fires_after_timeout_of_silence() -> None:
    clock = FakeClock(auto_advance=False)
    dog = Watchdog(clock, 10.0)
    waiter = asyncio.ensure_future(dog.silent())
    await asyncio.sleep(0)
    clock.advance(6)
    dog.touch()
    clock.advance(6)
    await asyncio.sleep(0)
    assert not waiter.done()  # 6 s since the last line
    clock.advance(4)
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert waiter.done() and waiter.result() == pytest.approx(10.0)


async def test_reconnects_back_off_with_full_jitter(bus: RecordingBus) -> None:
    clock = FakeClock()
    opener = RefusingOpener()
    stream, _ = make(opener, clock, bus)
    await run_until(stream, lambda: len(clock.sleeps) >= 8)
    rng = random.Random(7)
    expected = [backoff_delay(n, 0.5, 30, "full", rng) for n in range(1, 9)]
    assert clock.sleeps[:8] == pytest.approx(expected)
    assert all(s <= 30 for s in clock.sleeps)
    reasons = {e.reason for e in bus.of(StreamChanged) if e.state == "reconnecting"}
    assert reasons == {"connect_error"}


async def test_an_open_breaker_stops_connects_until_its_probe(bus: RecordingBus) -> None:
    clock = FakeClock()
    opener = RefusingOpener()
    stream, breaker = make(opener, clock, bus, threshold=3)
    await run_until(stream, lambda: len(clock.sleeps) >= 6)
    assert breaker.snapshot().total_failures >= 3
    reasons = [e.reason for e in bus.of(StreamChanged) if e.state == "reconnecting"]
    assert reasons[:4] == ["connect_error"] * 3 + ["circuit_open"]
    # While open it waits for the breaker's probe time, not a short backoff.
    assert clock.sleeps[2] + clock.sleeps[3] == pytest.approx(60.0)
    # One probe per recovery period: no connect storm.
    assert opener.attempts <= 3 + len(clock.sleeps) // 2


async def test_silence_reconnects_after_heartbeat_timeout(bus: RecordingBus) -> None:
    clock = FakeClock()
    opener = SilentOpener()
    stream, _ = make(opener, clock, bus)
    await run_until(stream, lambda: opener.opened >= 3)
    reasons = [e.reason for e in bus.of(StreamChanged) if e.state == "reconnecting"]
    assert reasons[:2] == ["heartbeat_timeout", "heartbeat_timeout"]
    assert 10.0 in clock.sleeps  # the watchdog slept exactly the timeout
    # A connection that delivered a line starts the backoff again from the first step.
    assert stream.reconnects >= 2


def price(instrument: str, n: int) -> StreamMessage:
    return StreamMessage(f'{{"n":{n}}}'.encode(), "PRICE", instrument=instrument)


async def test_price_outbox_keeps_the_newest_per_instrument() -> None:
    box = PriceOutbox()
    for n in range(1000):
        box.offer(price("EUR_USD", n))
        box.offer(price("USD_JPY", n))
    box.offer(StreamMessage(b"{}", "HEARTBEAT"))
    assert len(box) == 3
    first, second, beat = [await box.next() for _ in range(3)]
    assert first is not None and first.line == b'{"n":999}' and first.instrument == "EUR_USD"
    assert second is not None and second.instrument == "USD_JPY"
    assert beat is not None and beat.type == "HEARTBEAT"
    for _ in range(100):
        box.offer(notice("SIDECAR_RECONNECTING", 0.0, "x"))
    assert len(box) <= 16


async def test_transaction_outbox_ends_a_slow_subscriber_with_slow_consumer() -> None:
    box = TransactionOutbox(limit=10)
    for n in range(1, 11):
        box.offer(StreamMessage(b"{}", "ORDER_FILL", transaction_id=str(n)))
    assert not box.ended
    box.last_delivered = "0"
    box.offer(StreamMessage(b"{}", "ORDER_FILL", transaction_id="11"))
    assert box.ended and len(box) == 0  # its memory is freed at once
    with pytest.raises(SlowConsumer) as caught:
        await box.next()
    assert caught.value.metadata == {"last_transaction_id": "0"}


def _changed(state: str, reason: str = "end_of_stream", at: float = 0.0) -> Any:
    from sidecar.events import StreamChanged

    return StreamChanged(at=at, stream="transactions", key="transactions ***-***-****-001",
                         state=state, reason=reason)


def test_stream_down_alert_only_after_stream_down_s() -> None:
    from sidecar.alerting.conditions import ConditionTracker

    tracker = ConditionTracker(quiet_s=60, stream_down_s=30)
    assert tracker.observe(_changed("reconnecting"), now=100.0) == ()
    assert tracker.next_deadline() == 130.0
    assert tracker.due(129.0, 0.0) == ()
    # A quick reconnect inside the window is not an alert at all.
    assert tracker.observe(_changed("connected", "reconnected"), now=110.0) == ()
    assert tracker.next_deadline() is None
    tracker.observe(_changed("reconnecting", "heartbeat_timeout"), now=200.0)
    tracker.observe(_changed("reconnecting", "circuit_open"), now=210.0)  # still the first
    [signal] = tracker.due(230.0, 5.0)
    assert signal.action == "trigger" and signal.severity == "critical"
    assert signal.condition == "stream_down:transactions:transactions ***-***-****-001"
    assert "heartbeat_timeout" in signal.summary and "101-004" not in signal.summary
    [resolved] = tracker.observe(_changed("connected", "reconnected"), now=240.0)
    assert resolved.action == "resolve"


def test_bad_stream_config_names_the_key() -> None:
    from sidecar.config import load_config
    from sidecar.errors import ConfigError

    with pytest.raises(ConfigError, match=r"^streams .*: reconnect_max_delay_s must not be below"):
        load_config(env={"OANDA_SIDECAR__STREAMS__RECONNECT_BASE_DELAY_S": "5",
                         "OANDA_SIDECAR__STREAMS__RECONNECT_MAX_DELAY_S": "1"},
                    read_secrets=False)
    with pytest.raises(ConfigError, match=r"^streams.subscriber_buffer"):
        load_config(env={"OANDA_SIDECAR__STREAMS__SUBSCRIBER_BUFFER": "0"}, read_secrets=False)
    with pytest.raises(ConfigError, match=r"^alerts.stream_down_s"):
        load_config(env={"OANDA_SIDECAR__ALERTS__STREAM_DOWN_S": "-1"}, read_secrets=False)


class FlappingOpener:
    """Connects, sends one line, drops: a reconnect loop unless the backoff keeps growing."""

    def __init__(self) -> None:
        self.opened = 0

    @asynccontextmanager
    async def open(self, path: str, query: dict[str, str]) -> AsyncIterator[Any]:
        self.opened += 1
        yield FlappingReader()


class FlappingReader:
    def __init__(self) -> None:
        self._sent = False

    async def next_line(self) -> bytes:
        if not self._sent:
            self._sent = True
            return b'{"type":"HEARTBEAT","time":"x"}\n'
        raise StreamBroken("end_of_stream", "OANDA ended the stream")

    def abort(self) -> None:
        pass


async def test_a_connection_that_drops_at_once_keeps_backing_off(bus: RecordingBus) -> None:
    clock = FakeClock()
    stream, _ = make(FlappingOpener(), clock, bus, seed=3)
    await run_until(stream, lambda: len(clock.sleeps) >= 8)
    rng = random.Random(3)
    assert clock.sleeps[:8] == pytest.approx(
        [backoff_delay(n, 0.5, 30, "full", rng) for n in range(1, 9)])
