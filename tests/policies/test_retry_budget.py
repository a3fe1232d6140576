"""The retry budget on its own: a share of recent requests, a floor, a sliding window."""

from __future__ import annotations

from sidecar.clock import FakeClock
from sidecar.policies.retry_budget import RetryBudget


def test_retries_are_capped_by_the_ratio_of_recent_requests(clock: FakeClock) -> None:
    budget = RetryBudget(0.2, 3, 10.0, clock)
    for _ in range(100):
        budget.record_request()
    granted = sum(budget.try_acquire() for _ in range(100))
    assert granted == 20
    assert budget.counts() == (100, 20)


def test_the_floor_allows_a_few_retries_at_low_traffic(clock: FakeClock) -> None:
    budget = RetryBudget(0.2, 3, 10.0, clock)
    budget.record_request()
    assert [budget.try_acquire() for _ in range(5)] == [True, True, True, False, False]


def test_zero_budget_refuses_every_retry(clock: FakeClock) -> None:
    budget = RetryBudget(0.0, 0, 10.0, clock)
    for _ in range(50):
        budget.record_request()
    assert not budget.try_acquire()


def test_old_traffic_leaves_the_window(clock: FakeClock) -> None:
    budget = RetryBudget(0.2, 0, 10.0, clock)
    for _ in range(50):
        budget.record_request()
    assert sum(budget.try_acquire() for _ in range(20)) == 10
    clock.advance(5.0)
    assert not budget.try_acquire()  # still inside the window: spent
    clock.advance(5.0)
    assert budget.counts() == (0, 0)
    assert not budget.try_acquire()  # no recent requests, no floor: nothing to retry on
    budget.record_request()
    budget.record_request()
    budget.record_request()
    budget.record_request()
    budget.record_request()
    assert budget.try_acquire()
