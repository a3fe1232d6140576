"""Circuit breaker control: reset, overrides, stale permits, the registry, the transition table."""

from __future__ import annotations

import pytest

from sidecar.clock import FakeClock
from sidecar.config import BreakerConfig
from sidecar.errors import CircuitOpen, InvalidRequest
from sidecar.policies.breaker import (
    BreakerRegistry,
    BreakerState,
    CircuitBreaker,
    IllegalTransition,
)
from sidecar.policies.breaker_state import check_transition
from tests.conftest import RecordingBus
from tests.policies.test_breaker import Rig


@pytest.fixture
def rig(clock: FakeClock, bus: RecordingBus) -> Rig:
    return Rig(clock, bus)


async def test_reset_from_open(rig: Rig) -> None:
    await rig.trip()
    rig.registry.reset("rest")
    snap = rig.breaker.snapshot()
    assert (snap.state, snap.consecutive_failures, snap.opened_at) == (
        BreakerState.CLOSED, 0, None)
    assert rig.moves()[-1] == ("open", "closed", "manual_reset")
    assert (await rig.send(200)).status == 200


def test_stale_permit_after_reset_is_ignored(clock: FakeClock, bus: RecordingBus) -> None:
    breaker = CircuitBreaker("rest", BreakerConfig(failure_threshold=2), clock, bus)
    closed_permit = breaker.acquire()
    breaker.on_failure(breaker.acquire(), "timeout")
    breaker.reset()
    breaker.on_failure(closed_permit, "timeout")  # admitted before the reset
    assert breaker.snapshot().consecutive_failures == 0
    breaker.on_failure(breaker.acquire(), "timeout")
    breaker.on_failure(breaker.acquire(), "timeout")
    clock.advance(60)
    probe = breaker.acquire()
    assert breaker.snapshot().state is BreakerState.HALF_OPEN
    breaker.reset()
    breaker.on_failure(probe, "timeout")
    snap = breaker.snapshot()
    assert (snap.state, snap.consecutive_failures, snap.total_failures) == (
        BreakerState.CLOSED, 0, 5)


async def test_forced_open_refuses_everything(rig: Rig) -> None:
    rig.registry.set_override("rest", "forced_open")
    rig.clock.advance(3600)
    with pytest.raises(CircuitOpen) as info:
        await rig.send(200)
    assert info.value.retry_after_s == 60.0  # documented: the recovery timeout, as a hint
    assert rig.upstream.calls == 0
    assert rig.moves() == [("closed", "forced_open", "override_forced_open")]
    rig.registry.set_override("rest", "none")
    assert rig.state() is BreakerState.CLOSED
    assert rig.moves()[-1] == ("forced_open", "closed", "override_cleared")


async def test_disabled_passes_everything_and_counts_totals(rig: Rig) -> None:
    await rig.trip()
    rig.registry.set_override("rest", "disabled")
    for _ in range(20):
        await rig.send(503)
    snap = rig.breaker.snapshot()
    assert (snap.state, snap.consecutive_failures, snap.total_failures) == (
        BreakerState.DISABLED, 0, 25)
    rig.registry.set_override("rest", "NONE")
    snap = rig.breaker.snapshot()
    assert (snap.state, snap.consecutive_failures) == (BreakerState.CLOSED, 0)
    assert rig.moves()[1:] == [("open", "disabled", "override_disabled"),
                               ("disabled", "closed", "override_cleared")]


async def test_reset_clears_an_override_and_none_leaves_a_tripped_breaker(rig: Rig) -> None:
    rig.registry.set_override("rest", "forced_open")
    rig.registry.reset(None)
    assert rig.state() is BreakerState.CLOSED
    await rig.trip()
    rig.registry.set_override("rest", "none")  # no override active: nothing to clear
    assert rig.state() is BreakerState.OPEN


def test_unknown_override_and_name_are_refused(rig: Rig) -> None:
    with pytest.raises(InvalidRequest):
        rig.registry.set_override("rest", "half_open")
    with pytest.raises(KeyError):
        rig.registry.get("stream")
    with pytest.raises(KeyError):
        rig.registry.reset("stream")
    assert rig.bus.events == []


def test_illegal_transitions_are_refused() -> None:
    with pytest.raises(IllegalTransition):
        check_transition("rest", BreakerState.CLOSED, BreakerState.HALF_OPEN)
    with pytest.raises(IllegalTransition):
        check_transition("rest", BreakerState.FORCED_OPEN, BreakerState.HALF_OPEN)
    check_transition("rest", BreakerState.HALF_OPEN, BreakerState.OPEN)


async def test_registry_acts_on_all_breakers(clock: FakeClock, bus: RecordingBus) -> None:
    registry = BreakerRegistry(BreakerConfig(failure_threshold=1), clock, bus,
                               names=("rest", "stream"))
    for name in ("rest", "stream"):
        registry.get(name).on_failure(registry.get(name).acquire(), "timeout")
    clock.advance(10)
    snaps = registry.snapshots()
    assert [(s.name, s.state) for s in snaps] == [
        ("rest", BreakerState.OPEN), ("stream", BreakerState.OPEN)]
    assert [s.next_probe_in_s for s in snaps] == pytest.approx([50.0, 50.0])
    registry.reset("")
    assert {s.state for s in registry.snapshots()} == {BreakerState.CLOSED}
    registry.set_override(None, "disabled")
    assert {s.state for s in registry.snapshots()} == {BreakerState.DISABLED}
    assert all(s.state_since == clock.wall() for s in registry.snapshots())
