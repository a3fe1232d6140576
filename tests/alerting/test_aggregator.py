"""Aggregation windows, counts and flap damping: Aggregator on plain monotonic numbers."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from sidecar.alerting.aggregator import Aggregator, Alert
from sidecar.alerting.conditions import BOTH, Action, Signal


def sig(action: Action, condition: str = "upstream_auth", at: float = 0.0,
        status: int = 401) -> Signal:
    return Signal(condition, condition.split(":")[0], action, "critical", f"{action} {status}",
                  BOTH, at, {"status": status})


def test_repeats_inside_the_window_fold_into_the_first_alert() -> None:
    agg = Aggregator(window_s=60)
    first = agg.offer(sig("trigger", at=1000.0), now=0.0)
    assert first is not None and first.count == 1
    for i in range(1, 50):
        assert agg.offer(sig("trigger", at=1000.0 + i, status=403), now=float(i)) is None
    assert first.count == 50 and first.occurrences == 50
    assert first.details == {"status": 403} and first.last_at == 1049.0


def test_after_the_window_a_repeat_is_sent_again_with_the_running_total() -> None:
    agg = Aggregator(window_s=60)
    agg.offer(sig("trigger"), now=0.0)
    agg.offer(sig("trigger"), now=30.0)
    again = agg.offer(sig("trigger", at=61.0), now=61.0)
    assert again is not None and again.count == 1 and again.occurrences == 3
    assert again.first_seen == 0.0


def test_a_resolve_after_the_window_goes_out_at_once_with_the_episode_totals() -> None:
    agg = Aggregator(window_s=60)
    agg.offer(sig("trigger", at=5.0), now=0.0)
    agg.offer(sig("trigger", at=9.0), now=4.0)
    done = agg.offer(sig("resolve", at=100.0), now=95.0)
    assert done is not None and done.action == "resolve"
    assert (done.occurrences, done.first_seen, done.last_at) == (2, 5.0, 9.0)
    nxt = agg.offer(sig("trigger", at=200.0), now=195.0)
    assert nxt is not None and nxt.occurrences == 1  # a new episode


def test_a_resolve_inside_the_window_is_held_until_the_window_ends() -> None:
    agg = Aggregator(window_s=60)
    agg.offer(sig("trigger"), now=0.0)
    assert agg.offer(sig("resolve"), now=10.0) is None
    assert agg.next_deadline() == 60.0
    assert agg.due(59.9) == []
    [released] = agg.due(60.0)
    assert released.action == "resolve"
    assert agg.next_deadline() is None


def test_a_held_resolve_is_dropped_when_the_condition_returns() -> None:
    agg = Aggregator(window_s=60)
    first = agg.offer(sig("trigger"), now=0.0)
    agg.offer(sig("resolve"), now=10.0)
    assert agg.offer(sig("trigger"), now=20.0) is None  # folded: receivers stay triggered
    assert first is not None and first.count == 2
    assert agg.due(100.0) == [] and agg.next_deadline() is None


def test_a_resolve_without_a_trigger_is_ignored() -> None:
    agg = Aggregator(window_s=60)
    assert agg.offer(sig("resolve"), now=0.0) is None


def test_window_zero_sends_everything() -> None:
    agg = Aggregator(window_s=0)
    assert agg.offer(sig("trigger"), now=0.0) is not None
    assert agg.offer(sig("trigger"), now=0.0) is not None
    assert agg.offer(sig("resolve"), now=0.0) is not None


KEYS = ["upstream_auth", "breaker_open:rest"]
STEPS = st.lists(st.tuples(st.sampled_from(KEYS), st.sampled_from(["trigger", "resolve"]),
                           st.floats(0, 30)), max_size=80)


@settings(max_examples=200)
@given(STEPS, st.sampled_from([0.0, 10.0, 60.0]))
def test_receivers_end_in_the_true_state_and_floods_are_bounded(
        steps: list[tuple[str, Action, float]], window: float) -> None:
    agg = Aggregator(window_s=window)
    now = 0.0
    active: dict[str, bool] = {}
    sent: list[tuple[float, Alert]] = []
    for key, action, gap in steps:
        now += gap
        sent += [(now, a) for a in agg.due(now)]
        if action == "resolve" and not active.get(key):
            continue  # the tracker never resolves what is not active
        active[key] = action == "trigger"
        alert = agg.offer(sig(action, key), now)
        if alert is not None:
            sent.append((now, alert))
    now += window + 1
    sent += [(now, a) for a in agg.due(now)]
    for key in KEYS:
        mine = [(t, a) for t, a in sent if a.condition == key]
        # What the receiver believes at the end is the truth.
        assert (mine[-1][1].action == "trigger" if mine else False) == active.get(key, False)
        # Deliveries alternate or repeat triggers; never two resolves in a row.
        assert all(not (a.action == b.action == "resolve")
                   for (_, a), (_, b) in itertools.pairwise(mine))
        if window:
            # At most one trigger and one resolve per key per window.
            for action in ("trigger", "resolve"):
                times = [t for t, a in mine if a.action == action]
                assert all(b - a >= window for a, b in itertools.pairwise(times))
