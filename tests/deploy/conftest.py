"""Fixtures for the deploy tests: the real simulator and sidecar from the end-to-end suite."""

from __future__ import annotations

from tests.e2e.conftest import sidecar_factory, sim

__all__ = ["sidecar_factory", "sim"]
