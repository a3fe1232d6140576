"""The control token's header: scheme in any case, exactly one space, nothing around it."""

from __future__ import annotations

import pytest

from sidecar.clock import FakeClock
from sidecar.events import EventBus
from sidecar.server.auth import ControlTokenGuard

TOKEN = "c0ntrol-t0ken"


@pytest.mark.parametrize(("header", "ok"), [
    (f"Bearer {TOKEN}", True), (f"bearer {TOKEN}", True), (f"BEARER {TOKEN}", True),
    (f"Bearer  {TOKEN}", False), (f"Bearer {TOKEN} ", False), (f" Bearer {TOKEN}", False),
    (f"Basic {TOKEN}", False), (TOKEN, False), ("Bearer wrong", False), ("", False),
    (f"Bearer {TOKEN}x", False),
])
def test_bearer_header_variants(header: str, ok: bool) -> None:
    guard = ControlTokenGuard(TOKEN, EventBus(), FakeClock())
    assert guard.authorized((("authorization", header),)) is ok


def test_no_header_is_not_authorized() -> None:
    assert not ControlTokenGuard(TOKEN, EventBus(), FakeClock()).authorized(())
