"""The one retry policy and the one ``Retry-After`` reader that every HTTP client uses."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from monitor.retry import RetryPolicy, parse_retry_after

NOW = datetime(2026, 10, 21, 7, 28, tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("120", 120.0),
        ("0", 0.0),
        (" 7 ", 7.0),
        ("0.5", 0.5),
        ("2.25", 2.25),
        (".5", 0.5),
        ("Wed, 21 Oct 2026 07:28:30 GMT", 30.0),
        ("Wed, 21 Oct 2026 07:29:00 -0000", 60.0),  # no zone: read as UTC
        ("Wed, 21 Oct 2026 09:28:00 +0200", 0.0),  # the same instant as NOW
        ("Tue, 20 Oct 2026 07:28:00 GMT", 0.0),  # in the past: now
        ("Thu, 01 Jan 1970 00:00:00 GMT", 0.0),
    ],
)
def test_retry_after_reads_seconds_fractions_and_http_dates(value: str, seconds: float) -> None:
    assert parse_retry_after(value, now=NOW) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "value",
    [None, "", "   ", "-1", "-0.5", "soon", "1e3", "inf", "nan", "1,5", "0x10", "9" * 400, "Oct"],
)
def test_retry_after_that_says_nothing_usable_is_none(value: str | None) -> None:
    assert parse_retry_after(value, now=NOW) is None


def test_retry_after_dates_are_read_against_the_clock_by_default() -> None:
    wait = parse_retry_after("Fri, 31 Dec 9999 23:59:59 GMT")
    assert wait is not None and wait > 86400 * 365


def test_backoff_doubles_within_equal_jitter_bounds_up_to_the_cap() -> None:
    policy = RetryPolicy(backoff_s=1.0, max_backoff_s=8.0, rng=random.Random(3))
    for attempt in range(1, 12):
        ceiling = min(8.0, 2.0 ** (attempt - 1))
        waits = [policy.backoff(attempt) for _ in range(200)]
        assert all(ceiling / 2 <= wait <= ceiling for wait in waits), (attempt, waits)
        assert max(waits) - min(waits) > ceiling / 4, "the random half is used"


def test_backoff_without_spread_is_exact() -> None:
    policy = RetryPolicy(backoff_s=0.01, max_backoff_s=0.05, spread=0.0)
    assert [policy.backoff(n) for n in range(1, 6)] == pytest.approx([0.01, 0.02, 0.04, 0.05, 0.05])


def test_a_seeded_policy_waits_the_same_each_time() -> None:
    first = RetryPolicy(rng=random.Random(7))
    second = RetryPolicy(rng=random.Random(7))
    assert [first.backoff(n) for n in range(1, 6)] == [second.backoff(n) for n in range(1, 6)]


def test_a_server_given_wait_is_stretched_by_at_most_the_jitter() -> None:
    policy = RetryPolicy(jitter=0.25, rng=random.Random(1))
    waits = [policy.stretched(4.0) for _ in range(200)]
    assert all(4.0 <= wait <= 5.0 for wait in waits)
    assert RetryPolicy(jitter=0.0).stretched(4.0) == 4.0
