from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.alerts.receiver import Receiver


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    running = Receiver()
    await running.start()
    yield running
    await running.stop()
