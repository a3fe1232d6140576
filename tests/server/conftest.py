"""The dashboard tests run against the real simulator and sidecar: reuse the end-to-end fixtures."""

from tests.e2e.conftest import sidecar_factory, sim

__all__ = ["sidecar_factory", "sim"]
