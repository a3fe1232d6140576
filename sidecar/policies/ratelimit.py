"""The rate-limit policy: ask the limiter for the call's tokens, wait, send.

Everything else (buckets local or shared through Redis, lanes, queueing, AIMD) is in
`sidecar.ratelimit`. An answer of 429 from OANDA tells the limiter it let too much through.
"""

from __future__ import annotations

from sidecar.pipeline import Call, Handler, Response
from sidecar.ratelimit import Limiter
from sidecar.ratelimit.snapshot import RateLimitSnapshot
from sidecar.upstream.pool import READMIT


class RateLimitPolicy:
    def __init__(self, limiter: Limiter) -> None:
        self.limiter = limiter

    async def handle(self, call: Call, next: Handler) -> Response:
        admitted_at = [await self.limiter.admit(call)]

        async def readmit() -> None:
            admitted_at[0] = await self.limiter.admit(call)

        # The transport asks again if the call then waits long for a connection
        # (sidecar.upstream.pool.STALE_TOKEN_S): a token is leave to send now.
        token = READMIT.set(readmit)
        try:
            response = await next(call)
        finally:
            READMIT.reset(token)
        if response.status == 429:
            self.limiter.on_429(admitted_at[0])
        return response

    def snapshot(self) -> RateLimitSnapshot:
        return self.limiter.snapshot()
