"""Render docs/configuration.md from the typed config (`--check`: exit 1 when it is stale).

Keys, types, defaults and ranges come from `sidecar.config`; only the meanings are written here,
and a test fails when a key has none, so the page cannot drift from the code.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from annotated_types import Ge, Gt, Le, Lt
from pydantic import BaseModel

ROOT = Path(__file__).resolve().parent.parent
# This checkout's code, not whichever copy the environment has installed (a worktree shares
# the editable install of another checkout).
sys.path.insert(0, str(ROOT))
DOC = ROOT / "docs" / "configuration.md"

MEANINGS: dict[str, str] = {
    "server.grpc_listen": "Execute and Control services, health, reflection (keep it on loopback)",
    "server.admin_listen": "HTTP: `/metrics`, `/healthz`, `/readyz`, `/api/status`, `/` dashboard",
    "server.control_token_file": "when set, Control RPCs need metadata "
                                 "`authorization: Bearer <token>`",
    "server.drain_grace_s": "on SIGTERM, in-flight calls may finish for this long; calls still "
    "in flight just before it ends are answered (a write as OUTCOME_UNKNOWN)",
    "alerts.quiet_during_weekly_closure": "inside OANDA's routine weekly closure (Friday 21:00 "
    "to Sunday 21:00 UTC) a breaker opening or an automatic READ_ONLY is told on Slack, not "
    "paged",
    "server.state_dir": "where operator holds (breaker overrides, a manual degradation level) "
    "are kept so that they survive a restart (holds.json); none: memory only",
    "server.http_header_timeout_s": "the admin (and REST) listener closes a connection whose "
    "request head has not arrived this long after connecting or after its last answer",
    "server.http_max_connections": "connections each of the admin and REST listeners keeps open; "
    "beyond it new ones are closed at once",
    "server.max_status_watchers": "WatchStatus streams served at once; beyond it "
    "RESOURCE_EXHAUSTED",
    "server.rest_listen": "the OANDA REST listener for `v20` and `oandapyV20` bots "
    "(docs/rest.md); loopback by default, empty turns it off",
    "server.rest_deadline_s": "the deadline each REST-listener call gets (HTTP carries none): "
    "waits, retries and attempts included; 0: none",
    "oanda.base_url": "REST upstream (live: `https://api-fxtrade.oanda.com`)",
    "oanda.stream_url": "streaming upstream",
    "oanda.request_timeout_s": "timeout of one attempt (shortened to the caller's deadline)",
    "oanda.max_new_connections_per_s": "OANDA's limit on new connections (kept alive)",
    "oanda.max_connections": "size of the keep-alive pool",
    "oanda.token_file": "file holding the OANDA token (else `OANDA_API_TOKEN`)",
    "oanda.require_token": "refuse to start without a token",
    "retry.max_attempts": "total attempts, the first included",
    "retry.base_delay_s": "backoff base: attempt n waits up to `base * 2**(n-1)`",
    "retry.max_delay_s": "cap on one wait",
    "retry.jitter": "`full`, `equal` or `none`",
    "retry.budget_ratio": "retries may add at most this share of recent requests",
    "retry.budget_min_concurrent": "retries always allowed in the window, whatever the ratio",
    "retry.budget_window_s": "the window the budget counts over",
    "breaker.failure_threshold": "consecutive failures (no answer, 5xx, 401, 403; a 429 is an "
                                 "answer) that open the breaker",
    "breaker.recovery_timeout_s": "open → half-open after this long",
    "breaker.half_open_max_calls": "probes let through at once while half-open",
    "rate_limit.rate_per_s": "sustained requests per second sent to OANDA",
    "rate_limit.burst": "bucket size; 20 with rate 100 keeps every 1 s window ≤ 120",
    "rate_limit.max_queue_wait_s": "a normal call waits at most this long for a token",
    "rate_limit.max_queue_length": "waiting calls per lane beyond which calls are refused at once",
    "rate_limit.endpoints": "per-endpoint limits on top of the global one: "
                            "`{pattern, rate_per_s, burst}`; pattern `[METHOD ]GLOB` on the path "
                            "template",
    "rate_limit.critical": "patterns whose calls ride the critical lane (and pass READ_ONLY)",
    "rate_limit.decrease_factor": "after a 429 from OANDA the rate is multiplied by this",
    "rate_limit.recovery_per_s": "then this much rate comes back per second",
    "rate_limit.min_rate_per_s": "the rate never drops below this",
    "rate_limit.critical_max_share": "while normal calls wait, critical calls take at most this "
                                     "share of the tokens (see docs/rate-limit.md)",
    "rate_limit.shared.redis_url": "`redis://host:port/db`: every pod with the same OANDA token "
                                   "draws from one bucket in Redis/Valkey; none: per pod",
    "rate_limit.shared.key": "the shared bucket's name; default: a hash of the OANDA base URL "
                             "and token (never the token)",
    "rate_limit.shared.critical_reserve": "share of the burst normal calls never use, so a "
                                          "critical call finds a token at once",
    "rate_limit.shared.fallback_rate_per_s": "while Redis cannot answer, each pod limits itself "
                                             "to this (set it to rate / pods)",
    "rate_limit.shared.timeout_s": "a Redis answer slower than this sends the pod to its "
                                   "fallback at once",
    "rate_limit.shared.probe_interval_s": "in fallback, Redis is tried this often; one answer "
                                          "brings the pod back",
    "rate_limit.shared.pool_size": "Redis connections per pod",
    "degradation.cache_backend": "`memory` or `redis`",
    "degradation.redis_url": "`redis://host:port/db` for the `redis` backend",
    "degradation.cache_max_entries": "entries this process keeps",
    "degradation.cache_max_bytes": "bytes (keys, bodies, headers) this process keeps in memory "
    "or writes to Redis; the oldest entries go first",
    "degradation.cache_max_entry_bytes": "an answer larger than this is never cached",
    "degradation.cache_default_ttl_s": "age beyond which a cached read is never served",
    "degradation.pricing_max_age_s": "the same, for pricing",
    "degradation.cache_ttls": "per-template TTLs, e.g. `{\"/v3/accounts/{accountID}\": 60}`",
    "degradation.cache_templates": "templates (globs allowed) whose successful GETs are cached",
    "degradation.cache_timeout_s": "a slower Redis operation counts as a cache failure",
    "degradation.redis_pool_size": "Redis connections",
    "degradation.probe_interval_s": "while degraded, how often the recovery probe asks OANDA",
    "degradation.probe_path": "the probe's cheap GET",
    "degradation.recovery_successes": "probe successes in a row that return the level to NONE",
    "degradation.enter_failed_reads": "reads failed after retries (within the window, and at least "
                                      "half of them) that enter CACHED_DATA",
    "degradation.failed_read_window_s": "the window for `enter_failed_reads`",
    "degradation.flap_window_s": "degrading again this soon after a recovery doubles the "
                                 "successes the next recovery needs (up to 8 times)",
    "degradation.outage_connection_failures": "attempts in a row without a connection that "
                                              "enter READ_ONLY",
    "orders.lookup_lag_s": "a lookup by client ID may answer \"not found\" this long after an "
                           "order's answer was lost (OANDA's lag); absence is proven only after "
                           "it (docs/orders.md)",
    "orders.resolve_timeout_s": "longest an unknown order outcome is resolved before the caller "
                                "gets OUTCOME_UNKNOWN (never past its deadline)",
    "orders.remember_s": "how long client IDs sent through the sidecar are remembered (caller "
                         "resends, GetOrderOutcome); in Redis too with the Redis cache backend",
    "orders.max_remembered": "client IDs kept in memory; the oldest are forgotten first",
    "streams.heartbeat_timeout_s": "no line (heartbeats included) for this long: the stream "
                                   "is stale and is reconnected",
    "streams.reconnect_base_delay_s": "reconnect backoff base (full jitter)",
    "streams.reconnect_max_delay_s": "cap on one reconnect wait",
    "streams.subscriber_buffer": "messages a subscriber may fall behind before it is ended with "
                                 "`SLOW_CONSUMER` (it resumes losing nothing)",
    "streams.idle_close_delay_s": "an upstream stream stays open this long after its last "
                                  "subscriber leaves",
    "alerts.pagerduty.events_url": "PagerDuty Events API v2 enqueue URL",
    "alerts.pagerduty.routing_key_file": "PagerDuty is off without it (or "
                                         "`OANDA_SIDECAR_PAGERDUTY_ROUTING_KEY`)",
    "alerts.slack.webhook_url_file": "Slack is off without it (or "
                                     "`OANDA_SIDECAR_SLACK_WEBHOOK_URL`)",
    "alerts.aggregation_window_s": "identical alerts inside the window are sent once, with a count",
    "alerts.queue_size": "alerts waiting for delivery; the oldest is dropped (and logged) beyond",
    "alerts.max_delivery_attempts": "deliveries are retried with backoff up to this many times",
    "alerts.delivery_timeout_s": "timeout of one delivery",
    "alerts.stream_down_s": "a stream down (reconnecting) longer than this is an alert",
    "telemetry.service_name": "OTel resource `service.name`; the exporter follows the standard "
                              "`OTEL_EXPORTER_OTLP_*` variables",
    "telemetry.tracing_enabled": "a trace per Execute with a span per attempt",
    "logging.format": "`json` or `console`",
    "logging.level": "`debug`, `info`, `warning` or `error`",
}

HEADER = """# Configuration

