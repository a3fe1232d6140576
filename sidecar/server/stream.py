"""ProxyService.Stream: a subscriber of OANDA's pricing or transaction stream, via the hub."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc

from sidecar._gen.oanda.sidecar.v1 import proxy_pb2
from sidecar.server.convert import stream_message
from sidecar.streams.delivery import Delivery
from sidecar.streams.request import parse_request


class StreamServicer:
    """Validates before anything connects; each message is encoded once for all subscribers."""

    def __init__(self, delivery: Delivery) -> None:
        self._delivery = delivery

    async def Stream(self, request: proxy_pb2.StreamRequest,
                     context: grpc.aio.ServicerContext[Any, Any],
                     ) -> AsyncIterator[proxy_pb2.StreamMessage]:
        sub = parse_request(request.path, dict(request.query), request.since_transaction_id)
        async for message in self._delivery.messages(sub):
            wire = message.wire
            if wire is None:
                wire = message.wire = stream_message(message)
            yield wire
