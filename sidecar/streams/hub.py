"""The stream hub: one UpstreamStream per (account, stream, instrument set), shared by every
local subscriber, closed `idle_close_delay_s` after its last subscriber leaves."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

from sidecar.errors import SidecarError, UpstreamError
from sidecar.events import StreamSubscribersChanged
from sidecar.streams.connection import StreamParts, UpstreamStream
from sidecar.streams.messages import StreamKey, StreamKind
from sidecar.streams.request import Subscription
from sidecar.streams.subscribers import Outbox, PriceOutbox, TransactionOutbox


@dataclass(frozen=True, slots=True)
class StreamSnapshot:
    path_template: str
    account: str  # masked
    instruments: tuple[str, ...]
    subscribers: int
    state: str
    reconnects: int
    last_message_at: float | None
    last_transaction_id: str
    down_since: float | None
    last_error: str | None


@dataclass(slots=True)
class Joined:
    """A subscriber's place: its buffer, and where the shared transaction feed stood."""

    stream: UpstreamStream
    outbox: Outbox
    start_id: int | None  # transactions: the feed holds every ID after this one (None: not yet)


class StreamHub:
    def __init__(self, parts: StreamParts) -> None:
        self._p = parts
        self._streams: dict[StreamKey, UpstreamStream] = {}
        self._idle: dict[StreamKey, asyncio.Task[None]] = {}
        self._closed = False

    def join(self, sub: Subscription) -> Joined:
        """Subscribe; the upstream connection is opened (or shared) at once."""
        if self._closed:
            raise UpstreamError("the sidecar is shutting down; reconnect to another one")
        key = sub.key
        idle = self._idle.pop(key, None)
        if idle is not None:
            idle.cancel()
        stream = self._streams.get(key)
        if stream is None:
            stream = UpstreamStream(key, self._p, self._fatal)
            self._streams[key] = stream
            stream.start()
        outbox: Outbox
        if key.kind is StreamKind.TRANSACTIONS:
            outbox = TransactionOutbox(self._p.config.subscriber_buffer)
        else:
            outbox = PriceOutbox()
            if sub.snapshot:
                for price in stream.prices.values():
                    outbox.offer(price)
        state = stream.state_notice()
        if state is not None:
            outbox.offer(state)
        stream.outboxes.append(outbox)
        self._count(stream)
        return Joined(stream, outbox, stream.last_id)

    def leave(self, joined: Joined) -> None:
        stream = joined.stream
        with contextlib.suppress(ValueError):
            stream.outboxes.remove(joined.outbox)
        self._count(stream)
        if stream.outboxes or self._streams.get(stream.key) is not stream:
            return
        self._idle[stream.key] = asyncio.get_running_loop().create_task(
            self._close_when_idle(stream), name=f"idle {stream.key.label}")

    async def _close_when_idle(self, stream: UpstreamStream) -> None:
        await self._p.clock.sleep(self._p.config.idle_close_delay_s)
        if stream.outboxes:
            return
        self._idle.pop(stream.key, None)
        if self._streams.get(stream.key) is stream:
            del self._streams[stream.key]
        await stream.close()

    def _fatal(self, stream: UpstreamStream) -> None:
        if self._streams.get(stream.key) is stream:
            del self._streams[stream.key]
        stream.outboxes.clear()
        self._count(stream)

    async def close(self, error: SidecarError | None = None) -> None:
        """End every subscriber (with `error`) and every upstream connection."""
        self._closed = True
        for task in self._idle.values():
            task.cancel()
        self._idle.clear()
        streams, self._streams = list(self._streams.values()), {}
        for stream in streams:
            await stream.close(error)

    def _count(self, stream: UpstreamStream) -> None:
        self._p.bus.publish(StreamSubscribersChanged(
            at=self._p.clock.wall(), stream=stream.key.kind.value, key=stream.key.label,
            subscribers=len(stream.outboxes)))

    def snapshots(self) -> list[StreamSnapshot]:
        out = []
        for key, s in self._streams.items():
            out.append(StreamSnapshot(
                path_template=key.kind.template, account=key.label.split(" ")[1],
                instruments=key.instruments, subscribers=len(s.outboxes), state=s.state,
                reconnects=s.reconnects, last_message_at=s.last_message_at,
                last_transaction_id=str(s.last_id) if s.last_id is not None else "",
                down_since=s.down_since, last_error=s.last_error))
        return out
