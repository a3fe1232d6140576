"""Degradation: the level controller and the recovery probe. Not policies: they decide the level
that two policies read (the read-only gate and the cache fallback) through `LevelView`."""

from sidecar.degradation.controller import DegradationController, DegradationSnapshot, LevelView
from sidecar.degradation.probe import RecoveryProbe

__all__ = ["DegradationController", "DegradationSnapshot", "LevelView", "RecoveryProbe"]
