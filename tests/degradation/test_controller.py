"""The degradation controller on a FakeClock: automatic levels, recovery, manual hold, flapping."""

from __future__ import annotations

import random
from itertools import pairwise
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sidecar.clock import FakeClock
from sidecar.config import DegradationConfig
from sidecar.degradation import DegradationController
from sidecar.errors import InvalidRequest
from sidecar.events import AttemptFinished, BreakerTransition, DegradationChanged, RetryGivenUp
from sidecar.vocabulary import Level
from tests.conftest import RecordingBus

LEVELS = tuple(Level)


def make(clock: FakeClock, bus: RecordingBus, **config: Any) -> DegradationController:
    return DegradationController(DegradationConfig(**config), clock, bus)


def breaker(to: str, reason: str = "failure_threshold", frm: str = "closed") -> BreakerTransition:
    return BreakerTransition(at=1.0, breaker="rest", from_state=frm, to_state=to, reason=reason,
                             last_error="http_503")


def attempt(status: int | None = 200, error: str | None = None,
            method: str = "GET") -> AttemptFinished:
    return AttemptFinished(at=1.0, method=method, endpoint="/v3/accounts", attempt=1,
                           duration_s=0.01, status=status, error_type=error)


def failed_read(reason: str = "exhausted", method: str = "GET") -> RetryGivenUp:
    return RetryGivenUp(at=1.0, method=method, endpoint="/v3/accounts", attempts=3, reason=reason)


def changes(bus: RecordingBus) -> list[tuple[str, str, bool]]:
    return [(e.from_level, e.to_level, e.manual) for e in bus.of(DegradationChanged)]


def test_breaker_open_is_read_only_until_the_breaker_closes(
        clock: FakeClock, bus: RecordingBus) -> None:
    """Issue 15: nothing adds to the breaker's own recovery: once its probe is answered and it
    closes, writes flow at once (before: three more probe successes, 15 s and more)."""
    ctl = make(clock, bus, recovery_successes=3)
    assert ctl.level == "none" and not ctl.needs_probe
    bus.publish(breaker("open"))
    assert ctl.level == "read_only" and ctl.needs_probe
    assert "circuit breaker 'rest' open: http_503" in ctl.reason
    assert ctl.snapshot().waiting_for.startswith("circuit breaker 'rest' to close")
    ctl.record_probe(True, "ok")  # answered, but the breaker is still open: it decides
    bus.publish(breaker("half_open", "recovery_timeout", "open"))
    assert ctl.level == "read_only"
    clock.advance(7)
    bus.publish(breaker("closed", "probe_succeeded", "half_open"))
    snap = ctl.snapshot()
    assert snap.level == "none" and not snap.manual and snap.since == clock.wall()
    assert snap.reason == "" and snap.waiting_for == ""  # nothing stale once healthy
    last = bus.of(DegradationChanged)[-1]
    assert last.reason.startswith("recovered: circuit breaker 'rest' closed")
    assert changes(bus) == [("none", "read_only", False), ("read_only", "none", False)]
    assert not ctl.needs_probe


def test_read_only_without_a_connection_ends_at_the_first_answered_probe(
        clock: FakeClock, bus: RecordingBus) -> None:
    ctl = make(clock, bus, outage_connection_failures=2, probe_interval_s=5)
    for _ in range(2):
        bus.publish(attempt(None, "connect_error"))
    assert ctl.level == "read_only"
    assert ctl.snapshot().waiting_for == "one probe answered by OANDA (every 5 s)"
    ctl.record_probe(False, "refused")
    assert ctl.level == "read_only"
    ctl.record_probe(True, "GET /v3/accounts answered 200")
    assert ctl.level == "none"


def test_a_probe_failure_or_a_new_failure_restarts_the_streak(
        clock: FakeClock, bus: RecordingBus) -> None:
    ctl = make(clock, bus, recovery_successes=2, enter_failed_reads=1)
    bus.publish(failed_read())
    assert ctl.level == "cached_data"
    ctl.record_probe(True, "ok")
    assert ctl.snapshot().waiting_for == "recovery 1/2 probes ok"
    ctl.record_probe(False, "503")
    ctl.record_probe(True, "ok")
    bus.publish(failed_read())
    ctl.record_probe(True, "ok")
    assert ctl.level == "cached_data"
    ctl.record_probe(True, "ok")
    assert ctl.level == "none"


