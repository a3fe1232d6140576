"""The caller's deadline, checked before any work: a call that is already late is not started.

Inner layers honour `call.deadline` themselves (the limiter never waits past it, retry never
sleeps past it, the transport shortens its timeout to it).
"""

from __future__ import annotations

from sidecar.clock import Clock
from sidecar.errors import DeadlineExceeded
from sidecar.pipeline import Call, Handler, Response


class DeadlinePolicy:
    def __init__(self, clock: Clock) -> None:
        self._clock = clock

    async def handle(self, call: Call, next: Handler) -> Response:
        if call.deadline is not None and call.deadline <= self._clock.monotonic():
            raise DeadlineExceeded("the caller's deadline passed before the call started")
        return await next(call)
