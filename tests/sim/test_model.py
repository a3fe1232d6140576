"""The simulator's pure parts on a FakeClock, with Hypothesis for their laws."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sidecar.clock import FakeClock
from sidecar.sim.faults import Fault, FaultRegistry
from sidecar.sim.formats import TIME_FORMAT, fmt_time, parse_time
from sidecar.sim.market import GRANULARITIES, INSTRUMENTS, Market, candle_starts
from sidecar.sim.ratelimit import SlidingWindowLimit

gaps = st.lists(st.floats(min_value=0.0, max_value=0.2), min_size=1, max_size=300)


@settings(max_examples=200, deadline=None)
@given(gaps, st.integers(min_value=1, max_value=20))
def test_window_admits_exactly_when_the_last_second_holds_at_most_limit(
        steps: list[float], limit: int) -> None:
    window = SlidingWindowLimit(limit)
    now, arrivals = 0.0, []
    for step in steps:
        now += step
        arrivals.append(now)
        in_window = sum(1 for t in arrivals if t > now - 1.0)
        assert window.arrive("token", now) == (in_window <= limit)


def test_window_boundary_is_one_second_exactly() -> None:
    window = SlidingWindowLimit(120)
    assert all(window.arrive("t", 0.0) for _ in range(120))
    assert window.arrive("t", 0.999) is False
    assert window.arrive("other", 0.999) is True  # per key
    assert window.arrive("t", 1.0) is True  # the 120 from 0.0 left the window just now
    assert all(window.arrive("t", 1.0) for _ in range(118))  # 0.999 + 119 at 1.0 = 120
    assert window.arrive("t", 1.5) is False  # a 121st inside (0.5, 1.5]


def test_fault_duration_runs_on_the_clock() -> None:
    clock = FakeClock(auto_advance=False)
    faults = FaultRegistry(clock, seed=0)
    faults.add(Fault(kind="outage", duration_s=10))
    assert faults.plan("GET", "/v3/accounts") is not None
    clock.advance(9.99)
    assert faults.plan("GET", "/v3/accounts") is not None
    clock.advance(0.01)
    assert faults.plan("GET", "/v3/accounts") is None
    assert faults.list()[0]["active"] is False


def test_count_is_spent_only_by_matching_affected_requests() -> None:
    faults = FaultRegistry(FakeClock(), seed=0)
    faults.add(Fault(kind="status", status=500, count=2,
                     match={"method": "POST", "path": "/v3/accounts/*/orders"}))
    assert faults.plan("GET", "/v3/accounts/1/orders") is None
    assert faults.plan("POST", "/v3/accounts/1/trades") is None
    assert faults.plan("POST", "/v3/accounts/1/orders") is not None
    assert faults.plan("post", "/v3/accounts/1/orders") is None  # methods arrive upper-case
    assert faults.plan("POST", "/v3/accounts/1/orders") is not None
    assert faults.plan("POST", "/v3/accounts/1/orders") is None


def test_ratio_is_seeded_and_near_its_share() -> None:
    def run(seed: int) -> list[bool]:
        faults = FaultRegistry(FakeClock(), seed=seed)
        faults.add(Fault(kind="reset", ratio=0.3))
        return [faults.plan("GET", "/v3/x") is not None for _ in range(2000)]
    first = run(1)
    assert first == run(1) and first != run(2)
    assert 0.26 <= sum(first) / 2000 <= 0.34


def test_latency_composes_and_the_first_terminal_fault_wins() -> None:
    faults = FaultRegistry(FakeClock(), seed=0)
    faults.add(Fault(kind="latency", latency_s=0.1))
    first = faults.add(Fault(kind="status", status=502, latency_s=0.05))
    faults.add(Fault(kind="reset", count=1))
    plan = faults.plan("GET", "/v3/x")
    assert plan is not None and plan.action is not None
    assert plan.action.status == 502 and plan.latency_s == pytest.approx(0.15)
    assert first in plan.fault_ids
    assert faults.list()[2]["remaining"] == 1  # the reset was not spent


@pytest.mark.parametrize("bad", [
    {"kind": "nope"}, {"kind": "status", "status": 99}, {"kind": "status", "ratio": -0.1},
    {"kind": "latency", "latency_s": -1}, {"kind": "status", "body": "xml"},
    {"kind": "outage", "mode": "maybe"}, {"kind": "status", "match": {"verb": "GET"}},
    {"kind": "status", "match": "/v3/*"}, {"kind": "status", "match": {"path": 3}},
    {"kind": "status", "count": "2"},
])
def test_invalid_faults_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises((ValueError, TypeError)):
        Fault.from_json(bad)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(sorted(INSTRUMENTS)), st.floats(min_value=1e9, max_value=2e9),
       st.integers(min_value=0, max_value=10))
def test_quotes_are_positive_with_bid_below_ask(name: str, t: float, seed: int) -> None:
    q = Market(seed).quote(name, t)
    assert 0 < q.bid < q.ask
    assert q == Market(seed).quote(name, t)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(sorted(GRANULARITIES)), st.floats(min_value=1e9, max_value=2e9),
       st.integers(min_value=1, max_value=5000))
def test_candle_starts_are_aligned_and_end_at_now(gran: str, now: float, count: int) -> None:
    starts = candle_starts(gran, now, count, None, None)
    g = GRANULARITIES[gran]
    assert len(starts) == count
    assert all(s % g == 0 for s in starts) and starts[-1] <= now < starts[-1] + g
    candles = Market(0).candles("EUR_USD", gran, starts[-3:], now, "M")
    for c in candles:
        m = {k: float(v) for k, v in c["mid"].items()}
        assert m["l"] <= min(m["o"], m["c"]) <= max(m["o"], m["c"]) <= m["h"]
    assert candles[-1]["complete"] is False


def test_times_round_trip_in_both_formats() -> None:
    t = 1_700_000_000.123456
    assert fmt_time(t) == "2023-11-14T22:13:20.123456000Z"
    assert parse_time(fmt_time(t)) == pytest.approx(t)
    token = TIME_FORMAT.set("UNIX")
    try:
        assert fmt_time(t) == "1700000000.123456000"
    finally:
        TIME_FORMAT.reset(token)


def test_every_transaction_reaches_the_listeners_in_order() -> None:
    from sidecar.sim.orders import place_order
    from sidecar.sim.state import SimState

    state = SimState(accounts=1, seed=0, clock=FakeClock())
    seen: list[tuple[str, str]] = []
    state.listeners.append(lambda account, tx: seen.append((account.id, tx["id"])))
    state.reset()  # listeners outlive a reset
    account = next(iter(state.accounts.values()))
    own: list[str] = []
    account.listeners.append(lambda tx: own.append(tx["type"]))
    batch = account.batch("1", state.clock.wall())
    place_order(account, state.market, batch, {"order": {
        "type": "MARKET", "instrument": "EUR_USD", "units": "1",
        "stopLossOnFill": {"distance": "0.01"}}})
    assert own == ["MARKET_ORDER", "ORDER_FILL", "STOP_LOSS_ORDER"]
    assert [i for _, i in seen] == ["1", "2", "3", "4", "5"]  # CREATE, TRANSFER_FUNDS first
