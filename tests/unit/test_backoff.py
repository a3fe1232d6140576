"""Laws of the pure backoff functions."""

from __future__ import annotations

import random
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sidecar.backoff import backoff_ceiling, backoff_delay, parse_retry_after

attempts = st.integers(min_value=1, max_value=2000)
seconds = st.floats(min_value=0, max_value=1e6, allow_nan=False, allow_infinity=False)
seeds = st.integers(min_value=0, max_value=2**64)


def _ceiling(attempt: int, base: float, cap: float) -> float:
    # The spec's formula in exact arithmetic, so no float overflow can hide in the oracle.
    return float(min(Fraction(cap), Fraction(base) * 2 ** (attempt - 1)))


@settings(max_examples=200)
@given(attempts, seconds, seconds, seeds)
def test_full_jitter_is_within_zero_and_the_capped_ceiling(
        attempt: int, base: float, cap: float, seed: int) -> None:
    delay = backoff_delay(attempt, base, cap, "full", random.Random(seed))
    assert 0.0 <= delay <= _ceiling(attempt, base, cap) <= cap


@settings(max_examples=200)
@given(attempts, seconds, seconds, seeds)
def test_equal_jitter_is_within_half_and_the_capped_ceiling(
        attempt: int, base: float, cap: float, seed: int) -> None:
    ceiling = _ceiling(attempt, base, cap)
    delay = backoff_delay(attempt, base, cap, "equal", random.Random(seed))
    assert ceiling / 2 <= delay <= ceiling <= cap


@settings(max_examples=200)
@given(attempts, seconds, seconds, seeds)
def test_no_jitter_is_exactly_the_capped_ceiling(
        attempt: int, base: float, cap: float, seed: int) -> None:
    assert backoff_delay(attempt, base, cap, "none", random.Random(seed)) == _ceiling(
        attempt, base, cap)


@settings(max_examples=200)
@given(attempts, seconds, seconds, seeds, st.sampled_from(["full", "equal", "none"]))
def test_backoff_is_deterministic_for_a_seed(
        attempt: int, base: float, cap: float, seed: int, jitter: str) -> None:
    a = backoff_delay(attempt, base, cap, jitter, random.Random(seed))
    b = backoff_delay(attempt, base, cap, jitter, random.Random(seed))
    assert a == b


def test_ceiling_doubles_then_caps() -> None:
    assert [backoff_ceiling(n, 1.0, 10.0) for n in range(1, 7)] == [1, 2, 4, 8, 10, 10]


def test_full_jitter_spreads_over_the_whole_range() -> None:
    rng = random.Random(7)
    delays = [backoff_delay(3, 1.0, 10.0, "full", rng) for _ in range(2000)]
    assert min(delays) < 0.4 and max(delays) > 3.6  # not bunched at one end


@pytest.mark.parametrize(("attempt", "base", "cap", "jitter"), [
    (0, 1.0, 10.0, "full"), (1, -1.0, 10.0, "full"), (1, 1.0, float("nan"), "full"),
    (1, 1.0, 10.0, "bogus"),
])
def test_bad_arguments_are_refused(attempt: int, base: float, cap: float, jitter: str) -> None:
    with pytest.raises(ValueError):
        backoff_delay(attempt, base, cap, jitter, random.Random(0))


@pytest.mark.parametrize(("value", "seconds"), [
    (None, None), ("", None), ("3", 3.0), ("0.25", 0.25), ("-4", 0.0), ("nan", None),
    ("Wed, 21 Oct 2015 07:28:00 GMT", None)])
def test_retry_after_is_parsed_once_for_the_whole_tree(value: str | None,
                                                       seconds: float | None) -> None:
    assert parse_retry_after(value) == seconds
