"""Circuit breaker units on a FakeClock, driven through BreakerPolicy and the breaker's API."""

from __future__ import annotations

import asyncio

import pytest

from sidecar.clock import FakeClock
from sidecar.config import BreakerConfig
from sidecar.errors import (
    CircuitOpen,
    RateLimited,
    SidecarError,
    UpstreamConnectError,
    UpstreamConnectionLost,
    UpstreamError,
    UpstreamTimeout,
)
from sidecar.events import BreakerRejected, BreakerTransition
from sidecar.pipeline import Call, Handler, Response
from sidecar.policies.breaker import (
    BreakerPolicy,
    BreakerRegistry,
    BreakerState,
)
from sidecar.upstream.endpoints import resolve
from tests.conftest import RecordingBus

PATH = "/v3/accounts/101-001-1-001/orders"


class Upstream:
    """A `next` handler that answers with a fixed status or raises, and counts its calls."""

    def __init__(self) -> None:
        self.calls = 0
        self.status = 200
        self.error: BaseException | None = None

    async def __call__(self, call: Call) -> Response:
        self.calls += 1
        if self.error is not None:
            raise self.error
        return Response(status=self.status, body=b"")


class Rig:
    def __init__(self, clock: FakeClock, bus: RecordingBus, **config: float) -> None:
        self.clock = clock
        self.bus = bus
        self.registry = BreakerRegistry(BreakerConfig(**config), clock, bus)
        self.breaker = self.registry.get("rest")
        self.policy = BreakerPolicy(self.registry)
        self.upstream = Upstream()

    async def send(self, status: int = 200, error: BaseException | None = None,
                   nxt: Handler | None = None) -> Response:
        self.upstream.status, self.upstream.error = status, error
        call = Call(method="POST", path=PATH, endpoint=resolve(PATH))
        return await self.policy.handle(call, nxt or self.upstream)

    async def send_quietly(self, status: int = 200, error: BaseException | None = None) -> None:
        try:
            await self.send(status, error)
        except SidecarError:
            pass

    async def trip(self) -> None:
        for _ in range(self.breaker.snapshot().failure_threshold):
            await self.send(503)
        assert self.breaker.state is BreakerState.OPEN

    def state(self) -> BreakerState:
        return self.breaker.snapshot().state

    def moves(self) -> list[tuple[str, str, str]]:
        return [(e.from_state, e.to_state, e.reason) for e in self.bus.of(BreakerTransition)]


@pytest.fixture
def rig(clock: FakeClock, bus: RecordingBus) -> Rig:
    return Rig(clock, bus)


