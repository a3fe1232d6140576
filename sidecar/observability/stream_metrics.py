"""The stream metrics of CONTRACT §8, fed by the hub's events (the families are defined with
the others in `metrics.METRICS`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sidecar.events import EventBus, StreamChanged, StreamReplayed, StreamSubscribersChanged

STREAMS = ("pricing", "transactions")


class StreamGauges:
    """Per upstream connection: connected?, subscribers; exported summed per `stream` label."""

    def __init__(self, bus: EventBus, metrics: Any) -> None:
        self._m = metrics
        self._connected: dict[tuple[str, str], bool] = {}
        self._subscribers: dict[tuple[str, str], int] = {}
        for stream in STREAMS:
            metrics.stream_connected.labels(stream).set(0)
            metrics.stream_subscribers.labels(stream).set(0)
        self.unsubscribe: list[Callable[[], None]] = [
            bus.subscribe(StreamChanged, self._on_stream),
            bus.subscribe(StreamSubscribersChanged, self._on_subscribers),
            bus.subscribe(StreamReplayed, self._on_replayed),
        ]

    def _on_stream(self, e: StreamChanged) -> None:
        key = (e.stream, e.key)
        if e.state == "reconnecting":
            self._m.stream_reconnects.labels(e.stream, e.reason).inc()
        if e.state == "closed":
            self._connected.pop(key, None)
            self._subscribers.pop(key, None)
        else:
            self._connected[key] = e.state == "connected"
        self._sum(e.stream)

    def _on_subscribers(self, e: StreamSubscribersChanged) -> None:
        self._subscribers[(e.stream, e.key)] = e.subscribers
        self._sum(e.stream)

    def _on_replayed(self, e: StreamReplayed) -> None:
        self._m.stream_replayed.labels(e.stream).inc(e.count)

    def _sum(self, stream: str) -> None:
        self._m.stream_connected.labels(stream).set(
            sum(1 for (s, _), up in self._connected.items() if s == stream and up))
        self._m.stream_subscribers.labels(stream).set(
            sum(n for (s, _), n in self._subscribers.items() if s == stream))
