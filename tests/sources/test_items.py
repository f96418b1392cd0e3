"""Listed items made into records one at a time, and the platforms' times read one way."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

import pytest

from monitor.records import ClipSeen
from monitor.sources.items import BAD_ITEM_ERRORS, platform_time, valid_clips

MAY_FIRST = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)


def record(item: str) -> ClipSeen:
    return ClipSeen(platform="test", clip_id=item, url=f"https://clips.example.com/{item}")


def failing_on(bad: str, error: Exception) -> Callable[[str], ClipSeen]:
    """A builder that raises ``error`` for the item ``bad`` and makes the rest."""

    def build(item: str) -> ClipSeen:
        if item == bad:
            raise error
        return record(item)

    return build


@pytest.mark.parametrize("kind", BAD_ITEM_ERRORS, ids=lambda kind: kind.__name__)
def test_an_item_whose_builder_raises_a_bad_item_error_is_skipped_and_the_others_kept(
    kind: type[Exception], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    clips, skipped = valid_clips("test", ["a", "b", "c"], failing_on("b", kind("item b")))

    assert [c.clip_id for c in clips] == ["a", "c"] and skipped == 1
    (line,) = [r.getMessage() for r in caplog.records]
    assert "1 of 3 listed items skipped" in line and kind.__name__ in line


def test_an_item_with_nothing_to_observe_is_left_out_without_counting_as_bad() -> None:
    clips, skipped = valid_clips(
        "test", ["a", "b"], lambda item: None if item == "a" else record(item)
    )
    assert [c.clip_id for c in clips] == ["b"] and skipped == 0


def test_a_page_on_which_every_item_is_bad_is_skipped_and_logged_as_an_error_naming_the_first(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def build(item: str) -> ClipSeen:
        raise KeyError(f"no field for {item}")

    with caplog.at_level(logging.WARNING, logger="monitor.sources.items"):
        assert valid_clips("test", ["a", "b"], build) == ([], 2)
    [line] = caplog.records
    assert line.levelno == logging.ERROR and "no field for a" in line.getMessage()


def test_an_empty_page_is_no_error() -> None:
    assert valid_clips("test", [], record) == ([], 0)


def test_an_error_that_is_not_about_the_item_propagates() -> None:
    with pytest.raises(RuntimeError, match="the builder is broken"):
        valid_clips("test", ["a", "b", "c"], failing_on("b", RuntimeError("the builder is broken")))


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
