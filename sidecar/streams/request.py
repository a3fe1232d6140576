"""A StreamRequest checked before anything connects: path, account, instruments, options."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sidecar.errors import InvalidRequest
from sidecar.streams.messages import StreamKey, StreamKind

_PATH = re.compile(r"/v3/accounts/(?P<account>[^/]+)/(?P<kind>pricing|transactions)/stream")
# OANDA account IDs: 101-004-1435156-001 (site, division, user, sub-account).
_ACCOUNT = re.compile(r"\d{3}-\d{3}-\d{1,12}-\d{3}")
_INSTRUMENT = re.compile(r"[A-Z0-9]{1,16}_[A-Z0-9]{1,16}")
_BOOL = frozenset({"true", "false"})
MAX_INSTRUMENTS = 100
_PRICING_KEYS = frozenset({"instruments", "snapshot", "includeHomeConversions"})


@dataclass(frozen=True, slots=True)
class Subscription:
    """What one subscriber asked for."""

    key: StreamKey
    since: int | None = None  # transactions: deliver every one after this ID first
    snapshot: bool = True  # pricing: the newest price of each instrument at once


def parse_request(path: str, query: dict[str, str], since: str) -> Subscription:
    """The subscription, or InvalidRequest naming the field."""
    match = _PATH.fullmatch(path)
    if match is None:
        raise InvalidRequest("path must be /v3/accounts/{id}/pricing/stream or "
                             "/v3/accounts/{id}/transactions/stream", field="path")
    account = match.group("account")
    if not _ACCOUNT.fullmatch(account):
        raise InvalidRequest("account ID must look like 101-004-1435156-001", field="path")
    if match.group("kind") == "transactions":
        return _transactions(account, query, since)
    if since:
        raise InvalidRequest("since_transaction_id is for the transaction stream only",
                             field="since_transaction_id")
    return _pricing(account, query)


def _transactions(account: str, query: dict[str, str], since: str) -> Subscription:
    if query:
        raise InvalidRequest(f"the transaction stream takes no query parameters "
                             f"(got {sorted(query)[0]!r})", field="query")
    if since and not (since.isdigit() and len(since) <= 18):
        raise InvalidRequest("since_transaction_id must be a transaction ID (digits)",
                             field="since_transaction_id")
    return Subscription(StreamKey(account, StreamKind.TRANSACTIONS),
                        since=int(since) if since else None)


def _pricing(account: str, query: dict[str, str]) -> Subscription:
    unknown = sorted(set(query) - _PRICING_KEYS)
    if unknown:
        raise InvalidRequest(f"query parameter {unknown[0]!r} is not one of instruments, "
                             "snapshot, includeHomeConversions", field="query")
    names = [n.strip() for n in query.get("instruments", "").split(",") if n.strip()]
    if not names:
        raise InvalidRequest("instruments is required (EUR_USD,USD_JPY,...)", field="query")
    bad = [n for n in names if not _INSTRUMENT.fullmatch(n)]
    if bad:
        raise InvalidRequest(f"instrument {bad[0]!r} is not an OANDA instrument name "
                             "(like EUR_USD)", field="query")
    if len(set(names)) > MAX_INSTRUMENTS:
        raise InvalidRequest(f"at most {MAX_INSTRUMENTS} instruments per stream", field="query")
    # OANDA reads booleans case-insensitively (`v20` sends Python's True and False).
    flags = {flag: query[flag].lower() for flag in ("snapshot", "includeHomeConversions")
             if flag in query}
    for flag, value in flags.items():
        if value not in _BOOL:
            raise InvalidRequest(f"{flag} must be true or false", field="query")
    options = (("includeHomeConversions", "true"),) if flags.get(
        "includeHomeConversions") == "true" else ()
    key = StreamKey(account, StreamKind.PRICING, tuple(sorted(set(names))), options)
    return Subscription(key, snapshot=flags.get("snapshot", "true") == "true")
