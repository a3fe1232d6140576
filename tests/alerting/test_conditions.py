"""Which events raise and clear which condition: ConditionTracker, pure."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sidecar.alerting.conditions import ConditionTracker, Signal
from sidecar.events import AttemptFinished, BreakerTransition, DegradationChanged, Event


def attempt(status: int | None, endpoint: str = "/v3/accounts/{accountID}/orders") -> Event:
    return AttemptFinished(at=1.0, method="POST", endpoint=endpoint, attempt=1, duration_s=0.1,
                           status=status, error_type=None if status else "timeout",
                           request_id="r1", error_message=None)


def breaker(frm: str, to: str, name: str = "rest") -> Event:
    return BreakerTransition(at=2.0, breaker=name, from_state=frm, to_state=to, reason="test",
                             consecutive_failures=5, last_error="status_503")


def degradation(frm: str, to: str, manual: bool = False) -> Event:
    return DegradationChanged(at=3.0, from_level=frm, to_level=to, reason="upstream down",
                              manual=manual)


def actions(signals: tuple[Signal, ...]) -> list[tuple[str, str]]:
    return [(s.condition, s.action) for s in signals]


def test_breaker_open_triggers_and_closed_resolves() -> None:
    t = ConditionTracker(quiet_s=60)
    opened = t.observe(breaker("closed", "open"), 0)
    assert actions(opened) == [("breaker_open:rest", "trigger")]
    assert opened[0].severity == "critical"
    assert opened[0].channels == {"pagerduty", "slack"}
    assert opened[0].details["consecutive_failures"] == 5
    assert t.observe(breaker("open", "half_open"), 1) == ()
    closed = t.observe(breaker("half_open", "closed"), 2)
    assert actions(closed) == [("breaker_open:rest", "resolve")]
    assert closed[0].summary == "Circuit breaker 'rest' is closed: calls to OANDA flow again"
    assert closed[0].severity == "critical"  # the severity of what it clears
    assert t.observe(breaker("closed", "disabled"), 3) == ()  # nothing open: nothing to resolve


def test_forced_open_is_a_slack_only_warning() -> None:
    t = ConditionTracker(quiet_s=60)
    forced = t.observe(breaker("closed", "forced_open"), 0)
    assert actions(forced) == [("breaker_forced:rest", "trigger")]
    assert forced[0].channels == {"slack"} and forced[0].severity == "warning"
    assert actions(t.observe(breaker("forced_open", "closed"), 1)) == [
        ("breaker_forced:rest", "resolve")]


def test_forcing_an_open_breaker_keeps_its_page_until_it_closes() -> None:
    t = ConditionTracker(quiet_s=60)
    t.observe(breaker("closed", "open"), 0)
    assert actions(t.observe(breaker("open", "forced_open"), 1)) == [
        ("breaker_forced:rest", "trigger")]
    assert actions(t.observe(breaker("forced_open", "closed"), 2)) == [
        ("breaker_forced:rest", "resolve"), ("breaker_open:rest", "resolve")]


def test_breakers_are_separate_conditions() -> None:
    t = ConditionTracker(quiet_s=60)
    t.observe(breaker("closed", "open", "rest"), 0)
    t.observe(breaker("closed", "open", "pricing"), 0)
    assert actions(t.observe(breaker("half_open", "closed", "pricing"), 1)) == [
        ("breaker_open:pricing", "resolve")]
    assert t.is_active("breaker_open:rest")


def test_auth_failure_triggers_until_the_next_2xx() -> None:
    t = ConditionTracker(quiet_s=60)
    for status in (401, 403):
        sig = t.observe(attempt(status), 0)
        assert actions(sig) == [("upstream_auth", "trigger")]
        assert sig[0].severity == "critical"
        assert sig[0].details["status"] == status
        assert sig[0].details["endpoint"] == "/v3/accounts/{accountID}/orders"
    assert t.observe(attempt(404), 1) == ()
    assert t.observe(attempt(None), 1) == ()
    assert actions(t.observe(attempt(201), 2)) == [("upstream_auth", "resolve")]
    assert t.observe(attempt(200), 3) == ()


def test_automatic_read_only_pages_and_clears_when_writes_are_allowed_again() -> None:
    t = ConditionTracker(quiet_s=60)
    sig = t.observe(degradation("cached_data", "read_only"), 0)
    assert actions(sig) == [("degradation_read_only", "trigger")]
    assert sig[0].severity == "critical" and sig[0].channels == {"pagerduty", "slack"}
    assert actions(t.observe(degradation("read_only", "cached_data"), 1)) == [
        ("degradation_read_only", "resolve")]
    assert t.observe(degradation("cached_data", "none"), 2) == ()


def test_manual_read_only_does_not_page() -> None:
    t = ConditionTracker(quiet_s=60)
    sig = t.observe(degradation("none", "read_only", manual=True), 0)
    assert actions(sig) == [("degradation_manual_read_only", "trigger")]
    assert sig[0].channels == {"slack"}
    assert actions(t.observe(degradation("read_only", "none", manual=True), 1)) == [
        ("degradation_manual_read_only", "resolve")]


def test_throttling_resolves_after_a_quiet_period() -> None:
    t = ConditionTracker(quiet_s=10)
    assert actions(t.observe(attempt(429), 100.0)) == [("upstream_throttled", "trigger")]
    assert t.observe(attempt(200), 101.0) == ()  # a 2xx is not the end of throttling
    t.observe(attempt(429), 105.0)
    assert t.next_deadline() == 115.0
    assert t.due(114.9, wall=0) == ()
    resolved = t.due(115.0, wall=0)
    assert actions(resolved) == [("upstream_throttled", "resolve")]
    assert resolved[0].severity == "warning"
    assert t.next_deadline() is None and t.due(200.0, wall=0) == ()


EVENTS = st.one_of(
    st.sampled_from([200, 201, 401, 403, 404, 429, 500, 503]).map(attempt),
    st.tuples(st.sampled_from(["closed", "open", "half_open", "forced_open", "disabled"]),
              st.sampled_from(["closed", "open", "half_open", "forced_open", "disabled"]),
              st.sampled_from(["rest", "pricing"])).map(lambda t: breaker(*t)),
    st.tuples(st.sampled_from(["none", "cached_data", "read_only"]),
              st.sampled_from(["none", "cached_data", "read_only"]),
              st.booleans()).map(lambda t: degradation(*t)),
    st.just(None),  # time passes: the quiet period may end
)


@settings(max_examples=200)
@given(st.lists(EVENTS, max_size=60))
def test_a_resolve_always_follows_a_trigger_of_the_same_condition(
        events: list[Event | None]) -> None:
    t = ConditionTracker(quiet_s=5)
    active: set[str] = set()
    now = 0.0
    for ev in events:
        now += 1
        signals = t.due(now + 10, wall=0) if ev is None else t.observe(ev, now)
        for s in signals:
            if s.action == "resolve":
                assert s.condition in active, "resolve without a trigger"
                active.discard(s.condition)
            else:
                active.add(s.condition)
            assert t.is_active(s.condition) == (s.action == "trigger")


def test_an_outage_in_the_weekly_closure_is_told_not_paged() -> None:
    """Issue 14: OANDA's routine weekend maintenance (503s open the breaker) pages nobody."""
    from datetime import UTC, datetime

    from sidecar.alerting.conditions import SLACK_ONLY
    from sidecar.events import BreakerTransition

    saturday = datetime(2026, 12, 5, 3, 0, tzinfo=UTC).timestamp()
    tuesday = datetime(2026, 12, 1, 3, 0, tzinfo=UTC).timestamp()
    for at, paged in ((saturday, False), (tuesday, True)):
        t = ConditionTracker(quiet_s=60, quiet_in_closure=True)
        opened = t.observe(BreakerTransition(at=at, breaker="rest", from_state="closed",
                                             to_state="open", reason="failure_threshold",
                                             consecutive_failures=5), 0)
        assert (opened[0].channels != SLACK_ONLY) is paged
        assert (opened[0].severity == "critical") is paged


@pytest.mark.parametrize(("when", "closed"), [
    ("2026-12-04T20:59", False), ("2026-12-04T21:00", True), ("2026-12-05T12:00", True),
    ("2026-12-06T20:59", True), ("2026-12-06T21:00", False), ("2026-12-07T03:00", False)])
def test_the_weekly_closure_window(when: str, closed: bool) -> None:
    from datetime import UTC, datetime

    from sidecar.alerting.market_hours import in_weekly_closure

    wall = datetime.fromisoformat(when).replace(tzinfo=UTC).timestamp()
    assert in_weekly_closure(wall) is closed
