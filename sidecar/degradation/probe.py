"""The recovery probe: while degraded, a cheap GET every `probe_interval_s` asks if OANDA is back.

The probe goes through the breaker and the rate limiter (never around them): it spends a token
like any request and, while the breaker is open, it is refused until the breaker lets one trial
through, at which point the probe is that trial. When the breaker refuses, the probe sleeps until
the breaker's next trial instead of its own interval, so recovery is never late by a full interval.
Results go to the degradation controller, which counts successes in a row.

It idles (no task wake-ups, no requests) while the automatic level is NONE.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Protocol

from sidecar.clock import Clock
from sidecar.degradation.config import DegradationConfig
from sidecar.errors import CircuitOpen, SidecarError
from sidecar.pipeline import Call, Handler
from sidecar.upstream.endpoints import resolve
from sidecar.vocabulary import classify


class ProbeTarget(Protocol):
    """What the probe needs of the degradation controller."""

    @property
    def needs_probe(self) -> bool: ...

    async def wait_until_degraded(self) -> None: ...

    def record_probe(self, ok: bool, detail: str) -> None: ...


class RecoveryProbe:
    def __init__(self, target: ProbeTarget, handler: Handler, clock: Clock,
                 config: DegradationConfig, timeout_s: float) -> None:
        self._target = target
        self._handler = handler
        self._clock = clock
        self._interval = config.probe_interval_s
        self._path = config.probe_path
        self._endpoint = resolve(config.probe_path)
        self._timeout = timeout_s
        self._task: asyncio.Task[None] | None = None
        self.probes = 0  # sent or refused, for tests and status

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.ensure_future(self.run())

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def run(self) -> None:
        """Until cancelled: wait for a degraded level, then probe every interval."""
        delay = self._interval
        while True:
            if not self._target.needs_probe:
                await self._target.wait_until_degraded()
                delay = self._interval
            await self._clock.sleep(delay)
            if not self._target.needs_probe:
                continue
            started = self._clock.monotonic()
            ok, detail, retry_after = await self.probe_once()
            self._target.record_probe(ok, detail)
            if retry_after is None:  # a steady cadence: the probe's own duration included
                delay = self._interval - (self._clock.monotonic() - started)
            else:
                delay = retry_after

    async def probe_once(self) -> tuple[bool, str, float | None]:
        """(success, what happened, seconds until the breaker allows a trial when it refused)."""
        self.probes += 1
        call = Call(method="GET", path=self._path, endpoint=self._endpoint,
                    deadline=self._clock.monotonic() + self._timeout)
        try:
            response = await self._handler(call)
        except CircuitOpen as exc:
            return False, exc.message, exc.retry_after_s
        except SidecarError as exc:
            return False, f"{exc.reason}: {exc.message}", None
        except Exception as exc:  # e.g. the transport closing under us at shutdown
            return False, f"{type(exc).__name__}: {exc}", None
        status = response.status
        ok = not classify(status).is_failure
        return ok, f"GET {self._path} answered {status}", None
