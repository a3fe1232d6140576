"""Stream changes and gap fills are log lines (JSON), the account masked."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from sidecar.config import LoggingConfig
from sidecar.events import EventBus, StreamChanged, StreamReplayed
from sidecar.observability.logging import EventLogger, configure_logging


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    out = io.StringIO()
    configure_logging(LoggingConfig(), [], out)
    yield out
    for handler in [h for h in root.handlers if h not in handlers]:
        root.removeHandler(handler)
    root.setLevel(level)
    logging.captureWarnings(False)
    structlog.reset_defaults()


def test_stream_lines(stream: io.StringIO) -> None:
    bus = EventBus()
    EventLogger(bus)
    bus.publish(StreamChanged(1.0, "transactions", "transactions ***-***-****-001",
                              "reconnecting", "heartbeat_timeout", 2, 0.5,
                              "no line for 10 s (account 101-004-1435156-001)"))
    bus.publish(StreamReplayed(2.0, "transactions", "transactions ***-***-****-001", 7))
    first, second = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert first["event"] == "stream.changed" and first["level"] == "warning"
    assert first["reason"] == "heartbeat_timeout" and first["reconnects"] == 2
    assert "101-004-1435156" not in stream.getvalue()
    assert second["event"] == "stream.replayed" and second["transactions"] == 7
