"""Render docs/operations.md from the code (`--check`: exit 1 when it is stale).

The admin endpoints are the routes `sidecar.server.admin.AdminServer` registers, described by
their handlers' docstrings; the metrics are the collectors of a fresh `Metrics` registry (name,
type, labels, help, buckets); the alerts are `sidecar.alerting.conditions.CONDITIONS`. Only the
prose between the tables is written here.
"""

from __future__ import annotations

import argparse
import inspect
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# This checkout's code, not whichever copy the environment has installed.
sys.path[:0] = [str(ROOT), str(ROOT / "clients" / "python")]
DOC = ROOT / "docs" / "operations.md"

INTRO = """# Operations: admin HTTP, metrics, alerts

Generated from `sidecar/server/admin.py`, `sidecar/observability/metrics.py` and
`sidecar/alerting/conditions.py` by `python scripts/opsdoc.py`; a test keeps it current.
What to do when an alert fires is in the [runbook](runbook.md); the gRPC `ControlService`
(status, breakers, degradation) is in [api.md](api.md).

## Admin HTTP

Plain HTTP on `server.admin_listen` (default `{admin_listen}`; in the example manifests `:9464`,
reachable by Prometheus and the kubelet). No authentication: it only reads, and shows no secret.

| path | answers |
|---|---|
"""

METRICS_INTRO = """
## Metrics

`GET /metrics`, from a registry of the sidecar's own (no process or Python collector). Label
values are bounded: `endpoint` is always a path template from OANDA's API
(`/v3/accounts/{accountID}/orders`), never a raw path or an account ID; `method` is one of the
five REST verbs or `OTHER`; `outcome` is `ok`, `http_4xx`, `http_5xx` or a sidecar error reason in
lower case (`circuit_open`, `rate_limited`, ... see [api.md](api.md#errors)).

| metric | type | labels | meaning |
|---|---|---|---|
"""

ALERTS_INTRO = """
## Alerts

Alerts are raised by the sidecar itself, from its events, and sent to PagerDuty (Events API v2,
when `alerts.pagerduty.routing_key_file` or `OANDA_SIDECAR_PAGERDUTY_ROUTING_KEY` is set) and
Slack (incoming webhook, when `alerts.slack.webhook_url_file` or
`OANDA_SIDECAR_SLACK_WEBHOOK_URL` is set). A condition is triggered when it starts and resolved
when it ends, both with the PagerDuty `dedup_key` `oanda-sidecar/<pod>/<condition key>`.
Identical alerts within `alerts.aggregation_window_s` are sent once with a count, and a resolve
that comes less than a window after the trigger is held until the window ends (a flapping
condition sends at most one trigger and one resolve per window).
Delivery never blocks a call: a bounded queue per channel (`alerts.queue_size`), retried with
backoff up to `alerts.max_delivery_attempts`; an alert that cannot be delivered is logged at
ERROR ("alert not delivered", with the alert, secrets redacted) and counted in
`oanda_sidecar_alerts_sent_total{{result="failed"}}` (`"dropped"` when the queue was full). The
latest alerts are in `/api/status` under `alerts`.

Operator actions (a breaker forced open, a manual READ_ONLY) go to Slack only: nobody needs
waking for what someone did on purpose, but the team should know calls are refused. Inside
OANDA's weekly closure (Friday 21:00 to Sunday 21:00 UTC, its routine maintenance window) a
condition that would page is sent to Slack only, as a warning, unless
`alerts.quiet_during_weekly_closure` is false. The table gives the severity and channels outside
that window.

| condition key | severity | channels | raised when | cleared when | means |
|---|---|---|---|---|---|
"""

_CHANNEL_NAMES = {"pagerduty": "PagerDuty", "slack": "Slack"}


def _doc(obj: Any) -> str:
    text = inspect.cleandoc(inspect.getdoc(obj) or "")
    return " ".join(text.split()).replace("|", "\\|")


def admin_rows() -> Iterator[str]:
    from sidecar.events import EventBus
    from sidecar.server.admin import AdminServer
    from sidecar.status import StatusBoard

    server = AdminServer(StatusBoard(EventBus()))
    routes: dict[str, tuple[list[str], Any]] = {}
    for route in server.app.router.routes():
        path = route.resource.canonical if route.resource is not None else "?"
        methods, _ = routes.setdefault(path, ([], route.handler))
        methods.append(route.method)
    for path, (methods, handler) in routes.items():
        text = _doc(handler)
        if not text:
            raise SystemExit(f"opsdoc: the handler of {path} ({handler.__qualname__}) has no "
                             "docstring: write what the endpoint answers")
        shown = [m for m in methods if m != "HEAD"] or methods
        yield f"| `{' '.join(shown)} {path}` | {text} |\n"


def _exposed(collector: Any, names: list[str]) -> list[str]:
    """The series names a scrape shows (`_total`, `_bucket`, ...), `_created` excluded."""
    shown = [n for n in names if not n.endswith("_created")]
    return [n for n in shown if n != collector._name] or shown


def _number(value: float) -> str:
    return "+Inf" if value == float("inf") else f"{value:g}"


def metric_rows() -> Iterator[str]:
    from sidecar.events import EventBus
    from sidecar.observability.metrics import Metrics

    metrics = Metrics(EventBus())
    # prometheus_client keeps label names and buckets on the collectors only (private
    # attributes, stable across its releases); a family read by collect() has neither.
    for registered, names in metrics.registry._collector_to_names.items():
        collector: Any = registered
        shown = " ".join(f"`{n}`" for n in _exposed(collector, names))
        labels = ", ".join(f"`{label}`" for label in collector._labelnames) or "—"
        meaning = collector._documentation.replace("|", "\\|")
        bounds = getattr(collector, "_upper_bounds", None)
        if bounds:
            meaning += f"; buckets {', '.join(_number(b) for b in bounds)}"
        if collector._type == "histogram":
            labels += ", `le`" if collector._labelnames else " (`le` on `_bucket`)"
        yield f"| {shown} | {collector._type} | {labels} | {meaning} |\n"


def alert_rows() -> Iterator[str]:
    from sidecar.alerting.conditions import CONDITIONS

    for kind, spec in CONDITIONS.items():
        key = f"`{kind}:{spec.subject}`" if spec.subject else f"`{kind}`"
        channels = ", ".join(_CHANNEL_NAMES.get(c, c) for c in sorted(spec.channels))
        yield (f"| {key} | {spec.severity} | {channels} | {spec.raised} | {spec.cleared} | "
               f"{spec.means} |\n")


def render() -> str:
    from sidecar.config import Config

    parts = [INTRO.format(admin_listen=Config().server.admin_listen)]
    parts += admin_rows()
    parts.append(METRICS_INTRO)
    parts += metric_rows()
    parts.append(ALERTS_INTRO.format())
    parts += alert_rows()
    return "".join(parts)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--check", action="store_true",
                        help="exit 1 if docs/operations.md is stale")
    ns = parser.parse_args()
    text = render()
    if ns.check:
        if not DOC.exists() or DOC.read_text() != text:
            print("docs/operations.md is stale: run python scripts/opsdoc.py", file=sys.stderr)
            return 1
        return 0
    DOC.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
