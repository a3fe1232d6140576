"""Secrets: the OANDA token, the control token, the PagerDuty key and the Slack URL.

Never in the YAML: from the environment or from the files that `*_file` keys name. Held as
SecretStr (repr shows only whether each is set) and never printed — not even a `*_file` value
that cannot be read, since it may be the secret itself given where a path belongs.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, SecretStr

from sidecar.errors import ConfigError

if TYPE_CHECKING:
    from sidecar.config import Config

TOKEN_ENV = "OANDA_API_TOKEN"
PAGERDUTY_KEY_ENV = "OANDA_SIDECAR_PAGERDUTY_ROUTING_KEY"
SLACK_URL_ENV = "OANDA_SIDECAR_SLACK_WEBHOOK_URL"


class Secrets(BaseModel):
    """Secrets read from the environment or files; repr shows only whether each is set."""

    model_config = ConfigDict(frozen=True)
    oanda_token: SecretStr | None = None
    control_token: SecretStr | None = None
    pagerduty_routing_key: SecretStr | None = None
    slack_webhook_url: SecretStr | None = None


def _read_file_secret(path: Path | None, key: str) -> SecretStr | None:
    if path is None:
        return None
    try:
        value = Path(path).read_text().strip()
    except OSError as exc:
        # The value is not quoted: it may be the secret itself, given where a path belongs.
        raise ConfigError(f"{key}: cannot read the file it names ({exc.strerror}); it must be "
                          "the path of a file that holds the secret") from None
    if not value:
        raise ConfigError(f"{key}: the file it names is empty")
    return SecretStr(value)


def read_secrets(config: Config, env: Mapping[str, str]) -> Secrets:
    token = env.get(TOKEN_ENV) or None
    oanda_token = SecretStr(token) if token else _read_file_secret(
        config.oanda.token_file, "oanda.token_file")
    pd_key = env.get(PAGERDUTY_KEY_ENV)
    slack_url = env.get(SLACK_URL_ENV)
    return Secrets(
        oanda_token=oanda_token,
        control_token=_read_file_secret(config.server.control_token_file,
                                        "server.control_token_file"),
        pagerduty_routing_key=SecretStr(pd_key) if pd_key else _read_file_secret(
            config.alerts.pagerduty.routing_key_file, "alerts.pagerduty.routing_key_file"),
        slack_webhook_url=SecretStr(slack_url) if slack_url else _read_file_secret(
            config.alerts.slack.webhook_url_file, "alerts.slack.webhook_url_file"),
    )