Generated from `sidecar/config.py` by `python scripts/configdoc.py`; a test keeps it current.

A YAML file (`oanda-sidecar serve --config FILE`), then environment overrides
`OANDA_SIDECAR__SECTION__KEY=value` (nested sections too:
`OANDA_SIDECAR__ALERTS__PAGERDUTY__EVENTS_URL`); values are read as YAML, so lists and numbers
work. Unknown keys, wrong types and out-of-range values stop start-up with one line naming the
key; `oanda-sidecar check-config --config FILE` checks a file without starting.

Secrets never live in the YAML: the OANDA token comes from `OANDA_API_TOKEN` or
`oanda.token_file`, the PagerDuty routing key from `OANDA_SIDECAR_PAGERDUTY_ROUTING_KEY` or
`alerts.pagerduty.routing_key_file`, the Slack webhook URL from `OANDA_SIDECAR_SLACK_WEBHOOK_URL`
or `alerts.slack.webhook_url_file`, the control token from `server.control_token_file`.

| key | default | allowed | meaning |
|---|---|---|---|
"""


def fields(model: type[BaseModel], prefix: str = "") -> list[tuple[str, Any, str]]:
    rows: list[tuple[str, Any, str]] = []
    for name, info in model.model_fields.items():
        if name == "secrets":
            continue
        ann = info.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            rows += fields(ann, f"{prefix}{name}.")
            continue
        default = info.default_factory() if info.default_factory else info.default  # type: ignore[call-arg]
        rows.append((prefix + name, default, _allowed(info)))
    return rows


def _allowed(info: Any) -> str:
    parts = []
    for m in info.metadata:
        for cls, attr, sign in ((Gt, "gt", ">"), (Ge, "ge", "≥"), (Lt, "lt", "<"),
                                (Le, "le", "≤")):
            if isinstance(m, cls):
                parts.append(f"{sign} {getattr(m, attr)}")
    text = str(info.annotation).replace("typing.", "")
    if "Literal" in text:
        return text[text.index("[") + 1:-1].replace("'", "`")
    return ", ".join(parts)


def _default(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, tuple | list):
        if not value:
            return "`[]`"
        return "<br>".join(f"`{v}`" for v in value)
    if isinstance(value, dict):
        return "`{}`" if not value else f"`{value}`"
    return f"`{value}`"


def render() -> str:
    from sidecar.config import Config

    lines = [HEADER]
    for key, default, allowed in fields(Config):
        meaning = MEANINGS.get(key)
        if meaning is None:
            raise SystemExit(f"configdoc: no meaning written for {key}")
        lines.append(f"| `{key}` | {_default(default)} | {allowed} | {meaning} |\n")
    return "".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--check", action="store_true")
    ns = parser.parse_args()
    text = render()
    if ns.check:
        if not DOC.exists() or DOC.read_text() != text:
            print("docs/configuration.md is stale: run python scripts/configdoc.py",
                  file=sys.stderr)
            return 1
        return 0
    DOC.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
