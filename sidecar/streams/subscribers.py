"""Per-subscriber buffers, bounded: the hub offers without waiting, the subscriber takes.

Transactions keep every message (up to `limit`; beyond that the subscriber is ended with
SLOW_CONSUMER and resumes from its last transaction ID, so nothing is lost). Prices keep only
the newest per instrument (and the newest heartbeat): a slow reader gets fresh prices, never a
backlog, and its memory is bounded by its instruments.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from typing import Protocol

from sidecar.errors import SidecarError, SlowConsumer
from sidecar.streams.messages import HEARTBEAT, PRICE, StreamMessage

_MAX_NOTICES = 16


class Outbox(Protocol):
    def offer(self, message: StreamMessage) -> None: ...

    def end(self, error: SidecarError | None) -> None: ...

    async def next(self) -> StreamMessage | None:
        """The next message; None once ended without error; raises the ending error."""


class _Base:
    __slots__ = ("_ended", "_error", "_wake")

    def __init__(self) -> None:
        self._wake = asyncio.Event()
        self._ended = False
        self._error: SidecarError | None = None

    def end(self, error: SidecarError | None) -> None:
        if not self._ended:
            self._ended, self._error = True, error
            self._clear()
            self._wake.set()

    def _clear(self) -> None:
        raise NotImplementedError

    @property
    def ended(self) -> bool:
        return self._ended


class TransactionOutbox(_Base):
    """Every message in order, at most `limit` waiting."""

    __slots__ = ("_items", "_limit", "last_delivered")

    def __init__(self, limit: int) -> None:
        super().__init__()
        self._items: deque[StreamMessage] = deque()
        self._limit = limit
        self.last_delivered = ""  # for SLOW_CONSUMER's metadata, set by the delivery

    def __len__(self) -> int:
        return len(self._items)

    def offer(self, message: StreamMessage) -> None:
        if self._ended:
            return
        if len(self._items) >= self._limit:
            self.end(SlowConsumer(
                f"the subscriber fell more than {self._limit} messages behind; resume with "
                "since_transaction_id (nothing is lost)",
                metadata={"last_transaction_id": self.last_delivered}))
            return
        self._items.append(message)
        self._wake.set()

    def _clear(self) -> None:
        self._items.clear()

    async def next(self) -> StreamMessage | None:
        while True:
            if self._items:
                return self._items.popleft()
            if self._ended:
                if self._error is not None:
                    raise self._error
                return None
            self._wake.clear()
            await self._wake.wait()


class PriceOutbox(_Base):
    """Newest wins per instrument (and for the heartbeat); notices are kept, a few of them."""

    __slots__ = ("_notice_ids", "_pending", "dropped")

    def __init__(self) -> None:
        super().__init__()
        # Insertion-ordered: an instrument keeps its place in line while its price is replaced.
        self._pending: dict[object, StreamMessage] = {}
        self._notice_ids = itertools.count()
        self.dropped = 0  # prices replaced before they were read

    def __len__(self) -> int:
        return len(self._pending)

    def offer(self, message: StreamMessage) -> None:
        if self._ended:
            return
        kind = message.type
        slot: object
        if kind == PRICE:
            slot = message.instrument
        elif kind == HEARTBEAT:
            slot = HEARTBEAT
        else:
            slot = next(self._notice_ids)
            notices = [k for k in self._pending if isinstance(k, int)]
            if len(notices) >= _MAX_NOTICES:
                del self._pending[notices[0]]
        if slot in self._pending:
            self.dropped += 1
        self._pending[slot] = message
        self._wake.set()

    def _clear(self) -> None:
        self._pending.clear()

    async def next(self) -> StreamMessage | None:
        while True:
            if self._pending:
                slot = next(iter(self._pending))
                return self._pending.pop(slot)
            if self._ended:
                if self._error is not None:
                    raise self._error
                return None
            self._wake.clear()
            await self._wake.wait()
