"""A decode pool that breaks while a decode is being submitted is rebuilt like one that broke
under it, and the decode is tried again alone (Python 3.11 raises an ``OSError``, "handle is
closed", from ``submit`` when the dying pool's pipes close as it spawns a replacement)."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from monitor.media import DecodeLimits
from monitor.pipeline.decode_pool import DecodePool


class BreakingAsSubmitted:
    """A pool whose every submission meets it breaking."""

    def submit(self, *args: Any) -> Future[Any]:
        raise OSError("handle is closed")

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        return None


async def test_a_pool_breaking_as_a_decode_is_submitted_is_rebuilt_and_the_decode_retried(
    package_file: Callable[[str], Path],
) -> None:
    deaths: list[int] = []
    pool = DecodePool(1, on_death=lambda: deaths.append(1))
    pool._pool.shutdown()
    pool._pool = BreakingAsSubmitted()  # type: ignore[assignment]
    try:
        frames = await pool.decode(package_file("bikes.mp4"), DecodeLimits(max_frames=3), 2)
    finally:
        pool.shutdown()
    assert len(frames) == 3
    assert pool.generation == 1 and deaths == [1]
