"""Who gets the next token: FIFO queues per (lane, endpoint limit), an expiry heap, one waker.

Head-of-line blocking: waiters sit in one FIFO deque per (lane, endpoint limit). A global token goes
to the oldest waiter whose endpoint bucket is ready, and both tokens are taken together at that
moment, so a call throttled by its own endpoint limit never holds a global token and never blocks
calls to other endpoints, while calls sharing a limit stay in FIFO order. Critical calls respect
endpoint limits too (an operator wrote them) and go ahead of normal ones, within the
`LaneArbiter`'s share while normal calls wait.

One waker task sleeps on the clock until the next token is due (the gate says when: for the
shared gate that is the time Redis answered, never a polling loop) or the next waiter's budget
ends; an arrival dispatches at once, so a call that can go at once never waits for the waker.
Dispatch may await the gate (a Redis round trip); only one dispatch runs at a time.
"""

from __future__ import annotations

import asyncio
import heapq
import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from sidecar.clock import Clock
from sidecar.errors import SidecarError
from sidecar.ratelimit.gates import Gate
from sidecar.ratelimit.lanes import CRITICAL, NORMAL, LaneArbiter


@dataclass(slots=True, eq=False)  # eq=False: queues remove waiters by identity
class Waiter:
    future: asyncio.Future[float]  # resolves to the admission time (a reservation: ahead)
    lane: int
    limit: int
    endpoint: str
    seq: int
    enqueued_at: float
    end: float  # the end of its wait budget


# refuse(waiter, waited_s, now, deadline=...) -> the error to raise (and count it)
Refuse = Callable[..., SidecarError]


