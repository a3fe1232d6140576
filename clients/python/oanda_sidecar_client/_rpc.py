"""The RPC methods bound to one channel (sync or aio: both channels share this API).

Built here rather than with the generated `*_pb2_grpc` stubs because those are untyped; the
multicallables are made once per client, so nothing is looked up per call.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from oanda_sidecar_client._gen.oanda.sidecar.v1 import control_pb2 as cpb
from oanda_sidecar_client._gen.oanda.sidecar.v1 import proxy_pb2 as ppb

_PROXY = "/oanda.sidecar.v1.ProxyService/"
_CONTROL = "/oanda.sidecar.v1.ControlService/"
# Candles and transaction pages can exceed gRPC's default 4 MiB receive limit.
DEFAULT_OPTIONS: tuple[tuple[str, Any], ...] = (
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
)
Metadata = Mapping[str, str] | Sequence[tuple[str, str]]


class Methods:
    def __init__(self, channel: Any) -> None:
        unary, stream = channel.unary_unary, channel.unary_stream
        self.execute = unary(_PROXY + "Execute",
                             request_serializer=ppb.ExecuteRequest.SerializeToString,
                             response_deserializer=ppb.ExecuteResponse.FromString)
        self.stream = stream(_PROXY + "Stream",
                             request_serializer=ppb.StreamRequest.SerializeToString,
                             response_deserializer=ppb.StreamMessage.FromString)
        self.get_status = unary(_CONTROL + "GetStatus",
                                request_serializer=cpb.GetStatusRequest.SerializeToString,
                                response_deserializer=cpb.GetStatusResponse.FromString)
        self.reset_breaker = unary(
            _CONTROL + "ResetBreaker",
            request_serializer=cpb.ResetBreakerRequest.SerializeToString,
            response_deserializer=cpb.ResetBreakerResponse.FromString)
        self.set_breaker_override = unary(
            _CONTROL + "SetBreakerOverride",
            request_serializer=cpb.SetBreakerOverrideRequest.SerializeToString,
            response_deserializer=cpb.SetBreakerOverrideResponse.FromString)
        self.get_degradation = unary(
            _CONTROL + "GetDegradation",
            request_serializer=cpb.GetDegradationRequest.SerializeToString,
            response_deserializer=cpb.GetDegradationResponse.FromString)
        self.set_degradation = unary(
            _CONTROL + "SetDegradation",
            request_serializer=cpb.SetDegradationRequest.SerializeToString,
            response_deserializer=cpb.SetDegradationResponse.FromString)
        self.get_order_outcome = unary(
            _CONTROL + "GetOrderOutcome",
            request_serializer=cpb.GetOrderOutcomeRequest.SerializeToString,
            response_deserializer=cpb.GetOrderOutcomeResponse.FromString)
        self.watch_status = stream(
            _CONTROL + "WatchStatus",
            request_serializer=cpb.WatchStatusRequest.SerializeToString,
            response_deserializer=cpb.GetStatusResponse.FromString)


def channel_options(options: Sequence[tuple[str, Any]] | None) -> list[tuple[str, Any]]:
    """The defaults, overridden by the caller's options of the same name."""
    given = list(options or ())
    names = {name for name, _ in given}
    return [*(o for o in DEFAULT_OPTIONS if o[0] not in names), *given]


def metadata_pairs(metadata: Metadata | None) -> tuple[tuple[str, str], ...]:
    if metadata is None:
        return ()
    items = metadata.items() if isinstance(metadata, Mapping) else metadata
    return tuple((k.lower(), v) for k, v in items)


def control_metadata(base: tuple[tuple[str, str], ...],
                     control_token: str | None) -> tuple[tuple[str, str], ...]:
    """The token goes on Control RPCs only: Execute never needs it."""
    if not control_token:
        return base
    return (*base, ("authorization", f"Bearer {control_token}"))
