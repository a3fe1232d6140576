"""What really happened, from the simulator itself (never from the sidecar)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import aiohttp


@dataclass
class Truth:
    """Per client ID: how many orders the simulator created; per trade client ID: how many
    closes; and every transaction ID after the run's start, in the simulator's order."""

    creates: Counter[str] = field(default_factory=Counter)
    closes: Counter[str] = field(default_factory=Counter)
    ids: list[int] = field(default_factory=list)

    def add(self, tx: dict[str, Any]) -> None:
        self.ids.append(int(tx["id"]))
        if tx.get("type") != "MARKET_ORDER":
            return
        if "tradeClose" in tx:
            self.closes[str(tx["tradeClose"].get("clientTradeID", ""))] += 1
        elif (cid := (tx.get("clientExtensions") or {}).get("id")):
            self.creates[str(cid)] += 1


class Simulator:
    """The simulator as the harness reaches it (its own link, not the sidecar's)."""

    def __init__(self, url: str, token: str) -> None:
        self.url, self.token = url, token

    async def _get(self, path: str) -> Any:
        headers = {"Authorization": f"Bearer {self.token}"}
        timeout = aiohttp.ClientTimeout(total=10)
        async with aiohttp.ClientSession(timeout=timeout) as session, session.get(
                self.url + path, headers=headers) as resp:
            resp.raise_for_status()
            return await resp.json()

    async def state(self) -> dict[str, Any]:
        data: dict[str, Any] = await self._get("/_sim/state")
        return data

    async def fault(self, **spec: Any) -> str:
        async with aiohttp.ClientSession() as session, session.post(
                f"{self.url}/_sim/faults", json=spec) as resp:
            resp.raise_for_status()
            return str((await resp.json())["id"])

    async def clear_fault(self, fault_id: str) -> None:
        async with aiohttp.ClientSession() as session, session.delete(
                f"{self.url}/_sim/faults/{fault_id}"):
            pass

    async def truth(self, account: str, since: int) -> Truth:
        truth, last = Truth(), since
        while True:
            page = await self._get(f"/v3/accounts/{account}/transactions/sinceid?id={last}")
            for tx in page["transactions"]:
                truth.add(tx)
                last = int(tx["id"])
            if last >= int(page["lastTransactionID"]) or not page["transactions"]:
                return truth
