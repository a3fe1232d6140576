"""What the sidecar remembers of each order it sent: in memory, and in Redis when configured.

A record is written before the order is sent (so that a restarted sidecar, or another pod
sharing the Redis, knows the client ID and the transaction ID to search from) and updated when
the outcome is known. Neither store ever raises: a failing Redis is published as CacheFailed and
the memory copy answers.
"""

from __future__ import annotations

import asyncio
import json
from collections import OrderedDict
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from sidecar.clock import Clock
from sidecar.events import CacheFailed, EventBus
from sidecar.vocabulary import OrderOutcome

PENDING, PLACED, NOT_PLACED = OrderOutcome.PENDING, OrderOutcome.PLACED, OrderOutcome.NOT_PLACED
NAMESPACE = "oanda-sidecar:v1:orders"
_MAX_PENDING_WRITES = 256


@dataclass(frozen=True, slots=True)
class OrderRecord:
    client_order_id: str
    account_id: str
    kind: str
    since_transaction_id: str | None
    sent_at: float  # wall seconds
    outcome: str = PENDING
    transaction_ids: tuple[str, ...] = ()
    decided_at: float | None = None

    def decided(self, outcome: str, transaction_ids: tuple[str, ...],
                at: float) -> OrderRecord:
        return OrderRecord(self.client_order_id, self.account_id, self.kind,
                           self.since_transaction_id, self.sent_at, outcome, transaction_ids, at)

    def encode(self) -> bytes:
        return json.dumps(asdict(self), separators=(",", ":")).encode()

    @classmethod
    def decode(cls, raw: bytes | str) -> OrderRecord:
        data: dict[str, Any] = json.loads(raw)
        data["transaction_ids"] = tuple(data.get("transaction_ids") or ())
        return cls(**data)


class RemoteStore(Protocol):
    async def get(self, key: str) -> bytes | None: ...

    async def set(self, key: str, value: bytes, ttl_s: float) -> None: ...

    async def close(self) -> None: ...


class RedisStore:
    """redis-py asyncio, every operation bounded by `timeout_s`."""

    def __init__(self, url: str, timeout_s: float) -> None:
        import redis.asyncio

        self._client = redis.asyncio.Redis.from_url(
            url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)
        self._timeout_s = timeout_s

    async def get(self, key: str) -> bytes | None:
        value = await asyncio.wait_for(self._client.get(key), self._timeout_s)
        if value is None or isinstance(value, bytes):
            return value
        return str(value).encode()

    async def set(self, key: str, value: bytes, ttl_s: float) -> None:
        await asyncio.wait_for(self._client.set(key, value, px=max(1, int(ttl_s * 1000))),
                               self._timeout_s)

    async def close(self) -> None:
        await self._client.aclose()


class OrderBook:
    """Records by client ID: a bounded memory map, backed by a shared store when there is one."""

    def __init__(self, clock: Clock, bus: EventBus, *, max_records: int, remember_s: float,
                 remote: RemoteStore | None = None, scope: str = "") -> None:
        self._clock = clock
        self._bus = bus
        self._max = max_records
        self._ttl_s = remember_s
        self._remote = remote
        self._prefix = f"{NAMESPACE}:{scope}:"
        self._records: OrderedDict[str, OrderRecord] = OrderedDict()
        self._writes: set[asyncio.Task[None]] = set()

    def __len__(self) -> int:
        return len(self._records)

    def local(self, client_order_id: str) -> OrderRecord | None:
        record = self._records.get(client_order_id)
        if record is None:
            return None
        if self._clock.wall() - record.sent_at > self._ttl_s:
            del self._records[client_order_id]
            return None
        return record

    async def find(self, client_order_id: str) -> OrderRecord | None:
        """The record in memory, else in the shared store (another pod, a previous process)."""
        record = self.local(client_order_id)
        if record is not None or self._remote is None:
            return record
        try:
            raw = await self._remote.get(self._prefix + client_order_id)
            return None if raw is None else OrderRecord.decode(raw)
        except Exception as exc:
            self._failed("orders.get", exc)
            return None

    async def remember(self, record: OrderRecord) -> None:
        """Keep `record`; waits for the shared store (the order goes out only after this)."""
        self._keep(record)
        if self._remote is not None:
            await self._write(record)

    def update(self, record: OrderRecord) -> None:
        """Keep `record`; the shared store is written in the background."""
        self._keep(record)
        if self._remote is not None and len(self._writes) < _MAX_PENDING_WRITES:
            task = asyncio.ensure_future(self._write(record))
            self._writes.add(task)
            task.add_done_callback(self._writes.discard)

    def _keep(self, record: OrderRecord) -> None:
        records = self._records
        records[record.client_order_id] = record
        records.move_to_end(record.client_order_id)
        while len(records) > self._max:
            records.popitem(last=False)

    async def _write(self, record: OrderRecord) -> None:
        assert self._remote is not None
        try:
            await self._remote.set(self._prefix + record.client_order_id, record.encode(),
                                   self._ttl_s)
        except Exception as exc:
            self._failed("orders.set", exc)

    def _failed(self, operation: str, exc: Exception) -> None:
        text = f"{type(exc).__name__}: {exc}"[:200]
        self._bus.publish(CacheFailed(at=self._clock.wall(), operation=operation, error=text))

    async def close(self) -> None:
        if self._writes:
            await asyncio.gather(*self._writes, return_exceptions=True)
        if self._remote is not None:
            try:
                await self._remote.close()
            except Exception as exc:
                self._failed("orders.close", exc)
