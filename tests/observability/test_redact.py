from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from sidecar.observability.redact import REDACTED, Redactor

# Secrets drawn from characters that never occur in what redaction writes ("[REDACTED]", "*", "-").
secret_chars = st.sampled_from("abcdefghijklmnopqrstuvwxyz0123456789_")
secrets = st.text(secret_chars, min_size=8, max_size=40)
noise = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=40)
account_ids = st.tuples(st.integers(100, 999), st.integers(100, 999),
                        st.integers(0, 99_999_999), st.integers(0, 999)).map(
    lambda p: f"{p[0]}-{p[1]}-{p[2]}-{p[3]:03d}")


@settings(max_examples=200)
@given(st.lists(secrets, min_size=1, max_size=4), noise, noise, st.integers(0, 3))
def test_a_secret_never_survives_in_any_text(values: list[str], before: str, after: str,
                                             pick: int) -> None:
    redactor = Redactor(values)
    secret = values[pick % len(values)]
    out = redactor.text(before + secret + after)
    assert secret not in out


@settings(max_examples=200)
@given(account_ids, st.sampled_from(["", " ", "/v3/accounts/", "id=", "("]),
       st.sampled_from(["", " ", "/orders", ",", ")"]))
def test_account_ids_keep_only_their_last_four_characters(account: str, before: str,
                                                          after: str) -> None:
    out = Redactor().text(before + account + after)
    assert out == f"{before}***-***-****-{account[-3:]}{after}"


@settings(max_examples=200)
@given(st.dictionaries(st.sampled_from(["Authorization", "x_token", "client_secret",
                                        "password", "routing_key", "webhook_url"]),
                       st.text(max_size=20), min_size=1))
def test_values_under_credential_keys_are_always_redacted(fields: dict[str, str]) -> None:
    out = Redactor().value({"outer": fields})
    assert out == {"outer": dict.fromkeys(fields, REDACTED)}


def test_bearer_values_go_whatever_the_token() -> None:
    redactor = Redactor()
    assert redactor.text("authorization: Bearer abc.def-ghi") == \
        f"authorization: Bearer {REDACTED}"
    assert redactor.text("{'Authorization': 'bearer xyz'}") == \
        f"{{'Authorization': 'bearer {REDACTED}'}}"


def test_webhook_url_and_its_path_are_both_secret() -> None:
    url = "https://hooks.slack.com/services/T1/B2/SECRETPART"
    redactor = Redactor([url])
    assert redactor.text(f"POST {url} failed") == f"POST {REDACTED} failed"
    assert redactor.text("POST /services/T1/B2/SECRETPART") == f"POST {REDACTED}"
    assert "hooks.slack.com" in redactor.text("host hooks.slack.com is down")


def test_ordinary_values_pass_unchanged() -> None:
    redactor = Redactor(["s3cr3t-value"])
    line = {"event": "execute", "endpoint": "/v3/accounts/{accountID}/orders", "status": 201,
            "latency_ms": 42.1, "tokens_available": 12.5, "request_id": "179834225409868544",
            "from_cache": False, "error": None}
    assert redactor(None, "info", dict(line)) == line
