"""The values streams carry: which stream, one line of it, and the sidecar's own notices."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

HEARTBEAT = "HEARTBEAT"
PRICE = "PRICE"
RECONNECTING = "SIDECAR_RECONNECTING"
CONNECTED = "SIDECAR_CONNECTED"
NOTICES = frozenset({RECONNECTING, CONNECTED})
_ACCOUNT_SUFFIX = re.compile(r"-(\d{3})$")


class StreamKind(StrEnum):
    PRICING = "pricing"
    TRANSACTIONS = "transactions"

    @property
    def template(self) -> str:
        return f"/v3/accounts/{{accountID}}/{self.value}/stream"


@dataclass(frozen=True, slots=True)
class StreamKey:
    """One upstream connection: what OANDA is asked for, normalised (instruments sorted)."""

    account: str
    kind: StreamKind
    instruments: tuple[str, ...] = ()
    # Query parameters that change what OANDA sends (includeHomeConversions), sorted.
    options: tuple[tuple[str, str], ...] = ()

    @property
    def path(self) -> str:
        return f"/v3/accounts/{self.account}/{self.kind.value}/stream"

    @property
    def query(self) -> dict[str, str]:
        out = dict(self.options)
        if self.instruments:
            out["instruments"] = ",".join(self.instruments)
        return out

    @property
    def label(self) -> str:
        """For logs, alerts and status: the account masked as the logs mask it."""
        match = _ACCOUNT_SUFFIX.search(self.account)
        masked = f"***-***-****-{match.group(1)}" if match else "***"
        suffix = f" {','.join(self.instruments)}" if self.instruments else ""
        return f"{self.kind.value} {masked}{suffix}"


@dataclass(slots=True)
class StreamMessage:
    """One line as OANDA sent it (or as read from transactions/sinceid), parsed once."""

    line: bytes
    type: str
    transaction_id: str = ""
    replayed: bool = False
    instrument: str = ""
    last_transaction_id: str = ""  # on the transaction stream's heartbeats
    # The servicer's encoded form, built once and shared by every subscriber.
    wire: Any = field(default=None, compare=False, repr=False)

    @property
    def id_number(self) -> int:
        return int(self.transaction_id)


class BrokenLine(ValueError):
    """A line that is not one JSON object with a `type` (a torn chunk, garbage)."""


def parse_line(raw: bytes) -> StreamMessage:
    try:
        obj = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise BrokenLine(f"not JSON: {raw[:80]!r}") from None
    if not isinstance(obj, dict) or not isinstance(obj.get("type"), str):
        raise BrokenLine(f"not a stream object: {raw[:80]!r}")
    return from_object(obj, raw)


def from_object(obj: dict[str, Any], raw: bytes | None = None, *,
                replayed: bool = False) -> StreamMessage:
    kind = obj["type"]
    line = raw.rstrip(b"\r\n") if raw is not None else json.dumps(
        obj, separators=(",", ":")).encode()
    if kind == PRICE:
        return StreamMessage(line, kind, instrument=str(obj.get("instrument", "")))
    if kind == HEARTBEAT:
        return StreamMessage(line, kind,
                             last_transaction_id=str(obj.get("lastTransactionID", "")))
    tx_id = obj.get("id")
    if not isinstance(tx_id, str) or not tx_id.isdigit():
        raise BrokenLine(f"a {kind} line without a transaction ID")
    return StreamMessage(line, kind, transaction_id=tx_id, replayed=replayed)


def oanda_time(wall: float) -> str:
    micros = round(wall * 1_000_000)
    secs, frac = divmod(micros, 1_000_000)
    return datetime.fromtimestamp(secs, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{frac:06d}000Z"


def notice(kind: str, since_wall: float, reason: str) -> StreamMessage:
    """SIDECAR_RECONNECTING / SIDECAR_CONNECTED: `{"type", "since", "reason"}`."""
    line = json.dumps({"type": kind, "since": oanda_time(since_wall), "reason": reason},
                      separators=(",", ":")).encode()
    return StreamMessage(line, kind)
