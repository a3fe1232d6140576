"""Domain errors → gRPC status with google.rpc details, in exactly one place.

Every SidecarError becomes its gRPC code with an ErrorInfo (domain "oanda-sidecar") and, when a
wait helps, a RetryInfo. Anything unexpected becomes INTERNAL and is logged with its traceback.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import error_details_pb2, status_pb2

from sidecar.errors import SidecarError

DOMAIN = "oanda-sidecar"
_log = logging.getLogger("sidecar.server")


def status_details(error: SidecarError) -> bytes:
    """The serialized google.rpc.Status for `grpc-status-details-bin`."""
    info = error_details_pb2.ErrorInfo(reason=error.reason, domain=DOMAIN,
                                       metadata=error.metadata)
    details = [_pack(info)]
    if error.retry_after_s is not None:
        delay = duration_pb2.Duration()
        delay.FromNanoseconds(int(max(0.0, error.retry_after_s) * 1e9))
        details.append(_pack(error_details_pb2.RetryInfo(retry_delay=delay)))
    status = status_pb2.Status(code=error.code.value[0], message=error.message, details=details)
    serialized: bytes = status.SerializeToString()
    return serialized


def _pack(message: Any) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


async def abort_with(context: grpc.aio.ServicerContext[Any, Any], error: SidecarError) -> None:
    await context.abort(error.code, error.message,
                        trailing_metadata=(("grpc-status-details-bin", status_details(error)),))


def _internal(exc: BaseException) -> SidecarError:
    _log.error("unexpected error in an RPC", exc_info=exc)
    return SidecarError(f"internal error: {type(exc).__name__}")


class ErrorInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Wraps every handler once (cached per method), translating errors as they leave."""

    def __init__(self) -> None:
        self._cache: dict[str, grpc.RpcMethodHandler] = {}

    async def intercept_service(
        self, continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        cached = self._cache.get(details.method)
        if cached is not None:
            return cached
        handler = await continuation(details)
        if handler is None:
            return None
        if handler.unary_unary is not None:
            handler = handler._replace(unary_unary=_wrap_unary(handler.unary_unary))
        elif handler.unary_stream is not None:
            handler = handler._replace(unary_stream=_wrap_stream(handler.unary_stream))
        self._cache[details.method] = handler
        return handler


def _wrap_unary(behaviour: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    async def wrapped(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        try:
            return await behaviour(request, context)
        except SidecarError as error:
            await abort_with(context, error)
        except grpc.aio.AbortError:
            raise
        except Exception as exc:
            await abort_with(context, _internal(exc))
    return wrapped


def _wrap_stream(behaviour: Callable[..., AsyncIterator[Any]]) -> Callable[..., AsyncIterator[Any]]:
    async def wrapped(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        try:
            async for item in behaviour(request, context):
                yield item
        except SidecarError as error:
            await abort_with(context, error)
        except grpc.aio.AbortError:
            raise
        except Exception as exc:
            await abort_with(context, _internal(exc))
    return wrapped
