"""One upstream stream: connect (breaker `stream`, shared connection budget), read lines under
a watchdog, fan each out, and reconnect with full-jitter backoff on any end. Transactions are
kept gap-free here: the connection anchors at the account's last transaction ID before its
first connect and fills from `transactions/sinceid` after every reconnect, whenever a
heartbeat's lastTransactionID is ahead, and when a transaction ID skips one."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Protocol

from sidecar.backoff import backoff_delay
from sidecar.clock import Clock
from sidecar.errors import CircuitOpen, InvalidRequest, SidecarError, UpstreamError
from sidecar.events import EventBus, StreamChanged, StreamReplayed
from sidecar.policies.breaker import CircuitBreaker
from sidecar.streams.config import StreamsConfig
from sidecar.streams.gapfill import TransactionSource
from sidecar.streams.messages import (
    CONNECTED,
    HEARTBEAT,
    PRICE,
    RECONNECTING,
    BrokenLine,
    StreamKey,
    StreamKind,
    StreamMessage,
    notice,
    parse_line,
)
from sidecar.streams.subscribers import Outbox
from sidecar.streams.watchdog import Watchdog
from sidecar.upstream.streaming import LineReader, StreamBroken, StreamRefused
from sidecar.vocabulary import classify

ANCHOR = "_ANCHOR"  # internal: where the connection's transaction feed starts


class Opener(Protocol):
    def open(self, path: str, query: dict[str, str],
             ) -> AbstractAsyncContextManager[LineReader]: ...


@dataclass(frozen=True, slots=True)
class StreamParts:
    opener: Opener
    source: TransactionSource
    breaker: CircuitBreaker
    config: StreamsConfig
    clock: Clock
    bus: EventBus
    rng: random.Random


@dataclass(frozen=True, slots=True)
class _Ended:
    reason: str
    error: str | None = None
    stable: bool = False  # the connection lasted: the backoff starts over
    retry_after_s: float | None = None
    fatal: SidecarError | None = None


class UpstreamStream:
    def __init__(self, key: StreamKey, parts: StreamParts,
                 on_fatal: Callable[[UpstreamStream], None]) -> None:
        self.key = key
        self._p = parts
        self._on_fatal = on_fatal
        self.outboxes: list[Outbox] = []
        self.state = "connecting"
        self.reconnects = 0
        self.last_id: int | None = None
        self.last_message_at: float | None = None
        self.down_since: float | None = parts.clock.wall()
        self.last_error: str | None = None
        self.prices: dict[str, StreamMessage] = {}
        self._delivered = False  # a line came on the current connection
        self._connected_at = 0.0  # monotonic
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(),
                                                            name=f"stream {self.key.label}")

    async def close(self, error: SidecarError | None = None) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for outbox in self.outboxes:
            outbox.end(error)
        self._change("closed", "closed")

    def state_notice(self) -> StreamMessage | None:
        if self.state == "connected" and self.last_message_at is not None:
            return notice(CONNECTED, self.last_message_at, "connected")
        if self.state == "reconnecting" and self.down_since is not None:
            return notice(RECONNECTING, self.down_since, self.last_error or "reconnecting")
        return None

    def publish(self, message: StreamMessage) -> None:
        for outbox in self.outboxes:
            outbox.offer(message)

    async def _run(self) -> None:
        attempt = 0
        while True:
            ended = await self._connect_once()
            if ended.fatal is not None:
                for outbox in self.outboxes:
                    outbox.end(ended.fatal)
                self._on_fatal(self)
                return
            attempt = 1 if ended.stable else attempt + 1
            self._went_down(ended)
            delay = backoff_delay(attempt, self._p.config.reconnect_base_delay_s,
                                  self._p.config.reconnect_max_delay_s, "full", self._p.rng)
            await self._p.clock.sleep(max(delay, ended.retry_after_s or 0.0))

    async def _connect_once(self) -> _Ended:
        try:
            await self._anchor()
        except InvalidRequest as exc:
            return _Ended("rejected", exc.message, fatal=exc)
        except SidecarError as exc:
            return _Ended("gap_fill_failed", exc.message, retry_after_s=exc.retry_after_s)
        try:
            permit = self._p.breaker.acquire(self.key.kind.template)
        except CircuitOpen as exc:
            return _Ended("circuit_open", exc.message, retry_after_s=exc.retry_after_s)
        return await self._open(permit)

    async def _open(self, permit: int) -> _Ended:
        breaker, reported = self._p.breaker, False
        try:
            async with self._p.opener.open(self.key.path, self.key.query) as reader:
                breaker.on_success(permit)
                reported = True
                return await self._connected(reader)
        except StreamRefused as exc:
            reported = True
            if classify(exc.status).is_failure:
                breaker.on_failure(permit, f"http_{exc.status}")
                return _Ended(f"http_{exc.status}", exc.message)
            breaker.on_success(permit)  # OANDA answered: the request itself is wrong
            return _Ended("rejected", exc.message, fatal=InvalidRequest(exc.message))
        except StreamBroken as exc:
            return _Ended(exc.reason, exc.message, stable=self._stable)
        except UpstreamError as exc:
            if not reported:
                reported = True
                breaker.on_failure(permit, exc.kind)
                return _Ended(exc.kind, exc.message)
            return _Ended("gap_fill_failed", exc.message, stable=self._stable)
        except SidecarError as exc:  # the gap fill's REST call was refused (breaker, limiter)
            return _Ended("gap_fill_failed", exc.message, stable=self._stable,
                          retry_after_s=exc.retry_after_s)
        finally:
            if not reported:
                breaker.on_ignored(permit)

    async def _anchor(self) -> None:
        if self.key.kind is not StreamKind.TRANSACTIONS or self.last_id is not None:
            return
        self.last_id = await self._p.source.anchor(self.key.account)
        self.publish(StreamMessage(b"", ANCHOR, transaction_id=str(self.last_id)))

    async def _connected(self, reader: LineReader) -> _Ended:
        self._delivered = False
        clock = self._p.clock
        self._connected_at = clock.monotonic()
        self.last_message_at = clock.wall()
        self.state, self.down_since = "connected", None
        reason = "reconnected" if self.reconnects else "connected"
        self._change("connected", reason)
        self.publish(notice(CONNECTED, self.last_message_at, reason))
        watchdog = Watchdog(clock, self._p.config.heartbeat_timeout_s)
        watcher = asyncio.ensure_future(self._watch(watchdog, reader))
        try:
            if self.key.kind is StreamKind.TRANSACTIONS:
                await self._fill()
                watchdog.touch()
            return await self._pump(reader, watchdog)
        except StreamBroken as exc:
            if watcher.done() and not watcher.cancelled():
                return _Ended("heartbeat_timeout", f"no line for {watchdog.timeout_s:g} s",
                              stable=self._stable)
            raise exc from None
        finally:
            watcher.cancel()

    @property
    def _stable(self) -> bool:
        """The connection delivered and lasted a heartbeat timeout: the backoff starts over.
        (One that delivers a line and drops at once keeps backing off: no reconnect loop.)"""
        return self._delivered and (self._p.clock.monotonic() - self._connected_at
                                    >= self._p.config.heartbeat_timeout_s)

    @staticmethod
    async def _watch(watchdog: Watchdog, reader: LineReader) -> None:
        await watchdog.silent()
        reader.abort()

    async def _pump(self, reader: LineReader, watchdog: Watchdog) -> _Ended:
        clock = self._p.clock
        while True:
            raw = await reader.next_line()
            watchdog.touch()
            self.last_message_at = clock.wall()
            try:
                message = parse_line(raw)
            except BrokenLine as exc:
                return _Ended("broken_chunk", str(exc), stable=self._stable)
            self._delivered = True
            if message.type == PRICE:
                self.prices[message.instrument] = message
                self.publish(message)
            elif await self._transaction_in_order(message):
                self.publish(message)
            watchdog.touch()

    async def _transaction_in_order(self, message: StreamMessage) -> bool:
        """Fill what the stream missed before `message`; False for a repeat."""
        if self.key.kind is not StreamKind.TRANSACTIONS or self.last_id is None:
            return True
        if message.type == HEARTBEAT:
            ahead = message.last_transaction_id
            if ahead.isdigit() and int(ahead) > self.last_id:
                await self._fill()
            return True
        if not message.transaction_id:
            return True
        number = message.id_number
        if number > self.last_id + 1:
            await self._fill()
        if number <= self.last_id:
            return False
        self.last_id = number
        return True

    async def _fill(self) -> None:
        assert self.last_id is not None
        count = 0
        async for page in self._p.source.pages_since(self.key.account, self.last_id):
            for message in page:
                if message.id_number > self.last_id:
                    self.last_id = message.id_number
                    self.publish(message)
                    count += 1
        if count:
            self._p.bus.publish(StreamReplayed(at=self._p.clock.wall(),
                                               stream=self.key.kind.value,
                                               key=self.key.label, count=count))

    def _went_down(self, ended: _Ended) -> None:
        wall = self._p.clock.wall()
        if self.down_since is None:
            self.down_since = wall
        if self.state == "connected":
            self.reconnects += 1
        self.state, self.last_error = "reconnecting", ended.reason
        self.publish(notice(RECONNECTING, self.down_since, ended.reason))
        self._change("reconnecting", ended.reason, ended.error)

    def _change(self, state: str, reason: str, error: str | None = None) -> None:
        self._p.bus.publish(StreamChanged(
            at=self._p.clock.wall(), stream=self.key.kind.value, key=self.key.label,
            state=state, reason=reason, reconnects=self.reconnects, down_since=self.down_since,
            error=error))
