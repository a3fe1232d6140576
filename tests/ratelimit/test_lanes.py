"""critical_max_share: a flood of caller-declared critical calls leaves normal calls a share."""

from __future__ import annotations

import asyncio

import pytest

from sidecar.clock import FakeClock
from sidecar.config import RateLimitConfig
from sidecar.errors import SidecarError
from sidecar.events import EventBus
from sidecar.pipeline import Call, Response
from sidecar.ratelimit.lanes import CRITICAL, NORMAL, LaneArbiter
from sidecar.upstream.endpoints import resolve
from tests.ratelimit.helpers import local_policy


def test_arbiter_hands_out_four_of_five_contended_tokens_to_critical_calls() -> None:
    arbiter = LaneArbiter(0.8)
    lanes = []
    for _ in range(20):
        lane = CRITICAL if arbiter.critical_may_go(normal_waiting=True) else NORMAL
        arbiter.admitted(lane, normal_waiting=True)
        lanes.append(lane)
    assert lanes[:5] == [CRITICAL] * 4 + [NORMAL]
    assert lanes.count(NORMAL) == 4


def test_uncontended_tokens_earn_no_credit() -> None:
    arbiter = LaneArbiter(0.5)
    for _ in range(1000):  # critical calls alone: no normal call waits, nothing counted
        assert arbiter.critical_may_go(normal_waiting=False)
        arbiter.admitted(CRITICAL, normal_waiting=False)
    for _ in range(1000):  # normal calls alone: no credit for later critical floods either
        arbiter.admitted(NORMAL, normal_waiting=False)
    lanes = []
    for _ in range(10):
        lane = CRITICAL if arbiter.critical_may_go(normal_waiting=True) else NORMAL
        arbiter.admitted(lane, normal_waiting=True)
        lanes.append(lane)
    assert lanes.count(CRITICAL) == 5


def test_share_one_is_the_old_rule_and_bad_shares_are_refused() -> None:
    arbiter = LaneArbiter(1.0)
    for _ in range(100):
        assert arbiter.critical_may_go(normal_waiting=True)
        arbiter.admitted(CRITICAL, normal_waiting=True)
    with pytest.raises(ValueError):
        LaneArbiter(0.0)


@pytest.mark.parametrize("share", [0.8, 0.5])
async def test_a_critical_flood_leaves_normal_calls_their_share(share: float) -> None:
    """Issue 11 #10: 150 critical callers starved 20 normal ones (2 OK, 60 refused in 15 s)."""
    clock = FakeClock(auto_advance=False)
    policy = local_policy(RateLimitConfig(rate_per_s=100, burst=20, critical_max_share=share),
                          clock, EventBus())
    sent = {"critical": 0, "normal": 0}
    refused = {"critical": 0, "normal": 0}

    async def nxt(call: Call) -> Response:
        sent["critical" if call.critical else "normal"] += 1
        return Response(200, b"")

    async def caller(critical: bool) -> None:
        lane = "critical" if critical else "normal"
        while True:
            call = Call("GET", "/v3/accounts", resolve("/v3/accounts"), critical=critical)
            try:
                await policy.handle(call, nxt)
            except SidecarError:
                refused[lane] += 1
                await clock.sleep(0.1)  # a client backing off a little

    tasks = [asyncio.create_task(caller(True)) for _ in range(150)]
    tasks += [asyncio.create_task(caller(False)) for _ in range(20)]
    for _ in range(15 * 200):
        clock.advance(0.005)
        for _ in range(3):
            await asyncio.sleep(0)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    total = sent["critical"] + sent["normal"]
    print(f"\nshare {share}: sent {sent}, refused {refused}")
    assert total == pytest.approx(15 * 100 + 20, rel=0.02)  # the whole rate is used
    assert sent["normal"] >= 0.9 * (1 - share) * 15 * 100  # before: 2 in 15 s
    # The start (a full bucket) and the moments no normal call waits are uncontended.
    assert sent["critical"] <= share * total + 40
    assert refused["critical"] == 0  # critical calls still wait for theirs, never refused