class AdmissionQueue:
    def __init__(self, gate: Gate, clock: Clock, arbiter: LaneArbiter, limits: int,
                 max_length: int, refuse: Refuse) -> None:
        self.gate = gate
        self._clock = clock
        self._arbiter = arbiter
        self._max_length = max_length
        self._refuse = refuse
        self._queues = tuple(tuple(deque[Waiter]() for _ in range(limits + 1)) for _ in (0, 1))
        self.queued = [0, 0]
        self._expiries: list[tuple[float, int, Waiter]] = []  # heap of (budget end, seq, waiter)
        self._seq = 0
        self._waker: asyncio.Task[None] | None = None
        self._wake_at = math.inf
        self._dispatching = False

    def can_skip_queue(self, lane: int) -> bool:
        """Nobody waits ahead of a call of this lane (and the lane rule lets it go)."""
        if self.queued[CRITICAL]:
            return False
        if lane == CRITICAL:
            return self._arbiter.critical_may_go(self.queued[NORMAL] > 0)
        return self.queued[NORMAL] == 0

    def went(self, lane: int) -> None:
        """A call of this lane took a token without queueing."""
        if self.queued[NORMAL]:  # uncontended otherwise: the arbiter counts nothing
            self._arbiter.admitted(lane, True)

    def would_refuse(self, lane: int, limit: int, now: float, end: float) -> bool | None:
        """None when the call may queue; else whether it is refused for its budget (True) or
        because the lane's queue is full (False)."""
        if self.queued[lane] >= self._max_length:
            return False
        ahead = self.queued[CRITICAL] + (self.queued[NORMAL] if lane == NORMAL else 0)
        same = len(self._queues[CRITICAL][limit])
        if lane == NORMAL:
            same += len(self._queues[NORMAL][limit])
        if now + self.gate.estimate(ahead, same, limit, now) > end:
            return True
        return None

    def estimate(self, lane: int, limit: int, now: float) -> float:
        ahead = self.queued[CRITICAL] + (self.queued[NORMAL] if lane == NORMAL else 0)
        return self.gate.estimate(ahead, len(self._queues[lane][limit]), limit, now)

    async def wait(self, lane: int, limit: int, endpoint: str, now: float, end: float) -> float:
        """Queue a call and return its admission time; raises what `refuse` builds."""
        self._seq += 1
        waiter = Waiter(asyncio.get_running_loop().create_future(), lane, limit, endpoint,
                        self._seq, now, end)
        self._queues[lane][limit].append(waiter)
        self.queued[lane] += 1
        if end != math.inf:
            heapq.heappush(self._expiries, (end, waiter.seq, waiter))
        await self._run(now)
        try:
            return await waiter.future
        except asyncio.CancelledError:
            self._forget(waiter)
            raise

    def close(self) -> None:
        """Stop the waker (at shutdown: whoever still waits is cancelled with its task)."""
        if self._waker is not None:
            self._waker.cancel()
            self._waker = None
            self._wake_at = math.inf

    def _forget(self, waiter: Waiter) -> None:
        """Take a cancelled waiter out of its queue (unless dispatch already did)."""
        future = waiter.future
        if future.done() and not future.cancelled():
            future.exception()  # mark retrieved; a token spent on a cancelled call stays spent
            return
        try:
            self._queues[waiter.lane][waiter.limit].remove(waiter)
        except ValueError:
            return
        self.queued[waiter.lane] -= 1

    # -- the waker --------------------------------------------------------------------------

    async def _run(self, now: float) -> None:
        """Dispatch (unless a dispatch is already running), then arm the waker."""
        if self._dispatching:
            return  # the running dispatch loops until nothing can go, then arms the waker
        self._dispatching = True
        try:
            await self._dispatch(now)
        finally:  # even when the arrival running it is cancelled: the others must wake
            self._dispatching = False
            self._arm(self._clock.monotonic())

    def _arm(self, now: float) -> None:
        delay = self._next_delay(now)
        if delay is None:
            return
        wake_at = now + delay
        if self._waker is not None:
            if wake_at >= self._wake_at - 1e-6:
                return  # the sleeping waker comes early enough
            self._waker.cancel()
        self._wake_at = wake_at
        self._waker = asyncio.get_running_loop().create_task(self._wake(delay))

    async def _wake(self, delay: float) -> None:
        await self._clock.sleep(delay)
        # From here on this task is not cancelled by a new arrival: it may be awaiting the gate.
        self._waker = None
        self._wake_at = math.inf
        await self._run(self._clock.monotonic())

    async def _dispatch(self, now: float) -> None:
        """Expire waiters out of budget and admit every one that can go now."""
        while True:
            self._expire(now)
            waiter = self._pick(now)
            if waiter is None:
                return
            normal_waiting = self.queued[NORMAL] > 0
            taken = await self.gate.take(waiter.lane, waiter.limit, now, waiter.end - now)
            now = self._clock.monotonic()
            if taken < 0.0:
                continue  # the gate now knows when to try again; `_pick` skips this limit
            self._arbiter.admitted(waiter.lane, normal_waiting)
            if waiter.future.done():
                continue  # cancelled or expired during the round trip: the token is spent
            self._queues[waiter.lane][waiter.limit].remove(waiter)
            self.queued[waiter.lane] -= 1
            waiter.future.set_result(now + taken)

    def _pick(self, now: float) -> Waiter | None:
        """The oldest ready waiter of the critical lane (if the arbiter lets it go), else of the
        normal lane; None when nothing can go now."""
        critical = self._oldest_ready(CRITICAL, now)
        if critical is not None and self._arbiter.critical_may_go(self.queued[NORMAL] > 0):
            return critical
        normal = self._oldest_ready(NORMAL, now)
        return normal if normal is not None else critical

    def _oldest_ready(self, lane: int, now: float) -> Waiter | None:
        if not self.queued[lane]:
            return None
        best: Waiter | None = None
        for limit, queue in enumerate(self._queues[lane]):
            while queue and queue[0].future.done():  # cancelled, not yet forgotten
                queue.popleft()
                self.queued[lane] -= 1
            if queue and (best is None or queue[0].seq < best.seq) \
                    and self.gate.due(lane, limit, now) == 0.0:
                best = queue[0]
        return best

    def _next_delay(self, now: float) -> float | None:
        if self.queued[NORMAL] + self.queued[CRITICAL] == 0:
            return None
        delay = math.inf
        for lane, lane_queues in enumerate(self._queues):
            for limit, queue in enumerate(lane_queues):
                if queue:
                    delay = min(delay, self.gate.due(lane, limit, now))
        expiries = self._expiries
        while expiries and expiries[0][2].future.done():
            heapq.heappop(expiries)
        if expiries:
            delay = min(delay, expiries[0][0] - now)
        return max(delay, 0.0)

    def _expire(self, now: float) -> None:
        expiries = self._expiries
        while expiries and expiries[0][0] <= now + 1e-9:  # float slack, as in the bucket
            waiter = heapq.heappop(expiries)[2]
            if waiter.future.done():
                continue
            self._queues[waiter.lane][waiter.limit].remove(waiter)
            self.queued[waiter.lane] -= 1
            waiter.future.set_exception(self._refuse(
                waiter.endpoint, waiter.lane, waiter.limit, now - waiter.enqueued_at, now,
                deadline=True))
        if len(expiries) > 64 + 2 * (self.queued[NORMAL] + self.queued[CRITICAL]):
            # Admitted waiters leave stale entries behind; drop them now and then.
            self._expiries = [e for e in expiries if not e[2].future.done()]
            heapq.heapify(self._expiries)
