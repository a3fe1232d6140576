"""Fault injection: what goes wrong, for which requests, how often and for how long.

A `Fault` is a plain value; the `FaultRegistry` decides per arriving request which faults apply
(seeded RNG for `ratio`, `count` spent only by requests actually affected) and returns a `Plan`:
the summed latency and at most one terminal action (the first matching terminal fault wins).
"""

from __future__ import annotations

import fnmatch
import itertools
import json
import random
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from http import HTTPStatus
from typing import Any, Literal, get_args

from sidecar.clock import Clock

FaultKind = Literal["latency", "status", "reset", "hang", "outage", "throttle",
                    "drop_after_commit",
                    "commit_then_503", "commit_then_hang"]  # sidecar/sim/order_faults.py
BodyStyle = Literal["json", "html", "empty"]
KINDS: tuple[str, ...] = get_args(FaultKind)
BODIES: tuple[str, ...] = get_args(BodyStyle)


@dataclass(frozen=True, slots=True)
class FaultMatch:
    """Which requests a fault affects: method (any if None) and an fnmatch glob on the path."""

    method: str | None = None
    path: str | None = None

    def matches(self, method: str, path: str) -> bool:
        return ((self.method is None or self.method.upper() == method)
                and (self.path is None or fnmatch.fnmatchcase(path, self.path)))


@dataclass(frozen=True, slots=True)
class Fault:
    kind: FaultKind
    match: FaultMatch | Mapping[str, str] | None = None
    status: int | None = None
    body: BodyStyle = "json"
    latency_s: float = 0.0
    ratio: float = 1.0
    count: int | None = None
    duration_s: float | None = None
    mode: Literal["status", "refuse"] = "status"

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}")
        if self.body not in BODIES:
            raise ValueError(f"body must be one of {', '.join(BODIES)}")
        if self.mode not in ("status", "refuse"):
            raise ValueError("mode must be 'status' or 'refuse'")
        if self.status is not None and not 100 <= self.status <= 599:
            raise ValueError("status must be an HTTP status (100-599)")
        if not 0.0 <= self.ratio <= 1.0:
            raise ValueError("ratio must be within [0, 1]")
        if self.latency_s < 0 or (self.count is not None and self.count < 0) or (
                self.duration_s is not None and self.duration_s < 0):
            raise ValueError("latency_s, count and duration_s must not be negative")
        if isinstance(self.match, Mapping):
            unknown = set(self.match) - {"method", "path"}
            if unknown:
                raise ValueError(f"unknown match keys: {', '.join(sorted(unknown))}")
            if not all(isinstance(v, str) for v in self.match.values()):
                raise ValueError("match.method and match.path are strings")
            object.__setattr__(self, "match", FaultMatch(self.match.get("method"),
                                                         self.match.get("path")))
        elif self.match is not None and not isinstance(self.match, FaultMatch):
            raise ValueError("match is an object: {\"method\": ..., \"path\": ...}")

    @classmethod
    def from_json(cls, data: object) -> Fault:
        """From the `POST /_sim/faults` body; ValueError/TypeError name what is wrong."""
        if not isinstance(data, dict):
            raise ValueError("a fault is a JSON object")
        fields = set(cls.__dataclass_fields__)
        unknown = set(data) - fields
        if unknown:
            raise ValueError(f"unknown fault fields: {', '.join(sorted(unknown))}")
        if "kind" not in data:
            raise ValueError("kind is required")
        return cls(**data)

    @property
    def resets(self) -> bool:
        """Ends with a reset connection and no answer (before processing)."""
        return self.kind == "reset" or (self.kind == "outage" and self.mode == "refuse")

    @property
    def answers(self) -> bool:
        """Answers with its own status instead of processing the request."""
        return self.kind in ("status", "throttle") or (
            self.kind == "outage" and self.mode == "status")

    @property
    def answer_status(self) -> int:
        if self.kind == "throttle":
            return self.status or 429
        return self.status or 503


@dataclass(slots=True)
class _Active:
    id: str
    fault: Fault
    created_at: float
    remaining: int | None
    hits: int = 0

    def live(self, now: float) -> bool:
        d = self.fault.duration_s
        return (self.remaining is None or self.remaining > 0) and (
            d is None or now - self.created_at < d)

    def as_json(self, now: float) -> dict[str, Any]:
        fault = asdict(self.fault)
        return {"id": self.id, **fault, "remaining": self.remaining, "hits": self.hits,
                "active": self.live(now)}


TERMINAL: frozenset[str] = frozenset(KINDS) - {"latency"}


@dataclass(slots=True)
class Plan:
    latency_s: float = 0.0
    action: Fault | None = None
    fault_ids: list[str] = field(default_factory=list)


class FaultRegistry:
    def __init__(self, clock: Clock, seed: int) -> None:
        self._clock = clock
        self._rng = random.Random(seed)
        self._ids = itertools.count(1)
        self._faults: dict[str, _Active] = {}

    def add(self, fault: Fault) -> str:
        fault_id = f"f{next(self._ids)}"
        self._faults[fault_id] = _Active(fault_id, fault, self._clock.monotonic(), fault.count)
        return fault_id

    def remove(self, fault_id: str) -> bool:
        return self._faults.pop(fault_id, None) is not None

    def clear(self) -> None:
        self._faults.clear()

    def list(self) -> list[dict[str, Any]]:
        now = self._clock.monotonic()
        return [f.as_json(now) for f in self._faults.values()]

    def plan(self, method: str, path: str) -> Plan | None:
        """The faults this request meets; None when none does (the common, cheap case)."""
        if not self._faults:
            return None
        now = self._clock.monotonic()
        plan = Plan()
        for active in self._faults.values():
            fault = active.fault
            if plan.action is not None and fault.kind in TERMINAL:
                continue
            if not active.live(now) or (
                    isinstance(fault.match, FaultMatch) and not fault.match.matches(method, path)):
                continue
            if fault.ratio < 1.0 and self._rng.random() >= fault.ratio:
                continue
            if active.remaining is not None:
                active.remaining -= 1
            active.hits += 1
            plan.fault_ids.append(active.id)
            plan.latency_s += fault.latency_s
            if fault.kind in TERMINAL:
                plan.action = fault
        return plan if plan.fault_ids else None


_HTML = "<html><head><title>{0} {1}</title></head><body><h1>{0} {1}</h1></body></html>"


def fault_body(fault: Fault) -> tuple[str, str | None]:
    """The body and content type a status/outage/throttle fault answers with."""
    status = fault.answer_status
    if fault.body == "empty":
        return "", None
    if fault.body == "html":
        phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else ""
        return _HTML.format(status, phrase), "text/html"
    if fault.kind == "outage":
        text = "Timeout waiting for response."
    elif status == 429:
        text = "Rate limit exceeded. Please reduce request rate."
    else:
        text = f"Simulated failure (HTTP {status})."
    return json.dumps({"errorMessage": text}), "application/json"