class Blocked:
    """A `next` that waits until told how to answer: keeps a probe in flight."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.answer: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    async def __call__(self, call: Call) -> Response:
        self.started.set()
        return Response(status=await self.answer, body=b"")


async def test_five_consecutive_failures_open(rig: Rig) -> None:
    for _ in range(4):
        await rig.send(500)
    assert rig.state() is BreakerState.CLOSED
    assert rig.breaker.snapshot().consecutive_failures == 4
    await rig.send(500)
    assert rig.state() is BreakerState.OPEN
    [event] = rig.bus.of(BreakerTransition)
    assert (event.breaker, event.from_state, event.to_state) == ("rest", "closed", "open")
    assert (event.reason, event.consecutive_failures, event.last_error) == (
        "failure_threshold", 5, "http_500")


async def test_open_fails_fast_without_calling_next(rig: Rig) -> None:
    await rig.trip()
    sent = rig.upstream.calls
    rig.clock.advance(20)
    with pytest.raises(CircuitOpen) as info:
        await rig.send(200)
    assert info.value.retry_after_s == pytest.approx(40.0)
    assert info.value.reason == "CIRCUIT_OPEN"
    assert rig.upstream.calls == sent
    [rejected] = rig.bus.of(BreakerRejected)
    assert rejected.endpoint == "/v3/accounts/{accountID}/orders"
    assert rejected.retry_after_s == pytest.approx(40.0)
    snap = rig.breaker.snapshot()
    assert snap.next_probe_in_s == pytest.approx(40.0)
    assert snap.opened_at == pytest.approx(rig.clock.wall() - 20)


async def test_one_probe_after_recovery_and_its_success_closes(rig: Rig) -> None:
    await rig.trip()
    rig.clock.advance(60)
    blocked = Blocked()
    probe = asyncio.create_task(rig.send(nxt=blocked))
    await blocked.started.wait()
    assert rig.breaker.snapshot().half_open_in_flight == 1
    sent = rig.upstream.calls
    with pytest.raises(CircuitOpen) as info:
        await rig.send(200)
    assert info.value.retry_after_s == pytest.approx(1.0)
    assert rig.upstream.calls == sent
    blocked.answer.set_result(200)
    assert (await probe).status == 200
    assert rig.state() is BreakerState.CLOSED
    assert rig.breaker.snapshot().consecutive_failures == 0
    assert rig.moves()[1:] == [("open", "half_open", "recovery_timeout"),
                               ("half_open", "closed", "probe_succeeded")]


async def test_probe_failure_reopens_with_fresh_timer(rig: Rig) -> None:
    await rig.trip()
    rig.clock.advance(61)
    await rig.send(502)
    assert rig.state() is BreakerState.OPEN
    assert rig.moves()[-1] == ("half_open", "open", "probe_failed")
    rig.clock.advance(59.5)
    with pytest.raises(CircuitOpen) as info:
        await rig.send(200)
    assert info.value.retry_after_s == pytest.approx(0.5)
    rig.clock.advance(0.5)
    await rig.send(200)
    assert rig.state() is BreakerState.CLOSED


async def test_a_success_resets_the_count(rig: Rig) -> None:
    for status in [500] * 4 + [200] + [500] * 4:
        await rig.send(status)
    assert rig.state() is BreakerState.CLOSED
    assert rig.breaker.snapshot().consecutive_failures == 4
    assert rig.bus.of(BreakerTransition) == []


async def test_other_4xx_are_answers_not_failures(rig: Rig) -> None:
    for _ in range(50):
        for status in (400, 404, 409, 422):
            await rig.send(status)
    snap = rig.breaker.snapshot()
    assert (snap.state, snap.consecutive_failures, snap.total_failures) == (
        BreakerState.CLOSED, 0, 0)
    assert snap.total_successes == 200


async def test_a_429_storm_is_no_failure(rig: Rig) -> None:
    """Issue 15: 429 means "slow down"; the limiter answers it, the breaker stays CLOSED."""
    for _ in range(50):
        await rig.send(429)
    assert rig.state() is BreakerState.CLOSED and rig.moves() == []


@pytest.mark.parametrize("status", [401, 403, 500, 503, 504])
async def test_failure_statuses_count(rig: Rig, status: int) -> None:
    for _ in range(5):
        await rig.send(status)
    assert rig.state() is BreakerState.OPEN
    assert rig.moves() == [("closed", "open", "failure_threshold")]
    assert rig.bus.of(BreakerTransition)[0].last_error == f"http_{status}"


@pytest.mark.parametrize("error", [UpstreamConnectError("refused"), UpstreamTimeout("slow"),
                                   UpstreamConnectionLost("reset")])
async def test_upstream_errors_count(rig: Rig, error: UpstreamError) -> None:
    for _ in range(5):
        with pytest.raises(type(error)):
            await rig.send(error=error)
    assert rig.state() is BreakerState.OPEN
    assert rig.bus.of(BreakerTransition)[0].last_error == error.kind


async def test_rate_limited_is_neither_success_nor_failure(rig: Rig) -> None:
    for _ in range(4):
        await rig.send(500)
    for _ in range(10):
        with pytest.raises(RateLimited):
            await rig.send(error=RateLimited("no token"))
    snap = rig.breaker.snapshot()
    assert (snap.consecutive_failures, snap.total_failures, snap.total_successes) == (4, 4, 0)
    await rig.send(500)
    assert rig.state() is BreakerState.OPEN


async def test_rate_limited_probe_releases_its_permit(rig: Rig) -> None:
    await rig.trip()
    rig.clock.advance(60)
    with pytest.raises(RateLimited):
        await rig.send(error=RateLimited("no token"))
    assert rig.state() is BreakerState.HALF_OPEN
    assert rig.breaker.snapshot().half_open_in_flight == 0
    await rig.send(200)  # the next caller is the probe, not refused
    assert rig.state() is BreakerState.CLOSED


async def test_cancelled_probe_releases_its_permit(rig: Rig) -> None:
    await rig.trip()
    rig.clock.advance(60)
    blocked = Blocked()
    probe = asyncio.create_task(rig.send(nxt=blocked))
    await blocked.started.wait()
    probe.cancel()
    with pytest.raises(asyncio.CancelledError):
        await probe
    assert rig.breaker.snapshot().half_open_in_flight == 0
    assert rig.state() is BreakerState.HALF_OPEN
    await rig.send(200)
    assert rig.state() is BreakerState.CLOSED


async def test_half_open_admits_up_to_max_calls(clock: FakeClock, bus: RecordingBus) -> None:
    rig = Rig(clock, bus, failure_threshold=2, half_open_max_calls=3)
    await rig.trip()
    clock.advance(60)
    probes = [Blocked() for _ in range(3)]
    tasks = [asyncio.create_task(rig.send(nxt=p)) for p in probes]
    await asyncio.gather(*(p.started.wait() for p in probes))
    with pytest.raises(CircuitOpen):
        await rig.send(200)
    probes[0].answer.set_result(200)  # the first verdict closes the breaker
    await tasks[0]
    assert rig.state() is BreakerState.CLOSED
    for p in probes[1:]:
        p.answer.set_result(503)  # stale probes: their failures no longer count
    await asyncio.gather(*tasks[1:])
    snap = rig.breaker.snapshot()
    assert (snap.state, snap.consecutive_failures, snap.total_failures) == (
        BreakerState.CLOSED, 0, 4)


CLOSE = "/v3/accounts/101-001-1-001/positions/EUR_USD/close"


async def test_a_risk_reducing_call_goes_out_at_once_as_the_probe(clock: FakeClock,
                                                                  bus: RecordingBus) -> None:
    rig = Rig(clock, bus, recovery_timeout_s=60)
    await rig.trip()
    before = rig.upstream.calls
    with pytest.raises(CircuitOpen):
        await rig.send(200)  # an ordinary call still waits out the recovery timeout
    gate = asyncio.Event()

    async def slow(call: Call) -> Response:
        await gate.wait()
        return Response(status=200, body=b"")

    close = Call(method="PUT", path=CLOSE, endpoint=resolve(CLOSE), risk_reducing=True)
    probe = asyncio.ensure_future(rig.policy.handle(close, slow))
    await asyncio.sleep(0)
    assert rig.state() is BreakerState.HALF_OPEN
    assert rig.moves()[-1] == ("open", "half_open", "risk_reducing_call")
    with pytest.raises(CircuitOpen):  # one probe at a time, risk-reducing or not
        await rig.policy.handle(close, rig.upstream)
    gate.set()
    assert (await probe).status == 200
    assert rig.state() is BreakerState.CLOSED and rig.upstream.calls == before


async def test_a_failed_early_probe_reopens_and_forced_open_refuses_it(
        clock: FakeClock, bus: RecordingBus) -> None:
    rig = Rig(clock, bus, recovery_timeout_s=60)
    await rig.trip()
    close = Call(method="PUT", path=CLOSE, endpoint=resolve(CLOSE), risk_reducing=True)
    rig.upstream.status = 503
    assert (await rig.policy.handle(close, rig.upstream)).status == 503
    assert rig.state() is BreakerState.OPEN
    assert rig.breaker.snapshot().next_probe_in_s == pytest.approx(60)
    rig.registry.set_override("rest", "forced_open")
    calls = rig.upstream.calls
    with pytest.raises(CircuitOpen):
        await rig.policy.handle(close, rig.upstream)
    assert rig.upstream.calls == calls
