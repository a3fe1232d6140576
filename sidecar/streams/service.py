"""The streams part as the composition root builds it: hub + delivery over the REST pipeline."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from sidecar.clock import Clock
from sidecar.config import Config
from sidecar.errors import UpstreamError
from sidecar.events import EventBus
from sidecar.pipeline import Handler, Policy, compose
from sidecar.policies.breaker import CircuitBreaker
from sidecar.status import StatusBoard
from sidecar.streams.connection import StreamParts
from sidecar.streams.delivery import Delivery
from sidecar.streams.gapfill import TransactionSource
from sidecar.streams.hub import StreamHub, StreamSnapshot
from sidecar.upstream.streaming import StreamOpener
from sidecar.upstream.transport import AiohttpTransport

BREAKER = "stream"


@dataclass(frozen=True, slots=True)
class Streams:
    hub: StreamHub
    delivery: Delivery
    rest: Handler  # the REST pipeline, composed here once (Execute is served by the same)

    @classmethod
    def build(cls, config: Config, clock: Clock, bus: EventBus, transport: AiohttpTransport,
              breaker: CircuitBreaker, policies: Sequence[Policy], board: StatusBoard,
              rng: random.Random | None = None) -> Streams:
        """Gap fills go through the REST pipeline (`policies` before `transport`): they obey
        the limiter, the `rest` breaker and retry like any Execute. The hub shows itself on
        the status board (GetStatus.streams)."""
        handler = compose(policies, transport)
        token = config.secrets.oanda_token
        opener = StreamOpener(lambda: transport.session, config.oanda.stream_url,
                              token.get_secret_value() if token else None,
                              config.oanda.request_timeout_s)
        source = TransactionSource(handler)
        parts = StreamParts(opener, source, breaker, config.streams, clock, bus,
                            rng or random.Random())
        hub = StreamHub(parts)
        board.streams = hub
        return cls(hub, Delivery(hub, source, clock, bus), handler)

    def snapshots(self) -> list[StreamSnapshot]:
        return self.hub.snapshots()

    async def close(self) -> None:
        """Shutting down: subscribers are told UNAVAILABLE and resume against the next one."""
        await self.hub.close(UpstreamError("the sidecar is shutting down; resume from your "
                                           "last transaction ID"))
