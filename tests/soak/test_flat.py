"""The soak's verdict logic: least squares, limits, the per-minute table and the audit checks."""

from __future__ import annotations

import math
import random
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from soak.audit import order_checks, stream_checks
from soak.faults import Injected
from soak.flat import LIMITS, Limit, judge, least_squares
from soak.report import Run, minute_rows, render
from soak.sampler import Sample, parse_gauges


def test_least_squares_recovers_a_line() -> None:
    ts = [t / 6 for t in range(60)]
    fit = least_squares(ts, [3.0 + 0.25 * t for t in ts])
    assert fit.slope == pytest.approx(0.25)
    assert fit.intercept == pytest.approx(3.0)
    assert fit.stderr == pytest.approx(0.0, abs=1e-9)
    assert fit.n == 60


@settings(max_examples=100)
@given(st.floats(-100, 100), st.floats(-10, 10), st.integers(3, 50))
def test_slope_is_invariant_to_an_offset_and_exact_on_lines(a: float, b: float, n: int) -> None:
    ts = [float(t) for t in range(n)]
    assert least_squares(ts, [a + b * t for t in ts]).slope == pytest.approx(b, abs=1e-6)
    noisy = [math.sin(t) for t in ts]
    shifted = [y + a for y in noisy]
    assert least_squares(ts, shifted).slope == pytest.approx(
        least_squares(ts, noisy).slope, abs=1e-6)


def test_degenerate_inputs_give_no_slope() -> None:
    assert least_squares([], []).slope == 0.0
    assert least_squares([1.0], [5.0]).intercept == 5.0
    assert least_squares([2.0, 2.0], [1.0, 9.0]).slope == 0.0
    assert math.isinf(least_squares([1.0, 2.0], [1.0, 3.0]).stderr)
    with pytest.raises(ValueError):
        least_squares([1.0], [])


def _points(rss_per_min: float, *, noise: float = 0.0,
            minutes: float = 30) -> list[tuple[float, dict[str, float]]]:
    rng = random.Random(7)
    out = []
    for i in range(int(minutes * 6)):
        t = i / 6
        out.append((t, {"rss_mib": 80 + rss_per_min * t + rng.gauss(0, noise), "fds": 30.0,
                        "tasks": 30 + rng.choice((-3, 0, 3)), "lag_p99_s": 0.002}))
    return out


def test_flat_series_pass_and_a_leak_fails() -> None:
    flat = {v.limit.series: v.flat for v in judge(_points(0.0, noise=0.3), warmup_min=5)}
    assert flat == {"rss_mib": True, "fds": True, "tasks": True, "lag_p99_s": True}
    # 0.15 MiB per minute is 1.5 MiB per 10 min: over the 1 MiB limit, even through noise.
    leak = judge(_points(0.15, noise=0.3), warmup_min=5)[0]
    assert leak.limit.series == "rss_mib" and not leak.flat
    assert leak.per_10_min == pytest.approx(1.5, abs=0.2)


def test_warmup_growth_is_left_out() -> None:
    points = [(t, {**v, "rss_mib": 60 + 4 * t if t < 5 else 80.0}) for t, v in _points(0)]
    assert judge(points, warmup_min=5)[0].flat
    assert not judge(points, warmup_min=0)[0].flat


def test_too_few_samples_is_not_flat() -> None:
    verdicts = judge(_points(0.0, minutes=1), warmup_min=0.8)
    assert all(v.fit.n < 3 and not v.enough_data and not v.flat for v in verdicts)


def test_falling_is_flat_and_the_limit_is_strict() -> None:
    limit = Limit("rss_mib", "RSS", "MiB", 1.0)
    falling = [(t, {"rss_mib": 100 - t}) for t in range(10)]
    assert judge(falling, 0, [limit])[0].flat
    at_limit = [(float(t), {"rss_mib": 0.1 * t}) for t in range(10)]
    assert not judge(at_limit, 0, [limit])[0].flat  # 1.0 per 10 min is not < 1.0


def _sample(t: float, rss: float = 80.0, lag: float = 0.001) -> Sample:
    return Sample(t, rss, 30, 25, lag / 2, lag, lag * 2)


