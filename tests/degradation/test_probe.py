"""The recovery probe on a FakeClock: when it runs, how long it waits, what it goes through."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from sidecar.clock import FakeClock
from sidecar.config import BreakerConfig, DegradationConfig, RateLimitConfig
from sidecar.degradation.controller import DegradationController
from sidecar.degradation.probe import RecoveryProbe
from sidecar.errors import CircuitOpen, UpstreamConnectError
from sidecar.events import BreakerTransition, RetryGivenUp
from sidecar.pipeline import Call, Response, compose
from sidecar.policies.breaker import BreakerPolicy, BreakerRegistry
from sidecar.upstream.endpoints import resolve
from tests.conftest import RecordingBus
from tests.ratelimit.helpers import local_policy

CONFIG = DegradationConfig(probe_interval_s=2.0, recovery_successes=3)


class Scripted:
    def __init__(self, *items: Any) -> None:
        self.items = list(items)
        self.calls: list[Call] = []

    async def __call__(self, call: Call) -> Response:
        self.calls.append(call)
        item = self.items.pop(0) if self.items else Response(200, b"{}")
        if isinstance(item, Exception):
            raise item
        assert isinstance(item, Response)
        return item


def open_breaker(bus: RecordingBus) -> None:
    bus.publish(BreakerTransition(at=1.0, breaker="rest", from_state="closed", to_state="open",
                                  reason="failure_threshold"))


def failing_reads(bus: RecordingBus) -> None:
    """CACHED_DATA: the level that needs `recovery_successes` probes in a row to end."""
    for _ in range(2):
        bus.publish(RetryGivenUp(at=1.0, method="GET", endpoint="/v3/accounts", attempts=3,
                                 reason="exhausted"))


async def run_until_recovered(probe: RecoveryProbe, ctl: DegradationController) -> None:
    task = asyncio.ensure_future(probe.run())
    for _ in range(1000):
        if ctl.level == "none":
            break
        await asyncio.sleep(0)
    task.cancel()
    assert ctl.level == "none"


async def test_recovery_takes_interval_times_successes(clock: FakeClock,
                                                       bus: RecordingBus) -> None:
    ctl = DegradationController(CONFIG, clock, bus)
    handler = Scripted(Response(503, b"{}"), UpstreamConnectError("refused"))
    probe = RecoveryProbe(ctl, handler, clock, CONFIG, timeout_s=10)
    failing_reads(bus)
    started = clock.monotonic()
    await run_until_recovered(probe, ctl)
    assert clock.sleeps == [2.0] * 5  # two failures, then three successes in a row
    assert clock.monotonic() - started == 10.0
    assert [c.path for c in handler.calls] == ["/v3/accounts"] * 5
    assert handler.calls[0].deadline == started + 2.0 + 10


async def test_an_open_breaker_sets_the_next_probe_time(clock: FakeClock,
                                                        bus: RecordingBus) -> None:
    ctl = DegradationController(CONFIG, clock, bus)
    handler = Scripted(CircuitOpen("open", retry_after_s=0.7))
    probe = RecoveryProbe(ctl, handler, clock, CONFIG, timeout_s=10)
    failing_reads(bus)
    await run_until_recovered(probe, ctl)
    assert clock.sleeps == [2.0, 0.7, 2.0, 2.0]


async def test_the_probe_idles_while_nothing_is_degraded(bus: RecordingBus) -> None:
    clock = FakeClock(auto_advance=False)
    ctl = DegradationController(CONFIG, clock, bus)
    handler = Scripted()
    probe = RecoveryProbe(ctl, handler, clock, CONFIG, timeout_s=10)
    await probe.start()
    for _ in range(20):
        await asyncio.sleep(0)
    assert clock.sleeps == [] and handler.calls == []
    open_breaker(bus)
    for _ in range(5):
        await asyncio.sleep(0)
    assert clock.sleeps == [2.0] and handler.calls == []
    clock.advance(2.0)
    for _ in range(5):
        await asyncio.sleep(0)
    assert len(handler.calls) == 1
    await probe.stop()
    await probe.stop()  # twice is harmless


@pytest.mark.parametrize(("answer", "ok"), [
    (Response(200, b"{}"), True), (Response(404, b"{}"), True), (Response(503, b""), False),
    (Response(401, b"{}"), False), (Response(429, b"{}"), True),
    (UpstreamConnectError("refused"), False), (RuntimeError("session closed"), False)])
async def test_what_counts_as_a_success(clock: FakeClock, bus: RecordingBus, answer: Any,
                                        ok: bool) -> None:
    ctl = DegradationController(CONFIG, clock, bus)
    probe = RecoveryProbe(ctl, Scripted(answer), clock, CONFIG, timeout_s=10)
    result, detail, _ = await probe.probe_once()
    assert result is ok and detail


async def test_the_probe_is_the_breakers_half_open_trial_and_spends_a_token(
        clock: FakeClock, bus: RecordingBus) -> None:
    breakers = BreakerRegistry(BreakerConfig(failure_threshold=1, recovery_timeout_s=5), clock,
                               bus)
    limiter = local_policy(RateLimitConfig(), clock, bus)
    config = DegradationConfig(probe_interval_s=2, recovery_successes=1)
    ctl = DegradationController(config, clock, bus)
    upstream = Scripted(Response(503, b"{}"))
    handler = compose([BreakerPolicy(breakers), limiter], upstream)
    await handler(Call("GET", "/v3/accounts", resolve("/v3/accounts")))  # opens the breaker
    assert ctl.level == "read_only"
    probe = RecoveryProbe(ctl, handler, clock, config, timeout_s=10)
    await run_until_recovered(probe, ctl)
    # The first probe is refused (3 s of the recovery timeout left) and waits exactly that long;
    # the second is the breaker's half-open trial.
    assert clock.sleeps == [2.0, 3.0]
    assert [e.to_state for e in bus.of(BreakerTransition)] == ["open", "half_open", "closed"]
    assert limiter.snapshot().admitted_total == 2 and len(upstream.calls) == 2
