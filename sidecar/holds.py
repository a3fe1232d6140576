"""Operator holds that survive a restart: breaker overrides and a manual degradation level.

With `server.state_dir` set, every change of a hold is written at once to `holds.json` there
(write to a temporary file, fsync, rename: a crash leaves the old file or the new one, never
half of one), and at start-up the holds found there are put back before the sidecar serves —
a crash never silently lifts a maintenance hold. Without it holds live in memory only.
A bus subscriber: the breaker and the controller do not know about it.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from sidecar.degradation import DegradationController
from sidecar.events import BreakerTransition, DegradationChanged, EventBus
from sidecar.policies.breaker import BreakerRegistry
from sidecar.vocabulary import BreakerState, Override

FILENAME = "holds.json"
_OVERRIDE_OF = {BreakerState.FORCED_OPEN: Override.FORCED_OPEN,
                BreakerState.DISABLED: Override.DISABLED}
_log = logging.getLogger("sidecar.holds")


class HoldStore:
    def __init__(self, state_dir: Path | None, bus: EventBus, breakers: BreakerRegistry,
                 degradation: DegradationController) -> None:
        self.path = state_dir / FILENAME if state_dir is not None else None
        self._breakers = breakers
        self._degradation = degradation
        self._restoring = False
        if self.path is not None:
            bus.subscribe(BreakerTransition, self._changed)
            bus.subscribe(DegradationChanged, self._changed)

    @property
    def kept(self) -> bool:
        return self.path is not None

    def current(self) -> dict[str, Any]:
        overrides = {s.name: str(_OVERRIDE_OF[s.state]) for s in self._breakers.snapshots()
                     if s.state in _OVERRIDE_OF}
        snap = self._degradation.snapshot()
        manual = {"level": str(snap.level), "reason": snap.reason} if snap.manual else None
        return {"version": 1, "breaker_overrides": overrides, "degradation": manual}

    def restore(self) -> dict[str, Any]:
        """Put back what the file holds (before serving). A missing file holds nothing; an
        unreadable one is logged and ignored rather than stopping a trading pod's sidecar."""
        if self.path is None or not self.path.exists():
            return {}
        try:
            held = json.loads(self.path.read_text())
            overrides = dict(held.get("breaker_overrides") or {})
            manual = held.get("degradation")
        except (OSError, ValueError, AttributeError) as exc:
            _log.error("cannot read operator holds from %s: %s", self.path, exc)
            return {}
        self._restoring = True
        try:
            for name, override in overrides.items():
                try:
                    self._breakers.set_override(name, override)
                except (KeyError, ValueError) as exc:
                    _log.error("operator hold for breaker %r not restored: %s", name, exc)
            if manual:
                self._degradation.set_manual(manual["level"], manual.get("reason", ""))
        finally:
            self._restoring = False
        _log.warning("operator holds restored from %s: %s", self.path, held)
        return {"breaker_overrides": overrides, "degradation": manual}

    def _changed(self, event: object) -> None:
        if not self._restoring:
            self.save()

    def save(self) -> None:
        if self.path is None:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            with tmp.open("w") as f:
                json.dump(self.current(), f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except OSError as exc:  # a hold that cannot be kept is loud, never silent
            _log.error("cannot keep operator holds in %s: %s", self.path, exc)

