"""Faults of the simulator's streams, added through `POST /_sim/faults` like any other.

kind                    effect on a live stream connection whose path matches
stream_drop             the connection is reset; `mid_line: true` (default) after writing the
                        first half of the next line, else between two lines
stream_stall            open and silent (no heartbeats either) for `duration_s` (default: until
                        the client gives up)
stream_heartbeats_only  for `duration_s` only heartbeats go out: prices and transactions are
                        left out of the stream (transactions stay in the account's log)
stream_slow             every line is written `delay_s` late, for `duration_s`
stream_skip             the next `count` (default 1) transactions are left out of the live
                        stream, so only a heartbeat's lastTransactionID reveals them

`count` limits how many connections a drop or stall hits (default 1); `path` is an fnmatch glob
(default every stream path).
"""

from __future__ import annotations

import fnmatch
import itertools
from dataclasses import asdict, dataclass
from typing import Any

from sidecar.clock import Clock

STREAM_KINDS = ("stream_drop", "stream_stall", "stream_heartbeats_only", "stream_slow",
                "stream_skip")
_FIELDS = {"kind", "path", "count", "duration_s", "delay_s", "mid_line"}


@dataclass(frozen=True, slots=True)
class StreamFault:
    kind: str
    path: str = "*/stream"
    count: int | None = 1
    duration_s: float | None = None
    delay_s: float = 0.0
    mid_line: bool = True

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StreamFault:
        unknown = set(data) - _FIELDS
        if unknown:
            raise ValueError(f"unknown stream fault fields: {', '.join(sorted(unknown))}")
        if data.get("kind") not in STREAM_KINDS:
            raise ValueError(f"kind must be one of {', '.join(STREAM_KINDS)}")
        fault = cls(**data)
        if fault.count is not None and fault.count < 0:
            raise ValueError("count must not be negative")
        if (fault.duration_s or 0) < 0 or fault.delay_s < 0:
            raise ValueError("duration_s and delay_s must not be negative")
        if fault.kind in ("stream_heartbeats_only", "stream_slow") and "count" not in data:
            fault = cls(**{**data, "count": None})
        return fault


@dataclass(slots=True)
class _Active:
    id: str
    fault: StreamFault
    created_at: float
    remaining: int | None
    hits: int = 0

    def live(self, now: float) -> bool:
        d = self.fault.duration_s
        timed = self.fault.kind in ("stream_heartbeats_only", "stream_slow")
        return (self.remaining is None or self.remaining > 0) and (
            not timed or d is None or now - self.created_at < d)


class StreamFaults:
    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._ids = itertools.count(1)
        self._faults: dict[str, _Active] = {}

    def add(self, fault: StreamFault) -> str:
        fault_id = f"s{next(self._ids)}"
        self._faults[fault_id] = _Active(fault_id, fault, self._clock.monotonic(), fault.count)
        return fault_id

    def remove(self, fault_id: str) -> bool:
        return self._faults.pop(fault_id, None) is not None

    def clear(self) -> None:
        self._faults.clear()

    def list(self) -> list[dict[str, Any]]:
        now = self._clock.monotonic()
        return [{"id": a.id, **asdict(a.fault), "remaining": a.remaining, "hits": a.hits,
                 "active": a.live(now)} for a in self._faults.values()]

    def take(self, kind: str, path: str) -> StreamFault | None:
        """The first live fault of `kind` for `path`, spending one of its count."""
        if not self._faults:
            return None
        now = self._clock.monotonic()
        for active in self._faults.values():
            fault = active.fault
            if fault.kind != kind or not active.live(now):
                continue
            if not fnmatch.fnmatchcase(path, fault.path):
                continue
            if active.remaining is not None:
                active.remaining -= 1
            active.hits += 1
            return fault
        return None

    def active(self, kind: str, path: str) -> StreamFault | None:
        """A live timed fault (heartbeats only, slow) for `path`, without spending it."""
        if not self._faults:
            return None
        now = self._clock.monotonic()
        for active in self._faults.values():
            if (active.fault.kind == kind and active.live(now)
                    and fnmatch.fnmatchcase(path, active.fault.path)):
                return active.fault
        return None
