from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.alerting.receivers import PagerDutyReceiver, SlackReceiver


@pytest.fixture
async def pd() -> AsyncIterator[PagerDutyReceiver]:
    receiver = PagerDutyReceiver()
    await receiver.start()
    yield receiver
    await receiver.close()


@pytest.fixture
async def slack() -> AsyncIterator[SlackReceiver]:
    receiver = SlackReceiver()
    await receiver.start()
    yield receiver
    await receiver.close()
