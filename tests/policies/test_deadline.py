"""DeadlinePolicy: a call already late is not started; one with time left goes on."""

from __future__ import annotations

import pytest

from sidecar.clock import FakeClock
from sidecar.errors import DeadlineExceeded
from sidecar.pipeline import Call, Response
from sidecar.policies.deadline import DeadlinePolicy


async def _answer(call: Call) -> Response:
    return Response(200, b"{}")


@pytest.mark.parametrize("left_s", [0.0, -1.0])
async def test_a_call_past_its_deadline_never_starts(clock: FakeClock, left_s: float) -> None:
    sent: list[Call] = []

    async def nxt(call: Call) -> Response:
        sent.append(call)
        return Response(200, b"{}")

    call = Call("GET", "/v3/accounts", deadline=clock.monotonic() + left_s)
    with pytest.raises(DeadlineExceeded):
        await DeadlinePolicy(clock).handle(call, nxt)
    assert sent == []


@pytest.mark.parametrize("deadline", [None, 0.001])
async def test_a_call_with_time_left_or_no_deadline_goes_on(clock: FakeClock,
                                                          deadline: float | None) -> None:
    call = Call("GET", "/v3/accounts",
                deadline=None if deadline is None else clock.monotonic() + deadline)
    assert (await DeadlinePolicy(clock).handle(call, _answer)).status == 200
