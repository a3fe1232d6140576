"""Hypothesis: random calls, verdicts, clock steps, resets and overrides against a reference model.

Calls run through BreakerPolicy as bare coroutines, stepped by hand: a call's `next` suspends
until the test sends it a verdict, so many calls (and probes) can be in flight at once and any of
them can finish, fail, be rate-limited or be cancelled in any order.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Generator
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sidecar.clock import FakeClock
from sidecar.config import BreakerConfig
from sidecar.errors import CircuitOpen, RateLimited, SidecarError, UpstreamTimeout
from sidecar.events import BreakerTransition
from sidecar.pipeline import Call, Response
from sidecar.policies.breaker import BreakerPolicy, BreakerRegistry
from sidecar.policies.breaker_state import TRANSITIONS, BreakerState
from sidecar.upstream.endpoints import resolve
from tests.conftest import RecordingBus

RECOVERY_S = 10.0
SUCCESSES = {"http_200", "http_400", "http_404", "http_429"}
FAILURES = {"http_503", "http_401", "timeout"}
VERDICTS = sorted(SUCCESSES | FAILURES | {"rate_limited", "cancel"})
CALL = Call(method="GET", path="/v3/accounts/a/pricing", endpoint=resolve("/v3/accounts/a/pricing"))


class _Verdict:
    """Suspends the coroutine that awaits it; the value sent in on resumption is the verdict."""

    def __await__(self) -> Generator[None, str, str]:
        verdict = yield
        return verdict


async def upstream(call: Call) -> Response:
    verdict = await _Verdict()
    if verdict == "timeout":
        raise UpstreamTimeout("slow")
    if verdict == "rate_limited":
        raise RateLimited("no token")
    return Response(status=int(verdict.removeprefix("http_")), body=b"")


@dataclass
class Pending:
    coro: Coroutine[Any, Any, Response]
    live: bool  # the model's view: its verdict still counts
    probe: bool


@dataclass
class Model:
    """The breaker as the issue describes it, written plainly."""

    threshold: int
    max_probes: int
    now: float
    state: str = "closed"
    failures: int = 0
    opened_at: float = 0.0
    total_failures: int = 0
    total_successes: int = 0
    pending: list[Pending] = field(default_factory=list)
    moves: list[tuple[str, str]] = field(default_factory=list)

    def change(self, to: str) -> None:
        self.moves.append((self.state, to))
        self.state = to
        self.forget_pending()
        if to == "open":
            self.opened_at = self.now
        elif to != "half_open":
            self.failures = 0

    def forget_pending(self) -> None:
        for p in self.pending:
            p.live = False

    def probes(self) -> int:
        return sum(p.live and p.probe for p in self.pending)

    def admit(self) -> tuple[bool, float | None]:
        """(admitted as a probe?, None) or (False, expected retry_after_s) when refused."""
        if self.state == "open" and self.now >= self.opened_at + RECOVERY_S:
            self.change("half_open")
        if self.state in ("closed", "disabled"):
            return False, None
        if self.state == "half_open" and self.probes() < self.max_probes:
            return True, None
        if self.state == "open":
            return False, self.opened_at + RECOVERY_S - self.now
        return False, RECOVERY_S if self.state == "forced_open" else 1.0

    def verdict(self, p: Pending, verdict: str) -> None:
        self.total_successes += verdict in SUCCESSES
        self.total_failures += verdict in FAILURES
        if not p.live:
            return
        p.live = False
        if verdict in SUCCESSES:
            if self.state == "closed":
                self.failures = 0
            elif self.state == "half_open":
                self.change("closed")
        elif verdict in FAILURES and self.state in ("closed", "half_open"):
            self.failures += 1
            if self.state == "half_open" or self.failures >= self.threshold:
                self.change("open")

    def reset(self) -> None:
        if self.state != "closed":
            self.change("closed")
        self.failures = 0
        self.forget_pending()

    def override(self, name: str) -> None:
        if name == "none":
            if self.state in ("forced_open", "disabled"):
                self.change("closed")
        elif self.state != name:
            self.change(name)


# Weighted towards failures, probes and clock steps so that most runs trip the breaker, probe
# it and keep probes in flight; resets and overrides are rarer so that they do not mask all that.
_verdicts = st.sampled_from(VERDICTS + sorted(FAILURES) * 2)
_step = st.sampled_from(["call"] * 4 + ["start"] * 4 + ["finish"] * 4 + ["advance"] * 2
                        + ["reset", "override"])
_args = {
    "call": _verdicts,
    "start": st.none(),
    "finish": st.tuples(st.integers(0, 50), _verdicts),
    "advance": st.one_of(st.sampled_from([1.0, RECOVERY_S / 2, RECOVERY_S, RECOVERY_S]),
                         st.floats(0, 1.5 * RECOVERY_S)),
    "reset": st.none(),
    "override": st.sampled_from(["none", "none", "forced_open", "disabled"]),
}
steps = st.lists(_step.flatmap(lambda kind: st.tuples(st.just(kind), _args[kind])),
                 min_size=10, max_size=80)


def start(policy: BreakerPolicy, model: Model) -> Pending | None:
    probe, retry_after = model.admit()
    coro = policy.handle(CALL, upstream)
    try:
        coro.send(None)
    except CircuitOpen as exc:
        assert retry_after is not None, "refused a call the model admits"
        assert exc.retry_after_s == pytest.approx(retry_after)
        return None
    assert retry_after is None, "admitted a call the model refuses"
    pending = Pending(coro, live=True, probe=probe)
    model.pending.append(pending)
    return pending


def finish(p: Pending, verdict: str, model: Model) -> None:
    model.pending.remove(p)
    model.verdict(p, verdict)
    try:
        if verdict == "cancel":
            p.coro.throw(asyncio.CancelledError())
        else:
            p.coro.send(verdict)
    except StopIteration:
        assert verdict.startswith("http_")
    except (SidecarError, asyncio.CancelledError):
        assert not verdict.startswith("http_")


def step(kind: str, arg: Any, policy: BreakerPolicy, registry: BreakerRegistry,
         model: Model, clock: FakeClock) -> None:
    if kind == "call":
        pending = start(policy, model)
        if pending is not None:
            finish(pending, arg, model)
    elif kind == "start":
        start(policy, model)
    elif kind == "finish" and model.pending:
        index, verdict = arg
        finish(model.pending[index % len(model.pending)], verdict, model)
    elif kind == "advance":
        clock.advance(arg)
        model.now += arg
    elif kind == "reset":
        registry.reset("rest")
        model.reset()
    elif kind == "override":
        registry.set_override("rest", arg)
        model.override(arg)


@settings(max_examples=200, deadline=None)
@given(threshold=st.integers(1, 3), max_probes=st.integers(1, 3), tripped=st.booleans(),
       script=steps)
def test_breaker_matches_model_and_moves_only_legally(
        threshold: int, max_probes: int, tripped: bool, script: list[tuple[str, Any]]) -> None:
    clock, bus = FakeClock(), RecordingBus()
    config = BreakerConfig(failure_threshold=threshold, recovery_timeout_s=RECOVERY_S,
                           half_open_max_calls=max_probes)
    registry = BreakerRegistry(config, clock, bus)
    policy = BreakerPolicy(registry)
    model = Model(threshold, max_probes, now=clock.monotonic())
    if tripped:  # half the runs start where probes happen: tripped, recovery time passed
        script = [("call", "timeout")] * threshold + [("advance", RECOVERY_S)] + script
    for kind, arg in script:
        step(kind, arg, policy, registry, model, clock)
        snap = registry.get("rest").snapshot()
        assert snap.state.value == model.state
        assert snap.consecutive_failures == model.failures
        assert snap.half_open_in_flight == model.probes()
        assert (snap.total_failures, snap.total_successes) == (
            model.total_failures, model.total_successes)
        if model.state == "open":
            assert snap.next_probe_in_s == pytest.approx(
                max(0.0, model.opened_at + RECOVERY_S - model.now))
    moves = [(e.from_state, e.to_state) for e in bus.of(BreakerTransition)]
    assert moves == model.moves
    previous = "closed"
    for frm, to in moves:
        assert frm == previous
        assert BreakerState(to) in TRANSITIONS[BreakerState(frm)]
        previous = to
    for p in model.pending:
        p.coro.close()