def test_failed_reads_degrade_only_when_they_are_many_and_most(
        clock: FakeClock, bus: RecordingBus) -> None:
    ctl = make(clock, bus, enter_failed_reads=2, failed_read_window_s=10)
    bus.publish(failed_read())
    assert ctl.level == "none"  # one is not enough
    for _ in range(3):
        bus.publish(attempt(200))
    bus.publish(failed_read())
    assert ctl.level == "none"  # 2 of 5 reads: a minority
    for ignored in (failed_read("not_retryable"), failed_read("unsafe_write"),
                    failed_read(method="POST")):
        bus.publish(ignored)
    assert ctl.level == "none"
    clock.advance(11)  # the window forgets
    bus.publish(failed_read("budget"))
    bus.publish(failed_read("retry_after"))
    assert ctl.level == "cached_data"
    assert ctl.reason.startswith("2 of 2 reads failed after retries")


def test_connection_failures_in_a_row_are_read_only(clock: FakeClock, bus: RecordingBus) -> None:
    ctl = make(clock, bus, outage_connection_failures=3)
    bus.publish(attempt(None, "connect_error"))
    bus.publish(attempt(None, "connection_lost"))
    bus.publish(attempt(503))  # an answer, even a bad one: the connection works
    bus.publish(attempt(None, "connect_error"))
    bus.publish(attempt(None, "timeout"))  # slow is not unreachable: neither counts nor resets
    bus.publish(attempt(None, "connect_error"))
    assert ctl.level == "none"
    bus.publish(attempt(None, "connect_error", method="PUT"))
    assert ctl.level == "read_only" and "3 attempts in a row" in ctl.reason


def test_levels_only_rise_on_failures(clock: FakeClock, bus: RecordingBus) -> None:
    ctl = make(clock, bus, enter_failed_reads=1)
    bus.publish(failed_read())
    assert ctl.level == "cached_data"
    bus.publish(breaker("open"))
    assert ctl.level == "read_only"
    bus.publish(failed_read())
    assert ctl.level == "read_only"
    assert changes(bus) == [("none", "cached_data", False), ("cached_data", "read_only", False)]


def test_an_operator_reset_of_the_breaker_returns_to_none_at_once(
        clock: FakeClock, bus: RecordingBus) -> None:
    ctl = make(clock, bus)
    bus.publish(breaker("open"))
    bus.publish(breaker("closed", "manual_reset", "open"))
    assert ctl.level == "none" and ctl.reason == ""
    assert "manual_reset by an operator" in bus.of(DegradationChanged)[-1].reason
    bus.publish(breaker("forced_open", "override_forced_open"))
    bus.publish(breaker("closed", "override_cleared", "forced_open"))
    assert ctl.level == "none"


def test_manual_hold_and_hand_back(clock: FakeClock, bus: RecordingBus) -> None:
    ctl = make(clock, bus)
    ctl.set_manual("read_only", "maintenance at 22:00")
    snap = ctl.snapshot()
    assert (snap.level, snap.reason, snap.manual) == ("read_only", "maintenance at 22:00", True)
    bus.publish(breaker("open"))  # the automatic level moves underneath
    assert ctl.level == "read_only" and ctl.snapshot().automatic_level == "read_only"
    ctl.set_manual("none", "I know OANDA is fine")
    assert ctl.level == "none" and ctl.snapshot().manual
    ctl.set_manual("automatic", "")
    assert ctl.level == "read_only" and not ctl.snapshot().manual
    assert changes(bus) == [("none", "read_only", True), ("read_only", "none", True),
                            ("none", "read_only", False)]
    ctl.set_manual("read_only", "hold")  # same level, now manual: still announced
    assert changes(bus)[-1] == ("read_only", "read_only", True)
    with pytest.raises(InvalidRequest):
        ctl.set_manual("panic", "")


def test_probes_keep_running_under_a_manual_hold(clock: FakeClock, bus: RecordingBus) -> None:
    ctl = make(clock, bus, recovery_successes=1)
    bus.publish(breaker("open"))
    ctl.set_manual("cached_data", "ops")
    assert ctl.needs_probe
    bus.publish(breaker("closed", "probe_succeeded", "half_open"))
    assert ctl.snapshot().automatic_level == "none" and ctl.level == "cached_data"
    ctl.set_manual("automatic", "")
    assert ctl.level == "none"


