"""Delivery: one bounded queue and one worker task per channel, retries with backoff.

`enqueue` never blocks: when the queue is full the OLDEST queued alert is dropped (and logged at
ERROR with its content): the newest alerts describe the current state, and an older alert for
the same condition is superseded by them anyway. Waits between attempts use the injected clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from typing import Any, Protocol

import aiohttp

from sidecar.alerting.aggregator import Alert
from sidecar.backoff import backoff_ceiling, honour_retry_after, parse_retry_after
from sidecar.clock import Clock

log = logging.getLogger("sidecar.alerting")
ResultHook = Callable[[str, str], None]


def classify(status: int) -> str:
    """A receiver's answer: "sent" (2xx), "retry" (429, 5xx) or "fatal" (a bad payload, a gone
    webhook: resending the same document cannot help). PagerDuty and Slack agree on this."""
    if 200 <= status < 300:
        return "sent"
    if status == 429 or status >= 500:
        return "retry"
    return "fatal"


class Channel(Protocol):
    name: str
    url: str
    secrets: tuple[str, ...]

    def render(self, alert: Alert) -> dict[str, Any]: ...


class Dispatcher:
    def __init__(self, channel: Channel, clock: Clock, *, queue_size: int, max_attempts: int,
                 timeout_s: float, backoff_base_s: float, backoff_max_s: float,
                 on_result: ResultHook | None = None) -> None:
        self.channel = channel
        self._clock = clock
        self._queue: asyncio.Queue[Alert] = asyncio.Queue(maxsize=queue_size)
        self._max_attempts = max_attempts
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._base, self._cap = backoff_base_s, backoff_max_s
        self._on_result = on_result
        self._session: aiohttp.ClientSession | None = None
        self._task: asyncio.Task[None] | None = None
        self._current: Alert | None = None

    def enqueue(self, alert: Alert) -> None:
        alert.status[self.channel.name] = "queued"
        if self._queue.full():
            oldest = self._queue.get_nowait()
            self._queue.task_done()
            self._give_up(oldest, "dropped", "delivery queue full; dropped the oldest alert")
        self._queue.put_nowait(alert)

    def start(self, session: aiohttp.ClientSession) -> None:
        self._session = session
        self._task = asyncio.get_running_loop().create_task(
            self._run(), name=f"alerting-{self.channel.name}")

    async def drain(self) -> None:
        await self._queue.join()

    async def cancel(self) -> None:
        """Stop the worker; whatever was not delivered is logged at ERROR."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._current is not None:
            self._give_up(self._current, "dropped", "stopped while delivering")
            self._current = None
        while not self._queue.empty():
            self._give_up(self._queue.get_nowait(), "dropped", "stopped before delivery")
            self._queue.task_done()

    async def _run(self) -> None:
        while True:
            alert = await self._queue.get()
            self._current = alert
            try:
                await self._deliver(alert)
            except Exception as exc:  # a bug must not kill the worker; the alert is reported
                log.exception("alert delivery failed unexpectedly on %s", self.channel.name)
                self._give_up(alert, "failed", f"internal error: {type(exc).__name__}")
            finally:
                self._current = None
                self._queue.task_done()

    async def _deliver(self, alert: Alert) -> None:
        outcome = "not attempted"
        for attempt in range(1, self._max_attempts + 1):
            verdict, outcome, retry_after = await self._attempt(alert)
            if verdict == "sent":
                alert.status[self.channel.name] = "sent"
                self._count("sent")
                return
            if verdict == "fatal" or attempt == self._max_attempts:
                break
            self._count("retried")
            wait = backoff_ceiling(attempt, self._base, self._cap)
            await self._clock.sleep(honour_retry_after(wait, retry_after, self._cap))
        self._give_up(alert, "failed",
                      f"{outcome} after {attempt} attempt{'s' if attempt > 1 else ''}")

    async def _attempt(self, alert: Alert) -> tuple[str, str, float | None]:
        """(verdict, what happened, Retry-After) for one POST."""
        assert self._session is not None
        body = self.channel.render(alert)
        try:
            async with self._session.post(self.channel.url, json=body,
                                          timeout=self._timeout) as resp:
                await resp.read()
                verdict = classify(resp.status)
                wait = parse_retry_after(resp.headers.get("Retry-After"))
                return verdict, f"HTTP {resp.status}", wait
        except TimeoutError:
            return "retry", "timeout", None
        except aiohttp.ClientError as exc:
            return "retry", self._redact(f"{type(exc).__name__}: {exc}"), None

    def _give_up(self, alert: Alert, result: str, why: str) -> None:
        alert.status[self.channel.name] = result
        self._count(result)
        content = {"channel": self.channel.name, "condition": alert.condition,
                   "action": alert.action, "severity": alert.severity,
                   "summary": alert.summary, "count": alert.count,
                   "occurrences": alert.occurrences, "details": alert.details}
        text = self._redact(json.dumps(content, default=str, ensure_ascii=False))
        why = self._redact(why)
        log.error("alert not delivered (%s): %s %s", result, why, text,
                  extra={"alert": json.loads(text), "reason": why})

    def _redact(self, text: str) -> str:
        # Connection errors may quote the URL, and the Slack URL is itself the secret.
        for secret in self.channel.secrets:
            if secret:
                text = text.replace(secret, "<redacted>")
        return text

    def _count(self, result: str) -> None:
        if self._on_result is not None:
            try:
                self._on_result(self.channel.name, result)
            except Exception:
                log.exception("alert result hook failed")
