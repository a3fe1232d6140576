"""The read-only gate: at READ_ONLY a write is refused at once, before it is queued or sent.

Risk-reducing calls stay allowed: closing positions and trades and cancelling orders (the
critical patterns, `rate_limit.critical`, marked as `call.risk_reducing` by the servicer) are
still attempted, because refusing them would leave a trader unable to get out of the market
while OANDA is shaky. The caller's priority flag alone does not exempt a call: an order marked
PRIORITY_CRITICAL is still a new order.

Every answer leaving the gate carries the level at the moment it was answered.
"""

from __future__ import annotations

import dataclasses

from sidecar.degradation.controller import LevelView
from sidecar.errors import ReadOnly
from sidecar.pipeline import Call, Handler, Response
from sidecar.vocabulary import Level

READ_ONLY = Level.READ_ONLY

class ReadOnlyGate:
    __slots__ = ("_levels",)

    def __init__(self, levels: LevelView) -> None:
        self._levels = levels

    async def handle(self, call: Call, next: Handler) -> Response:
        levels = self._levels
        if levels.level == READ_ONLY and call.is_write and not call.risk_reducing:
            raise ReadOnly(f"{call.method} {call.endpoint.template} refused: the sidecar is "
                           f"READ_ONLY ({levels.reason or 'no reason given'}); closing "
                           "positions and trades and cancelling orders are still attempted")
        response = await next(call)
        level = levels.level
        if response.degradation != level:  # stamped with the level it is answered at
            response = dataclasses.replace(response, degradation=level)
        return response
