"""The last transaction ID the sidecar knows per account, learned from OANDA's answers.

Every answer about an account carries `lastTransactionID`; it is read from the end of the body
without parsing it (OANDA writes it last), so learning costs about a microsecond per call. An
order's own transactions are always newer than the ID known before it was sent: that ID is where
`transactions/sinceid` starts when the order's outcome is unknown.
"""

from __future__ import annotations

import re

_KEY = b'"lastTransactionID"'
_VALUE = re.compile(rb'\s*:\s*"(\d{1,20})"')
_MAX_ACCOUNTS = 10_000
_TAIL_BYTES = 1024


class TransactionIDs:
    __slots__ = ("_last",)

    def __init__(self) -> None:
        self._last: dict[str, int] = {}

    def get(self, account_id: str) -> str | None:
        found = self._last.get(account_id)
        return None if found is None else str(found)

    def forget(self) -> None:
        """Know no account (benchmarks: the cost of an account's first order)."""
        self._last.clear()

    def note(self, account_id: str, transaction_id: str | int) -> None:
        """Remember `transaction_id` unless a newer one is known (IDs only grow)."""
        value = int(transaction_id)
        last = self._last
        if value <= last.get(account_id, -1):
            return
        if len(last) >= _MAX_ACCOUNTS and account_id not in last:
            del last[next(iter(last))]
        last[account_id] = value

    def learn(self, path: str, body: bytes) -> None:
        """Take `lastTransactionID` from an answer to `path` (an /v3/accounts/{id}/... call)."""
        # OANDA writes it last (a reject adds errorCode and errorMessage after it): looking
        # only at the tail keeps a 1 MiB candles answer from costing a full scan.
        at = body.rfind(_KEY, max(0, len(body) - _TAIL_BYTES))
        if at < 0:
            return
        match = _VALUE.match(body, at + len(_KEY))
        if match is None:
            return
        parts = path.split("/", 4)
        if len(parts) < 4 or parts[2] != "accounts" or not parts[3]:
            return
        self.note(parts[3], match.group(1).decode())
