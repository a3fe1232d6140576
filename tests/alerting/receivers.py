"""Fake PagerDuty and Slack receivers: local aiohttp servers on 127.0.0.1:0.

Each answers from a script (a queue of statuses; the default answer once it runs out) and keeps
every request it got, with the time it arrived, for assertions.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from aiohttp import web


@dataclass(frozen=True)
class Received:
    body: dict[str, Any]
    status: int  # what we answered
    at: float  # time.monotonic() on arrival
    path: str


class FakeReceiver:
    default_status = 200

    def __init__(self, path: str = "/") -> None:
        self.path = path
        self.script: deque[int] = deque()
        self.requests: list[Received] = []
        self.hang_s = 0.0  # answer this late (timeouts, slow receivers)
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self.url = ""

    def answer(self, statuses: Iterable[int]) -> None:
        """Answer the next requests with these statuses, then the default again."""
        self.script.extend(statuses)

    @property
    def accepted(self) -> list[Received]:
        return [r for r in self.requests if 200 <= r.status < 300]

    async def start(self) -> FakeReceiver:
        app = web.Application()
        app.router.add_post(self.path, self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}{self.path}"
        return self

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def wait_until(self, predicate: Callable[[FakeReceiver], bool],
                         within_s: float = 5.0) -> None:
        async with asyncio.timeout(within_s), self._changed:
            await self._changed.wait_for(lambda: predicate(self))

    async def wait_accepted(self, n: int, within_s: float = 5.0) -> list[Received]:
        await self.wait_until(lambda r: len(r.accepted) >= n, within_s)
        return self.accepted

    async def _handle(self, request: web.Request) -> web.Response:
        arrived = time.monotonic()
        body = json.loads(await request.read())
        if self.hang_s:
            await asyncio.sleep(self.hang_s)
        status = self.script.popleft() if self.script else self.default_status
        self.requests.append(Received(body, status, arrived, request.path))
        async with self._changed:
            self._changed.notify_all()
        return self.respond(status, body)

    def respond(self, status: int, body: dict[str, Any]) -> web.Response:
        return web.Response(status=status, text="")


class PagerDutyReceiver(FakeReceiver):
    """Answers like the Events API v2 enqueue endpoint."""

    default_status = 202

    def __init__(self) -> None:
        super().__init__("/v2/enqueue")

    def respond(self, status: int, body: dict[str, Any]) -> web.Response:
        if status == 202:
            doc: dict[str, Any] = {"status": "success", "message": "Event processed",
                                   "dedup_key": body.get("dedup_key")}
        elif status == 400:
            doc = {"status": "invalid event", "message": "Event object is invalid",
                   "errors": ["'payload' is missing or blank"]}
        elif status == 429:
            doc = {"status": "throttle event", "message": "Requests for this service are "
                   "arriving too quickly. Please retry later."}
        else:
            return web.Response(status=status, text="Internal Server Error")
        return web.json_response(doc, status=status)


class SlackReceiver(FakeReceiver):
    """Answers like an incoming webhook; the secret is in the path, as with Slack."""

    def __init__(self) -> None:
        super().__init__("/services/T00000000/B00000000/XXXXsecretXXXXtokenXXXX")

    def respond(self, status: int, body: dict[str, Any]) -> web.Response:
        if status == 200:
            return web.Response(status=200, text="ok")
        if status == 429:
            return web.Response(status=429, text="rate_limited", headers={"Retry-After": "0"})
        if status == 400:
            return web.Response(status=400, text="invalid_payload")
        return web.Response(status=status, text="internal_error")