def test_recovery_needs_more_successes_each_time_it_did_not_hold(
        clock: FakeClock, bus: RecordingBus) -> None:
    ctl = make(clock, bus, recovery_successes=2, flap_window_s=60, enter_failed_reads=1)
    needed = []
    for _ in range(5):
        bus.publish(failed_read())
        needed.append(ctl.required_successes)
        for _ in range(ctl.required_successes):
            ctl.record_probe(True, "ok")
        assert ctl.level == "none"
        clock.advance(10)
    assert needed == [2, 4, 8, 16, 16]
    clock.advance(61)  # a recovery that held for the whole window: back to normal
    bus.publish(failed_read())
    assert ctl.required_successes == 2


def _simulate(flap_window_s: float, seconds: int, error_rate: float = 0.3) -> list[str]:
    """A steady trickle of reads (3 attempts each) plus a breaker of threshold 5 and the probe
    every 5 s, all against an upstream failing `error_rate` of requests; levels over time."""
    clock, bus, rng = FakeClock(), RecordingBus(), random.Random(7)
    ctl = DegradationController(DegradationConfig(flap_window_s=flap_window_s), clock, bus)
    consecutive = 0
    bus.publish(breaker("open"))  # the outage that just ended
    for tick in range(seconds * 10):
        clock.advance(0.1)
        if tick % 50 == 0 and ctl.needs_probe:
            answered = rng.random() >= error_rate
            if answered:  # the probe is the breaker's half-open trial: its answer closes it
                bus.publish(breaker("closed", "probe_succeeded", "half_open"))
            ctl.record_probe(answered, "probe")
        for n in range(1, 4):
            ok = rng.random() >= error_rate
            bus.publish(attempt(200 if ok else 503))
            consecutive = 0 if ok else consecutive + 1
            if consecutive == 5:
                bus.publish(breaker("open"))
                consecutive = 0
            if ok:
                break
            if n == 3:
                bus.publish(failed_read())
    return [e.to_level for e in bus.of(DegradationChanged)]


def test_at_thirty_percent_errors_the_level_follows_the_breaker_only() -> None:
    """The breaker's recovery timeout is the damper of READ_ONLY (the controller adds none):
    every rise is a breaker opening, every fall its probe answered; the failed-read rule alone
    never fires at 30%."""
    levels = _simulate(flap_window_s=300, seconds=600)
    assert "cached_data" not in levels
    assert all(a != b for a, b in pairwise(levels))
    assert set(levels) <= {"read_only", "none"}


EVENTS = st.one_of(
    st.builds(breaker, st.sampled_from(["open", "forced_open", "half_open", "closed"]),
              st.sampled_from(["failure_threshold", "manual_reset", "probe_succeeded"])),
    st.builds(attempt, st.sampled_from([None, 200, 404, 503]),
              st.sampled_from([None, "connect_error", "timeout"])),
    st.builds(failed_read, st.sampled_from(["exhausted", "not_retryable"])),
    st.tuples(st.just("probe"), st.booleans()),
    st.tuples(st.just("manual"), st.sampled_from([*LEVELS, "automatic"])),
    st.tuples(st.just("wait"), st.floats(0, 100)),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(EVENTS, max_size=60))
def test_laws_hold_for_any_sequence(inputs: list[Any]) -> None:
    clock, bus = FakeClock(), RecordingBus()
    ctl = DegradationController(DegradationConfig(enter_failed_reads=1), clock, bus)
    held: str | None = None
    for item in inputs:
        before = ctl.snapshot()
        if isinstance(item, tuple) and item[0] == "probe":
            ctl.record_probe(item[1], "p")
        elif isinstance(item, tuple) and item[0] == "manual":
            ctl.set_manual(item[1], "op")
            held = None if item[1] == "automatic" else item[1]
        elif isinstance(item, tuple):
            clock.advance(item[1])
        else:
            bus.publish(item)
        after = ctl.snapshot()
        assert after.level in LEVELS and after.automatic_level in LEVELS
        assert after.level == (held if held is not None else after.automatic_level)
        assert after.manual == (held is not None)
        falls = LEVELS.index(after.automatic_level) < LEVELS.index(before.automatic_level)
        if falls:  # only a probe answered, or a breaker closed by its probe or an operator
            assert item == ("probe", True) or (
                isinstance(item, BreakerTransition) and item.to_state == "closed"
                and item.reason in ("manual_reset", "probe_succeeded"))
            assert after.automatic_level == "none"
    published = bus.of(DegradationChanged)
    for prev, nxt in pairwise(published):
        assert nxt.from_level == prev.to_level
    assert all(e.from_level != e.to_level or e.manual != p.manual
               for p, e in pairwise(published))
