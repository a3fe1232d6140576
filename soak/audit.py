"""After the run: what the simulator recorded against what the sidecar told the load.

Orders: no client order ID filled twice (exactly once), none told placed but absent, none told
refused but present. Transactions: the long-lived subscriber got every one of the simulator's
log since the start, once, in order. Any failure is a problem of the run (exit 1).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import aiohttp

# Answers after which a caller may treat the order as not placed (OUTCOME_UNKNOWN and a lapsed
# deadline promise nothing, so they are checked in the simulator, not judged).
_UNDECIDED = frozenset({"ok", "outcome_unknown", "deadline_exceeded",
                        "grpc_deadline_exceeded"})


async def sim_transactions(sim_url: str, token: str, account: str,
                           since: int) -> list[dict[str, Any]]:
    """Every transaction after `since`, from the simulator's v20 API (pages of ≤ 1000)."""
    found: list[dict[str, Any]] = []
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(headers=headers) as session:
        while True:
            url = f"{sim_url}/v3/accounts/{account}/transactions/sinceid"
            async with session.get(url, params={"id": str(since)}) as resp:
                resp.raise_for_status()
                page = (await resp.json())["transactions"]
            if not page:
                return found
            found += page
            since = int(page[-1]["id"])


def order_checks(sent: list[str], answers: dict[str, str], placed: set[str],
                 transactions: list[dict[str, Any]]) -> tuple[dict[str, int], list[str]]:
    mine = set(sent)
    fills: Counter[str] = Counter(str(tx["clientOrderID"]) for tx in transactions
                                  if tx["type"] == "ORDER_FILL"
                                  and tx.get("clientOrderID") in mine)
    duplicates = sorted(cid for cid, n in fills.items() if n > 1)
    told_placed_absent = sorted(placed - set(fills))
    told_refused_present = sorted(cid for cid, outcome in answers.items()
                                  if outcome not in _UNDECIDED and cid in fills)
    unknown = [cid for cid, outcome in answers.items() if outcome == "outcome_unknown"]
    figures = {"sent": len(sent), "answered": len(answers), "placed (simulator)": len(fills),
               "told placed": len(placed), "OUTCOME_UNKNOWN answers": len(unknown),
               "of those placed": sum(1 for cid in unknown if cid in fills),
               "duplicates": len(duplicates), "told placed, absent": len(told_placed_absent),
               "told refused, present": len(told_refused_present)}
    problems = []
    for name, ids in (("filled more than once", duplicates),
                      ("told placed but absent", told_placed_absent),
                      ("told refused but present", told_refused_present)):
        if ids:
            problems.append(f"orders {name}: {len(ids)} (e.g. {', '.join(ids[:3])})")
    return figures, problems


def stream_checks(delivered: list[int], duplicates: int, out_of_order: int,
                  transactions: list[dict[str, Any]]) -> tuple[dict[str, int], list[str]]:
    logged = [int(tx["id"]) for tx in transactions]
    missing = sorted(set(logged) - set(delivered))
    figures = {"in the simulator's log": len(logged), "delivered": len(delivered),
               "missing": len(missing), "duplicated": duplicates, "out of order": out_of_order}
    problems = []
    if missing:
        problems.append(f"transactions missing from the stream: {len(missing)} "
                        f"(e.g. {missing[:5]})")
    if duplicates or out_of_order:
        problems.append(f"transaction stream: {duplicates} duplicated, {out_of_order} out of "
                        "order")
    return figures, problems


def _figures(title: str, figures: dict[str, Any]) -> str:
    return f"{title}: " + ", ".join(f"{k} {v}" for k, v in figures.items()) + "."


async def audit(run: Any, sim_url: str, token: str, account: str, first_tx: int, traffic: Any,
                transactions: Any, prices: Any, churned: Counter[str], watch: Any, *,
                sidecar_exit: int | None, sampler_failures: list[str]) -> None:
    """Fill `run.notes` and `run.problems` from the simulator's records and the subscribers."""
    log = await sim_transactions(sim_url, token, account, first_tx)
    orders, problems = order_checks(traffic.orders.sent, traffic.orders.answers,
                                    traffic.orders.placed, log)
    stream, stream_problems = stream_checks(transactions.delivered, transactions.duplicates,
                                            transactions.out_of_order, log)
    run.problems += problems + stream_problems
    if sidecar_exit is not None:
        run.problems.append(f"the sidecar exited during the soak (code {sidecar_exit})")
    if len(sampler_failures) > max(1, len(run.samples) // 20):
        run.problems.append(f"{len(sampler_failures)} samples failed: {sampler_failures[:3]}")
    if watch.status_429:
        run.problems.append(f"upstream answered 429 {watch.status_429} times (most arrivals in "
                            f"any 1 s: {watch.max_per_s}; OANDA allows 120)")
    refused = [f.name for f in run.faults if not f.ok]
    if refused:
        run.problems.append(f"faults the simulator refused: {refused}")
    total: Counter[str] = Counter()
    for counts in run.tally.values():
        total.update(counts)
    run.notes += [
        _figures("Calls", {"answered": sum(total.values()),
                           "by outcome": dict(total.most_common())}),
        _figures("Orders (client IDs, market orders)", orders)
        + f" Trade closes: {traffic.orders.closes} sent, {traffic.orders.closed} ok.",
        _figures("Transaction stream (since the start)", stream)
        + f" Messages by type: {dict(transactions.counts.most_common())}.",
        f"Pricing stream: messages by type {dict(prices.counts.most_common())}.",
        *(f"Stream ended by the sidecar: {e}" for e in transactions.endings + prices.endings),
        f"Churn (a pricing and a transaction subscriber opened for 5 s, then cancelled): "
        f"{dict(churned.most_common())}.",
        f"Upstream, from the simulator's request log: {watch.requests} requests, 429s "
        f"{watch.status_429}, most arrivals in any 1 s window {watch.max_per_s} (limit 120); "
        f"log reads failed {len(watch.failures)}.",
        f"Samples: {len(run.samples)}, failed {len(sampler_failures)}.",
    ]
