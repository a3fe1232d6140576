"""The real simulator and the real sidecar on loopback, from the end-to-end fixtures."""

from tests.e2e.conftest import sidecar, sidecar_factory, sim  # noqa: F401
