"""The soak's report: a table per minute, the slopes after warm-up and their verdicts.

Pure: it is given the samples, the outcome tallies and what else the run saw, and returns
markdown (printed and written to bench/results/soak.md).
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from soak.faults import Injected
from soak.flat import LIMITS, Limit, Verdict, judge
from soak.sampler import Sample


@dataclass(frozen=True, slots=True)
class MinuteRow:
    minute: int
    rss_mib: float  # the minute's last sample
    fds: float  # the minute's largest
    tasks: float  # the minute's largest
    lag_p50_s: float  # median of the 10 s windows' p50
    lag_max_s: float  # largest of the windows' maximum
    req_per_s: float  # answers in the minute / its seconds (the last may be partial)
    errors: Counter[str]


def minute_rows(samples: Sequence[Sample], tally: dict[int, Counter[str]],
                minutes: float) -> list[MinuteRow]:
    rows = []
    for minute in range(math.ceil(minutes)):
        inside = [s for s in samples if minute <= s.t_min < minute + 1]
        if not inside:
            continue
        counts = tally.get(minute, Counter())
        errors = Counter({k: v for k, v in counts.items() if k != "ok"})
        rows.append(MinuteRow(
            minute, inside[-1].rss_mib, max(s.fds for s in inside),
            max(s.tasks for s in inside), statistics.median(s.lag_p50_s for s in inside),
            max(s.lag_max_s for s in inside),
            sum(counts.values()) / (60 * min(1.0, minutes - minute)), errors))
    return rows


@dataclass
class Run:
    """Everything the report shows."""

    minutes: float
    warmup_min: float
    samples: list[Sample]
    tally: dict[int, Counter[str]]
    faults: list[Injected]
    notes: list[str] = field(default_factory=list)  # audit lines, config, what was not done
    cycle_min: float | None = None  # when every fault kind has been injected once
    problems: list[str] = field(default_factory=list)  # failed checks besides flatness

    def verdicts(self, limits: Sequence[Limit] = LIMITS,
                 from_min: float | None = None) -> list[Verdict]:
        points = [(s.t_min, s.values()) for s in self.samples]
        return judge(points, self.warmup_min if from_min is None else from_min, limits)

    @property
    def passed(self) -> bool:
        return all(v.flat for v in self.verdicts()) and not self.problems


def _errors(errors: Counter[str]) -> str:
    return ", ".join(f"{k} {v}" for k, v in errors.most_common()) or "—"


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def _value(limit: Limit, value: float) -> str:
    return f"{value * 1000:+.2f} ms" if limit.unit == "s" else f"{value:+.3f} {limit.unit}"


def _slopes(verdicts: Sequence[Verdict]) -> list[str]:
    lines = ["| series | slope per 10 min (± std. error) | limit per 10 min | samples | flat |",
             "|---|---|---|---|---|"]
    for v in verdicts:
        err = "∞" if v.fit.stderr == float("inf") else _value(v.limit, v.fit.stderr * 10)[1:]
        flat = "yes" if v.flat else ("too few samples" if not v.enough_data else "**NO**")
        lines.append(f"| {v.limit.label} | {_value(v.limit, v.per_10_min)} (± {err}) | "
                     f"< {_value(v.limit, v.limit.per_10_min)[1:]} | {v.fit.n} | {flat} |")
    return lines


def render(run: Run) -> str:
    lines = [f"# Soak: {run.minutes:g} minutes of mixed traffic\n",
             f"Verdict: **{'PASS' if run.passed else 'FAIL'}** — slopes after a "
             f"{run.warmup_min:g}-minute warm-up (least squares over the 10 s samples).\n",
             *_slopes(run.verdicts())]
    if run.cycle_min is not None and run.cycle_min < run.minutes - 3:
        lines += ["", f"Diagnostic, not the verdict: the same slopes from minute "
                  f"{run.cycle_min:g}, once every fault kind has been injected once (a burst "
                  "sets a high-water mark once; a leak grows again under the same faults).\n",
                  *_slopes(run.verdicts(from_min=run.cycle_min))]
    lines += ["", "| minute | RSS MiB | fds | tasks | loop lag p50 ms | loop lag max ms | "
              "req/s | answers other than ok, by kind |", "|---|---|---|---|---|---|---|---|"]
    for r in minute_rows(run.samples, run.tally, run.minutes):
        lines.append(f"| {r.minute} | {r.rss_mib:.1f} | {r.fds:.0f} | {r.tasks:.0f} | "
                     f"{_ms(r.lag_p50_s)} | {_ms(r.lag_max_s)} | {r.req_per_s:.1f} | "
                     f"{_errors(r.errors)} |")
    lines += ["", "Faults injected:", ""]
    lines += [f"- minute {f.t_min:.1f}: {f.name}" + ("" if f.ok else f" — REFUSED: {f.detail}")
              for f in run.faults] or ["- none"]
    if run.problems:
        lines += ["", "Checks that failed:", ""] + [f"- {p}" for p in run.problems]
    if run.notes:
        lines += ["", *run.notes]
    return "\n".join(lines) + "\n"