def test_minute_rows_aggregate_samples_and_outcomes() -> None:
    samples = [_sample(0.0, 80), _sample(0.5, 81, lag=0.004), _sample(1.2, 82)]
    tally = {0: Counter(ok=2940, circuit_open=60), 1: Counter(ok=3000)}
    rows = minute_rows(samples, tally, 3)
    assert [r.minute for r in rows] == [0, 1]  # minute 2 has no sample
    assert rows[0].rss_mib == 81 and rows[0].lag_max_s == 0.008
    assert rows[0].req_per_s == 50.0 and rows[0].errors == Counter(circuit_open=60)


def test_render_says_pass_or_fail_and_why() -> None:
    samples = [_sample(i / 6) for i in range(60)]
    run = Run(10, 2, samples, {m: Counter(ok=3000) for m in range(10)},
              [Injected(1.0, "5xx burst", True)])
    assert run.passed
    text = render(run)
    assert "**PASS**" in text and "| 9 | 80.0 | 30 | 25 |" in text and "5xx burst" in text
    run.problems.append("orders filled more than once: 1")
    assert not run.passed and "**FAIL**" in render(run)
    leaking = Run(10, 2, [_sample(i / 6, rss=80 + i) for i in range(60)], {}, [])
    assert not leaking.passed and "| RSS | +60.000 MiB" in render(leaking)
    assert len(LIMITS) == 4


def test_order_checks_find_duplicates_and_lies() -> None:
    log = [{"type": "ORDER_FILL", "clientOrderID": c} for c in ("a", "b", "b", "d")]
    log.append({"type": "ORDER_FILL", "clientOrderID": "someone-else"})
    answers = {"a": "ok", "b": "ok", "c": "ok", "d": "circuit_open", "e": "outcome_unknown"}
    figures, problems = order_checks(list("abcde"), answers, {"a", "b", "c"}, log)
    assert figures["duplicates"] == 1 and figures["told placed, absent"] == 1
    assert figures["told refused, present"] == 1 and figures["placed (simulator)"] == 3
    assert len(problems) == 3
    assert order_checks(["a"], {"a": "ok"}, {"a"}, log[:1]) == (
        {"sent": 1, "answered": 1, "placed (simulator)": 1, "told placed": 1,
         "OUTCOME_UNKNOWN answers": 0, "of those placed": 0, "duplicates": 0,
         "told placed, absent": 0, "told refused, present": 0}, [])


def test_stream_checks_compare_with_the_log() -> None:
    log = [{"id": str(i)} for i in range(3, 9)]
    figures, problems = stream_checks([3, 4, 5, 7, 8], 0, 0, log)
    assert figures["missing"] == 1 and problems
    assert stream_checks([3, 4, 5, 6, 7, 8], 0, 0, log)[1] == []
    assert stream_checks([3, 4, 5, 6, 7, 8], 1, 0, log)[1]


def test_parse_gauges_reads_the_runtime_gauges_and_names_what_is_missing() -> None:
    text = ("# TYPE oanda_sidecar_asyncio_tasks gauge\noanda_sidecar_asyncio_tasks 12.0\n"
            "# TYPE oanda_sidecar_event_loop_lag_seconds gauge\n"
            "oanda_sidecar_event_loop_lag_seconds 0.001\n"
            "# TYPE oanda_sidecar_event_loop_lag_window_seconds gauge\n"
            'oanda_sidecar_event_loop_lag_window_seconds{quantile="0.99"} 0.003\n')
    found = parse_gauges(text)
    assert found["oanda_sidecar_asyncio_tasks"] == 12.0
    assert found["oanda_sidecar_event_loop_lag_window_seconds{0.99}"] == 0.003
    with pytest.raises(RuntimeError, match="oanda_sidecar_asyncio_tasks"):
        parse_gauges(text.replace("oanda_sidecar_asyncio_tasks", "something_else"))


def test_a_step_fails_the_verdict_but_the_diagnostic_after_the_cycle_tells_it_from_a_leak() -> None:
    step = [_sample(i / 6, rss=80 if i < 6 * 8 else 86) for i in range(6 * 30)]
    run = Run(30, 5, step, {}, [], cycle_min=21)
    assert not run.passed  # the brief's verdict: a step is growth after the warm-up
    after = {v.limit.series: v.flat for v in run.verdicts(from_min=21)}
    assert after["rss_mib"]
    text = render(run)
    assert "Diagnostic, not the verdict" in text and "from minute 21" in text
    assert "Diagnostic" not in render(Run(10, 2, step[:60], {}, [], cycle_min=21))
