"""Typed, frozen configuration, validated once at load.

YAML file first, then `OANDA_SIDECAR__SECTION__KEY` environment overrides. Secrets (the OANDA
token, PagerDuty routing key, Slack webhook URL) never live in the YAML: they come from the
environment or from `*_file` keys, are held as SecretStr and are never printed.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from sidecar.degradation.config import DEFAULT_CACHE_TEMPLATES, DegradationConfig
from sidecar.errors import ConfigError
from sidecar.orders.config import OrdersConfig
from sidecar.secrets import TOKEN_ENV, Secrets
from sidecar.secrets import read_secrets as _read_secrets
from sidecar.streams.config import StreamsConfig
from sidecar.upstream.endpoints import DEFAULT_CRITICAL, EndpointPattern

__all__ = ["DEFAULT_CACHE_TEMPLATES", "Config", "DegradationConfig", "Secrets", "load_config"]

ENV_PREFIX = "OANDA_SIDECAR__"

class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)


def _check_listen(value: str) -> str:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError("must be HOST:PORT with a port from 0 to 65535")
    return value


class ServerConfig(_Section):
    grpc_listen: str = "127.0.0.1:50051"
    admin_listen: str = "127.0.0.1:9464"
    control_token_file: Path | None = None
    # Where operator holds (breaker overrides, a manual level) are kept across restarts.
    state_dir: Path | None = None
    drain_grace_s: float = Field(20.0, gt=0, le=600)
    # The sidecar's own HTTP listeners: a request head must arrive this soon after connecting
    # (or after the previous answer), and at most this many connections are open.
    http_header_timeout_s: float = Field(10.0, gt=0, le=600)
    http_max_connections: int = Field(256, ge=1, le=65536)
    max_status_watchers: int = Field(100, ge=1, le=100_000)
    rest_listen: str = "127.0.0.1:8081"  # the OANDA REST listener (docs/rest.md); "": off
    rest_deadline_s: float = Field(30.0, ge=0, le=600)  # HTTP carries none; 0: no deadline

    _listen = field_validator("grpc_listen", "admin_listen")(_check_listen)
    _rest = field_validator("rest_listen")(lambda v: v and _check_listen(v))


class OandaConfig(_Section):
    base_url: str = "https://api-fxpractice.oanda.com"
    stream_url: str = "https://stream-fxpractice.oanda.com"
    request_timeout_s: float = Field(10.0, gt=0, le=300)
    max_new_connections_per_s: float = Field(2.0, gt=0, le=1000)
    max_connections: int = Field(64, ge=1, le=1024)
    token_file: Path | None = None
    require_token: bool = True

    @field_validator("base_url", "stream_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")


class RetryConfig(_Section):
    max_attempts: int = Field(3, ge=1, le=10)
    base_delay_s: float = Field(1.0, ge=0, le=60)
    max_delay_s: float = Field(10.0, ge=0, le=600)
    jitter: Literal["full", "equal", "none"] = "full"
    budget_ratio: float = Field(0.2, ge=0, le=1)
    budget_min_concurrent: int = Field(3, ge=0, le=1000)
    budget_window_s: float = Field(10.0, gt=0, le=600)

    @model_validator(mode="after")
    def _delays(self) -> RetryConfig:
        if self.max_delay_s < self.base_delay_s:
            raise ValueError("max_delay_s must not be below base_delay_s")
        return self


class BreakerConfig(_Section):
    failure_threshold: int = Field(5, ge=1, le=1000)
    recovery_timeout_s: float = Field(60.0, gt=0, le=3600)
    half_open_max_calls: int = Field(1, ge=1, le=100)


class EndpointLimit(_Section):
    pattern: str
    rate_per_s: float = Field(gt=0, le=10_000)
    burst: float = Field(ge=1, le=10_000)

    @property
    def parsed(self) -> EndpointPattern:
        return EndpointPattern.parse(self.pattern)


class SharedRateLimitConfig(_Section):
    """One bucket for every pod that shares an OANDA token (CONTRACT §10)."""

    redis_url: str | None = None  # none: the limit is per pod
    key: str | None = None  # default: a hash of the OANDA base URL and token, never the token
    critical_reserve: float = Field(0.2, ge=0, lt=1)
    fallback_rate_per_s: float = Field(25.0, gt=0, le=10_000)
    timeout_s: float = Field(0.05, gt=0, le=10)
    # While in fallback, Redis is tried this often; back in the shared bucket after one answer.
    probe_interval_s: float = Field(0.25, gt=0, le=60)
    pool_size: int = Field(32, ge=1, le=1024)

    @field_validator("redis_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value

    @field_validator("key")
    @classmethod
    def _key(cls, value: str | None) -> str | None:
        if value is not None and (not value or len(value) > 128 or not value.isprintable()
                                  or any(c in value for c in "{} ")):
            raise ValueError("must be 1-128 printable characters without braces or spaces")
        return value


class RateLimitConfig(_Section):
    rate_per_s: float = Field(100.0, gt=0, le=10_000)
    burst: float = Field(20.0, ge=1, le=10_000)
    max_queue_wait_s: float = Field(5.0, ge=0, le=300)
    max_queue_length: int = Field(10_000, ge=1, le=1_000_000)
    endpoints: tuple[EndpointLimit, ...] = ()
    critical: tuple[str, ...] = DEFAULT_CRITICAL
    # While normal calls wait, critical calls take at most this share of the tokens.
    critical_max_share: float = Field(0.8, gt=0, le=1)
    # After a 429: multiply the rate by this, then add back recovery_per_s every second.
    decrease_factor: float = Field(0.5, gt=0, lt=1)
    recovery_per_s: float = Field(5.0, gt=0, le=10_000)
    min_rate_per_s: float = Field(5.0, gt=0, le=10_000)
    shared: SharedRateLimitConfig = SharedRateLimitConfig()


class PagerDutyConfig(_Section):
    events_url: str = "https://events.pagerduty.com/v2/enqueue"
    routing_key_file: Path | None = None


class SlackConfig(_Section):
    webhook_url_file: Path | None = None


class AlertsConfig(_Section):
    pagerduty: PagerDutyConfig = PagerDutyConfig()
    slack: SlackConfig = SlackConfig()
    aggregation_window_s: float = Field(60.0, ge=0, le=86_400)
    queue_size: int = Field(1000, ge=1, le=1_000_000)
    max_delivery_attempts: int = Field(5, ge=1, le=50)
    delivery_timeout_s: float = Field(5.0, gt=0, le=120)
    # A stream down (not delivering) longer than this is an alert.
    stream_down_s: float = Field(30.0, gt=0, le=86_400)
    # Inside OANDA's weekly closure (Fri 21:00-Sun 21:00 UTC) an outage goes to Slack only.
    quiet_during_weekly_closure: bool = True


class TelemetryConfig(_Section):
    service_name: str = "oanda-sidecar"
    tracing_enabled: bool = True


class LoggingConfig(_Section):
    format: Literal["json", "console"] = "json"
    level: Literal["debug", "info", "warning", "error"] = "info"


class Config(_Section):
    server: ServerConfig = ServerConfig()
    oanda: OandaConfig = OandaConfig()
    retry: RetryConfig = RetryConfig()
    breaker: BreakerConfig = BreakerConfig()
    rate_limit: RateLimitConfig = RateLimitConfig()
    degradation: DegradationConfig = DegradationConfig()
    orders: OrdersConfig = OrdersConfig()
    streams: StreamsConfig = StreamsConfig()
    alerts: AlertsConfig = AlertsConfig()
    telemetry: TelemetryConfig = TelemetryConfig()
    logging: LoggingConfig = LoggingConfig()
    secrets: Secrets = Field(default_factory=Secrets, exclude=True)


def load_config(path: str | Path | None = None, env: Mapping[str, str] | None = None,
                *, read_secrets: bool = True) -> Config:
    """Load, override from the environment, validate. Raises ConfigError naming the key."""
    env = os.environ if env is None else env
    data: dict[str, Any] = {}
    if path is not None:
        try:
            loaded = yaml.safe_load(Path(path).read_text())
        except FileNotFoundError:
            raise ConfigError(f"config file {path}: not found") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {path}: invalid YAML: {_one_line(exc)}") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"config file {path}: top level must be a mapping")
        data = loaded or {}
        if "secrets" in data:
            raise ConfigError("secrets: unknown key (secrets come from env or *_file keys)")
    for name, raw in sorted(env.items()):
        if name.startswith(ENV_PREFIX):
            _apply_override(data, name, raw)
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, env_names=_env_names(env))) from None
    if read_secrets:
        config = config.model_copy(update={"secrets": _read_secrets(config, env)})
    return config


def _apply_override(data: dict[str, Any], name: str, raw: str) -> None:
    keys = [k.lower() for k in name[len(ENV_PREFIX):].split("__")]
    if not all(keys):
        raise ConfigError(f"{name}: malformed override name")
    node = data
    for key in keys[:-1]:
        child = node.setdefault(key, {})
        if not isinstance(child, dict):
            raise ConfigError(f"{'.'.join(keys)} (from {name}): {key} is not a section")
        node = child
    try:
        node[keys[-1]] = yaml.safe_load(raw) if raw.strip() else raw
    except yaml.YAMLError:
        node[keys[-1]] = raw


def _env_names(env: Mapping[str, str]) -> dict[str, str]:
    return {".".join(k.lower() for k in n[len(ENV_PREFIX):].split("__")): n
            for n in env if n.startswith(ENV_PREFIX)}


def _describe(exc: ValidationError, env_names: dict[str, str]) -> str:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"])
    kind = err["type"]
    if kind == "extra_forbidden":
        what = "unknown key"
    else:
        what = err["msg"].replace("Value error, ", "")
        if "input" in err and kind != "missing" and not isinstance(err["input"], dict):
            what += f" (got {err['input']!r})"
    names = [n for k, n in env_names.items() if k == loc or k.startswith(loc + ".")]
    source = f" (from {names[0]})" if names else ""
    more = f"; and {exc.error_count() - 1} more" if exc.error_count() > 1 else ""
    return f"{loc}{source}: {what}{more}"


def require_token(config: Config) -> None:
    """Stop start-up when OANDA needs a token and none was given."""
    if config.oanda.require_token and config.secrets.oanda_token is None:
        raise ConfigError(f"oanda.token_file: no OANDA token (set {TOKEN_ENV} or oanda.token_file)")


def preflight(config: Config) -> None:
    """Everything `serve` refuses before it listens, so that `check-config` refuses it too:
    a missing token, a state directory it cannot write."""
    require_token(config)
    state_dir = config.server.state_dir
    if state_dir is not None:
        try:
            state_dir.mkdir(parents=True, exist_ok=True)
            probe = state_dir / ".writable"
            probe.write_text("")
            probe.unlink()
        except OSError as exc:
            raise ConfigError(f"server.state_dir: cannot write to {state_dir}: "
                              f"{exc.strerror}") from None


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())
