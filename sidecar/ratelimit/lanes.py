"""The two lanes of the limiter and the rule between them.

Critical (risk-reducing) calls skip the normal queue, but any caller may declare a call critical,
so a flood of them must not take the whole rate: while normal calls wait, critical calls get at
most `critical_max_share` of the tokens handed out (issue 11, defect 10). Only contended decisions
count (both lanes want the token), and the counts halve now and then, so the share is the recent
one and a quiet hour earns no credit.
"""

from __future__ import annotations

NORMAL, CRITICAL = 0, 1
LANE_NAMES = ("normal", "critical")
_DECAY_AT = 64  # contended decisions remembered, roughly


class LaneArbiter:
    """Decides whether a critical call may take the next token while normal calls wait."""

    __slots__ = ("_critical", "_share", "_total")

    def __init__(self, critical_max_share: float) -> None:
        if not 0.0 < critical_max_share <= 1.0:
            raise ValueError("critical_max_share must be in (0, 1]")
        self._share = critical_max_share
        self._critical = 0.0
        self._total = 0.0

    def critical_may_go(self, normal_waiting: bool) -> bool:
        """Whether a critical call may take a token now (always, when no normal call waits)."""
        return not normal_waiting or self._critical < self._share * (self._total + 1) - 1e-9

    def admitted(self, lane: int, normal_waiting: bool) -> None:
        """Note a token handed out; `normal_waiting` tells whether the decision was contended."""
        if not normal_waiting:
            return
        self._total += 1
        if lane == CRITICAL:
            self._critical += 1
        if self._total >= _DECAY_AT:
            self._total /= 2
            self._critical /= 2
