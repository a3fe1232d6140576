"""The order desk: sends an order write once, and resolves it when its outcome is unknown.

`execute` is what the ExactlyOncePolicy hands every order write to:
1. the client ID is made sure of (`ids.prepare`); a caller's ID sent before is resolved first,
   and its record answered if the order exists (nothing is sent);
2. the transaction ID to search from is noted, and the record kept, before anything is sent;
3. the write goes down the pipeline. An answer below 500 is the answer. A 5xx, or
   OutcomeUnknown from retry, is resolved (`Resolver`): found → OANDA's answer rebuilt,
   `reconciled`; provably absent → sent again with the same client ID (within
   `retry.max_attempts` and the retry budget); undecided in time → OutcomeUnknown, and
   resolution goes on in the background. So does a PENDING record a dead process left.
Every decision is kept in the OrderBook (GetOrderOutcome) and published as OrderResolved.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass
from typing import TypeVar

from sidecar.clock import Clock
from sidecar.errors import OutcomeUnknown, SidecarError, UpstreamError, UpstreamTimeout
from sidecar.events import EventBus, OrderResolved, RetryScheduled
from sidecar.orders.config import OrdersConfig
from sidecar.orders.ids import OrderWrite, prepare
from sidecar.orders.ledger import TransactionIDs
from sidecar.orders.records import NOT_PLACED, PENDING, PLACED, OrderBook, OrderRecord
from sidecar.orders.resolver import Resolver
from sidecar.orders.transactions import Decision
from sidecar.pipeline import Call, Handler, Response
from sidecar.policies.retry_budget import RetryBudget
from sidecar.vocabulary import OrderOutcome

_log = logging.getLogger("sidecar.orders")
# The answer must reach the caller before its deadline: the sidecar's own work stops this early.
ANSWER_MARGIN_S = 0.05
_RELATED = re.compile(rb'"relatedTransactionIDs"\s*:\s*\[([^\]]*)\]')

T = TypeVar("T", Call, Response)


def _clone(obj: T) -> T:
    """A shallow copy of a slotted Call or Response, field by field."""
    new = object.__new__(type(obj))
    for name in type(obj).__slots__:
        object.__setattr__(new, name, getattr(obj, name))
    return new


def _margin(deadline: float | None) -> float | None:
    return None if deadline is None else deadline - ANSWER_MARGIN_S


@dataclass(slots=True)
class _Job:
    """One write in flight: what resolution needs to know about it."""

    write: OrderWrite
    since: str | None
    record: OrderRecord | None
    attempts: int = 0
    sent_at: float = 0.0  # monotonic, the last pass down the pipeline
    timed_out: bool = False  # no answer in time: OANDA may still be working on it


class OrderDesk:
    def __init__(self, config: OrdersConfig, inner: Handler, clock: Clock, bus: EventBus,
                 book: OrderBook, *, max_attempts: int, request_timeout_s: float,
                 budget: RetryBudget | None = None, ids: TransactionIDs | None = None) -> None:
        self.config = config
        self.book = book
        self.ids = ids if ids is not None else TransactionIDs()
        self.resolver = Resolver(inner, clock, config, self.ids, request_timeout_s)
        self._clock = clock
        self._bus = bus
        self._max_attempts = max_attempts
        self._request_timeout_s = request_timeout_s
        self._budget = budget
        self._background: dict[str, asyncio.Task[None]] = {}

    async def execute(self, call: Call, kind: str, next: Handler) -> Response:
        write, body = prepare(call, kind, self._clock.wall())
        if write.client_order_id and not write.assigned:
            known = await self.book.find(write.client_order_id)
            if known is not None and known.outcome != NOT_PLACED:
                answered = await self._answer_known(call, write, known)
                if answered is not None:
                    return answered
        since = self.ids.get(write.account_id)
        if since is None:
            since = await self.resolver.read_since(write.account_id, _margin(call.deadline))
        record = None
        if write.client_order_id:
            record = OrderRecord(write.client_order_id, write.account_id, kind, since,
                                 self._clock.wall())
            await self.book.remember(record)
        # Sent as a copy: the body with its client ID, and a deadline that leaves time to answer.
        sent = _clone(call)  # dataclasses.replace and copy.copy cost 10-20 µs; this ~2
        sent.body, sent.deadline = body, _margin(call.deadline)
        return await self._send(sent, _Job(write, since, record), next)

    async def _send(self, call: Call, job: _Job, next: Handler) -> Response:
        while True:
            response = await self._attempt(call, job, next)
            if response is not None and response.status < 500:
                return self._answered(call, job, response)
            decision = await self._resolve(job, self._clock.monotonic(), call.deadline)
            if decision is None:
                raise self._unknown(job)
            if not decision.absent:
                return self._reconciled(job, decision)
            if job.attempts >= self._max_attempts or (
                    self._budget is not None and not self._budget.try_acquire()):
                self._settle(job, decision)
                raise self._not_placed(job)
            self._bus.publish(RetryScheduled(self._clock.wall(), call.method,
                                             call.endpoint.template, job.attempts, 0.0,
                                             "order_absent"))
            job.since = self.ids.get(job.write.account_id) or job.since

    async def _attempt(self, call: Call, job: _Job, next: Handler) -> Response | None:
        """One pass down the pipeline (retry's attempts counted); None: the outcome is unknown."""
        job.sent_at, job.timed_out = self._clock.monotonic(), False
        try:
            response = await next(call)
        except OutcomeUnknown as unknown:
            job.attempts += max(1, unknown.attempts)
            job.timed_out = isinstance(unknown.__cause__, UpstreamTimeout)
            return None
        except asyncio.CancelledError:  # the caller went away: it may have been sent
            job.timed_out = True
            self._resolve_later(job, self._clock.monotonic())
            raise
        except SidecarError as error:  # nothing was sent (no token, open breaker, no connection)
            if job.record is not None:  # and any earlier attempt was proven absent
                self.book.update(job.record.decided(NOT_PLACED, (), self._clock.wall()))
            error.attempts += job.attempts
            raise
        job.attempts += response.attempts
        return response

    async def _resolve(self, job: _Job, failed_at: float,
                       deadline: float | None) -> Decision | None:
        """`deadline`: the caller's, less ANSWER_MARGIN_S."""
        limit = failed_at + self.config.resolve_timeout_s
        if deadline is not None:
            limit = min(limit, deadline)
        lookups = self.resolver.lookups
        try:
            decision = await self.resolver.decide(job.write, job.since, self._quiet(job, failed_at),
                                                  limit)
        except asyncio.CancelledError:
            self._resolve_later(job, failed_at)
            raise
        spent = self.resolver.lookups - lookups
        if decision is None:
            self._publish(job, OrderOutcome.UNKNOWN, (), failed_at, lookups=spent)
            self._resolve_later(job, failed_at)
        elif not decision.absent:
            self._settle(job, decision, failed_at, lookups=spent)
        else:
            self._publish(job, NOT_PLACED, (), failed_at, lookups=spent)
        return decision

    def _quiet(self, job: _Job, failed_at: float) -> float:
        """From when OANDA can no longer be acting on the write (see Resolver.decide)."""
        if job.timed_out:
            return max(failed_at, job.sent_at + self._request_timeout_s)
        return failed_at

    def _resolve_later(self, job: _Job, failed_at: float) -> None:
        key = job.write.client_order_id or f"{job.write.kind}:{job.write.spec}:{failed_at}"
        if key in self._background:
            return
        task = asyncio.ensure_future(self._keep_resolving(job, failed_at))
        self._background[key] = task
        task.add_done_callback(lambda _: self._background.pop(key, None))

    async def _keep_resolving(self, job: _Job, failed_at: float) -> None:
        try:
            decision = await self.resolver.decide(
                job.write, job.since, self._quiet(job, failed_at),
                failed_at + self.config.remember_s, background=True)
        except asyncio.CancelledError:
            raise
        except Exception:
            _log.exception("background resolution of %s failed", job.write.client_order_id)
            return
        if decision is not None:
            self._settle(job, decision, failed_at, background=True)

    def _settle(self, job: _Job, decision: Decision, failed_at: float | None = None, *,
                background: bool = False, lookups: int = 0) -> None:
        if job.record is not None:
            job.record = job.record.decided(decision.outcome, decision.transaction_ids,
                                            self._clock.wall())
            self.book.update(job.record)
        if failed_at is not None:
            self._publish(job, decision.outcome, decision.transaction_ids, failed_at,
                          background=background, lookups=lookups)

    def _publish(self, job: _Job, outcome: str, txids: tuple[str, ...], failed_at: float,
                 *, background: bool = False, lookups: int = 0) -> None:
        w = job.write
        self._bus.publish(OrderResolved(
            at=self._clock.wall(), client_order_id=w.client_order_id, account_id=w.account_id,
            kind=w.kind, outcome=outcome, transaction_ids=txids,
            since_transaction_id=job.since, duration_s=self._clock.monotonic() - failed_at,
            background=background, lookups=lookups))

    def _answered(self, call: Call, job: _Job, response: Response) -> Response:
        self.ids.learn(call.path, response.body)
        if job.record is not None:
            placed = 200 <= response.status < 300
            found = _RELATED.search(response.body) if placed else None
            txids = tuple(x.strip().strip('"') for x in found.group(1).decode().split(",")
                          if x.strip()) if found else ()
            job.record = job.record.decided(PLACED if placed else NOT_PLACED, txids,
                                            self._clock.wall())
            self.book.update(job.record)
        answer = _clone(response)  # never the one retry handed back
        answer.attempts, answer.client_order_id = job.attempts, job.write.client_order_id
        return answer

    def _reconciled(self, job: _Job, decision: Decision) -> Response:
        headers = {"Content-Type": "application/json"}
        if decision.request_id:
            headers["RequestID"] = decision.request_id
        return Response(status=decision.status, body=decision.body, headers=headers,
                        attempts=job.attempts, client_order_id=job.write.client_order_id,
                        reconciled=True)

    async def _answer_known(self, call: Call, write: OrderWrite,
                            known: OrderRecord) -> Response | None:
        """A caller resending a client ID sent before: its record if the order exists."""
        job = self._job_of(write, known)
        decision = await self._resolve(job, job.sent_at, _margin(call.deadline))
        if decision is None:
            raise self._unknown(job)
        if decision.absent or decision.outcome == NOT_PLACED:
            return None  # never placed (or rejected): this one is sent
        return self._reconciled(job, decision)

    def _metadata(self, job: _Job) -> dict[str, str]:
        w = job.write
        meta = {"account_id": w.account_id, "since_transaction_id": job.since or ""}
        if w.client_order_id:
            meta["client_order_id"] = w.client_order_id
        return meta

    def _unknown(self, job: _Job) -> OutcomeUnknown:
        w = job.write
        what = f"client ID {w.client_order_id}" if w.client_order_id else f"{w.kind} {w.spec}"
        error = OutcomeUnknown(
            f"the {w.kind} ({what}) was sent and OANDA's records could not tell yet whether it "
            "took effect; the sidecar keeps resolving it: ask ControlService.GetOrderOutcome "
            "with the client_order_id, or look it up in transactions/sinceid from "
            "since_transaction_id. Do not send it again with a new client ID.",
            metadata=self._metadata(job))
        error.attempts = job.attempts
        return error

    def _not_placed(self, job: _Job) -> UpstreamError:
        w = job.write
        error = UpstreamError(
            f"the {w.kind} did not take effect (OANDA's transactions since "
            f"{job.since} hold none of it) and no resend is left (attempts or retry budget): "
            "it is safe to send it again with the same client ID")
        error.metadata = {**self._metadata(job), "outcome": NOT_PLACED}
        error.attempts = job.attempts
        return error

    def _job_of(self, write: OrderWrite, known: OrderRecord) -> _Job:
        """A write sent before: OANDA may act on it until its request timeout after that."""
        sent_at = self._clock.monotonic() - max(0.0, self._clock.wall() - known.sent_at)
        return _Job(write, known.since_transaction_id, known, sent_at=sent_at, timed_out=True)

    async def outcome(self, client_order_id: str) -> OrderRecord | None:
        record = await self.book.find(client_order_id)
        if record and record.outcome == PENDING and not self.book.local(client_order_id):
            job = self._job_of(OrderWrite(record.kind, record.account_id, "", client_order_id),
                               record)
            self._resolve_later(job, job.sent_at)
        return record

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        """Background resolutions end (before the transport does); the store closes. Twice ok."""
        await self.close()

    async def close(self) -> None:
        tasks = list(self._background.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.book.close()
