"""Listed items to records one at a time, so that one bad item costs only itself.

A platform's page is written by strangers: one post may carry a 600-character id, a 10 KB
URL, a field of the wrong shape. ``ClipSeen`` refuses such an item (``monitor/records.py``),
and were that refusal to escape the page, the whole page would be lost and its cursor never
move, so every later pass would fail on the same item. Here each item is built alone: one that
does not make a valid record is left out and counted, and a page logs one line for all of its
bad items, saying why without echoing their (possibly huge) values. A page on which every
item is bad is still skipped, not raised: a one-item page (the last of a search, a lookup of
one id) would otherwise fail every pass and hold its cursor; it is logged as an error, since
every item failing alike is also what a bug in a record builder looks like.

A time that does not parse costs nothing: ``platform_time`` reads it as unknown.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import TypeVar

from pydantic import ValidationError

from monitor.records import ClipSeen, as_utc

__all__ = ["BAD_ITEM_ERRORS", "Item", "platform_time", "valid_clips"]

log = logging.getLogger(__name__)

Item = TypeVar("Item")
"""A listed item as a platform's API gives it, before it is made a record."""

BAD_ITEM_ERRORS: tuple[type[Exception], ...] = (
    ValueError,
    TypeError,
    LookupError,
    OverflowError,
    OSError,
)
"""What building one item's record raises when the item is malformed: pydantic's
``ValidationError`` (a ``ValueError``), a date that does not parse, a field of the wrong type
or missing, a timestamp out of range (``OverflowError``, or ``OSError`` for a far negative one;
building a record does no I/O, so an ``OSError`` here is the item's)."""


def platform_time(text: object) -> datetime | None:
    """When a platform says something happened, from the text it wrote: ISO 8601 (``Z`` read as
    UTC, as X and YouTube write it) or RFC 2822 (an RSS ``pubDate``); a time without a zone is
    taken as UTC (``as_utc``).

    A time that is missing, not text or does not parse is ``None``, not an error: a post date
    only feeds the spread estimate, so a post with a bad one is still worth scoring, and every
    platform treats it the same way rather than one dropping the post and another keeping it.
    """
    if not isinstance(text, str) or not text.strip():
        return None
    text = text.strip()
    try:
        return as_utc(datetime.fromisoformat(text.replace("Z", "+00:00")))
    except ValueError:
        pass
    try:
        return as_utc(parsedate_to_datetime(text))
    except (TypeError, ValueError, OverflowError):
        return None


def _why(exc: Exception) -> str:
    """A short reason that names the field but never its value (which may be megabytes)."""
    if isinstance(exc, ValidationError):
        problems = [
            f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}"
            for error in exc.errors(include_input=False, include_url=False)[:3]
        ]
        return "; ".join(problems)[:300]
    return f"{type(exc).__name__}: {str(exc)[:200]}"


def valid_clips(
    source: str, items: Iterable[Item], build: Callable[[Item], ClipSeen | None]
) -> tuple[list[ClipSeen], int]:
    """The records ``build`` makes of ``items`` (``None``: an item with nothing to observe, left
    out silently), and how many items were left out because they are malformed; one log line
    for those, an error when every listed item was left out."""
    clips: list[ClipSeen] = []
    skipped, total, first = 0, 0, ""
    for item in items:
        total += 1
        try:
            clip = build(item)
        except BAD_ITEM_ERRORS as exc:
            skipped += 1
            first = first or _why(exc)
            continue
        if clip is not None:
            clips.append(clip)
    if skipped:
        log.log(
            logging.ERROR if skipped == total else logging.WARNING,
            "%s: %d of %d listed items skipped, they make no valid record (first: %s)",
            source,
            skipped,
            total,
            first,
        )
    return clips, skipped
