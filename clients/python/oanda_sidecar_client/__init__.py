"""Typed client for oanda-sidecar, asyncio and blocking.

    from oanda_sidecar_client import AsyncSidecarClient, Priority, errors

    async with AsyncSidecarClient("127.0.0.1:50051") as client:
        result = await client.get(f"/v3/accounts/{account}/pricing", instruments=["EUR_USD"])
"""

from oanda_sidecar_client import errors
from oanda_sidecar_client.aio import AsyncSidecarClient
from oanda_sidecar_client.errors import SidecarError
from oanda_sidecar_client.models import (
    BreakerOverride,
    BreakerStatus,
    DegradationLevel,
    DegradationSetting,
    DegradationStatus,
    EndpointLimitStatus,
    ExecuteResult,
    OrderOutcome,
    OrderOutcomeName,
    Priority,
    RateLimitStatus,
    SharedRateLimitStatus,
    SidecarStatus,
    StreamStatus,
    UpstreamStatus,
)
from oanda_sidecar_client.streams import StreamMessage
from oanda_sidecar_client.sync import SidecarClient

__version__ = "0.1.0"

__all__ = [
    "AsyncSidecarClient",
    "BreakerOverride",
    "BreakerStatus",
    "DegradationLevel",
    "DegradationSetting",
    "DegradationStatus",
    "EndpointLimitStatus",
    "ExecuteResult",
    "OrderOutcome",
    "OrderOutcomeName",
    "Priority",
    "RateLimitStatus",
    "SharedRateLimitStatus",
    "SidecarClient",
    "SidecarError",
    "SidecarStatus",
    "StreamMessage",
    "StreamStatus",
    "UpstreamStatus",
    "errors",
]
