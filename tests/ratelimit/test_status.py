"""The shared limit as operators see it: config errors, GetStatus, ctl status, the log line and
the metrics."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from oanda_sidecar_client._convert import sidecar_status

from sidecar.config import load_config
from sidecar.ctl import format_status
from sidecar.errors import ConfigError
from sidecar.events import EventBus, SharedLimitChanged, SharedLimitFailed
from sidecar.observability.logging import EventLogger
from sidecar.observability.metrics import Metrics
from sidecar.ratelimit.snapshot import RateLimitSnapshot, SharedSnapshot
from sidecar.server.convert import status_response
from sidecar.status import StatusSnapshot
from tests.observability.test_logging import configure as configure_logs
from tests.observability.test_logging import lines

configure = configure_logs  # the fixture, under its own name


@pytest.mark.parametrize(("text", "named"), [
    ("rate_limit: {critical_max_share: 1.5}", "rate_limit.critical_max_share"),
    ("rate_limit: {shared: {redis_url: 'http://x'}}", "rate_limit.shared.redis_url"),
    ("rate_limit: {shared: {key: 'a{b}'}}", "rate_limit.shared.key"),
    ("rate_limit: {shared: {timeout_s: 0}}", "rate_limit.shared.timeout_s"),
    ("rate_limit: {shared: {critical_reserve: 1}}", "rate_limit.shared.critical_reserve"),
    ("rate_limit: {shared: {colour: red}}", "rate_limit.shared.colour"),
])
def test_bad_shared_keys_are_named(tmp_path: Path, text: str, named: str) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path, env={}, read_secrets=False)
    assert str(info.value).startswith(named)


def test_defaults_are_the_contract() -> None:
    config = load_config(None, env={}, read_secrets=False).rate_limit
    assert config.critical_max_share == 0.8
    shared = config.shared
    assert (shared.redis_url, shared.key, shared.critical_reserve, shared.fallback_rate_per_s,
            shared.timeout_s) == (None, None, 0.2, 25.0, 0.05)


def snapshot(healthy: bool) -> StatusSnapshot:
    limit = RateLimitSnapshot(100, 100, 20, 3.5, 1, 0, 7, 70, (),
                              SharedSnapshot("redis", healthy, "0123abcd", 4, 1_700_000_000.0))
    return StatusSnapshot(breakers=[], rate_limit=limit, degradation=None, upstream=None,
                          ready=True)


def test_get_status_and_ctl_show_the_shared_limit() -> None:
    message = status_response(snapshot(healthy=False), "test")
    shared = message.rate_limit.shared
    assert (shared.backend, shared.healthy, shared.key_hash, shared.errors_total) == (
        "redis", False, "0123abcd", 4)
    text = format_status(sidecar_status(message))
    assert "shared:    redis FALLBACK (local rate), key 0123abcd, errors 4" in text
    local = status_response(StatusSnapshot([], RateLimitSnapshot(100, 100, 20, 3, 0, 0, 0, 0, ()),
                                           None, None, True), "test")
    assert not local.rate_limit.HasField("shared")
    assert "shared:" not in format_status(sidecar_status(local))


def test_each_change_is_a_log_line_and_a_metric(configure: Any) -> None:
    stream = configure()
    bus = EventBus()
    EventLogger(bus)
    metrics = Metrics(bus)
    bus.publish(SharedLimitFailed(1.0, "decide", "timeout"))
    bus.publish(SharedLimitChanged(1.0, "redis", False, "0123abcd", "timeout", "TimeoutError"))
    text = metrics.render()[0].decode()
    assert 'oanda_sidecar_ratelimit_shared_errors_total{reason="timeout"} 1.0' in text
    assert "oanda_sidecar_ratelimit_shared_fallback 1.0" in text
    bus.publish(SharedLimitChanged(2.0, "redis", True, "0123abcd", "recovered"))
    assert "oanda_sidecar_ratelimit_shared_fallback 0.0" in metrics.render()[0].decode()
    down, up = (line for line in lines(stream) if line["event"] == "ratelimit.shared")
    assert (down["level"], down["healthy"], down["reason"]) == ("warning", False, "timeout")
    assert (up["level"], up["healthy"], up["key_hash"]) == ("info", True, "0123abcd")


def test_a_shared_limit_change_wakes_status_watchers() -> None:
    from sidecar.status import StatusBoard

    bus = EventBus()
    board = StatusBoard(bus)
    before = board.version
    bus.publish(SharedLimitChanged(1.0, "redis", False, "0123abcd", "connection_error"))
    assert board.version == before + 1
