"""One retry policy and one ``Retry-After`` reader, for every HTTP client of the monitor.

The platform crawlers (``sources/api_client.py``) and the alert notifier
(``alerts/notifier.py``) both retry a failing server with exponential backoff and both wait
as long as a ``429`` or ``503`` asks. They do it with these, so that a ``Retry-After: 0.5``
means the same half second to each of them and a change of backoff is made once.

Backoff waits carry jitter ("equal jitter": half the wait fixed, half random) so that many
clients refused at once do not come back in lockstep; a client whose waits must be exact
(the notifier, which retries one receiver at a time) turns it off with ``spread=0``.
"""

from __future__ import annotations

import asyncio
import math
import random
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC
from email.utils import parsedate_to_datetime

__all__ = ["RetryPolicy", "parse_retry_after"]

_SECONDS = re.compile(r"\d+(?:\.\d*)?|\.\d+")


@dataclass(frozen=True)
class RetryPolicy:
    """How long to wait and how often to retry; tests inject tiny values and a seeded ``rng``.

    ``retries``: tries after the first before giving up; ``backoff_s``: the first backoff,
    doubled for each failure after it up to ``max_backoff_s``; ``max_wait_s``: the longest a
    client waits when asked to (longer, and it gives up or parks the work instead);
    ``rate_limit_waits``: how many rate-limit waits one request may take; ``spread``: the
    random share of each backoff wait (0.5: equal jitter; 0: none); ``jitter``: at most how
    much longer than asked a server-given wait is made, as a fraction of it.
    """

    retries: int = 4
    backoff_s: float = 1.0
    max_backoff_s: float = 60.0
    max_wait_s: float = 120.0
    rate_limit_waits: int = 5
    jitter: float = 0.25
    spread: float = 0.5
    rng: random.Random = field(default_factory=random.Random, compare=False)
    sleep: Callable[[float], Awaitable[None]] = field(default=asyncio.sleep, compare=False)

    def backoff(self, attempt: int) -> float:
        """The wait after failure number ``attempt`` (1, 2, ...): exponential, capped, of
        which ``spread`` is random (equal jitter by default)."""
        ceiling = min(self.max_backoff_s, self.backoff_s * 2.0 ** max(attempt - 1, 0))
        return ceiling * (1 - self.spread) + self.rng.uniform(0, ceiling * self.spread)

    def stretched(self, wait: float) -> float:
        """A wait the server asked for, stretched a little so released clients spread out."""
        return wait * (1 + self.rng.uniform(0, self.jitter))


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header, or ``None`` when it says nothing usable.

    Read: whole seconds (``120``), fractional seconds (``0.5``, which some servers send though
    RFC 9110 has only whole ones) and an HTTP date (``Wed, 21 Oct 2026 07:28:00 GMT``; one in
    the past means now, 0; one without a zone is read as UTC). Negative numbers and anything
    else (``soon``, ``inf``, ``1e3``) are ``None``, so the caller falls back to its backoff.
    ``now``: the current time as a Unix timestamp, for tests.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if _SECONDS.fullmatch(text):
        seconds = float(text)
        return seconds if math.isfinite(seconds) else None
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(when.timestamp() - (time.time() if now is None else now), 0.0)
