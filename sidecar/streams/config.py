"""The `streams` configuration section (here, beside its users; sidecar.config includes it)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator


class StreamsConfig(BaseModel):
    """OANDA's pricing and transaction streams (docs/streams.md): the `streams` section."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)

    # No line (heartbeats included) for this long: the connection is stale, reconnect.
    heartbeat_timeout_s: float = Field(10.0, gt=0, le=600)
    reconnect_base_delay_s: float = Field(0.5, ge=0, le=60)
    reconnect_max_delay_s: float = Field(30.0, ge=0, le=3600)
    # Messages a subscriber may fall behind before it is ended with SLOW_CONSUMER.
    subscriber_buffer: int = Field(1000, ge=1, le=1_000_000)
    # An upstream connection stays open this long after its last subscriber leaves.
    idle_close_delay_s: float = Field(5.0, ge=0, le=3600)

    @model_validator(mode="after")
    def _delays(self) -> StreamsConfig:
        if self.reconnect_max_delay_s < self.reconnect_base_delay_s:
            raise ValueError("reconnect_max_delay_s must not be below reconnect_base_delay_s")
        return self
