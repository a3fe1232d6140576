"""The read-only gate: at READ_ONLY a write is refused at once, before it is queued or sent.

Risk-reducing calls stay allowed: closing positions and trades and cancelling orders (the
critical patterns, `rate_limit.critical`) are still attempted, because refusing them would
leave a trader unable to get out of the market while OANDA is shaky. The caller's priority flag
alone does not exempt a call: an order marked PRIORITY_CRITICAL is still a new order.

Every answer leaving the gate carries the level at the moment it was answered.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from sidecar.errors import ReadOnly
from sidecar.pipeline import Call, Handler, Response
from sidecar.upstream.endpoints import EndpointPattern

READ_ONLY = "read_only"


class LevelView(Protocol):
    """What the gate needs of the degradation controller."""

    level: str

    @property
    def reason(self) -> str: ...


class ReadOnlyGate:
    __slots__ = ("_cache", "_levels", "_patterns")

    def __init__(self, levels: LevelView, exempt: Sequence[str]) -> None:
        self._levels = levels
        self._patterns = tuple(EndpointPattern.parse(p) for p in exempt)
        self._cache: dict[tuple[str, str], bool] = {}

    def _exempt(self, call: Call) -> bool:
        key = (call.method, call.endpoint.template)
        hit = self._cache.get(key)
        if hit is None:
            hit = any(p.matches(*key) for p in self._patterns)
            self._cache[key] = hit  # bounded: methods x known templates (+ one unknown)
        return hit

    async def handle(self, call: Call, next: Handler) -> Response:
        levels = self._levels
        if levels.level == READ_ONLY and call.is_write and not self._exempt(call):
            raise ReadOnly(f"{call.method} {call.endpoint.template} refused: the sidecar is "
                           f"READ_ONLY ({levels.reason or 'no reason given'}); closing "
                           "positions and trades and cancelling orders are still attempted")
        response = await next(call)
        response.degradation = levels.level
        return response
