"""Listed items made into records one at a time, and the platforms' times read one way."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from monitor.sources.items import platform_time

MAY_FIRST = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-05-01T10:00:00Z", MAY_FIRST),
        ("2024-05-01T10:00:00.000Z", MAY_FIRST),
        ("2024-05-01T10:00:00+00:00", MAY_FIRST),
        ("2024-05-01T12:00:00+02:00", MAY_FIRST),
        ("2024-05-01T10:00:00", MAY_FIRST),
        ("  2024-05-01T10:00:00Z\n", MAY_FIRST),
        ("Wed, 01 May 2024 10:00:00 GMT", MAY_FIRST),
        ("Wed, 01 May 2024 10:00:00 -0000", MAY_FIRST),
    ],
)
def test_a_platform_time_is_iso_or_rfc_2822_and_a_zoneless_one_is_utc(
    text: str, expected: datetime
) -> None:
    when = platform_time(text)
    assert when == expected and when is not None and when.tzinfo is not None


def test_a_platform_time_keeps_the_zone_it_was_given_in() -> None:
    when = platform_time("2024-05-01T12:00:00+02:00")
    assert when is not None and when.utcoffset() == timezone(timedelta(hours=2)).utcoffset(None)


@pytest.mark.parametrize(
    "text",
    [
        None,
        "",
        "   ",
        "yesterday",
        "2024-13-01T00:00:00Z",
        "Wed, 32 May 2024 10:00:00 GMT",
        1714557600,
        17.5,
        {"at": "2024-05-01"},
    ],
)
def test_a_missing_or_malformed_platform_time_is_none_not_an_error(text: object) -> None:
    assert platform_time(text) is None
