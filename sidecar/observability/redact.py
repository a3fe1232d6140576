"""Scrub secrets and account IDs from anything about to be written to a log.

What goes:
- every secret value given (OANDA token, control token, webhook URL and its path, routing key),
  anywhere inside any string, becomes `[REDACTED]`;
- `Bearer <anything>` becomes `Bearer [REDACTED]`;
- the value of a key that names a credential (`authorization`, `*token`, `*secret*`, `password`,
  `routing_key`, `webhook_url`, `cookie`, `api_key`) becomes `[REDACTED]` unless it is a number;
- an OANDA account ID (`101-004-1435156-001`) is masked to a fixed shape that keeps only its last
  four characters: `***-***-****-001`. The fixed shape hides the length of the user number; the
  suffix still tells sub-accounts of one user apart.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, MutableMapping
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

REDACTED = "[REDACTED]"
ACCOUNT_MASK = "***-***-****"
_SENSITIVE_EXACT = frozenset({"authorization", "token", "password", "cookie", "set-cookie",
                              "routing_key", "webhook_url", "api_key", "apikey"})
_SENSITIVE_PARTS = ("token", "secret", "password", "authorization", "routing_key",
                    "webhook_url", "api_key")
_BEARER = r"(?P<bearer>\b[Bb][Ee][Aa][Rr][Ee][Rr]\s+)[^\s'\",;)}\]]+"
_ACCOUNT = r"\b\d{3}-\d{3}-\d+-(?P<acct>\d{3})\b"
_PLAIN = frozenset({int, float, bool})
_MIN_URL_PATH = 8  # a webhook URL's path is its secret part; "/" alone is not worth redacting


@lru_cache(maxsize=1024)
def is_sensitive_key(key: str) -> bool:
    lowered = key.lower()
    return lowered in _SENSITIVE_EXACT or any(part in lowered for part in _SENSITIVE_PARTS)


def _secret_forms(secrets: Iterable[str]) -> list[str]:
    forms: set[str] = set()
    for secret in secrets:
        if not secret:
            continue
        forms.add(secret)
        if secret.startswith(("http://", "https://")):
            path = urlsplit(secret).path
            if len(path) >= _MIN_URL_PATH:
                forms.add(path)
    # Longest first, so a URL is replaced whole before its own path is.
    return sorted(forms, key=len, reverse=True)


class Redactor:
    """Callable as a structlog processor; `text()` scrubs one string."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        forms = _secret_forms(secrets)
        alternatives = [f"(?P<secret>{'|'.join(map(re.escape, forms))})"] if forms else []
        self._pattern = re.compile("|".join([*alternatives, _BEARER, _ACCOUNT]))

    def text(self, value: str) -> str:
        return self._pattern.sub(self._replace, value)

    @staticmethod
    def _replace(match: re.Match[str]) -> str:
        if match.group("acct") is not None:
            return f"{ACCOUNT_MASK}-{match.group('acct')}"
        if match.group("bearer") is not None:
            return f"{match.group('bearer')}{REDACTED}"
        return REDACTED

    def value(self, value: Any) -> Any:
        """Scrub any value: strings, containers (recursively), and the str() of other objects."""
        if isinstance(value, str):
            return self.text(value)
        if value is None or isinstance(value, bool | int | float):
            return value
        if isinstance(value, Mapping):
            return {str(k): self._field(str(k), v) for k, v in value.items()}
        if isinstance(value, list | tuple | set | frozenset):
            return [self.value(v) for v in value]
        if isinstance(value, bytes):
            return self.text(value.decode("utf-8", "replace"))
        # Objects would reach the renderer through repr(); scrub that text instead.
        return self.text(str(value))

    def _field(self, key: str, value: Any) -> Any:
        if is_sensitive_key(key) and not (isinstance(value, int | float) or value is None):
            return REDACTED
        return self.value(value)

    def __call__(self, logger: Any, method: str,
                 event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        sub, replace = self._pattern.sub, self._replace
        for key, value in event_dict.items():
            kind = type(value)
            if kind is str:  # the common case, inlined: this runs for every log line
                event_dict[key] = REDACTED if is_sensitive_key(key) else sub(replace, value)
            elif value is not None and kind not in _PLAIN:
                event_dict[key] = self._field(key, value)
        return event_dict
