"""Judging a chaos run: one row per fault, from the workload's records and the simulator's."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chaos.truth import Truth

ORDER_OPS = ("open", "close")


@dataclass
class Phase:
    name: str
    what: str
    start: float
    first_tx: int  # the simulator's lastTransactionID when the phase began
    upstream_429: int  # the simulator's 429s so far
    spans_before: dict[str, int] = field(default_factory=dict)
    fault_end: float | None = None
    recovered_s: float | None = None
    spans_after: dict[str, int] = field(default_factory=dict)
    last_tx: int = 0


@dataclass
class Row:
    fault: str
    intended: int = 0
    placed: int = 0
    duplicates: int = 0
    lost: int = 0
    undecided: int = 0
    answer_lost: int = 0  # orders whose answer the caller did not get and had to resolve
    decided_s: float | None = None  # the last of those decided, seconds after the fault ended
    tx: int = 0
    tx_missing: int = 0
    tx_duplicated: int = 0
    tx_out_of_order: int = 0
    upstream_429: int = 0
    longest_wait_s: float = 0.0
    deadline_s: float = 0.0
    over_deadline: int = 0  # calls that took longer than their deadline + the tolerance
    recovered_s: float | None = None
    notes: str = ""


@dataclass
class Result:
    rows: list[Row]
    phases: list[Phase]
    status: str

    def failures(self, tolerance_s: float) -> list[str]:
        """Every broken promise, one line each; empty when the run is clean."""
        out = []
        for r in self.rows:
            for name in ("duplicates", "lost", "undecided", "tx_missing", "tx_duplicated",
                         "tx_out_of_order", "upstream_429"):
                if getattr(r, name):
                    out.append(f"{r.fault}: {name} = {getattr(r, name)}")
            if r.longest_wait_s > r.deadline_s + tolerance_s:
                out.append(f"{r.fault}: a call took {r.longest_wait_s:.2f} s "
                           f"(deadline {r.deadline_s:g} s)")
            if not r.fault.startswith("baseline") and r.recovered_s is None:
                out.append(f"{r.fault}: service did not come back")
        return out


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:  # a line being written right now
            continue
    return out


def first_success(calls: list[dict[str, Any]], since: float) -> float | None:
    ends = [c["t1"] for c in calls if c["op"] in ORDER_OPS and c["t0"] >= since
            and c["result"].startswith("status 2")]
    return min(ends) if ends else None


def delivered_max(work: Path) -> int:
    ids = [r["id"] for r in read_jsonl(work / "workload" / "tx.jsonl") if "id" in r]
    return max(ids, default=0)


def _truth_count(intent: dict[str, Any], truth: Truth) -> int:
    return (truth.creates if intent["kind"] == "open" else truth.closes)[intent["cid"]]


def _orders(row: Row, intents: list[dict[str, Any]], truth: Truth,
            fault_end: float | None) -> None:
    row.intended = len(intents)
    for intent in intents:
        count = _truth_count(intent, truth)
        row.placed += count > 0
        row.duplicates += max(0, count - 1)
        belief = intent["belief"]
        row.lost += (belief == "placed" and count == 0) or (belief == "not_placed" and count > 0)
        row.undecided += belief == "unknown"
        if " then " in intent["how"]:
            row.answer_lost += 1
            if fault_end is not None and belief != "unknown":
                late = max(0.0, intent["end"] - fault_end)
                row.decided_s = max(row.decided_s or 0.0, late)


def _transactions(row: Row, expected: list[int], delivered: list[int]) -> None:
    wanted = set(expected)
    row.tx = len(wanted)
    seen: Counter[int] = Counter()
    highest = 0
    for number in delivered:
        seen[number] += 1
        if seen[number] == 1 and number < highest and number in wanted:
            row.tx_out_of_order += 1
        highest = max(highest, number)
    row.tx_missing = sum(1 for n in wanted if not seen[n])
    row.tx_duplicated = sum(seen[n] - 1 for n in wanted if seen[n] > 1)


def _calls(row: Row, calls: list[dict[str, Any]], tolerance_s: float = 0.5) -> None:
    for call in calls:
        took = call["t1"] - call["t0"]
        if took > row.longest_wait_s:
            row.longest_wait_s, row.deadline_s = took, call["deadline"]
        row.over_deadline += took > call["deadline"] + tolerance_s


def build(phases: list[Phase], end: Phase, records: Path, truth: Truth, status: str) -> Result:
    intents = read_jsonl(records / "intents.jsonl")
    calls = read_jsonl(records / "calls.jsonl")
    delivered = [r["id"] for r in read_jsonl(records / "tx.jsonl") if "id" in r]
    rows = []
    bounds = [*phases[1:], end]
    for phase, nxt in zip(phases, bounds, strict=True):
        row = Row(phase.name, recovered_s=phase.recovered_s)
        _orders(row, [i for i in intents if phase.start <= i["start"] < nxt.start], truth,
                phase.fault_end)
        _transactions(row, [n for n in truth.ids if phase.first_tx < n <= nxt.first_tx
                            or (nxt is end and n > phase.first_tx)], delivered)
        _calls(row, [c for c in calls if phase.start <= c["t0"] < nxt.start])
        row.upstream_429 = nxt.upstream_429 - phase.upstream_429
        row.notes = _notes(phase, nxt)
        rows.append(row)
    return Result(rows, phases, status)


def _notes(phase: Phase, nxt: Phase) -> str:
    """The receivers' counts at the fault's start, its end and the next fault's start."""
    if "OTLP" not in phase.name:
        return ""
    before, during, after = phase.spans_before, phase.spans_after, nxt.spans_before
    got = during.get("spans", 0) - before.get("spans", 0)
    return (f"spans received at the fault's start {before.get('spans', 0)}, while black-holed "
            f"+{got}, by the next phase {after.get('spans', 0)}; alerts delivered "
            f"{before.get('pagerduty', 0) + before.get('slack', 0)} → "
            f"{after.get('pagerduty', 0) + after.get('slack', 0)}")


HEADER = ("| fault | orders intended | placed | duplicates | lost | undecided | answer lost, "
          "resolved | last of those decided | tx (sim) | tx missing | tx dup | tx out of order | "
          "upstream 429s | longest call / deadline | recovered after |\n"
          "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")


def markdown(result: Result) -> str:
    lines = [HEADER]
    for r in result.rows:
        recovered = "—" if r.recovered_s is None else f"{r.recovered_s:.1f} s"
        decided = "—" if r.decided_s is None else f"{r.decided_s:.1f} s"
        lines.append(f"| {r.fault} | {r.intended} | {r.placed} | {r.duplicates} | {r.lost} | "
                     f"{r.undecided} | {r.answer_lost} | {decided} | {r.tx} | {r.tx_missing} | "
                     f"{r.tx_duplicated} | "
                     f"{r.tx_out_of_order} | {r.upstream_429} | {r.longest_wait_s:.2f} s / "
                     f"{r.deadline_s:g} s | {recovered} |")
    legend = [f"- **{p.name}**: {p.what}" for p in result.phases if p.what]
    notes = [f"- {r.fault}: {r.notes}" for r in result.rows if r.notes]
    return "\n".join([*lines, "", *legend, *notes, ""])
