from __future__ import annotations

import asyncio

from sidecar.clock import FakeClock
from sidecar.events import AttemptFinished, Event, EventBus, RetryScheduled
from sidecar.pipeline import Call, Handler, Response, compose
from sidecar.upstream.endpoints import resolve


class Tag:
    def __init__(self, name: str, log: list[str]) -> None:
        self.name, self.log = name, log

    async def handle(self, call: Call, next: Handler) -> Response:
        self.log.append(f"in:{self.name}")
        response = await next(call)
        self.log.append(f"out:{self.name}")
        return response


async def test_compose_runs_policies_outermost_first() -> None:
    log: list[str] = []

    async def transport(call: Call) -> Response:
        log.append("transport")
        return Response(200, b"{}")

    handler = compose([Tag("a", log), Tag("b", log)], transport)
    call = Call("GET", "/v3/accounts", resolve("/v3/accounts"))
    assert (await handler(call)).status == 200
    assert log == ["in:a", "in:b", "transport", "out:b", "out:a"]


def test_bus_delivers_by_type_and_survives_failing_subscribers() -> None:
    bus = EventBus()
    seen: list[Event] = []

    def boom(event: Event) -> None:
        raise RuntimeError("subscriber bug")

    bus.subscribe(Event, boom)
    bus.subscribe(RetryScheduled, seen.append)
    bus.publish(AttemptFinished(1.0, "GET", "/v3/accounts", 1, 0.1, 200, None))
    retry = RetryScheduled(2.0, "GET", "/v3/accounts", 1, 0.5, "status_503")
    bus.publish(retry)
    assert seen == [retry]


async def test_fake_clock_records_sleeps_and_wakes_manual_sleepers() -> None:
    clock = FakeClock(start=10.0)
    await clock.sleep(1.5)
    assert clock.sleeps == [1.5] and clock.monotonic() == 11.5
    clock.auto_advance = False
    task = asyncio.ensure_future(clock.sleep(2.0))
    await asyncio.sleep(0)
    clock.advance(1.0)
    await asyncio.sleep(0)
    assert not task.done()
    clock.advance(1.0)
    await asyncio.sleep(0)
    assert task.done()
