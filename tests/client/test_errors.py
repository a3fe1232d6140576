"""The error parser, on fake `grpc.aio.AioRpcError`s whose details the real server encoder made."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from hypothesis import given, settings
from hypothesis import strategies as st
from oanda_sidecar_client import errors

from sidecar import errors as server_errors
from sidecar.server.interceptors import status_details

KEY = "grpc-status-details-bin"


def fake_error(error: server_errors.SidecarError) -> grpc.aio.AioRpcError:
    """What the aio client sees when the sidecar's interceptor aborts with `error`."""
    trailing = grpc.aio.Metadata((KEY, status_details(error)))
    return grpc.aio.AioRpcError(error.code, grpc.aio.Metadata(), trailing, details=error.message)


def test_unauthenticated_is_mapped_from_its_reason() -> None:
    err = errors.error_from_rpc(fake_error(server_errors.Unauthenticated("bad token")))
    assert type(err) is errors.Unauthenticated
    assert err.code is grpc.StatusCode.UNAUTHENTICATED
    assert (err.reason, err.message, err.retry_after) == ("UNAUTHENTICATED", "bad token", None)


def test_circuit_open_carries_the_time_to_the_next_probe() -> None:
    err = errors.error_from_rpc(fake_error(server_errors.CircuitOpen("open", retry_after_s=1.25)))
    assert type(err) is errors.CircuitOpen
    assert err.code is grpc.StatusCode.UNAVAILABLE
    assert err.retry_after == pytest.approx(1.25)
    assert "retry after 1.250s" in str(err)


def test_rate_limited_carries_retry_after() -> None:
    err = errors.error_from_rpc(
        fake_error(server_errors.RateLimited("no token in 5s", retry_after_s=0.04)))
    assert type(err) is errors.RateLimited
    assert err.code is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert err.retry_after == pytest.approx(0.04)


def test_invalid_request_names_the_field() -> None:
    err = errors.error_from_rpc(fake_error(server_errors.InvalidRequest("no", field="path")))
    assert isinstance(err, errors.InvalidRequest)
    assert err.metadata == {"field": "path"} and err.field == "path"


def test_same_code_different_reasons_are_different_classes() -> None:
    """UNAVAILABLE means three different things: only the reason tells them apart."""
    cases = {server_errors.CircuitOpen: errors.CircuitOpen,
             server_errors.UpstreamError: errors.UpstreamUnavailable,
             server_errors.OutcomeUnknown: errors.OutcomeUnknown}
    for server_cls, client_cls in cases.items():
        assert type(errors.error_from_rpc(fake_error(server_cls("x")))) is client_cls


def test_no_details_keeps_the_grpc_code() -> None:
    """A transport failure (sidecar down) has no details: a plain SidecarError, code kept."""
    raw = grpc.aio.AioRpcError(grpc.StatusCode.UNAVAILABLE, grpc.aio.Metadata(),
                               grpc.aio.Metadata(), details="failed to connect")
    err = errors.error_from_rpc(raw)
    assert type(err) is errors.SidecarError
    assert (err.code, err.reason, err.message) == (
        grpc.StatusCode.UNAVAILABLE, "UNAVAILABLE", "failed to connect")


def test_client_side_deadline_without_details_is_deadline_exceeded() -> None:
    raw = grpc.aio.AioRpcError(grpc.StatusCode.DEADLINE_EXCEEDED, grpc.aio.Metadata(),
                               grpc.aio.Metadata(), details="Deadline Exceeded")
    assert type(errors.error_from_rpc(raw)) is errors.DeadlineExceeded


def test_internal_and_foreign_domains_stay_plain() -> None:
    internal = errors.error_from_rpc(fake_error(server_errors.SidecarError("boom")))
    assert type(internal) is errors.SidecarError and internal.reason == "INTERNAL"
    info = error_details_pb2.ErrorInfo(reason="CIRCUIT_OPEN", domain="envoy.example")
    packed = any_pb2.Any()
    packed.Pack(info)
    status = status_pb2.Status(code=14, message="upstream", details=[packed])
    raw = grpc.aio.AioRpcError(grpc.StatusCode.UNAVAILABLE, grpc.aio.Metadata(),
                               grpc.aio.Metadata((KEY, status.SerializeToString())))
    err = errors.error_from_rpc(raw)
    assert type(err) is errors.SidecarError and err.reason == "CIRCUIT_OPEN"


def test_garbled_details_do_not_hide_the_error() -> None:
    raw = grpc.aio.AioRpcError(grpc.StatusCode.INTERNAL, grpc.aio.Metadata(),
                               grpc.aio.Metadata((KEY, b"\xff\xfe not a status")), details="x")
    err = errors.error_from_rpc(raw)
    assert (type(err), err.code, err.message) == (errors.SidecarError,
                                                 grpc.StatusCode.INTERNAL, "x")


SERVER_TO_CLIENT: dict[type[server_errors.SidecarError], type[errors.SidecarError]] = {
    server_errors.SidecarError: errors.SidecarError,
    server_errors.CircuitOpen: errors.CircuitOpen,
    server_errors.RateLimited: errors.RateLimited,
    server_errors.ReadOnly: errors.ReadOnly,
    server_errors.DeadlineExceeded: errors.DeadlineExceeded,
    server_errors.Unauthenticated: errors.Unauthenticated,
    server_errors.NotFound: errors.NotFound,
    server_errors.UpstreamError: errors.UpstreamUnavailable,
    server_errors.UpstreamTimeout: errors.UpstreamUnavailable,
    server_errors.OutcomeUnknown: errors.OutcomeUnknown,
}


@settings(max_examples=200)
@given(kind=st.sampled_from(sorted(SERVER_TO_CLIENT, key=lambda c: c.__name__)),
       message=st.text(max_size=50),
       retry_after=st.none() | st.floats(min_value=0, max_value=3600),
       metadata=st.dictionaries(st.text(min_size=1, max_size=8), st.text(max_size=8),
                                max_size=3))
def test_every_server_error_round_trips(kind: type[server_errors.SidecarError], message: str,
                                        retry_after: float | None,
                                        metadata: dict[str, str]) -> None:
    """Law: whatever the server encodes, the client decodes to the class, code and values."""
    source: server_errors.SidecarError
    if issubclass(kind, server_errors.UpstreamError):
        source = kind(message, retry_after_s=retry_after)
        source.metadata = metadata
    else:
        source = kind(message, retry_after_s=retry_after, metadata=metadata)
    err = errors.error_from_rpc(fake_error(source))
    assert type(err) is SERVER_TO_CLIENT[kind]
    assert (err.code, err.reason, err.message) == (source.code, source.reason, message)
    assert err.metadata == metadata
    if retry_after is None:
        assert err.retry_after is None
    else:
        assert err.retry_after == pytest.approx(retry_after, abs=1e-6)


def test_errors_pickle() -> None:
    """Exceptions cross process boundaries (multiprocessing, task queues) intact."""
    import pickle

    err = errors.CircuitOpen(grpc.StatusCode.UNAVAILABLE, "CIRCUIT_OPEN", "open", 2.0, {"a": "b"})
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is errors.CircuitOpen and repr(back) == repr(err)
