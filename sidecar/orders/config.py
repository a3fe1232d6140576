"""The `orders` configuration section (here, beside its users; sidecar.config includes it)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator


class OrdersConfig(BaseModel):
    """Exactly-once orders (docs/orders.md): the `orders` section of sidecar.config.Config."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)

    # How long a lookup by client ID keeps answering "not found" before absence can be proven.
    lookup_lag_s: float = Field(1.5, ge=0, le=60)
    # Longest the sidecar resolves an unknown outcome before answering OUTCOME_UNKNOWN.
    resolve_timeout_s: float = Field(10.0, gt=0, le=600)
    # How long client IDs sent through the sidecar are remembered (caller resends, outcomes).
    remember_s: float = Field(86_400.0, gt=0, le=30 * 86_400)
    # Client IDs kept in memory (the oldest are forgotten first; Redis keeps them for remember_s).
    max_remembered: int = Field(100_000, ge=1, le=10_000_000)

    @model_validator(mode="after")
    def _lag_fits(self) -> OrdersConfig:
        if self.lookup_lag_s >= self.resolve_timeout_s:
            raise ValueError("lookup_lag_s must be below resolve_timeout_s (absence could "
                             "never be proven in time)")
        return self
