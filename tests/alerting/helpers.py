"""Builders shared by the alerting tests."""

from __future__ import annotations

from collections.abc import Callable

from pydantic import SecretStr

from sidecar.alerting import Alerting
from sidecar.clock import Clock
from sidecar.config import AlertsConfig, PagerDutyConfig, Secrets
from sidecar.events import AttemptFinished, BreakerTransition, DegradationChanged, EventBus
from tests.alerting.receivers import PagerDutyReceiver, SlackReceiver

ROUTING_KEY = "R0UT1NGKEYabcdef0123456789abcdef"
SOURCE = "pod-7"


def make_alerting(pd: PagerDutyReceiver, slack: SlackReceiver, bus: EventBus, clock: Clock, *,
                  window_s: float = 0.1, attempts: int = 5, queue_size: int = 100,
                  on_result: Callable[[str, str], None] | None = None) -> Alerting:
    config = AlertsConfig(pagerduty=PagerDutyConfig(events_url=pd.url),
                          aggregation_window_s=window_s, queue_size=queue_size,
                          max_delivery_attempts=attempts, delivery_timeout_s=1.0,
                          # the tests page on any weekday: the closure rule has its own test
                          quiet_during_weekly_closure=False)
    secrets = Secrets(pagerduty_routing_key=SecretStr(ROUTING_KEY),
                      slack_webhook_url=SecretStr(slack.url))
    return Alerting(config, secrets, bus, clock, source=SOURCE, on_result=on_result,
                    backoff_base_s=0.01, backoff_max_s=0.05)


def attempt(status: int | None, at: float = 1.7e9,
            endpoint: str = "/v3/accounts/{accountID}/orders") -> AttemptFinished:
    return AttemptFinished(at=at, method="POST", endpoint=endpoint, attempt=1, duration_s=0.05,
                           status=status, error_type=None, request_id="req-1",
                           error_message=None if status is None or status < 400
                           else '{"errorMessage":"Insufficient authorization"}')


def breaker(frm: str, to: str, name: str = "rest", at: float = 1.7e9) -> BreakerTransition:
    return BreakerTransition(at=at, breaker=name, from_state=frm, to_state=to,
                             reason="failure_threshold", consecutive_failures=5,
                             last_error="status_503")


def degradation(frm: str, to: str, manual: bool = False) -> DegradationChanged:
    return DegradationChanged(at=1.7e9, from_level=frm, to_level=to, reason="breaker rest open",
                              manual=manual)
