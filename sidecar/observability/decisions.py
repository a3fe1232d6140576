"""The last decisions that refused or degraded a call, and the changes of level: what an
on-call engineer reads first in `ctl status` and on the dashboard. A bus subscriber."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from sidecar.events import DegradationChanged, EventBus, ExecuteFinished
from sidecar.vocabulary import Outcome

KEPT = 10
# Outcomes that are answers, not the sidecar's decisions.
_ANSWERS = frozenset({Outcome.OK, Outcome.HTTP_4XX, Outcome.HTTP_5XX, "invalid_request",
                      "cancelled"})
_DETAIL_MAX = 200


@dataclass(frozen=True, slots=True)
class Decision:
    at: float  # wall seconds
    method: str
    endpoint: str
    outcome: str
    detail: str


class DecisionLog:
    def __init__(self, bus: EventBus) -> None:
        self._kept: deque[Decision] = deque(maxlen=KEPT)
        bus.subscribe(ExecuteFinished, self._on_execute)
        bus.subscribe(DegradationChanged, self._on_level)

    def _on_execute(self, e: ExecuteFinished) -> None:
        if e.from_cache:
            self._kept.append(Decision(e.at, e.method, e.endpoint, "from_cache",
                                       "answered from the degradation cache"))
        elif e.outcome not in _ANSWERS:
            self._kept.append(Decision(e.at, e.method, e.endpoint, e.outcome,
                                       (e.error or "")[:_DETAIL_MAX]))

    def _on_level(self, e: DegradationChanged) -> None:
        who = "by an operator" if e.manual else "automatically"
        self._kept.append(Decision(e.at, "", "", "degradation",
                                   f"{e.from_level} → {e.to_level} {who}: {e.reason}"
                                   [:_DETAIL_MAX]))

    def snapshot(self) -> list[Decision]:
        """Newest first."""
        return list(reversed(self._kept))
