from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from sidecar.config import load_config, require_token
from sidecar.errors import ConfigError


def _yaml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return path


def test_defaults_match_the_contract() -> None:
    c = load_config(env={})
    assert (c.server.grpc_listen, c.server.admin_listen) == ("127.0.0.1:50051", "127.0.0.1:9464")
    assert c.oanda.base_url == "https://api-fxpractice.oanda.com"
    assert (c.retry.max_attempts, c.retry.base_delay_s, c.retry.max_delay_s) == (3, 1.0, 10)
    assert (c.retry.jitter, c.retry.budget_ratio) == ("full", 0.2)
    assert (c.breaker.failure_threshold, c.breaker.recovery_timeout_s) == (5, 60)
    assert (c.rate_limit.rate_per_s, c.rate_limit.burst, c.rate_limit.max_queue_wait_s) == (
        100, 20, 5)
    assert c.degradation.cache_backend == "memory"
    assert c.alerts.aggregation_window_s == 60
    assert c.logging.format == "json"


def test_environment_overrides_yaml(tmp_path: Path) -> None:
    path = _yaml(tmp_path, "breaker:\n  failure_threshold: 7\nretry:\n  jitter: equal\n")
    c = load_config(path, env={"OANDA_SIDECAR__BREAKER__FAILURE_THRESHOLD": "3",
                               "OANDA_SIDECAR__ALERTS__PAGERDUTY__EVENTS_URL": "http://x/e"})
    assert c.breaker.failure_threshold == 3
    assert c.retry.jitter == "equal"
    assert c.alerts.pagerduty.events_url == "http://x/e"


def test_config_is_frozen() -> None:
    c = load_config(env={})
    with pytest.raises(ValidationError):
        c.breaker.failure_threshold = 1  # type: ignore[misc]


@pytest.mark.parametrize(("text", "env", "named"), [
    ("oanda:\n  base_url: ftp://x\n", {}, "oanda.base_url"),
    ("retry:\n  base_delay_s: 5\n  max_delay_s: 1\n", {}, "retry"),
    ("degradation:\n  cache_backend: redis\n", {}, "degradation"),
    ("rate_limit:\n  endpoints:\n    - {pattern: x, rate_per_s: 0, burst: 1}\n", {},
     "rate_limit.endpoints.0.rate_per_s"),
    ("[1, 2]\n", {}, "top level"),
    ("a: [\n", {}, "invalid YAML"),
    ("", {"OANDA_SIDECAR__NOPE__X": "1"}, "OANDA_SIDECAR__NOPE__X"),
])
def test_errors_name_the_key(tmp_path: Path, text: str, env: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(_yaml(tmp_path, text), env=env)
    message = str(caught.value)
    assert named in message and "\n" not in message


def test_secrets_come_from_env_or_files_and_never_print(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("file-token-123\n")
    c = load_config(_yaml(tmp_path, f"oanda:\n  token_file: {token_file}\n"), env={})
    assert c.secrets.oanda_token is not None
    assert c.secrets.oanda_token.get_secret_value() == "file-token-123"
    assert "file-token-123" not in repr(c) + str(c) + c.model_dump_json()
    c = load_config(None, env={"OANDA_API_TOKEN": "env-token-456"})
    assert c.secrets.oanda_token is not None
    assert c.secrets.oanda_token.get_secret_value() == "env-token-456"


def test_missing_token_is_refused_when_required() -> None:
    with pytest.raises(ConfigError, match="OANDA_API_TOKEN"):
        require_token(load_config(env={}))
    require_token(load_config(env={"OANDA_SIDECAR__OANDA__REQUIRE_TOKEN": "false"}))
