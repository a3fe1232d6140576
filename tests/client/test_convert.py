"""Arguments → ExecuteRequest and ExecuteResponse → ExecuteResult, without a server."""

from __future__ import annotations

import json

import pytest
from oanda_sidecar_client import ExecuteResult, Priority
from oanda_sidecar_client._convert import execute_request, execute_result
from oanda_sidecar_client._gen.oanda.sidecar.v1 import proxy_pb2 as ppb


def test_dict_body_is_compact_json_and_query_values_are_oanda_strings() -> None:
    request = execute_request(
        "post", "/v3/accounts/A/orders",
        {"instruments": ["EUR_USD", "USD_JPY"], "count": 5, "includeUnits": False, "to": None},
        {"order": {"units": "100"}}, {"ClientRequestID": "r1"}, Priority.CRITICAL)
    assert request.method == "POST"
    assert json.loads(request.body) == {"order": {"units": "100"}}
    assert b" " not in request.body
    assert dict(request.query) == {"instruments": "EUR_USD,USD_JPY", "count": "5",
                                   "includeUnits": "false"}
    assert dict(request.headers) == {"ClientRequestID": "r1"}
    assert request.priority == ppb.PRIORITY_CRITICAL


@pytest.mark.parametrize(("body", "wire"), [(None, b""), (b"{}", b"{}"), ("[1]", b"[1]"),
                                            (bytearray(b"x"), b"x"), ([1, 2], b"[1,2]")])
def test_body_forms(body: object, wire: bytes) -> None:
    assert execute_request("PUT", "/v3/x", None, body, None,  # type: ignore[arg-type]
                           Priority.NORMAL).body == wire


def test_result_reads_the_response() -> None:
    response = ppb.ExecuteResponse(
        status=201, body=b'{"orderFillTransaction":{"id":"7"}}',
        headers={"RequestID": "42", "Location": "/v3/x"}, attempts=2, from_cache=False,
        degradation=ppb.DEGRADATION_LEVEL_READ_ONLY)
    result = execute_result(response)
    assert result == ExecuteResult(status=201, body=response.body,
                                   headers={"RequestID": "42", "Location": "/v3/x"}, attempts=2,
                                   from_cache=False, cache_age_ms=0, degradation="read_only")
    assert result.ok and result.request_id == "42"
    assert result.json()["orderFillTransaction"]["id"] == "7"
    assert not execute_result(ppb.ExecuteResponse(status=404)).ok
    assert execute_result(ppb.ExecuteResponse(status=200)).degradation == "unspecified"
