"""Whether the scorer can still score, for ``/healthz``.

A worker whose scorer fails every clip for its own reasons (a broken decoder, a model error)
is alive but useless, and an orchestrator only replaces what says it is unhealthy. Media
faults (a 404, a corrupt file, a slow server) say nothing about the scorer and do not count;
failures of the scorer itself do: ``internal``, ``scoring_error``, ``decoder_crashed``.

Unhealthy: ``max_failures`` such failures in a row with no clip scored since, or
``max_deaths`` decode-pool deaths within ``window_s`` with no clip scored since the last one.
One scored clip makes it healthy again.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

__all__ = ["SCORER_FAULTS", "ScorerHealth"]

SCORER_FAULTS = frozenset({"internal", "scoring_error", "decoder_crashed"})
"""Failure reasons that are the scorer's, not the media's."""


class ScorerHealth:
    def __init__(
        self,
        *,
        max_failures: int = 5,
        max_deaths: int = 3,
        window_s: float = 600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_failures = max_failures
        self.max_deaths = max_deaths
        self.window_s = window_s
        self._clock = clock
        self.failures_in_a_row = 0
        self._deaths: deque[float] = deque()
        self._last_success: float | None = None

    def succeeded(self) -> None:
        self.failures_in_a_row = 0
        self._last_success = self._clock()

    def failed(self, reason: str) -> None:
        if reason in SCORER_FAULTS:
            self.failures_in_a_row += 1

    def pool_died(self) -> None:
        self._deaths.append(self._clock())

    def problem(self) -> str | None:
        """Why the scorer cannot score, or None while it can."""
        now = self._clock()
        while self._deaths and self._deaths[0] < now - self.window_s:
            self._deaths.popleft()
        if self.failures_in_a_row >= self.max_failures:
            return f"the last {self.failures_in_a_row} clips failed in the scorer, none scored"
        unanswered = self._last_success is None or (
            bool(self._deaths) and self._deaths[-1] > self._last_success
        )
        if len(self._deaths) >= self.max_deaths and unanswered:
            return (
                f"the decode pool died {len(self._deaths)} times in {self.window_s:g} s, "
                "no clip scored since"
            )
        return None
