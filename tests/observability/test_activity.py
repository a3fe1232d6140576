"""Activity: per-bucket counts and error groups, on a FakeClock."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from sidecar.clock import FakeClock, rfc3339
from sidecar.events import (
    AttemptFinished,
    BreakerRejected,
    EventBus,
    ExecuteFinished,
    RateLimitRejected,
    RetryScheduled,
)
from sidecar.observability.activity import SERIES, Activity


def _epoch(text: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()

ORDERS = "/v3/accounts/{accountID}/orders"
PRICING = "/v3/accounts/{accountID}/pricing"


def finished(outcome: str = "ok", status: int | None = 200, endpoint: str = ORDERS,
             error: str | None = None, method: str = "GET") -> ExecuteFinished:
    return ExecuteFinished(at=0.0, method=method, endpoint=endpoint, outcome=outcome,
                           status=status, attempts=1, duration_s=0.01, error=error)


def make(clock: FakeClock, **kw: float) -> tuple[EventBus, Activity]:
    bus = EventBus()
    return bus, Activity(bus, clock, **kw)  # type: ignore[arg-type]


def test_counts_land_in_the_bucket_of_their_time(clock: FakeClock) -> None:
    bus, activity = make(clock)
    bus.publish(finished())
    clock.advance(10.0)
    bus.publish(finished())
    bus.publish(finished("http_5xx", 503))
    snap = activity.snapshot()
    requests = snap["series"]["requests"]
    assert len(requests) == 90 and snap["bucket_seconds"] == 10.0
    assert snap["window_seconds"] == 900.0
    assert requests[-2:] == [1, 2]
    assert snap["series"]["errors"][-2:] == [0, 1]
    assert snap["totals"]["requests"] == 3 and snap["totals"]["errors"] == 1


def test_buckets_older_than_the_window_are_forgotten(clock: FakeClock) -> None:
    bus, activity = make(clock)
    bus.publish(finished("http_5xx", 503))
    clock.advance(890.0)
    assert activity.snapshot()["totals"]["errors"] == 1  # still inside 15 minutes
    clock.advance(20.0)
    assert activity.snapshot()["totals"]["errors"] == 0
    # The ring slot is reused: a new event starts from zero, not from the old count.
    clock.advance(890.0)  # 1800 s after the first event: the same ring slot
    bus.publish(finished("http_5xx", 503))
    assert activity.snapshot()["totals"]["errors"] == 1


def test_time_axis_covers_the_window_ending_now(clock: FakeClock) -> None:
    _, activity = make(clock, bucket_s=10.0, window_s=60.0)
    clock.advance(3.0)
    snap = activity.snapshot()
    start, now = _epoch(snap["start_at"]), _epoch(snap["now"])
    end = start + snap["window_seconds"]
    assert snap["now"] == rfc3339(clock.wall())  # RFC 3339, like every time in /api/status
    assert end - 10.0 <= now < end
    assert len(snap["series"]["requests"]) == 6


def test_each_kind_of_event_has_its_series(clock: FakeClock) -> None:
    bus, activity = make(clock)
    bus.publish(RetryScheduled(0.0, "GET", ORDERS, 1, 0.1, "status_503"))
    bus.publish(AttemptFinished(0.0, "GET", ORDERS, 1, 0.01, 429, None))
    bus.publish(AttemptFinished(0.0, "GET", ORDERS, 2, 0.01, 200, None))
    bus.publish(BreakerRejected(0.0, "rest", ORDERS, 5.0))
    bus.publish(RateLimitRejected(0.0, ORDERS, 5.0, 0.1))
    bus.publish(finished("http_4xx", 404))
    totals = activity.snapshot()["totals"]
    assert totals == {"requests": 1, "errors": 0, "client_errors": 1, "retries": 1,
                      "throttled": 1, "breaker_rejected": 1, "rate_limited": 1}
    assert set(totals) == set(SERIES)


def test_errors_are_grouped_by_endpoint_and_status_or_reason(clock: FakeClock) -> None:
    bus, activity = make(clock)
    bus.publish(finished("http_5xx", 503))
    clock.advance(5.0)
    bus.publish(finished("http_5xx", 503, method="POST"))
    bus.publish(finished("http_5xx", 503, endpoint=PRICING))
    bus.publish(finished("circuit_open", None, error="circuit breaker 'rest' is open"))
    bus.publish(finished())  # a success is not an error group
    groups = activity.snapshot()["recent_errors"]
    assert [(g["endpoint"], g["key"], g["count"]) for g in groups] == [
        (ORDERS, "circuit_open", 1), (PRICING, "503", 1), (ORDERS, "503", 2)]
    orders_503 = groups[2]
    assert orders_503["status"] == 503 and orders_503["method"] == "POST"
    assert orders_503["first_seen"] == rfc3339(clock.wall() - 5.0)
    assert orders_503["last_seen"] == rfc3339(clock.wall())
    assert groups[0]["message"] == "circuit breaker 'rest' is open"
    assert groups[0]["status"] is None


def test_error_groups_are_bounded_least_recently_seen_first_out(clock: FakeClock) -> None:
    bus, activity = make(clock, max_groups=3)
    for status in (500, 502, 503):
        bus.publish(finished("http_5xx", status))
        clock.advance(1.0)
    bus.publish(finished("http_5xx", 500))  # seen again: now the most recent
    bus.publish(finished("http_5xx", 504))  # a fourth group pushes out the stalest, 502
    keys = [g["key"] for g in activity.snapshot()["recent_errors"]]
    assert keys == ["504", "500", "503"]


def test_snapshot_is_json_ready_and_close_stops_counting(clock: FakeClock) -> None:
    bus, activity = make(clock)
    bus.publish(finished("upstream_unavailable", None, error="connect failed"))
    json.dumps(activity.snapshot())
    activity.close()
    bus.publish(finished())
    assert activity.snapshot()["totals"]["requests"] == 1


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.floats(0.0, 400.0), st.booleans()), max_size=40),
       st.floats(0.0, 400.0))
def test_totals_match_a_naive_count_of_the_window(steps: list[tuple[float, bool]],
                                                  tail: float) -> None:
    clock = FakeClock()
    bus, activity = make(clock, bucket_s=10.0, window_s=300.0)
    seen: list[tuple[int, bool]] = []  # (bucket index, is error) of every event
    for gap, error in steps:
        clock.advance(gap)
        bus.publish(finished("http_5xx", 503) if error else finished())
        seen.append((int(clock.monotonic() // 10.0), error))
    clock.advance(tail)
    current = int(clock.monotonic() // 10.0)
    inside = [e for index, e in seen if current - 30 < index <= current]
    totals = activity.snapshot()["totals"]
    assert totals["requests"] == len(inside)
    assert totals["errors"] == sum(inside)
