"""One subscriber's stream: its own resume (since_transaction_id), then the shared feed, every
transaction exactly once and in ID order (repeats dropped by ID)."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator

from sidecar.clock import Clock
from sidecar.events import EventBus, StreamReplayed
from sidecar.streams.connection import ANCHOR
from sidecar.streams.gapfill import TransactionSource
from sidecar.streams.hub import Joined, StreamHub
from sidecar.streams.messages import StreamKind, StreamMessage
from sidecar.streams.request import Subscription
from sidecar.streams.subscribers import TransactionOutbox

# OANDA's REST view can lag its stream by a moment: look again this often, this many times.
_LAG_RETRY_S = 0.1
_LAG_RETRIES = 20


class Delivery:
    def __init__(self, hub: StreamHub, source: TransactionSource, clock: Clock,
                 bus: EventBus) -> None:
        self._hub = hub
        self._source = source
        self._clock = clock
        self._bus = bus

    async def messages(self, sub: Subscription) -> AsyncGenerator[StreamMessage, None]:
        joined = self._hub.join(sub)
        try:
            if sub.key.kind is StreamKind.PRICING:
                while (message := await joined.outbox.next()) is not None:
                    yield message
                return
            async for message in self._transactions(sub, joined):
                yield message
        finally:
            self._hub.leave(joined)

    async def _transactions(self, sub: Subscription,
                            joined: Joined) -> AsyncIterator[StreamMessage]:
        outbox = joined.outbox
        assert isinstance(outbox, TransactionOutbox)
        cursor = sub.since
        if cursor is None:
            cursor = joined.start_id
        elif joined.start_id is not None:
            async for replayed in self._replay(sub, cursor, joined.start_id):
                cursor = replayed.id_number
                outbox.last_delivered = replayed.transaction_id
                yield replayed
        while (message := await outbox.next()) is not None:
            if message.type == ANCHOR:
                anchor = int(message.transaction_id)
                if cursor is None:
                    cursor = anchor
                elif cursor < anchor:
                    async for replayed in self._replay(sub, cursor, anchor):
                        cursor = replayed.id_number
                        outbox.last_delivered = replayed.transaction_id
                        yield replayed
                continue
            if message.transaction_id:
                number = message.id_number
                if cursor is not None and number <= cursor:
                    continue  # already delivered (replayed, or repeated by the stream)
                cursor = number
                outbox.last_delivered = message.transaction_id
            yield message

    async def _replay(self, sub: Subscription, after: int,
                      target: int) -> AsyncIterator[StreamMessage]:
        """Every transaction after `after`, up to at least `target` (where the feed starts)."""
        count = 0
        for _ in range(_LAG_RETRIES):
            async for page in self._source.pages_since(sub.key.account, after):
                for message in page:
                    after = message.id_number
                    count += 1
                    yield message
            if after >= target:
                break
            await self._clock.sleep(_LAG_RETRY_S)
        if count:
            self._bus.publish(StreamReplayed(at=self._clock.wall(), stream=sub.key.kind.value,
                                             key=sub.key.label, count=count))
