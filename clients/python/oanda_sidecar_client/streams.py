"""Stream messages and the resume rule shared by the asyncio and blocking clients.

`transactions()` keeps a cursor (the last transaction ID it handed out) and, when the stream
ends with SLOW_CONSUMER or the sidecar goes away (UNAVAILABLE: a restart, a drain, the network),
opens it again with `since_transaction_id` = the cursor: nothing is lost and nothing repeats.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from typing import Any

import grpc

from oanda_sidecar_client._gen.oanda.sidecar.v1 import proxy_pb2 as ppb
from oanda_sidecar_client.errors import SidecarError

RECONNECTING = "SIDECAR_RECONNECTING"
CONNECTED = "SIDECAR_CONNECTED"
HEARTBEAT = "HEARTBEAT"
PRICE = "PRICE"
_RESUME_REASONS = frozenset({"SLOW_CONSUMER", "UPSTREAM_UNAVAILABLE"})
_RESUME_BASE_S = 0.1
_RESUME_MAX_S = 5.0


@dataclass(frozen=True, slots=True)
class StreamMessage:
    """One line of an OANDA stream (as OANDA sent it), or the sidecar's own notice."""

    type: str
    line: bytes
    transaction_id: str = ""
    replayed: bool = False

    def json(self) -> dict[str, Any]:
        value: dict[str, Any] = json.loads(self.line)
        return value

    @property
    def is_notice(self) -> bool:
        return self.type in (RECONNECTING, CONNECTED)


def message(pb: ppb.StreamMessage) -> StreamMessage:
    return StreamMessage(pb.type, pb.line, pb.transaction_id, pb.replayed)


def transactions_request(account: str, since: str | None) -> ppb.StreamRequest:
    return ppb.StreamRequest(path=f"/v3/accounts/{account}/transactions/stream",
                             since_transaction_id=since or "")


def prices_request(account: str, instruments: list[str] | tuple[str, ...] | str,
                   snapshot: bool, home_conversions: bool) -> ppb.StreamRequest:
    names = instruments if isinstance(instruments, str) else ",".join(instruments)
    query = {"instruments": names, "snapshot": "true" if snapshot else "false"}
    if home_conversions:
        query["includeHomeConversions"] = "true"
    return ppb.StreamRequest(path=f"/v3/accounts/{account}/pricing/stream", query=query)


def resumable(error: SidecarError) -> bool:
    """SLOW_CONSUMER, or the sidecar unreachable or going away: open the stream again."""
    return error.reason in _RESUME_REASONS or error.code == grpc.StatusCode.UNAVAILABLE


def resume_delay(attempt: int, rng: random.Random) -> float:
    """Full jitter, from 0.1 s doubling up to 5 s; the first resume after a SLOW_CONSUMER
    (attempt 0) is immediate."""
    if attempt <= 0:
        return 0.0
    return rng.random() * min(_RESUME_MAX_S, _RESUME_BASE_S * 2.0 ** min(attempt - 1, 16))


class Cursor:
    """The last transaction ID handed out; drops what was handed out already."""

    __slots__ = ("last",)

    def __init__(self, since: str | None) -> None:
        self.last = int(since) if since else None

    def accept(self, msg: StreamMessage) -> bool:
        if msg.transaction_id:
            number = int(msg.transaction_id)
            if self.last is not None and number <= self.last:
                return False
            self.last = number
        elif msg.type == HEARTBEAT and self.last is None:
            # The sidecar passes a heartbeat on only after every transaction up to its
            # lastTransactionID: a cursor even before the first transaction.
            last = msg.json().get("lastTransactionID")
            if isinstance(last, str) and last.isdigit():
                self.last = int(last)
        return True

    @property
    def since(self) -> str | None:
        return None if self.last is None else str(self.last)


class Latest:
    """Newest wins per instrument (and for the heartbeat), notices kept in order: what a slow
    reader of prices() gets, so the network never holds a backlog of old prices for it."""

    __slots__ = ("_pending", "_seq")

    def __init__(self) -> None:
        self._pending: dict[object, StreamMessage] = {}
        self._seq = 0

    def __len__(self) -> int:
        return len(self._pending)

    def put(self, msg: StreamMessage) -> None:
        slot: object
        if msg.type == PRICE:
            slot = msg.json().get("instrument", "")
        elif msg.type == HEARTBEAT:
            slot = HEARTBEAT
        else:
            self._seq += 1
            slot = self._seq
        self._pending[slot] = msg

    def take(self) -> StreamMessage | None:
        if not self._pending:
            return None
        return self._pending.pop(next(iter(self._pending)))
