"""The blocking client: `with SidecarClient("127.0.0.1:50051") as client: ...`."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Generator, Mapping, Sequence
from types import TracebackType
from typing import Any

import grpc

from oanda_sidecar_client import _convert as conv
from oanda_sidecar_client import streams as _streams
from oanda_sidecar_client._convert import Body, QueryValue
from oanda_sidecar_client._gen.oanda.sidecar.v1 import control_pb2 as cpb
from oanda_sidecar_client._rpc import (
    Metadata,
    Methods,
    channel_options,
    control_metadata,
    metadata_pairs,
)
from oanda_sidecar_client.errors import SidecarError, error_from_rpc
from oanda_sidecar_client.models import (
    BreakerOverride,
    BreakerStatus,
    DegradationSetting,
    DegradationStatus,
    ExecuteResult,
    OrderOutcome,
    Priority,
    SidecarStatus,
)
from oanda_sidecar_client.streams import StreamMessage


class SidecarClient:
    """One gRPC channel to the sidecar; safe to share between threads.

    `timeout` (seconds) is the default deadline of every unary call; the sidecar honours it
    end to end (rate-limit waits and retries never run past it). `metadata` is sent with every
    call; `control_token` only with Control RPCs. `wait_for_ready` makes calls wait for the
    channel to connect (a sidecar still starting) instead of failing fast with UNAVAILABLE.
    Failures raise `oanda_sidecar_client.errors.SidecarError` subclasses; OANDA's 4xx/5xx are
    results with `status`.
    """

    def __init__(self, target: str = "127.0.0.1:50051", *, timeout: float | None = 10.0,
                 metadata: Metadata | None = None, control_token: str | None = None,
                 credentials: grpc.ChannelCredentials | None = None,
                 options: Sequence[tuple[str, Any]] | None = None,
                 wait_for_ready: bool = False) -> None:
        opts = channel_options(options)
        self._channel = (grpc.secure_channel(target, credentials, opts) if credentials
                         else grpc.insecure_channel(target, opts))
        self._rpc = Methods(self._channel)
        self.timeout = timeout
        self._metadata = metadata_pairs(metadata)
        self._control_md = control_metadata(self._metadata, control_token)
        self._wait = wait_for_ready

    def __enter__(self) -> SidecarClient:
        return self

    def __exit__(self, exc_type: type[BaseException] | None,
                 exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._channel.close()

    def _unary(self, method: Any, request: Any, timeout: float | None,
               metadata: tuple[tuple[str, str], ...]) -> Any:
        try:
            return method(request, timeout=self.timeout if timeout is None else timeout,
                          metadata=metadata, wait_for_ready=self._wait)
        except grpc.RpcError as error:
            raise error_from_rpc(error) from error

    # --- ProxyService ---------------------------------------------------------------------

    def execute(self, method: str, path: str, *,
                query: Mapping[str, QueryValue] | None = None, body: Body = None,
                headers: Mapping[str, str] | None = None,
                priority: Priority = Priority.NORMAL, timeout: float | None = None,
                metadata: Metadata | None = None) -> ExecuteResult:
        """One OANDA v20 REST call. `body` is bytes, or a dict/list sent as JSON."""
        request = conv.execute_request(method, path, query, body, headers, priority)
        md = self._metadata if metadata is None else (*self._metadata, *metadata_pairs(metadata))
        return conv.execute_result(self._unary(self._rpc.execute, request, timeout, md))

    def get(self, path: str, /, *, query: Mapping[str, QueryValue] | None = None,
            headers: Mapping[str, str] | None = None,
            priority: Priority = Priority.NORMAL, timeout: float | None = None,
            **params: QueryValue) -> ExecuteResult:
        """GET with query parameters as keywords: `get(path, count=10, instruments=[...])`."""
        return self.execute("GET", path, query={**(query or {}), **params},
                            headers=headers, priority=priority, timeout=timeout)

    def post(self, path: str, /, json: Body = None, *,
             query: Mapping[str, QueryValue] | None = None,
             headers: Mapping[str, str] | None = None,
             priority: Priority = Priority.NORMAL,
             timeout: float | None = None) -> ExecuteResult:
        return self.execute("POST", path, query=query, body=json, headers=headers,
                            priority=priority, timeout=timeout)

    def put(self, path: str, /, json: Body = None, *,
            query: Mapping[str, QueryValue] | None = None,
            headers: Mapping[str, str] | None = None,
            priority: Priority = Priority.NORMAL,
            timeout: float | None = None) -> ExecuteResult:
        return self.execute("PUT", path, query=query, body=json, headers=headers,
                            priority=priority, timeout=timeout)

    def patch(self, path: str, /, json: Body = None, *,
              query: Mapping[str, QueryValue] | None = None,
              headers: Mapping[str, str] | None = None,
              priority: Priority = Priority.NORMAL,
              timeout: float | None = None) -> ExecuteResult:
        return self.execute("PATCH", path, query=query, body=json, headers=headers,
                            priority=priority, timeout=timeout)

    def delete(self, path: str, /, *, query: Mapping[str, QueryValue] | None = None,
               headers: Mapping[str, str] | None = None,
               priority: Priority = Priority.NORMAL,
               timeout: float | None = None) -> ExecuteResult:
        return self.execute("DELETE", path, query=query, headers=headers,
                            priority=priority, timeout=timeout)

    # --- ControlService -------------------------------------------------------------------

    def get_status(self, *, timeout: float | None = None) -> SidecarStatus:
        response = self._unary(self._rpc.get_status, cpb.GetStatusRequest(), timeout,
                               self._control_md)
        return conv.sidecar_status(response)

    def reset_breaker(self, name: str = "", *,
                      timeout: float | None = None) -> tuple[BreakerStatus, ...]:
        """Reset one breaker (or all, with the empty name) to CLOSED; returns every breaker."""
        response = self._unary(self._rpc.reset_breaker, cpb.ResetBreakerRequest(name=name),
                               timeout, self._control_md)
        return conv.breakers(response.breakers)

    def set_breaker_override(self, name: str, mode: BreakerOverride, *,
                             timeout: float | None = None) -> tuple[BreakerStatus, ...]:
        """Force a breaker open, disable it, or (mode "none") remove the override."""
        request = cpb.SetBreakerOverrideRequest(name=name, override=conv.override_value(mode))
        response = self._unary(self._rpc.set_breaker_override, request, timeout,
                               self._control_md)
        return conv.breakers(response.breakers)

    def get_degradation(self, *, timeout: float | None = None) -> DegradationStatus:
        response = self._unary(self._rpc.get_degradation, cpb.GetDegradationRequest(),
                               timeout, self._control_md)
        return conv.degradation_status(response)

    def set_degradation(self, level: DegradationSetting, reason: str = "", *,
                        timeout: float | None = None) -> DegradationStatus:
        """Hold `none`, `cached_data` or `read_only` manually; `automatic` hands control back."""
        request = cpb.SetDegradationRequest(level=conv.level_value(level), reason=reason)
        response = self._unary(self._rpc.set_degradation, request, timeout,
                               self._control_md)
        return conv.degradation_status(response)

    def order_outcome(self, client_order_id: str, *,
                      timeout: float | None = None) -> OrderOutcome:
        """What became of the order with this client ID (ControlService.GetOrderOutcome).

        After OutcomeUnknown, poll this until `outcome.decided`: the sidecar keeps resolving.
        """
        request = cpb.GetOrderOutcomeRequest(client_order_id=client_order_id)
        response = self._unary(self._rpc.get_order_outcome, request, timeout,
                                     self._control_md)
        return conv.order_outcome(response)

    # --- ProxyService.Stream -----------------------------------------------------------------

    def transactions(self, account: str, *, since: str | None = None,
                     resume: bool = True) -> Generator[StreamMessage, None, None]:
        """The account's transactions: first every one after `since`, then live ones, each
        exactly once in ID order (heartbeats and the sidecar's notices in between). After a
        SLOW_CONSUMER or a sidecar restart it resumes by itself from the last ID it yielded."""
        cursor = _streams.Cursor(since)
        for msg in self._stream(lambda: _streams.transactions_request(account, cursor.since),
                                resume):
            if cursor.accept(msg):
                yield msg

    def prices(self, account: str, instruments: Sequence[str] | str, *,
               snapshot: bool = True, home_conversions: bool = False,
               resume: bool = True) -> Generator[StreamMessage, None, None]:
        """Prices of `instruments` (newest wins if you read slowly), heartbeats, notices."""
        request = _streams.prices_request(account, tuple(instruments) if not isinstance(
            instruments, str) else instruments, snapshot, home_conversions)
        latest, cond = _streams.Latest(), threading.Condition()
        failure: list[BaseException] = []
        calls: list[Any] = []

        def read() -> None:
            try:
                for msg in self._stream(lambda: request, resume, calls):
                    with cond:
                        latest.put(msg)
                        cond.notify()
            except BaseException as exc:  # handed to the reader below
                with cond:
                    failure.append(exc)
                    cond.notify()

        threading.Thread(target=read, name="oanda-sidecar-prices", daemon=True).start()
        try:
            while True:
                with cond:
                    cond.wait_for(lambda: len(latest) > 0 or bool(failure))
                    msg = latest.take()
                    if msg is None:
                        raise failure[0]
                yield msg
        finally:
            calls.append(None)  # stop: no resume after this
            for call in calls[:-1]:
                call.cancel()

    def _stream(self, request: Callable[[], Any], resume: bool,
                calls: list[Any] | None = None) -> Generator[StreamMessage, None, None]:
        """`calls` (from another thread): the open call is kept there; a None appended stops."""
        attempt, rng = 0, random.Random()
        while True:
            if calls is not None and None in calls:
                return
            call = self._rpc.stream(request(), metadata=self._metadata,
                                    wait_for_ready=self._wait or attempt > 0)
            if calls is not None:
                calls[:] = [call, *(c for c in calls if c is None)]
            error: SidecarError | None = None
            try:
                for pb in call:
                    attempt = 0
                    yield _streams.message(pb)
            except grpc.RpcError as exc:
                error = error_from_rpc(exc)
                if not resume or not _streams.resumable(error):
                    raise error from exc
            finally:
                call.cancel()
            if not resume:
                return
            time.sleep(_streams.resume_delay(
                attempt if error is None or error.reason != "SLOW_CONSUMER" else 0, rng))
            attempt += 1

    def watch_status(self) -> Generator[SidecarStatus, None, None]:
        """The current status, then one on every change; `close()` (or leaving it) cancels."""
        call = self._rpc.watch_status(cpb.WatchStatusRequest(), metadata=self._control_md,
                                      wait_for_ready=self._wait)
        try:
            for message in call:
                yield conv.sidecar_status(message)
        except grpc.RpcError as error:
            raise error_from_rpc(error) from error
        finally:
            call.cancel()
