"""How the soak's load names the answers it gets, on both fronts."""

from __future__ import annotations

from soak.rest import rest_outcome
from soak.traffic import Tally, http_outcome


def test_http_answers_by_class() -> None:
    assert [http_outcome(s) for s in (200, 201, 404, 503)] == ["ok", "ok", "http_4xx",
                                                               "http_5xx"]


def test_rest_front_tells_sidecar_decisions_from_oanda_answers() -> None:
    assert rest_outcome(200, b"{}", False) == "ok"
    assert rest_outcome(200, b"{}", True) == "rest:cached"
    assert rest_outcome(503, b'{"errorCode": "CIRCUIT_OPEN", "errorMessage": "x"}',
                        False) == "rest:circuit_open"
    # OANDA's (the simulator's) own 503 has no sidecar reason: an upstream 5xx.
    assert rest_outcome(503, b'{"errorMessage": "Timeout waiting for response."}',
                        False) == "rest:http_5xx"
    assert rest_outcome(502, b"<html>bad gateway</html>", False) == "rest:http_5xx"
    assert rest_outcome(400, b'{"errorCode": "MARKET_HALTED"}', False) == "rest:http_4xx"


def test_tally_counts_by_minute_since_the_start() -> None:
    tally = Tally(started=100.0)
    tally.record("ok", 100.0)
    tally.record("ok", 159.9)
    tally.record("circuit_open", 160.0)
    assert tally.by_minute == {0: {"ok": 2}, 1: {"circuit_open": 1}}
    assert tally.total() == {"ok": 2, "circuit_open": 1}


def test_upstream_watch_counts_429s_and_the_busiest_second() -> None:
    from soak.upstream import UpstreamWatch, max_in_window

    assert max_in_window([0.0, 0.5, 0.99, 1.0, 1.2]) == (4, 0.5)
    assert max_in_window([0.0, 1.0, 2.0]) == (1, 0.0)  # t and t + 1.0 are in different windows
    assert max_in_window([]) == (0, 0.0)
    watch = UpstreamWatch("http://unused")
    watch.take([{"path": "/v3/accounts", "at": 1.0 + i / 200, "status": 200} for i in range(150)]
               + [{"path": "/v3/accounts", "at": 1.8, "status": 429},
                  {"path": "/_sim/faults", "at": 1.8, "status": 201}])
    assert (watch.requests, watch.status_429) == (151, 1)
    assert watch.max_per_s == 151 and watch.max_at == 1.0
    watch.take([{"path": "/v3/x", "at": 9.0, "status": 200}])
    assert watch.max_per_s == 151 and watch.requests == 152
