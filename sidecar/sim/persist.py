"""Keeping the simulator's state across a restart (`oanda-sidecar sim --state-file FILE`).

OANDA does not forget accounts when one of its servers restarts; a chaos run that restarts the
simulator needs the same. What is kept: every account (transactions, orders, trades, positions,
balance), the settle point, the next RequestID and the count of answers per status. What is not:
faults, the request log, rate windows, held prices (they belong to a test, not to OANDA).
The file is written atomically (a temporary file, then a rename) when the simulator closes.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

from sidecar.sim.state import Account, SimState

FORMAT = 1


def snapshot(state: SimState, next_request_id: int, statuses: dict[int, int]) -> bytes:
    """The state as bytes; the accounts' listeners (streams) are left out, not pickled."""
    detached = [(a, a.listeners, a._state_listeners) for a in state.accounts.values()]
    try:
        for account, _, _ in detached:
            account.listeners, account._state_listeners = [], []
        return pickle.dumps({"format": FORMAT, "accounts": state.accounts,
                             "settled_at": state.settled_at, "next_request_id": next_request_id,
                             "statuses": dict(statuses)})
    finally:
        for account, own, shared in detached:
            account.listeners, account._state_listeners = own, shared


def restore(state: SimState, raw: bytes) -> tuple[int, dict[int, int]]:
    """Put a snapshot's accounts into `state` in place; returns (next RequestID, statuses)."""
    data: dict[str, Any] = pickle.loads(raw)
    if data.get("format") != FORMAT:
        raise ValueError(f"unknown simulator state format {data.get('format')!r}")
    accounts: dict[str, Account] = data["accounts"]
    for account in accounts.values():
        account._state_listeners = state.listeners
    state.accounts = accounts
    state.settled_at = float(data["settled_at"])
    return int(data["next_request_id"]), {int(k): int(v) for k, v in data["statuses"].items()}


def save(path: Path, raw: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as out:
        out.write(raw)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)
